"""The scenario as arrays: what the simulator, the policies and the optimiser compute with.

:class:`FleetStatic` holds per-site constants, shape ``(S,)``; :class:`FleetSignals` holds the
time-varying inputs, shape ``(N, S)``; :class:`JobArrays` and :class:`ServiceArrays` hold the
workloads. Absent devices are zeros (a site without a battery has zero capacity and power).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from wattroute.model.scenario import Scenario
from wattroute.model.tolerances import ROUNDING
from wattroute.signals.forecast import KnownShape
from wattroute.signals.publication import known_until


def any_set(mask: np.ndarray) -> bool:
    """Whether any element of ``mask`` is true (non-zero): ``mask.any()``.

    For the small arrays of a decision (a value per site or per active job):
    :func:`numpy.count_nonzero` is one call into C, where ``ndarray.any`` goes through a
    Python-level reduction wrapper that costs about four times as much on ten elements."""
    return bool(np.count_nonzero(mask))


def all_set(mask: np.ndarray) -> bool:
    """Whether every element of ``mask`` is true (non-zero): ``mask.all()``, as fast as
    :func:`any_set`."""
    return int(np.count_nonzero(mask)) == mask.size


def _read_only(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


@dataclass(frozen=True, eq=False)
class FleetStatic:
    """Per-site constants, arrays of shape ``(S,)``."""

    names: tuple[str, ...]
    accelerators: np.ndarray
    busy_kw: np.ndarray
    idle_kw: np.ndarray
    base_it_kw: np.ndarray
    power_cap_kw: np.ndarray
    import_limit_kw: np.ndarray
    export_limit_kw: np.ndarray
    genset_kw: np.ndarray
    genset_cost_usd_per_kwh: np.ndarray
    genset_g_per_kwh: np.ndarray
    battery_capacity_kwh: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    battery_charge_eff: np.ndarray
    battery_discharge_eff: np.ndarray
    battery_min_kwh: np.ndarray
    battery_max_kwh: np.ndarray
    battery_initial_kwh: np.ndarray

    @property
    def n_sites(self) -> int:
        return len(self.names)

    @cached_property
    def busy_extra_kw(self) -> np.ndarray:
        """IT power a busy accelerator draws beyond an idle one, kW: ``busy_kw - idle_kw``."""
        return _read_only(self.busy_kw - self.idle_kw)

    @cached_property
    def accelerator_count(self) -> np.ndarray:
        """``accelerators`` as floats."""
        return _read_only(self.accelerators.astype(np.float64))

    @cached_property
    def idle_it_kw(self) -> np.ndarray:
        """IT power of all the accelerators idling, kW."""
        return _read_only(self.idle_kw * self.accelerators)

    @cached_property
    def standing_it_kw(self) -> np.ndarray:
        """IT power with every accelerator powered and none busy, kW: the base load plus all
        the accelerators idling."""
        return _read_only(self.base_it_kw + self.idle_it_kw)

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> FleetStatic:
        sites = scenario.sites

        def arr(values: list[float]) -> np.ndarray:
            out = np.array(values, dtype=np.float64)
            out.setflags(write=False)
            return out

        batteries = [s.battery for s in sites]
        return cls(
            names=tuple(s.name for s in sites),
            accelerators=np.array([s.accelerators.count for s in sites], dtype=np.int64),
            busy_kw=arr([s.accelerators.busy_kw for s in sites]),
            idle_kw=arr([s.accelerators.idle_kw for s in sites]),
            base_it_kw=arr([s.base_it_kw for s in sites]),
            power_cap_kw=arr([s.power_cap_kw for s in sites]),
            import_limit_kw=arr([s.grid.import_limit_kw if s.grid else 0.0 for s in sites]),
            export_limit_kw=arr([s.grid.export_limit_kw if s.grid else 0.0 for s in sites]),
            genset_kw=arr([s.genset.capacity_kw if s.genset else 0.0 for s in sites]),
            genset_cost_usd_per_kwh=arr(
                [s.genset.fuel_cost_usd_per_kwh if s.genset else 0.0 for s in sites]
            ),
            genset_g_per_kwh=arr(
                [s.genset.emission_factor_g_per_kwh if s.genset else 0.0 for s in sites]
            ),
            battery_capacity_kwh=arr([b.capacity_kwh if b else 0.0 for b in batteries]),
            battery_charge_kw=arr([b.charge_kw if b else 0.0 for b in batteries]),
            battery_discharge_kw=arr([b.discharge_kw if b else 0.0 for b in batteries]),
            battery_charge_eff=arr([b.charge_efficiency if b else 1.0 for b in batteries]),
            battery_discharge_eff=arr([b.discharge_efficiency if b else 1.0 for b in batteries]),
            battery_min_kwh=arr([b.soc_min * b.capacity_kwh if b else 0.0 for b in batteries]),
            battery_max_kwh=arr([b.soc_max * b.capacity_kwh if b else 0.0 for b in batteries]),
            battery_initial_kwh=arr(
                [b.initial_soc * b.capacity_kwh if b else 0.0 for b in batteries]
            ),
        )


@dataclass(frozen=True, eq=False)
class FleetSignals:
    """Time-varying inputs per step and site, arrays of shape ``(N, S)``.

    Prices are USD/MWh, intensity gCO2eq/kWh, renewables kW available, PUE dimensionless.
    Islanded sites have zero price and intensity (they never import).
    """

    price_usd_per_mwh: np.ndarray
    export_price_usd_per_mwh: np.ndarray
    carbon_g_per_kwh: np.ndarray
    solar_kw: np.ndarray
    wind_kw: np.ndarray
    pue: np.ndarray

    NAMES = (
        "price_usd_per_mwh",
        "export_price_usd_per_mwh",
        "carbon_g_per_kwh",
        "solar_kw",
        "wind_kw",
        "pue",
    )

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> FleetSignals:
        n = scenario.n_steps

        def stack(columns: list[np.ndarray]) -> np.ndarray:
            out = np.column_stack(columns) if columns else np.zeros((n, 0))
            out = np.ascontiguousarray(out, dtype=np.float64)
            out.setflags(write=False)
            return out

        zeros = np.zeros(n)
        return cls(
            price_usd_per_mwh=stack(
                [np.asarray(s.grid.price.values) if s.grid else zeros for s in scenario.sites]
            ),
            export_price_usd_per_mwh=stack(
                [
                    np.asarray(s.grid.export_price_signal.values) if s.grid else zeros
                    for s in scenario.sites
                ]
            ),
            carbon_g_per_kwh=stack(
                [np.asarray(s.grid.carbon.values) if s.grid else zeros for s in scenario.sites]
            ),
            solar_kw=stack([s.solar.power_kw() if s.solar else zeros for s in scenario.sites]),
            wind_kw=stack([s.wind.power_kw() if s.wind else zeros for s in scenario.sites]),
            pue=stack([s.pue_series(n) for s in scenario.sites]),
        )


def published_ahead(scenario: Scenario) -> dict[str, np.ndarray]:
    """Signals known before they happen — day-ahead prices — in the form
    :class:`~wattroute.signals.forecast.History` takes: per signal name an ``(N, S)`` integer
    array, at step ``k`` the rows before ``[k, s]`` of site ``s`` are known. Sites without a
    day-ahead rule know only up to now; an export price given apart from the import price is
    treated as unpublished. Empty when no site has a rule."""
    grids = [site.grid for site in scenario.sites]
    if not any(grid is not None and grid.day_ahead is not None for grid in grids):
        return {}
    times = scenario.times
    now_only = np.arange(1, scenario.n_steps + 1)
    price = [
        known_until(times, grid.day_ahead)
        if grid is not None and grid.day_ahead is not None
        else now_only
        for grid in grids
    ]
    export = [
        column if grid is not None and grid.export_price is None else now_only
        for grid, column in zip(grids, price, strict=True)
    ]
    return {
        "price_usd_per_mwh": np.column_stack(price),
        "export_price_usd_per_mwh": np.column_stack(export),
    }


def known_shapes(scenario: Scenario) -> dict[str, KnownShape]:
    """Shapes known ahead that signals follow, in the form
    :class:`~wattroute.signals.forecast.History` takes: ``solar_kw`` under a cloudless sky,
    ``(N, S)`` kW (zero at sites without solar or a clear-sky model). Empty when none is."""
    clear = [site.solar.clear_sky_kw() if site.solar else None for site in scenario.sites]
    if all(c is None for c in clear):
        return {}
    zeros = np.zeros(scenario.n_steps)
    return {"solar_kw": KnownShape.of(np.column_stack([zeros if c is None else c for c in clear]))}


@dataclass(frozen=True, eq=False)
class JobArrays:
    """Batch jobs as arrays of shape ``(J,)``; times are hours since the scenario start."""

    names: tuple[str, ...]
    arrival_h: np.ndarray
    arrival_step: np.ndarray
    work_accelerator_hours: np.ndarray
    min_accelerators: np.ndarray
    max_accelerators: np.ndarray
    deadline_h: np.ndarray
    checkpoint_overhead_h: np.ndarray
    migration_overhead_h: np.ndarray
    allowed: np.ndarray  # (J, S) bool

    @property
    def n_jobs(self) -> int:
        return len(self.names)

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> JobArrays:
        jobs = scenario.jobs
        step_h = scenario.step_h
        start = scenario.start
        arrival_h = np.array([(j.arrival - start).total_seconds() / 3600 for j in jobs])
        allowed = np.ones((len(jobs), len(scenario.sites)), dtype=bool)
        names = [s.name for s in scenario.sites]
        for i, job in enumerate(jobs):
            if job.allowed_sites is not None:
                allowed[i] = [n in job.allowed_sites for n in names]
        return cls(
            names=tuple(j.name for j in jobs),
            arrival_h=arrival_h,
            # A job can first run in the first step that starts at or after its arrival.
            arrival_step=np.ceil(np.round(arrival_h / step_h, 9)).astype(np.int64)
            if len(jobs)
            else np.zeros(0, dtype=np.int64),
            work_accelerator_hours=np.array([j.work_accelerator_hours for j in jobs]),
            min_accelerators=np.array([j.min_accelerators for j in jobs], dtype=np.int64),
            max_accelerators=np.array([j.max_accelerators for j in jobs], dtype=np.int64),
            deadline_h=np.array([(j.deadline - start).total_seconds() / 3600 for j in jobs]),
            checkpoint_overhead_h=np.array([j.checkpoint_overhead_h for j in jobs]),
            migration_overhead_h=np.array([j.migration_overhead_h for j in jobs]),
            allowed=allowed,
        )


@dataclass(frozen=True, eq=False)
class ServiceArrays:
    """One inference service: demand and latency per (demand point, site).

    ``rate_rps`` has shape ``(N, P)``; ``rtt_ms`` and ``feasible`` have shape ``(P, S)``,
    where a pair is feasible if ``rtt_ms + service_time_ms <= latency_slo_ms``.
    """

    name: str
    points: tuple[str, ...]
    rate_rps: np.ndarray
    rtt_ms: np.ndarray
    feasible: np.ndarray
    latency_slo_ms: float
    service_time_ms: float
    replica_throughput_rps: float
    accelerators_per_replica: int

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> tuple[ServiceArrays, ...]:
        points = {p.name: p for p in scenario.demand_points}
        site_places = [(s.latitude, s.longitude, s.zone) for s in scenario.sites]
        out = []
        for service in scenario.services:
            origins = [points[d.point] for d in service.demand]
            rtt = scenario.network.rtt_matrix_ms(
                [(p.latitude, p.longitude, p.zone) for p in origins], site_places
            )
            rate = (
                np.column_stack([np.asarray(d.rate_rps.values) for d in service.demand])
                if service.demand
                else np.zeros((scenario.n_steps, 0))
            )
            feasible = slo_feasible(rtt, service.service_time_ms, service.latency_slo_ms)
            for a in (rate, rtt, feasible):
                a.setflags(write=False)
            out.append(
                cls(
                    name=service.name,
                    points=tuple(d.point for d in service.demand),
                    rate_rps=rate,
                    rtt_ms=rtt,
                    feasible=feasible,
                    latency_slo_ms=service.latency_slo_ms,
                    service_time_ms=service.service_time_ms,
                    replica_throughput_rps=service.replica_throughput_rps,
                    accelerators_per_replica=service.accelerators_per_replica,
                )
            )
        return tuple(out)


def slo_feasible(
    rtt_ms: np.ndarray, service_time_ms: float, latency_slo_ms: float, margin_ms: float = 0.0
) -> np.ndarray:
    """Which (demand point, site) pairs can answer within the SLO: the round trip, the
    service time and ``margin_ms`` (what else the request path adds), all ms, within it."""
    return np.asarray(rtt_ms + service_time_ms + margin_ms <= latency_slo_ms + ROUNDING)


def steps_per_day(step_h: float) -> int:
    """Number of steps in a day (rounded), at least 1."""
    return max(1, round(24.0 / step_h))
