"""The policy interface: an :class:`Observation` in, a :class:`Decision` out.

A policy never sees the future. The observation holds the state now (jobs, battery energy,
current signal values and request rates) and a :class:`~wattroute.signals.forecast.History`
that hands out rows up to and including now only; forecasts are made from that.

The simulator enforces every constraint on the decision it gets back (capacity, allowed sites,
parallelism bounds, power envelope) and repairs it if needed, so a policy may be approximate;
repairs are counted in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar, overload

import numpy as np
import pandas as pd

from wattroute.model.arrays import FleetStatic, all_set, any_set
from wattroute.model.costs import (
    energy_costs,
    genset_cost_usd_per_kwh,
    import_cost_usd_per_kwh,
)
from wattroute.model.power import battery_discharge_room_kw, busy_accelerator_kw, facility_kw
from wattroute.model.scenario import Penalties
from wattroute.model.tolerances import ROUNDING
from wattroute.signals.forecast import Forecaster, History

_PRICING_SIGNALS = (
    "pue",
    "price_usd_per_mwh",
    "carbon_g_per_kwh",
    "solar_kw",
    "export_price_usd_per_mwh",
)
"""The signals that set what power for one more accelerator is expected to cost at a site."""

_T = TypeVar("_T")


class _cached(Generic[_T]):  # noqa: N801 - used as a decorator, like functools.cached_property
    """:func:`functools.cached_property` without its lock.

    On Python 3.11 ``cached_property`` takes a lock, shared by every instance, on each first
    read: about 2 us, several times what the values cached here cost to compute, and a
    simulated decision reads two of them. Without the lock, two threads reading the value
    at once may both compute it (the same value); nothing worse."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _cached[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> _T | _cached[_T]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


HOLD_FOREVER = 2**62
"""``Decision.hold_steps`` meaning "until something changes" (an arrival, or a completion
unless ``Decision.revisit_on_completion`` is false)."""


def accelerators_by_site(site_of: np.ndarray, acc_of: np.ndarray, n_sites: int) -> np.ndarray:
    """Accelerators that jobs at ``site_of`` (-1: none) on ``acc_of`` hold at each site,
    ``(n_sites,)``."""
    running = site_of >= 0
    return np.bincount(site_of[running], weights=acc_of[running], minlength=n_sites)


class ActiveJobs:
    """Batch jobs that have arrived and are not finished, arrays of shape ``(n,)`` in arrival
    order, aligned with ``ids`` (indices into the scenario's jobs).

    Columns are fetched when first read (through ``column(name)``), so a policy pays only for
    what it looks at. Build one from arrays with :meth:`from_arrays`.
    """

    COLUMNS = (
        "remaining_accelerator_hours",
        "deadline_h",
        "min_accelerators",
        "max_accelerators",
        "site",
        "accelerators",
        "last_site",
        "allowed",
        "pending_overhead_h",
        "checkpoint_overhead_h",
        "migration_overhead_h",
    )

    __slots__ = ("_cache", "_column", "ids")

    def __init__(self, ids: np.ndarray, column: Callable[[str], np.ndarray]) -> None:
        self.ids = ids
        self._column = column
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_arrays(cls, ids: np.ndarray, **columns: np.ndarray) -> ActiveJobs:
        """Active jobs from arrays given by column name (all of :attr:`COLUMNS`)."""
        missing = set(cls.COLUMNS) - set(columns)
        if missing:
            raise TypeError(f"missing columns: {', '.join(sorted(missing))}")
        return cls(ids, columns.__getitem__)

    def _get(self, name: str) -> np.ndarray:
        value = self._cache.get(name)
        if value is None:
            value = self._cache[name] = self._column(name)
        return value

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def remaining_accelerator_hours(self) -> np.ndarray:
        """Work still to do, accelerator-hours."""
        return self._get("remaining_accelerator_hours")

    @property
    def deadline_h(self) -> np.ndarray:
        """Hours from now to the deadline (negative once it has passed)."""
        return self._get("deadline_h")

    @property
    def min_accelerators(self) -> np.ndarray:
        """Fewest accelerators the job can run on."""
        return self._get("min_accelerators")

    @property
    def max_accelerators(self) -> np.ndarray:
        """Most accelerators the job can use."""
        return self._get("max_accelerators")

    @property
    def site(self) -> np.ndarray:
        """Site index the job runs at now, -1 if it is not running."""
        return self._get("site")

    @property
    def accelerators(self) -> np.ndarray:
        """Accelerators the job runs on now (0 if not running)."""
        return self._get("accelerators")

    @property
    def last_site(self) -> np.ndarray:
        """Site index the job ran at last, -1 if never (a first start costs no overhead)."""
        return self._get("last_site")

    @property
    def allowed(self) -> np.ndarray:
        """Sites the job may run at, ``(n, S)`` bool."""
        return self._get("allowed")

    @property
    def pending_overhead_h(self) -> np.ndarray:
        """Overhead hours owed before progress (with the restore a stopped job pays)."""
        return self._get("pending_overhead_h")

    @property
    def checkpoint_overhead_h(self) -> np.ndarray:
        """Hours lost to checkpoint and restore after each stop."""
        return self._get("checkpoint_overhead_h")

    @property
    def migration_overhead_h(self) -> np.ndarray:
        """Extra hours lost when resuming at another site."""
        return self._get("migration_overhead_h")

    @property
    def slack_h(self) -> np.ndarray:
        """Hours a job can still wait and finish on time at full parallelism."""
        return (
            self.deadline_h
            - self.pending_overhead_h
            - self.remaining_accelerator_hours / self.max_accelerators
        )


@dataclass(frozen=True, eq=False)
class ServiceState:
    """One inference service now.

    ``rate_rps`` is the request rate per demand point now, shape ``(P,)``; ``rtt_ms`` and
    ``feasible`` are per (demand point, site), shape ``(P, S)``.
    """

    name: str
    rate_rps: np.ndarray
    rtt_ms: np.ndarray
    feasible: np.ndarray
    replica_throughput_rps: float
    accelerators_per_replica: int


@dataclass(frozen=True, eq=False)
class Observation:
    """What a policy knows at a step.

    Current values (``*_now``) have shape ``(S,)``: price USD/MWh, intensity gCO2eq/kWh,
    renewable generation kW, PUE. The battery energy now, :attr:`soc_kwh`, is computed when
    first asked for (the simulator dispatches lazily; a policy that ignores it costs less).
    """

    step: int
    time: pd.Timestamp
    step_h: float
    steps_per_day: int
    carbon_price_usd_per_tonne: float
    penalties: Penalties
    fleet: FleetStatic
    jobs: ActiveJobs
    services: tuple[ServiceState, ...]
    soc_source: Callable[[], np.ndarray] = field(repr=False)
    price_now: np.ndarray
    carbon_now: np.ndarray
    solar_now: np.ndarray
    wind_now: np.ndarray
    pue_now: np.ndarray
    history: History
    forecaster: Forecaster
    firm_kw: np.ndarray | None = field(default=None, repr=False)
    """Facility power each site can draw now without its battery, kW, ``(S,)`` — what
    :meth:`supply_kw` gives with ``with_battery=False`` — if the caller has it at hand;
    ``None``: computed when first needed."""

    @_cached
    def _soc(self) -> np.ndarray:
        return self.soc_source()

    @property
    def soc_kwh(self) -> np.ndarray:
        """Battery energy per site now, kWh, shape ``(S,)`` (zero where there is none); read
        from the source once, on first use."""
        return np.array(self._soc)

    def forecast(self, name: str, horizon: int) -> np.ndarray:
        """Forecast of a signal for the next ``horizon`` steps, shape ``(horizon, S)``.

        ``name`` is one of ``price_usd_per_mwh``, ``carbon_g_per_kwh``, ``solar_kw``,
        ``wind_kw``, ``pue``, ``export_price_usd_per_mwh`` (shape ``(horizon, S)``), or
        ``rate_rps:<service>`` for a service's request rates (shape ``(horizon, P)``).

        Each forecast is made once per observation (:attr:`_forecasts`) and handed out as a
        copy, so a caller may change what it gets.
        """
        key = (name, horizon)
        made = self._forecasts.get(key)
        if made is None:
            made = self._forecasts[key] = self.history.forecast(
                name, horizon, self.forecaster, self.steps_per_day
            )
        return made.copy()

    @cached_property
    def _forecasts(self) -> dict[tuple[str, int], np.ndarray]:
        """The forecasts made so far from this observation, by signal name and horizon
        (steps). Never stale: an observation is one step's view, its history hands out only
        what was known then, and the forecaster is fixed, so a forecast asked for again is the
        one already made (``greedy`` asks for the day-ahead prices, intensity and PUE, and
        :meth:`accelerator_cost_usd_per_h` for them again)."""
        return {}

    def _inference(self, routing: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Accelerators a routing's replicas occupy at each site now, and their utilisation-
        weighted count, ``(S,)`` each."""
        need = np.zeros(self.fleet.n_sites)
        busy = np.zeros(self.fleet.n_sites)
        for service, shares in zip(self.services, routing, strict=True):
            replicas = (service.rate_rps @ shares) / service.replica_throughput_rps
            need += np.ceil(replicas - ROUNDING) * service.accelerators_per_replica
            busy += replicas * service.accelerators_per_replica
        return need, busy

    def _facility_kw(self, busy: np.ndarray) -> np.ndarray:
        """Facility power each site draws now with ``busy`` accelerators busy, kW, ``(S,)``."""
        return facility_kw(self.fleet, self.pue_now, busy)

    def inference_accelerators(self, routing: tuple[np.ndarray, ...]) -> np.ndarray:
        """Accelerators each site needs now to serve the given routing, shape ``(S,)``."""
        return self._inference(routing)[0]

    def demand_kw(
        self, site_of: np.ndarray, acc_of: np.ndarray, routing: tuple[np.ndarray, ...]
    ) -> np.ndarray:
        """Facility power each site would draw now with these allocations, kW, ``(S,)``."""
        batch = accelerators_by_site(site_of, acc_of, self.fleet.n_sites)
        return self._facility_kw(batch + self._inference(routing)[1])

    def supply_kw(
        self,
        battery_setpoint: np.ndarray | None = None,
        with_battery: bool = True,
        with_grid: bool = True,
    ) -> np.ndarray:
        """Facility power each site can draw now, kW, ``(S,)``: renewables, the battery (as a
        set-point allows; NaN is merit order), the import limit and the genset, within the
        site's power cap. ``with_battery=False`` leaves the battery out (and does not read it);
        ``with_grid=False`` leaves out imports and the genset (what the site has of its own)."""
        fleet = self.fleet
        room = np.zeros(fleet.n_sites)
        if with_battery and any_set(fleet.battery_max_kwh > 0):
            room = battery_discharge_room_kw(fleet, self.soc_kwh, self.step_h)
            if battery_setpoint is not None:
                forced = ~np.isnan(battery_setpoint)
                # a discharge set-point gives that much, a hold nothing, charging takes power
                room = np.where(forced, np.minimum(-np.nan_to_num(battery_setpoint), room), room)
        own = self.solar_now + self.wind_now + room
        if not with_grid:
            return np.minimum(fleet.power_cap_kw, own)
        return np.minimum(fleet.power_cap_kw, own + fleet.import_limit_kw + fleet.genset_kw)

    def room(
        self,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
        battery_setpoint: np.ndarray | None = None,
    ) -> np.ndarray:
        """Accelerators each site can still both hold and power now, beyond these allocations
        and the routing's replicas, ``(S,)``. The battery is read only if a site needs it."""
        batch = accelerators_by_site(site_of, acc_of, self.fleet.n_sites)
        return self.room_beside(batch, routing, battery_setpoint)

    def room_beside(
        self,
        batch: np.ndarray,
        routing: tuple[np.ndarray, ...],
        battery_setpoint: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`room` beside ``batch`` accelerators busy with batch work at each site,
        ``(S,)`` (for a caller that keeps the per-site totals as it changes allocations)."""
        fleet = self.fleet
        need, busy = self._inference(routing)
        count = fleet.accelerator_count
        free = np.maximum(count - np.minimum(need, count) - batch, 0.0)
        demand = self._facility_kw(batch + busy)
        per_acc = self._busy_accelerator_kw
        if battery_setpoint is None and all_set(
            self._firm_kw - demand >= per_acc * free - ROUNDING
        ):
            return free  # power is no constraint: no need to read the battery
        headroom = self.supply_kw(battery_setpoint) - demand
        return np.clip(np.floor(headroom / per_acc + ROUNDING), 0.0, free)

    def accelerator_cost_usd_per_h(
        self,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
        steps: int = 1,
    ) -> np.ndarray:
        """What one more busy accelerator would cost at each site, beyond these allocations
        and the routing's replicas, USD per hour, ``(S,)``, averaged over ``steps`` steps from
        now (at most a day). Now: its extra facility power from the cheapest source with that
        much to spare beside the load these allocations make — surplus renewables (the
        export revenue forgone), then imports within the import limit (price and carbon),
        then the genset; ``inf`` where none has. After now (the forecast, with that load
        held): the same, on the forecast sun but as if there were no wind. The sun's daily
        course is forecast well from the past; wind is the signal forecast worst, and work
        started on a gust cannot leave cheaply when it drops (on the held-out stress weeks,
        counting on forecast wind sent jobs to a wind site whose genset then ran). Counting
        the sun, on the stress days (d) `mpc` spent 1,014.14 USD against 1,023.80 with
        bought power alone. The battery is left out: what it gives now it does not
        give later."""
        load_kw = self.demand_kw(site_of, acc_of, routing)
        now = self._marginal_cost(
            load_kw,
            self.pue_now,
            self.solar_now + self.wind_now,
            self.price_now,
            self.history.now("export_price_usd_per_mwh"),
            self.carbon_now,
        )
        ahead = min(steps, self.steps_per_day) - 1
        if ahead <= 0:
            return now
        f = self._day_ahead
        later = self._marginal_cost(
            load_kw,
            f["pue"][:ahead],
            f["solar_kw"][:ahead],  # the sun only (see above)
            f["price_usd_per_mwh"][:ahead],
            f["export_price_usd_per_mwh"][:ahead],
            f["carbon_g_per_kwh"][:ahead],
        )
        return (now + later.sum(axis=0)) / (ahead + 1)

    @cached_property
    def _day_ahead(self) -> dict[str, np.ndarray]:
        """The forecast of the signals that price power for one more accelerator, a day
        ahead, ``(day, S)`` each."""
        return {name: self.forecast(name, self.steps_per_day) for name in _PRICING_SIGNALS}

    def _marginal_cost(
        self,
        load_kw: np.ndarray,
        pue: np.ndarray,
        renewable_kw: np.ndarray,
        price: np.ndarray,
        export_price: np.ndarray,
        carbon: np.ndarray,
    ) -> np.ndarray:
        """USD per hour of one more busy accelerator beside ``load_kw`` (``(S,)``): on surplus
        renewables where they cover it (the export revenue forgone), else on bought power
        (:meth:`_bought_cost`)."""
        per_acc_kw = busy_accelerator_kw(self.fleet, pue)
        renewable, _, _ = energy_costs(
            self.fleet, price, export_price, carbon, self.carbon_price_usd_per_tonne
        )
        bought = self._bought_cost(load_kw, pue, renewable_kw, price, carbon)
        return np.where(
            load_kw + per_acc_kw - renewable_kw <= ROUNDING, renewable * per_acc_kw, bought
        )

    def _bought_cost(
        self,
        load_kw: np.ndarray,
        pue: np.ndarray,
        renewable_kw: np.ndarray,
        price: np.ndarray,
        carbon: np.ndarray,
    ) -> np.ndarray:
        """USD per hour of one more busy accelerator beside ``load_kw`` (``(S,)``) on the power
        it buys beyond ``renewable_kw``: imports within the import limit, then the genset;
        ``inf`` where neither has it. Rows of the signals: ``(S,)`` or ``(T, S)``."""
        fleet = self.fleet
        per_acc_kw = busy_accelerator_kw(fleet, pue)
        grid = import_cost_usd_per_kwh(price, carbon, self.carbon_price_usd_per_tonne)
        genset = genset_cost_usd_per_kwh(fleet, self.carbon_price_usd_per_tonne)
        bought_kw = np.maximum(load_kw + per_acc_kw - renewable_kw, 0.0)
        usd_per_kwh = np.where(
            bought_kw <= fleet.import_limit_kw + ROUNDING,
            grid,
            np.where(bought_kw <= fleet.import_limit_kw + fleet.genset_kw, genset, np.inf),
        )
        return usd_per_kwh * per_acc_kw

    @_cached
    def _firm_kw(self) -> np.ndarray:
        """Facility power each site can draw now without its battery, kW, ``(S,)``."""
        if self.firm_kw is not None:
            return self.firm_kw
        return self.supply_kw(with_battery=False)

    @_cached
    def _busy_accelerator_kw(self) -> np.ndarray:
        """Facility power one more busy accelerator draws now at each site, kW, ``(S,)``."""
        return busy_accelerator_kw(self.fleet, self.pue_now)


@dataclass(eq=False)
class Decision:
    """What to do from this step on.

    Parameters
    ----------
    job_site
        Site index per active job (aligned with ``Observation.jobs.ids``), -1 to not run it.
    job_accelerators
        Accelerators per active job (0 to not run it).
    routing
        Per service, the share of each demand point's requests sent to each site, shape
        ``(P, S)``, rows summing to at most 1 (the rest is dropped). Replicas follow from the
        routed rate and the replica throughput. The same tuple given again is taken to be
        unchanged: give a new one when the shares change, rather than editing them in place.
    battery_kw
        Battery set-point per site, kW (positive charges), NaN for merit order; ``None`` for
        merit order everywhere.
    genset_kw
        Genset set-point per site, kW, NaN for merit order; ``None`` for merit order.
    hold_steps
        How many steps the decision stands, unless an arrival or completion comes first.
    revisit_on_completion
        Whether a running job finishing should end the decision. ``False`` says the policy
        would only keep everything else as it is: the simulator then carries on without asking,
        the finished job's accelerators falling idle (they become free at the next decision).
    """

    job_site: np.ndarray
    job_accelerators: np.ndarray
    routing: tuple[np.ndarray, ...]
    battery_kw: np.ndarray | None = None
    genset_kw: np.ndarray | None = None
    hold_steps: int = 1
    revisit_on_completion: bool = True


class Policy(Protocol):
    """Decides allocations, routing and set-points from an observation.

    A policy may also offer ``for_live_control()``, which the live controller calls before its
    first tick: from then on the policy keeps long computations off its decisions (``mpc``
    solves its re-plans on a worker thread), at the cost of runs that depend on timing.
    """

    name: str

    def reset(self) -> None:
        """Forget any state from a previous run."""
        ...

    def decide(self, observation: Observation) -> Decision:
        """The decision for the current step."""
        ...

    def stats(self) -> dict[str, float]:
        """Counters and timings of the run so far for its summary (``policy_stats``); empty
        when the policy keeps none."""
        ...
