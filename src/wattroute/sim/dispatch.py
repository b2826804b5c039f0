"""Power dispatch at each site: who supplies the load, where surplus goes.

Merit order unless a policy sets points (DESIGN.md):

* supply: renewables -> battery discharge -> grid import (<= limit) -> genset
* surplus: battery charge -> export (<= limit) -> curtailment
* load that no source can cover is *unserved* and reported.

All functions work on arrays of shape ``(T, S)`` (steps, sites) so that a block of steps over
a whole fleet is dispatched in a handful of numpy operations. The only sequential part is the
battery's state of charge, and it is a composition of clamp-and-shift maps, which is
associative; :func:`clamped_cumsum` evaluates it as a parallel prefix scan in ``log2(T)``
vectorised passes.

Merit order follows what grid energy is worth when prices say otherwise (:class:`GridTerms`):
where the grid *pays* to take power (a negative price, net of the carbon price), the site
imports all it can and uses renewables only for the rest, and its battery charges rather than
discharges; where exporting costs money (a negative export price), surplus is stored or
curtailed, not exported. A site operator does both; the planning LP and the oracle do too.

A policy set-point for the battery (kW, positive charges) or genset (kW) replaces merit order
for that device; NaN means "merit order". Set-points are honoured as far as physics allows and
no renewable energy is wasted for them: a battery will not charge what no source can supply,
will store surplus that would otherwise be curtailed whatever its set-point (export first),
and will not discharge more than the load and export can take beyond the renewables.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from wattroute.errors import EnergyBalanceError
from wattroute.model.arrays import FleetSignals, FleetStatic
from wattroute.model.costs import import_cost_usd_per_kwh
from wattroute.model.tolerances import BALANCE_RELATIVE


@dataclass(frozen=True)
class GridTerms:
    """Where grid energy's value reverses merit order, boolean arrays of shape ``(N, S)``.

    ``grid_pays``: importing earns money even after the carbon price (``price + carbon price x
    intensity < 0``). ``export_costs``: the export price is negative.
    """

    grid_pays: np.ndarray
    export_costs: np.ndarray

    @classmethod
    def from_signals(
        cls, signals: FleetSignals, carbon_price_usd_per_tonne: float
    ) -> GridTerms | None:
        """The terms of ``signals`` (prices USD/MWh, intensity g/kWh) at a carbon price in
        USD/t; ``None`` when prices never reverse merit order (dispatch then skips the check)."""
        pays = (
            import_cost_usd_per_kwh(
                signals.price_usd_per_mwh, signals.carbon_g_per_kwh, carbon_price_usd_per_tonne
            )
            < 0
        )
        costs = signals.export_price_usd_per_mwh < 0
        if not (pays.any() or costs.any()):
            return None
        return cls(pays, costs)

    def rows(self, rows: slice) -> GridTerms:
        """The terms of a block of steps."""
        return GridTerms(self.grid_pays[rows], self.export_costs[rows])


@dataclass(frozen=True)
class DispatchResult:
    """Power flows, kW, shape ``(T, S)``, and the battery state after each step, kWh.

    ``solar_kw`` and ``wind_kw`` are what was used (generation minus curtailment);
    ``load_kw`` is the facility demand that was served (demand minus unserved).
    """

    load_kw: np.ndarray
    grid_import_kw: np.ndarray
    export_kw: np.ndarray
    solar_kw: np.ndarray
    wind_kw: np.ndarray
    genset_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    curtailed_kw: np.ndarray
    unserved_kw: np.ndarray
    soc_kwh: np.ndarray


def clamped_cumsum(
    start: np.ndarray, deltas: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Evaluate ``x[t+1] = clip(x[t] + deltas[t], lo, hi)`` for all ``t`` at once.

    Parameters
    ----------
    start
        ``x[0]`` per column, shape ``(S,)``; must lie within ``[lo, hi]``.
    deltas
        Increments, shape ``(T, S)``.
    lo, hi
        Bounds per column, shape ``(S,)``.

    Returns
    -------
    numpy.ndarray
        ``x[1..T]``, shape ``(T, S)``.

    Each step is the map ``f(x) = clip(x + c, l, h)``. Such maps are closed under composition:
    ``g∘f = clip(x + c_f + c_g, clip(l_f + c_g, l_g, h_g), clip(h_f + c_g, l_g, h_g))``, so an
    inclusive Hillis-Steele scan over the compositions gives every prefix in ``log2(T)`` passes.
    """
    n = deltas.shape[0]
    c = np.array(deltas, dtype=np.float64, copy=True)
    low = np.broadcast_to(lo, c.shape).copy()
    high = np.broadcast_to(hi, c.shape).copy()
    d = 1
    while d < n:
        # later = steps [d:], earlier = prefix maps ending at t - d.
        c_l, l_l, h_l = c[d:], low[d:], high[d:]
        c_e, l_e, h_e = c[:-d], low[:-d], high[:-d]
        new_low = np.clip(l_e + c_l, l_l, h_l)
        new_high = np.clip(h_e + c_l, l_l, h_l)
        c_new = c_e + c_l
        c[d:] = c_new
        low[d:] = new_low
        high[d:] = new_high
        d *= 2
    return np.clip(start + c, low, high)


def dispatch(
    demand_kw: np.ndarray,
    solar_kw: np.ndarray,
    wind_kw: np.ndarray,
    sites: FleetStatic,
    soc_kwh: np.ndarray,
    step_h: float,
    battery_setpoint_kw: np.ndarray | None = None,
    genset_setpoint_kw: np.ndarray | None = None,
    terms: GridTerms | None = None,
) -> DispatchResult:
    """Dispatch every site's power over a block of steps.

    Parameters
    ----------
    demand_kw
        Facility power demand (IT x PUE), kW, shape ``(T, S)``.
    solar_kw, wind_kw
        Available renewable generation, kW, shape ``(T, S)``.
    sites
        Static limits of each site's grid connection, genset and battery.
    soc_kwh
        Battery energy at the start of the block, kWh, shape ``(S,)``.
    step_h
        Step length, hours.
    battery_setpoint_kw
        Battery power per site, kW (positive charges, negative discharges), NaN for merit
        order; ``None`` means merit order everywhere. Held over the block.
    genset_setpoint_kw
        Genset output per site, kW, NaN for merit order; ``None`` means merit order.
    terms
        Where the grid pays to take power or exporting costs, ``(T, S)``; ``None``: nowhere.

    Returns
    -------
    DispatchResult
    """
    renewable = solar_kw + wind_kw
    merit_genset, genset_fixed = _genset_setpoints(demand_kw, sites, genset_setpoint_kw)
    # Most blocks see no reversed prices: they skip the extra arrays.
    export_limit: np.ndarray = sites.export_limit_kw
    pays: np.ndarray | None = None
    if terms is not None:
        if terms.export_costs.any():
            export_limit = np.where(terms.export_costs, 0.0, sites.export_limit_kw)
        if terms.grid_pays.any():
            pays = terms.grid_pays
    net = renewable + genset_fixed - demand_kw  # surplus (+) or deficit (-) before the battery
    request = _battery_request(
        net, renewable, sites, merit_genset, export_limit, pays, battery_setpoint_kw
    )
    soc_path, charge, discharge = _battery_flows(request, soc_kwh, sites, step_h)
    return _sources_and_sinks(
        demand_kw,
        solar_kw,
        wind_kw,
        sites,
        net,
        genset_fixed,
        merit_genset,
        export_limit,
        pays,
        soc_path,
        charge,
        discharge,
    )


def _genset_setpoints(
    demand_kw: np.ndarray, sites: FleetStatic, genset_setpoint_kw: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Which gensets run in merit order ``(S,)``, and the output of the others, kW ``(T, S)``."""
    merit_genset = (
        np.ones(demand_kw.shape[1], dtype=bool)
        if genset_setpoint_kw is None
        else np.isnan(genset_setpoint_kw)
    )
    genset_fixed = np.zeros_like(demand_kw)
    if genset_setpoint_kw is not None:
        fixed = np.clip(np.nan_to_num(genset_setpoint_kw, nan=0.0), 0.0, sites.genset_kw)
        genset_fixed = np.broadcast_to(fixed, demand_kw.shape).copy()
    return merit_genset, genset_fixed


def _battery_request(
    net: np.ndarray,
    renewable: np.ndarray,
    sites: FleetStatic,
    merit_genset: np.ndarray,
    export_limit: np.ndarray,
    pays: np.ndarray | None,
    battery_setpoint_kw: np.ndarray | None,
) -> np.ndarray:
    """Battery power asked for, kW ``(T, S)`` (positive charges): merit order — absorb the
    surplus, cover the deficit — unless the grid pays or a set-point says otherwise."""
    request = np.clip(net, -sites.battery_discharge_kw, sites.battery_charge_kw)
    if pays is not None:
        # Paid to import: charge what imports and renewables allow beyond the load, discharge
        # only what they cannot cover (before the genset, as in merit order).
        request = np.where(
            pays,
            np.clip(
                net + sites.import_limit_kw, -sites.battery_discharge_kw, sites.battery_charge_kw
            ),
            request,
        )
    if battery_setpoint_kw is not None:
        forced = ~np.isnan(battery_setpoint_kw)
        if forced.any():
            sp = np.clip(
                np.nan_to_num(battery_setpoint_kw, nan=0.0),
                -sites.battery_discharge_kw,
                sites.battery_charge_kw,
            )
            # What the sources could supply beyond the load, batteries aside.
            supply_room = net + sites.import_limit_kw + np.where(merit_genset, sites.genset_kw, 0.0)
            # Never charge more than the sources can supply, and discharge at least what they
            # cannot: a set-point never leaves load unserved that the battery could serve.
            forced_request = np.maximum(
                np.minimum(np.broadcast_to(sp, net.shape), supply_room),
                -sites.battery_discharge_kw,
            )
            # Nor waste renewable energy: surplus the export link cannot take is stored rather
            # than curtailed, and the battery never discharges more than the load and export
            # can take beyond the renewables (it would only displace them). Where the grid
            # pays, it discharges only what the sources cannot cover (it would displace paid
            # imports).
            spill = np.minimum(net - export_limit, renewable)  # < 0: room to discharge
            floor = np.minimum(spill, sites.battery_charge_kw)
            if pays is not None:
                floor = np.where(pays, np.minimum(supply_room, 0.0), floor)
            forced_request = np.maximum(forced_request, floor)
            request = np.where(forced, forced_request, request)

    return request


def _battery_flows(
    request: np.ndarray, soc_kwh: np.ndarray, sites: FleetStatic, step_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The battery energy after each step, kWh, and the charge and discharge power, kW, that
    the request gives within the battery's bounds (all ``(T, S)``)."""
    energy_delta = np.where(
        request > 0,
        request * sites.battery_charge_eff * step_h,
        request
        / np.where(sites.battery_discharge_eff > 0, sites.battery_discharge_eff, 1.0)
        * step_h,
    )
    soc_path = np.broadcast_to(soc_kwh, energy_delta.shape).copy()
    stored = np.zeros_like(energy_delta)
    cols = np.flatnonzero(sites.battery_max_kwh > 0)  # only batteries need the scan
    if cols.size:
        path = clamped_cumsum(
            soc_kwh[cols],
            energy_delta[:, cols],
            sites.battery_min_kwh[cols],
            sites.battery_max_kwh[cols],
        )
        soc_path[:, cols] = path
        stored[:, cols] = np.diff(path, axis=0, prepend=soc_kwh[np.newaxis, cols])
    with np.errstate(divide="ignore", invalid="ignore"):
        charge = np.where(stored > 0, stored / (sites.battery_charge_eff * step_h), 0.0)
        discharge = np.where(stored < 0, -stored * sites.battery_discharge_eff / step_h, 0.0)

    return soc_path, charge, discharge


def _sources_and_sinks(
    demand_kw: np.ndarray,
    solar_kw: np.ndarray,
    wind_kw: np.ndarray,
    sites: FleetStatic,
    net: np.ndarray,
    genset_fixed: np.ndarray,
    merit_genset: np.ndarray,
    export_limit: np.ndarray,
    pays: np.ndarray | None,
    soc_path: np.ndarray,
    charge: np.ndarray,
    discharge: np.ndarray,
) -> DispatchResult:
    """What is left after the battery, in merit order: imports then the genset cover the
    deficit, exports then curtailment take the surplus; where the grid pays, renewables give
    way to imports."""
    renewable = solar_kw + wind_kw
    net_after = net - charge + discharge
    usable = renewable
    if pays is not None:
        # Renewables that give way to paid imports: all but what the import limit leaves them.
        need = demand_kw - genset_fixed + charge - discharge
        used = np.clip(need - sites.import_limit_kw, 0.0, renewable)
        withheld = np.where(pays, renewable - used, 0.0)
        usable = renewable - withheld
        net_after = net_after - withheld
    deficit = np.maximum(-net_after, 0.0)
    surplus = np.maximum(net_after, 0.0)
    grid_import = np.minimum(deficit, sites.import_limit_kw)
    remaining = deficit - grid_import
    genset_merit = np.where(merit_genset, np.minimum(remaining, sites.genset_kw), 0.0)
    unserved = remaining - genset_merit
    export = np.minimum(surplus, export_limit)
    excess = surplus - export
    spilled = np.minimum(excess, usable)
    curtailed = spilled if pays is None else spilled + (renewable - usable)
    # What renewables cannot absorb came from a forced genset set-point: turn it down.
    genset = np.maximum(genset_fixed - (excess - spilled) + genset_merit, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        solar_share = np.where(renewable > 0, solar_kw / renewable, 0.0)
    solar_curtailed = curtailed * solar_share
    return DispatchResult(
        load_kw=demand_kw - unserved,
        grid_import_kw=grid_import,
        export_kw=export,
        solar_kw=solar_kw - solar_curtailed,
        wind_kw=wind_kw - (curtailed - solar_curtailed),
        genset_kw=genset,
        battery_charge_kw=charge,
        battery_discharge_kw=discharge,
        curtailed_kw=curtailed,
        unserved_kw=unserved,
        soc_kwh=soc_path,
    )


def check_energy_balance(
    result: DispatchResult,
    soc_start_kwh: np.ndarray,
    sites: FleetStatic,
    step_h: float,
    where: str = "",
    tolerance_kw: float = BALANCE_RELATIVE,
) -> None:
    """Raise :class:`EnergyBalanceError` unless energy in equals energy out everywhere.

    Checks, per site and step: ``grid + solar + wind + genset + discharge = load + charge +
    export``; every flow is non-negative and within its limit; the battery state moves by
    exactly what was charged and discharged, and stays within its bounds.
    """
    r = result
    supply = r.grid_import_kw + r.solar_kw + r.wind_kw + r.genset_kw + r.battery_discharge_kw
    use = r.load_kw + r.battery_charge_kw + r.export_kw
    scale = np.maximum(1.0, np.abs(supply) + np.abs(use))
    bad = np.abs(supply - use) > tolerance_kw * scale
    if bad.any():
        t, s = np.argwhere(bad)[0]
        raise EnergyBalanceError(
            f"energy balance broken {where} at step {t}, site {s}: supply {supply[t, s]:.9f} kW"
            f" != use {use[t, s]:.9f} kW"
        )
    for name in (f.name for f in fields(r) if f.name != "soc_kwh"):
        values = getattr(r, name)
        if (values < -tolerance_kw).any():
            raise EnergyBalanceError(f"{name} is negative {where}: min {values.min()}")
    slack = tolerance_kw * 10
    if (r.grid_import_kw > sites.import_limit_kw + slack).any():
        raise EnergyBalanceError(f"grid import exceeds its limit {where}")
    if (r.export_kw > sites.export_limit_kw + slack).any():
        raise EnergyBalanceError(f"export exceeds its limit {where}")
    if (r.genset_kw > sites.genset_kw + slack).any():
        raise EnergyBalanceError(f"genset exceeds its capacity {where}")
    if (r.battery_charge_kw > sites.battery_charge_kw + slack).any() or (
        r.battery_discharge_kw > sites.battery_discharge_kw + slack
    ).any():
        raise EnergyBalanceError(f"battery power exceeds its rating {where}")
    if ((r.battery_charge_kw > slack) & (r.battery_discharge_kw > slack)).any():
        raise EnergyBalanceError(f"battery charges and discharges in the same step {where}")
    previous = np.vstack([soc_start_kwh[np.newaxis, :], r.soc_kwh[:-1]])
    expected = (
        previous
        + r.battery_charge_kw * sites.battery_charge_eff * step_h
        - r.battery_discharge_kw
        / np.where(sites.battery_discharge_eff > 0, sites.battery_discharge_eff, 1.0)
        * step_h
    )
    if (np.abs(expected - r.soc_kwh) > tolerance_kw * np.maximum(1.0, r.soc_kwh)).any():
        raise EnergyBalanceError(f"battery energy does not follow its flows {where}")
    if (r.soc_kwh < sites.battery_min_kwh - slack).any() or (
        r.soc_kwh > sites.battery_max_kwh + slack
    ).any():
        raise EnergyBalanceError(f"battery state of charge leaves its limits {where}")
