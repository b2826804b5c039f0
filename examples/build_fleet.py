"""Build a small fleet in code and simulate two policies on it.

Two sites for two days: ``valley`` with solar, a battery and a weak grid link whose price peaks
in the evening, and ``city`` on a strong but dear and dirtier grid. Four training jobs that
may wait up to a day, and a vision service whose requests come from a factory near ``city``.

    .venv/bin/python examples/build_fleet.py
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import wattroute
from wattroute import (
    AcceleratorPool,
    BatchJob,
    Battery,
    Demand,
    DemandPoint,
    GridConnection,
    InferenceService,
    Pue,
    Renewable,
    Scenario,
    Signal,
    Site,
)

START = pd.Timestamp("2024-06-01T00:00Z")
STEP = pd.Timedelta("15min")
STEPS = 2 * 96  # two days


def fleet() -> Scenario:
    """The two sites, their work and the period."""
    hour = (np.arange(STEPS) * STEP / pd.Timedelta(hours=1)) % 24

    def signal(values: np.ndarray | float) -> Signal:
        """One value per step (a number is held over the whole period)."""
        return Signal(np.broadcast_to(values, (STEPS,)), START, STEP)

    sun = np.clip(np.sin((hour - 6) / 12 * np.pi), 0.0, None)  # 0..1 from 06:00 to 18:00
    evening = np.exp(-(((hour - 19) / 3) ** 2))
    valley = Site(
        name="valley",
        latitude=36.8,
        longitude=-119.8,
        accelerators=AcceleratorPool(count=16, busy_kw=0.7, idle_kw=0.1),
        pue=Pue(1.15),
        grid=GridConnection(
            import_limit_kw=6.0,
            export_limit_kw=0.0,
            price=signal(40.0 + 120.0 * evening),  # USD/MWh
            carbon=signal(250.0 + 200.0 * evening - 150.0 * sun),  # gCO2eq/kWh
        ),
        solar=Renewable(capacity_kw=16.0, profile=signal(sun)),
        battery=Battery(capacity_kwh=20.0, charge_kw=5.0, discharge_kw=5.0),
    )
    city = Site(
        name="city",
        latitude=37.8,
        longitude=-122.3,
        accelerators=AcceleratorPool(count=8, busy_kw=0.7, idle_kw=0.1),
        pue=Pue(1.3),
        grid=GridConnection(
            import_limit_kw=math.inf, export_limit_kw=0.0, price=signal(120.0), carbon=signal(380.0)
        ),
    )
    jobs = tuple(
        BatchJob(
            name=f"train-{i}",
            arrival=START + pd.Timedelta(hours=6 * i),
            work_accelerator_hours=24.0,
            min_accelerators=1,
            max_accelerators=8,
            deadline=START + pd.Timedelta(hours=6 * i + 24),
        )
        for i in range(4)
    )
    requests = 20.0 + 15.0 * np.sin((hour - 9) / 24 * 2 * np.pi)  # requests per second
    vision = InferenceService(
        name="vision",
        latency_slo_ms=40.0,
        service_time_ms=10.0,
        replica_throughput_rps=20.0,
        accelerators_per_replica=1,
        demand=(Demand("factory", signal(requests)),),
    )
    return Scenario(
        name="two-sites",
        start=START,
        end=START + STEPS * STEP,
        step=STEP,
        sites=(valley, city),
        demand_points=(DemandPoint("factory", 37.7, -122.2),),
        services=(vision,),
        jobs=jobs,
        carbon_price_usd_per_tonne=100.0,
    )


def main() -> None:
    scenario = fleet()
    for policy in ("greedy", "mpc"):
        run = wattroute.simulate(scenario, policy)
        s = run.summary
        print(
            f"{policy}: objective_usd={s['objective_usd']:.6f} cost_usd={s['cost_usd']:.2f} "
            f"emissions_kg={s['emissions_kg']:.1f} "
            f"jobs_done={s['batch']['completed']}/{s['batch']['jobs']} "
            f"slo_violations={s['inference']['slo_violation_fraction']:.2%}"
        )
        # Batch accelerators in use, per site, by hour of day (means over the two days).
        frame = run.timeseries
        busy = frame.pivot_table(
            index=frame["time"].dt.hour // 6 * 6,
            columns="site",
            values="batch_accelerators",
            observed=True,
        )
        busy.index.name = "from hour"
        print(busy.round(1).to_string())


if __name__ == "__main__":
    main()
