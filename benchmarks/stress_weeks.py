"""Held-out stress weeks: the stress fleet of (d) on weeks of 2022 and 2023 it was not built on.

Scenario (d) (``benchmarks/scenarios/stress_days.yaml``: four sites in AU-NSW, ERCOT and DE-LU,
1-3 h of slack, at least 2 accelerators per job, checkpoints and migrations, a genset behind a
small import limit, a battery that sells into spikes, latency-bound inference) is one stretch
of 10 days. Here the same fleet and rules run on other weeks: each week takes the grid and
weather files of its year and the Alibaba PAI jobs that arrive in the trace's same hours of
the year (1 in 3, as in (d)); the request log's shape is the 2023 one throughout (the data has
no other). Per week: the objective of ``agnostic``, ``greedy`` and ``mpc`` (default
forecaster), the oracle's LP bound, each policy's capture of the bound's saving, and deadline
misses and SLO violations against ``agnostic``'s.

    python -m benchmarks.stress_weeks [--weeks 2022-01-15,...] [--days 7]
                                      [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmarks.machine import describe_machine, replace_section
from benchmarks.shared_data import SHARED_DATA
from wattroute.model import Scenario
from wattroute.optimise.oracle import capture_ratio, solve_oracle
from wattroute.policies import get_policy
from wattroute.scenario import build_scenario, parse_scenario
from wattroute.sim import simulate, summarize

ROOT = Path(__file__).resolve().parents[1]
STRESS = ROOT / "benchmarks" / "scenarios" / "stress_days.yaml"
WEEKS = (
    "2022-01-15",
    "2022-03-20",
    "2022-06-10",
    "2022-09-05",
    "2022-11-20",
    "2023-02-15",
    "2023-05-05",
    "2023-09-10",
    "2023-12-01",
)
"""Start days, spread over both years and every season; none overlaps (d) (29 July to
8 August 2023) or the held-out stress days of 2022 (28 April to 8 May)."""
POLICIES = ("agnostic", "greedy", "mpc")
SLO_ROUNDING = 1e-9
"""SLO violation fractions closer than this are equal (a run's request totals carry
floating-point rounding of about 1e-10 requests)."""


def stress_week(start: pd.Timestamp, days: int, data_dir: Path = SHARED_DATA) -> Scenario:
    """The fleet and rules of (d) over ``days`` days from ``start`` (UTC midnight): the grid and
    weather files of ``start``'s year, and the trace's jobs of the same hours of the year."""
    raw: dict[str, Any] = yaml.safe_load(STRESS.read_text())
    year = start.year
    text = yaml.safe_dump(raw).replace("_2023.csv", f"_{year}.csv")
    # The request log exists for 2023 only: its shape is used for every year.
    text = text.replace(f"azure_llm_inference_conv_{year}.csv", "azure_llm_inference_conv_2023.csv")
    raw = yaml.safe_load(text)
    raw["name"] = f"stress-week-{start:%Y-%m-%d}"
    raw["start"] = start.isoformat()
    raw["end"] = (start + pd.Timedelta(days=days)).isoformat()
    hour_of_year = (start - pd.Timestamp(year=year, month=1, day=1, tz="UTC")) / pd.Timedelta("1h")
    raw["batch_trace"]["arrival_offset_h"] = -int(hour_of_year)
    spec = parse_scenario(raw, str(STRESS))
    return build_scenario(spec, data_dir.resolve())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", default=",".join(WEEKS), help="comma-separated start days")
    parser.add_argument("--days", type=int, default=7, help="days per week")
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # Per policy: saving over agnostic (USD), weeks worse than agnostic, misses beyond its,
    # weeks with more SLO violations.
    rows, totals = [], {name: [0.0, 0, 0, 0] for name in POLICIES[1:]}
    bound_saving = 0.0
    for day in (d.strip() for d in args.weeks.split(",") if d.strip()):
        scenario = stress_week(pd.Timestamp(day, tz="UTC"), args.days)
        print(f"{scenario.name}: {len(scenario.jobs)} jobs", flush=True)
        result = {}
        for name in POLICIES:
            s = summarize(simulate(scenario, get_policy(name)))
            result[name] = (
                s["objective_usd"],
                s["batch"]["deadline_misses"],
                s["inference"]["slo_violation_fraction"],
            )
        bound = solve_oracle(scenario)[1]["objective_usd"]
        base, base_misses, base_slo = result["agnostic"]
        bound_saving += base - bound
        cells = []
        for name in POLICIES[1:]:
            objective, misses, slo = result[name]
            totals[name][0] += base - objective
            totals[name][1] += int(objective > base)
            totals[name][2] += max(misses - base_misses, 0)
            totals[name][3] += int(slo > base_slo + SLO_ROUNDING)
            cells.append(
                f"{objective:,.2f} | {capture_ratio(base, objective, bound):.1%} | "
                f"{misses} | {slo:.2%}"
            )
        rows.append(
            f"| {day} | {len(scenario.jobs)} | {base:,.2f} | {base_misses} | {bound:,.2f} | "
            + " | ".join(cells)
            + " |"
        )
    summary = [
        f"* `{name}`: {t[0] / bound_saving:.1%} of the bound's saving over all weeks together; "
        f"worse than `agnostic` on {t[1]} week(s); deadline misses beyond `agnostic`'s: "
        f"{t[2]}; weeks with more SLO violations than `agnostic`: {t[3]}."
        for name, t in totals.items()
    ]
    body = "\n".join(
        [
            f"Command: `python -m benchmarks.stress_weeks --days {args.days} --write "
            f"docs/benchmarks.md`, {time.perf_counter() - started:.0f} s.",
            "",
            describe_machine(),
            "",
            "The stress fleet of (d) on weeks it was not built on "
            "(`benchmarks/stress_weeks.py` says how each week is made from `../shared/data`). "
            "Capture: (agnostic - policy) / (agnostic - LP bound) on `objective_usd`.",
            "",
            "| week from | jobs | agnostic USD | agnostic misses | LP bound USD | greedy USD | "
            "greedy capture | greedy misses | greedy SLO violations | mpc USD | mpc capture | "
            "mpc misses | mpc SLO violations |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *summary,
        ]
    )
    print(body)
    if args.write:
        replace_section(args.write, "Held-out stress weeks", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
