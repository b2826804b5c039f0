"""Builders of small fleets and scenarios in code, and the path to the real data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
START = pd.Timestamp("2023-06-01T00:00Z")
STEP = pd.Timedelta("5min")


def needs_shared_data() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")


def signal(values: Sequence[float] | np.ndarray, step: pd.Timedelta = STEP) -> Signal:
    return Signal(np.asarray(values, dtype=float), START, step)


def site(
    name: str = "a",
    n: int = 288,
    accelerators: int = 8,
    busy_kw: float = 1.0,
    idle_kw: float = 0.0,
    price: Sequence[float] | np.ndarray | float = 50.0,
    carbon: Sequence[float] | np.ndarray | float = 300.0,
    import_limit_kw: float = math.inf,
    export_limit_kw: float = 0.0,
    solar_kw: float = 0.0,
    solar_profile: Sequence[float] | np.ndarray | None = None,
    battery: Battery | None = None,
    genset: Genset | None = None,
    pue: float = 1.0,
    latitude: float = 40.0,
    longitude: float = -100.0,
    step: pd.Timedelta = STEP,
    grid: bool = True,
    day_ahead: DayAhead | None = None,
) -> Site:
    def series(v: Sequence[float] | np.ndarray | float) -> Signal:
        arr = np.full(n, v) if isinstance(v, float | int) else np.asarray(v, dtype=float)
        return signal(arr, step)

    solar = None
    if solar_kw > 0:
        profile = np.zeros(n) if solar_profile is None else np.asarray(solar_profile)
        solar = Renewable(solar_kw, signal(profile, step))
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
) -> BatchJob:
    return BatchJob(
        name=name,
        arrival=START + pd.Timedelta(hours=arrival_h),
        work_accelerator_hours=work,
        min_accelerators=min_acc,
        max_accelerators=max_acc,
        deadline=START + pd.Timedelta(hours=deadline_h),
        checkpoint_overhead_h=checkpoint_h,
        migration_overhead_h=migration_h,
        allowed_sites=allowed,
    )


def scenario(
    sites: Sequence[Site],
    n: int = 288,
    jobs: Sequence[BatchJob] = (),
    services: Sequence[InferenceService] = (),
    points: Sequence[DemandPoint] = (),
    carbon_price: float = 0.0,
    step: pd.Timedelta = STEP,
) -> Scenario:
    return Scenario(
        name="test",
        start=START,
        end=START + n * step,
        step=step,
        sites=tuple(sites),
        demand_points=tuple(points),
        services=tuple(services),
        jobs=tuple(jobs),
        carbon_price_usd_per_tonne=carbon_price,
    )


def service(
    name: str,
    point: str,
    rate: Sequence[float] | np.ndarray,
    slo_ms: float = 30.0,
    service_ms: float = 5.0,
    throughput: float = 10.0,
) -> InferenceService:
    return InferenceService(
        name, slo_ms, service_ms, throughput, 1, (Demand(point, signal(np.asarray(rate, float))),)
    )


def small_fleet(days: int = 2) -> Scenario:
    """Site ``a``: solar (a sine by day), a battery and a price rising over the period; site
    ``b``: grid only, a degree north; demand point ``p`` at site ``a``."""
    n = days * 288
    sun = np.clip(np.sin(np.linspace(0, 2 * days * np.pi, n) - np.pi / 2), 0, None)
    return scenario(
        [
            site(
                "a",
                n=n,
                accelerators=8,
                idle_kw=0.1,
                solar_kw=6.0,
                solar_profile=sun,
                battery=Battery(20, 5, 5, 0.9, 0.1, 1.0, 0.5),
                price=np.linspace(20, 80, n),
            ),
            site("b", n=n, accelerators=8, idle_kw=0.1, latitude=41.0),
        ],
        n=n,
        points=[DemandPoint("p", 40.0, -100.0)],
    )


__all__ = [
    "SHARED_DATA",
    "START",
    "STEP",
    "Battery",
    "DemandPoint",
    "Genset",
    "job",
    "needs_shared_data",
    "scenario",
    "service",
    "signal",
    "site",
    "small_fleet",
]
