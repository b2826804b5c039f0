"""The same microgrids in Vessim: for the cross-check test and the speed benchmark.

Each site becomes a Vessim microgrid with its facility load as a ``Consumer`` trace, its solar
output as a ``Producer`` trace, a ``SimpleBattery`` (Vessim's battery is lossless with one
C-rate for both directions, so compare against a wattroute battery with round-trip efficiency
1, equal charge and discharge power and ``soc_max = 1``), a ``GridConnection`` with the export
limit, and a curtailment sink for the surplus nothing else absorbs (Vessim has no implicit
curtailment). Vessim's default dispatch policy allocates in list order: battery, grid, sink.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import vessim as vs


class Curtailment(vs.Dispatchable):
    """Absorbs any surplus (positive power), supplies nothing."""

    def feasible_range(self, duration: float) -> tuple[float, float]:
        return 0.0, float("inf")

    def step(self, duration: float) -> None:
        pass

    def config(self) -> dict[str, float]:
        return {}

    def state(self) -> dict[str, float]:
        return {"current_power": self.current_power}


class EnergyMeter(vs.Controller):
    """Integrates each dispatchable's set-point over the interval it holds, Wh."""

    def __init__(self, step_s: int) -> None:
        self.step_s = step_s
        self.energy: dict[str, dict[str, float]] = {}

    def step(self, now, microgrid_states) -> None:
        for grid, state in microgrid_states.items():
            meter = self.energy.setdefault(
                grid,
                {
                    "grid_import": 0.0,
                    "export": 0.0,
                    "charge": 0.0,
                    "discharge": 0.0,
                    "curtailed": 0.0,
                },
            )
            hours = self.step_s / 3600.0
            battery = state["dispatch_states"]["battery"]["current_power"]
            grid_power = state["dispatch_states"]["grid"]["current_power"]
            meter["charge"] += max(battery, 0.0) * hours
            meter["discharge"] += max(-battery, 0.0) * hours
            meter["export"] += max(grid_power, 0.0) * hours
            meter["grid_import"] += max(-grid_power, 0.0) * hours
            meter["curtailed"] += state["dispatch_states"]["curtailment"]["current_power"] * hours


@dataclass(frozen=True)
class TwinBattery:
    capacity_kwh: float
    c_rate_per_h: float
    soc_min: float
    initial_soc: float


def run_vessim(
    start: pd.Timestamp,
    step_s: int,
    load_kw: np.ndarray,
    solar_kw: np.ndarray,
    batteries: list[TwinBattery | None],
    export_limit_kw: list[float],
) -> tuple[dict[str, dict[str, float]], float]:
    """Run one microgrid per column; return energy per site in kWh and the wall time, s.

    ``solar_kw`` is all on-site generation. A site without a battery gets a zero-capacity
    stand-in (Vessim needs positive capacity, so one watt-hour at zero C-rate).
    """
    n, sites = load_kw.shape
    index = pd.date_range(start, periods=n, freq=pd.Timedelta(seconds=step_s))
    env = vs.Environment(sim_start=start, step_size=step_s)
    for s in range(sites):
        b = batteries[s] or TwinBattery(0.001, 0.0, 0.0, 0.0)
        env.add_microgrid(
            name=f"site{s}",
            actors=[
                vs.Consumer(
                    "load", vs.Trace(pd.Series(load_kw[:, s] * 1000.0, index=index), anchor=start)
                ),
                vs.Producer(
                    "solar", vs.Trace(pd.Series(solar_kw[:, s] * 1000.0, index=index), anchor=start)
                ),
            ],
            dispatchables=[
                vs.SimpleBattery(
                    "battery",
                    capacity=b.capacity_kwh * 1000.0,
                    initial_soc=b.initial_soc,
                    min_soc=b.soc_min,
                    c_rate=b.c_rate_per_h,
                ),
                vs.GridConnection("grid", max_export=export_limit_kw[s] * 1000.0),
                Curtailment("curtailment"),
            ],
        )
    meter = env.add_controller(EnergyMeter(step_s))
    started = time.perf_counter()
    env.run(until=n * step_s)
    wall = time.perf_counter() - started
    kwh = {g: {k: v / 1000.0 for k, v in e.items()} for g, e in meter.energy.items()}
    return kwh, wall
