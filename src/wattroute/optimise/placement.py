"""Where and when would one job run best? The fleet's marginal power, priced per start.

Given a job's work, the accelerators it would run on and its deadline, :func:`place` prices
running it at each allowed site from each start on the step grid (from the step in force up
to the last start that still finishes by the deadline), and returns the best start, the best
way to run it now, and each site's best.

The marginal power model, per site and step (every value the mean over its step):

* the job's facility power ``p = n x (busy_kw - idle_kw) x PUE`` kW — what ``n`` more busy
  accelerators add (:func:`~wattroute.model.power.busy_accelerator_kw`);
* the on-site renewables the plan leaves unused,
  ``spare = max(0, solar_kw + wind_kw - load_kw)``, where ``load_kw`` is the site's facility
  load in the decision in force, held over the horizon; of it, up to ``export_limit_kw`` is
  exported where the export price is positive and the rest is curtailed;
* the job takes curtailed power first (free, no emissions), then power that would have been
  exported (it forgoes the export price, no emissions), then buys the rest: from the grid at
  its price and carbon intensity, or at an islanded site from its genset at its fuel cost and
  emission factor; an islanded site without a genset can run the job only on spare power.

For a run of ``h`` hours the energy of every step is the power times its length, the last
step's times the fraction of it the run takes. Money is USD (prices USD/MWh, fuel USD/kWh),
emissions kg CO2e (intensities g/kWh), and ``objective_usd = cost_usd + carbon price x
emissions_kg / 1000`` (the fleet's objective, :mod:`wattroute.model.costs`). Batteries,
gensets at grid sites, import limits and power caps stay as the plan set them: this answers
where power is cheapest, it reserves nothing.

Beyond the forecast's horizon each signal repeats its forecast of the same time of day on the
last forecast day (forecasts reach 24 h).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from wattroute.errors import InputError
from wattroute.model.arrays import FleetSignals, FleetStatic, steps_per_day
from wattroute.model.costs import KG_PER_TONNE, KWH_PER_MWH
from wattroute.model.workloads import allowed_site_names

Criterion = Literal["objective", "cost", "emissions"]
"""What "best" minimises: the fleet's objective (cost plus the carbon price on emissions),
the money paid, or the emissions."""

_TOL = 1e-9
G_PER_KG = 1000.0


@dataclass(frozen=True)
class PowerOutlook:
    """What the fleet expects of its power from ``start`` on.

    Signal arrays are ``(T, S)``, row 0 the step in force (at ``start``), one row per step of
    ``step_h`` hours, one column per site of the fleet; ``load_kw`` is each site's facility
    load in the decision in force, kW, ``(S,)``. Prices USD/MWh, carbon gCO2e/kWh, solar and
    wind kW available, PUE dimensionless. NaN marks a value not known: a step that needs it is
    not used."""

    start: pd.Timestamp
    step_h: float
    price_usd_per_mwh: np.ndarray
    export_price_usd_per_mwh: np.ndarray
    carbon_g_per_kwh: np.ndarray
    solar_kw: np.ndarray
    wind_kw: np.ndarray
    pue: np.ndarray
    load_kw: np.ndarray

    def rows(self, n: int) -> dict[str, np.ndarray]:
        """The signals over ``n`` steps: rows beyond the outlook repeat the same time of day
        on its last day (or its last row, when it is shorter than a day)."""
        have = self.price_usd_per_mwh.shape[0]
        day = steps_per_day(self.step_h)
        index = np.arange(n)
        if n > have:
            period = day if have >= day else 1
            later = index >= have
            back = -(-(index[later] - (have - 1)) // period) * period
            index[later] = index[later] - back
        return {
            name: np.asarray(getattr(self, name), dtype=float)[index] for name in FleetSignals.NAMES
        }


@dataclass(frozen=True)
class PlacementRequest:
    """A job to place: ``work_accelerator_hours`` on ``accelerators`` accelerators, finished
    by ``deadline`` (UTC), at one of ``allowed_sites`` (``None``: any)."""

    work_accelerator_hours: float
    accelerators: int
    deadline: pd.Timestamp
    allowed_sites: tuple[str, ...] | None = None
    minimise: Criterion = "objective"


@dataclass(frozen=True)
class PlacementOption:
    """Running the job at ``site`` from ``start`` to ``end``: facility energy (kWh), the part
    of it from spare on-site renewables, the part bought (grid or genset), what it costs
    (USD), emits (kg CO2e) and adds to the objective (USD)."""

    site: str
    start: pd.Timestamp
    end: pd.Timestamp
    energy_kwh: float
    renewable_kwh: float
    bought_kwh: float
    cost_usd: float
    emissions_kg: float
    objective_usd: float


@dataclass(frozen=True)
class Placement:
    """The best option, the best option now (``None`` when no allowed site has the power to
    start now), each usable site's best, the run's length (hours) and the starts considered
    per site."""

    best: PlacementOption
    now: PlacementOption | None
    by_site: tuple[PlacementOption, ...]
    runtime_h: float
    starts: int


def place(
    request: PlacementRequest,
    fleet: FleetStatic,
    outlook: PowerOutlook,
    carbon_price_usd_per_tonne: float,
    period_end: pd.Timestamp | None = None,
    offline: frozenset[str] = frozenset(),
) -> Placement:
    """Price every allowed site and start for ``request`` (module docstring: the model).

    Starts lie on the step grid from ``outlook.start`` to the last that finishes by the
    deadline (and by ``period_end``, when the fleet's signals end). Sites in ``offline`` and
    sites with fewer accelerators than asked for are left out.

    Raises
    ------
    InputError
        ``allowed_sites`` names a site the fleet has not, no allowed site can take the job,
        or it cannot finish by its deadline anywhere (``field`` names the request field).
    """
    names = list(fleet.names)
    n = request.accelerators
    allowed = allowed_site_names(request.allowed_sites, names)
    online = [s for s in allowed if s not in offline]
    if not online:
        raise InputError(
            "allowed_sites",
            f"every allowed site is offline ({', '.join(allowed)}).",
            "allow another site, or ask again when the operator brings one back.",
        )
    fits = [s for s in online if fleet.accelerators[names.index(s)] >= n]
    if not fits:
        biggest = max(int(fleet.accelerators[names.index(s)]) for s in online)
        raise InputError(
            "accelerators",
            f"{n} accelerators: the largest allowed site has {biggest}.",
            f"ask for at most {biggest} or allow a larger site.",
        )

    runtime_h = request.work_accelerator_hours / n
    step_h = outlook.step_h
    step = pd.Timedelta(hours=step_h)
    limit = request.deadline if period_end is None else min(request.deadline, period_end)
    room_h = (limit - outlook.start).total_seconds() / 3600 - runtime_h
    if room_h < -_TOL:
        raise InputError(
            "deadline",
            f"{request.work_accelerator_hours:g} accelerator-hours on {n} accelerators take "
            f"{runtime_h:.2f} h: started now ({outlook.start.isoformat()}) the run ends after "
            f"{'the deadline' if limit == request.deadline else 'the fleet period'} "
            f"({limit.isoformat()}).",
            "give a later deadline or more accelerators.",
        )
    last_start = math.floor(room_h / step_h + _TOL)
    run_steps = max(1, math.ceil(runtime_h / step_h - _TOL))
    last_fraction = runtime_h / step_h - (run_steps - 1)
    signals = outlook.rows(last_start + run_steps)

    options: list[PlacementOption] = []
    now_options: list[PlacementOption] = []
    for site in fits:
        i = names.index(site)
        full = _step_terms(fleet, i, signals, outlook.load_kw[i], n, 1.0, step_h)
        part = _step_terms(fleet, i, signals, outlook.load_kw[i], n, last_fraction, step_h)
        windows = _window_sums(full, part, run_steps, last_start + 1, carbon_price_usd_per_tonne)
        score = windows[_SCORE[request.minimise]]
        usable = np.isfinite(score)
        if not usable.any():
            continue
        j = int(np.argmax(usable & (score <= _near(np.nanmin(score)))))  # the earliest
        options.append(_option(site, windows, j, outlook.start, step, runtime_h))
        if usable[0]:
            now_options.append(_option(site, windows, 0, outlook.start, step, runtime_h))
    if not options:
        raise InputError(
            "allowed_sites",
            "no allowed site has the power to run it before its deadline (islanded sites "
            "without a genset run only on spare renewables).",
            "allow a grid-connected site or give a later deadline.",
        )

    def best(among: list[PlacementOption]) -> PlacementOption:
        """The lowest score; of scores equal but for rounding, the earliest, first site."""
        scores = [getattr(o, _SCORE[request.minimise]) for o in among]
        low = _near(min(scores))
        near = [o for o, v in zip(among, scores, strict=True) if v <= low]
        return min(near, key=lambda o: (o.start, names.index(o.site)))

    return Placement(
        best=best(options),
        now=best(now_options) if now_options else None,
        by_site=tuple(options),
        runtime_h=runtime_h,
        starts=last_start + 1,
    )


_SCORE = {"objective": "objective_usd", "cost": "cost_usd", "emissions": "emissions_kg"}


def _near(lowest: float) -> float:
    """The highest score that counts as equal to ``lowest``: within a millionth (sums of
    thousands of steps differ by rounding where they are the same)."""
    return lowest + 1e-6 * abs(lowest) + 1e-12


def _step_terms(
    fleet: FleetStatic,
    i: int,
    sig: dict[str, np.ndarray],
    load_kw: float,
    n: int,
    fraction: float,
    step_h: float,
) -> dict[str, np.ndarray]:
    """Per step, what running the job for ``fraction`` of the step at site ``i`` takes:
    energy (kWh) by source, cost (USD) and emissions (kg); NaN where it cannot run."""
    pue = sig["pue"][:, i]
    extra_it_kw = n * float(fleet.busy_kw[i] - fleet.idle_kw[i])
    power = extra_it_kw * np.maximum(pue, 1.0) * fraction
    renewable = np.nan_to_num(sig["solar_kw"][:, i]) + np.nan_to_num(sig["wind_kw"][:, i])
    spare = np.maximum(renewable - load_kw, 0.0)
    export_price = sig["export_price_usd_per_mwh"][:, i]
    exportable = np.where(
        np.nan_to_num(export_price) > 0, np.minimum(spare, fleet.export_limit_kw[i]), 0.0
    )
    curtailed = spare - exportable
    from_curtailed = np.minimum(power, curtailed)
    from_export = np.minimum(power - from_curtailed, exportable)
    bought = power - from_curtailed - from_export
    forgone = from_export * np.nan_to_num(export_price) / KWH_PER_MWH
    if fleet.import_limit_kw[i] > 0:
        price = sig["price_usd_per_mwh"][:, i] / KWH_PER_MWH
        intensity = sig["carbon_g_per_kwh"][:, i]
    else:
        price = np.full(len(power), float(fleet.genset_cost_usd_per_kwh[i]))
        intensity = np.full(len(power), float(fleet.genset_g_per_kwh[i]))
    needs = bought > _TOL
    cost = step_h * (forgone + np.where(needs, bought * price, 0.0))
    emissions = step_h * np.where(needs, bought * intensity, 0.0) / G_PER_KG
    if fleet.import_limit_kw[i] <= 0 and fleet.genset_kw[i] <= 0:
        cost = np.where(needs, np.nan, cost)  # nothing to buy from
    broken = ~np.isfinite(power)
    cost = np.where(broken, np.nan, cost)
    return {
        "energy_kwh": step_h * power,
        "renewable_kwh": step_h * (from_curtailed + from_export),
        "bought_kwh": step_h * bought,
        "cost_usd": cost,
        "emissions_kg": emissions,
    }


def _window_sums(
    full: dict[str, np.ndarray],
    part: dict[str, np.ndarray],
    run_steps: int,
    starts: int,
    carbon_price_usd_per_tonne: float,
) -> dict[str, np.ndarray]:
    """Per start ``j < starts``: the sum over the run's full steps ``j .. j+run_steps-2`` and
    its last, partial step ``j+run_steps-1``; NaN where a step cannot run."""
    out: dict[str, np.ndarray] = {}
    last = np.arange(starts) + run_steps - 1
    for name, values in full.items():
        clean = np.nan_to_num(values, nan=0.0)
        sums = np.concatenate([[0.0], np.cumsum(clean)])
        head = sums[last] - sums[np.arange(starts)]
        bad = np.concatenate([[0], np.cumsum(~np.isfinite(values))])
        broken = (bad[last] - bad[np.arange(starts)]) > 0
        total = head + part[name][last]
        out[name] = np.where(broken, np.nan, total)
    out["cost_usd"] = np.where(np.isfinite(out["emissions_kg"]), out["cost_usd"], np.nan)
    out["emissions_kg"] = np.where(np.isfinite(out["cost_usd"]), out["emissions_kg"], np.nan)
    out["objective_usd"] = (
        out["cost_usd"] + carbon_price_usd_per_tonne * out["emissions_kg"] / KG_PER_TONNE
    )
    return out


def _option(
    site: str,
    windows: dict[str, np.ndarray],
    j: int,
    start: pd.Timestamp,
    step: pd.Timedelta,
    runtime_h: float,
) -> PlacementOption:
    begin = start + j * step
    return PlacementOption(
        site=site,
        start=begin,
        end=(begin + pd.Timedelta(hours=runtime_h)).floor("s"),
        energy_kwh=float(windows["energy_kwh"][j]),
        renewable_kwh=float(windows["renewable_kwh"][j]),
        bought_kwh=float(windows["bought_kwh"][j]),
        cost_usd=float(windows["cost_usd"][j]),
        emissions_kg=float(windows["emissions_kg"][j]),
        objective_usd=float(windows["objective_usd"][j]),
    )
