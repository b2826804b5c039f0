"""Simulate a policy on a scenario file and read its summary and time series.

By default the built-in scenario (examples/default.yaml: three US sites for a week, no data
files needed) under ``mpc``.

    .venv/bin/python examples/simulate.py [SCENARIO.yaml] [POLICY]
"""

from __future__ import annotations

import sys
from pathlib import Path

import wattroute


def main(argv: list[str]) -> None:
    scenario = argv[0] if argv else Path(__file__).with_name("default.yaml")
    policy = argv[1] if len(argv) > 1 else "mpc"
    run = wattroute.simulate(scenario, policy)

    s = run.summary
    print(f"{s['scenario']} / {s['policy']}: objective_usd={s['objective_usd']:.6f}")
    print(
        f"  energy {s['cost_usd']:.2f} USD, emissions {s['emissions_kg']:.1f} kg "
        f"({s['carbon_price_usd_per_tonne']:g} USD/t), "
        f"penalties {s['penalties_usd']['total']:.2f} USD"
    )
    batch, inference = s["batch"], s["inference"]
    print(
        f"  batch jobs done {batch['completed']}/{batch['jobs']}, "
        f"{batch['deadline_misses']} deadline misses; "
        f"{inference['slo_violation_fraction']:.2%} of requests outside their SLO"
    )

    # The time series: one row per step and site. Energy by source, kWh, per site.
    frame = run.timeseries
    sources = ["grid_import_kw", "solar_kw", "wind_kw", "battery_discharge_kw", "genset_kw"]
    energy = frame.groupby("site", observed=True)[sources].sum() * run.scenario.step_h
    energy.columns = [c.removesuffix("_kw") for c in sources]
    print("energy by source, kWh:")
    print(energy.to_string(float_format=lambda kwh: f"{kwh:.1f}"))


if __name__ == "__main__":
    main(sys.argv[1:])
