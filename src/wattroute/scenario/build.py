"""Small fleets and scenarios in code, without a YAML file.

Every builder puts its signals on one grid of steps from ``start`` (keyword-only, a
timezone-aware time) of ``step`` each; a value given as a number is held constant over ``n``
steps, one given as a sequence has one value per step. Jobs arrive and are due so many hours
after ``start``. The builders return the plain model classes of :mod:`wattroute.model`, which
can be built directly where more control is needed (temperature-dependent PUE, wind, export
prices, latency matrices)::

    from wattroute.scenario import build

    t0 = pd.Timestamp("2024-01-01T00:00Z")
    sites = [build.site("a", start=t0, price=40.0), build.site("b", start=t0, price=90.0)]
    jobs = [build.job("train", 0.0, 16.0, 4, 12.0, start=t0)]
    scenario = build.scenario(sites, jobs=jobs, start=t0, name="two-sites")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from wattroute.model import (
    AcceleratorPool,
    BatchJob,
    Battery,
    Demand,
    DemandPoint,
    Genset,
    GridConnection,
    InferenceService,
    Pue,
    Renewable,
    Scenario,
    Site,
)
from wattroute.signals.publication import DayAhead
from wattroute.signals.signal import Signal

STEP = pd.Timedelta("5min")
"""The default step, as in a scenario file."""

Values = Sequence[float] | np.ndarray


def signal(values: Values, step: pd.Timedelta = STEP, *, start: pd.Timestamp) -> Signal:
    """One value per step from ``start``."""
    return Signal(np.asarray(values, dtype=float), start, step)


def site(
    name: str = "a",
    n: int = 288,
    accelerators: int = 8,
    busy_kw: float = 1.0,
    idle_kw: float = 0.0,
    price: Values | float = 50.0,
    carbon: Values | float = 300.0,
    import_limit_kw: float = math.inf,
    export_limit_kw: float = 0.0,
    solar_kw: float = 0.0,
    solar_profile: Values | None = None,
    battery: Battery | None = None,
    genset: Genset | None = None,
    pue: float = 1.0,
    latitude: float = 40.0,
    longitude: float = -100.0,
    step: pd.Timedelta = STEP,
    grid: bool = True,
    day_ahead: DayAhead | None = None,
    *,
    start: pd.Timestamp,
) -> Site:
    """A site with ``accelerators`` of ``busy_kw`` / ``idle_kw`` each and a constant PUE.

    ``price`` (USD/MWh) and ``carbon`` (gCO2eq/kWh) are the grid's, a number or one value per
    step; ``grid=False`` makes the site islanded. ``solar_kw`` of solar follows
    ``solar_profile`` (a fraction of nameplate per step; none: no output).
    """

    def series(v: Values | float) -> Signal:
        arr = np.full(n, v) if isinstance(v, float | int) else np.asarray(v, dtype=float)
        return signal(arr, step, start=start)

    solar = None
    if solar_kw > 0:
        profile = np.zeros(n) if solar_profile is None else np.asarray(solar_profile)
        solar = Renewable(solar_kw, signal(profile, step, start=start))
    return Site(
        name=name,
        latitude=latitude,
        longitude=longitude,
        accelerators=AcceleratorPool(accelerators, busy_kw, idle_kw),
        pue=Pue(pue),
        grid=GridConnection(
            import_limit_kw, export_limit_kw, series(price), series(carbon), day_ahead=day_ahead
        )
        if grid
        else None,
        solar=solar,
        battery=battery,
        genset=genset,
    )


def job(
    name: str,
    arrival_h: float,
    work: float,
    max_acc: int,
    deadline_h: float,
    min_acc: int = 1,
    allowed: tuple[str, ...] | None = None,
    checkpoint_h: float = 0.0,
    migration_h: float = 0.0,
    *,
    start: pd.Timestamp,
) -> BatchJob:
    """A batch job of ``work`` accelerator-hours on ``min_acc`` to ``max_acc`` accelerators,
    arriving ``arrival_h`` and due ``deadline_h`` hours after ``start``."""
    return BatchJob(
        name=name,
        arrival=start + pd.Timedelta(hours=arrival_h),
        work_accelerator_hours=work,
        min_accelerators=min_acc,
        max_accelerators=max_acc,
        deadline=start + pd.Timedelta(hours=deadline_h),
        checkpoint_overhead_h=checkpoint_h,
        migration_overhead_h=migration_h,
        allowed_sites=allowed,
    )


def service(
    name: str,
    point: str,
    rate: Values,
    slo_ms: float = 30.0,
    service_ms: float = 5.0,
    throughput: float = 10.0,
    step: pd.Timedelta = STEP,
    *,
    start: pd.Timestamp,
) -> InferenceService:
    """An inference service on one accelerator per replica, with requests from demand point
    ``point`` at ``rate`` requests per second, one value per step."""
    rate_rps = signal(np.asarray(rate, float), step, start=start)
    return InferenceService(name, slo_ms, service_ms, throughput, 1, (Demand(point, rate_rps),))


def scenario(
    sites: Sequence[Site],
    n: int = 288,
    jobs: Sequence[BatchJob] = (),
    services: Sequence[InferenceService] = (),
    points: Sequence[DemandPoint] = (),
    carbon_price: float = 0.0,
    step: pd.Timedelta = STEP,
    *,
    start: pd.Timestamp,
    name: str = "scenario",
) -> Scenario:
    """A scenario of ``n`` steps from ``start``; ``carbon_price`` in USD per tonne."""
    return Scenario(
        name=name,
        start=start,
        end=start + n * step,
        step=step,
        sites=tuple(sites),
        demand_points=tuple(points),
        services=tuple(services),
        jobs=tuple(jobs),
        carbon_price_usd_per_tonne=carbon_price,
    )


__all__ = ["STEP", "job", "scenario", "service", "signal", "site"]
