"""Service at scale: deadlines and SLOs of each policy on the 100-site fleet.

Runs one-day windows of ``benchmarks/scenarios/fleet_100_sites_year.yaml`` (100 sites in 10
grid zones, the Alibaba PAI trace, three demand points of latency-bound inference), loaded as
the scale benchmark loads them (:func:`benchmarks.scale.load_window`: with the day before, so
that jobs are already running, and the week after, so that the jobs arriving in the window are
all there), each simulated to its end under ``agnostic``, ``greedy`` and ``mpc`` with the
default forecaster. Per window and policy: the objective, the SLO penalties and the share of
requests not served within the SLO, and deadline misses. The benchmark scenarios (a)-(d) have
one to five sites; here a plan routes inference across a hundred, and a site it fills to its
last accelerator for the rates it forecast is where requests are dropped when they come
higher.

    python -m benchmarks.fleet_service [--windows 3] [--days 1] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from benchmarks.machine import describe_machine, replace_section
from benchmarks.scale import load_window, year_of_scenario
from benchmarks.shared_data import add_data_dir_argument
from wattroute.policies import get_policy
from wattroute.sim import simulate, summarize

POLICIES = ("agnostic", "greedy", "mpc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3, help="windows spread over the year")
    parser.add_argument("--days", type=float, default=1.0, help="days in each window")
    add_data_dir_argument(parser)
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    start, end, _ = year_of_scenario()
    year_days = (end - start) / pd.Timedelta(days=1)
    if args.windows < 1 or not 0 < args.days * args.windows <= year_days:
        parser.error(
            f"--days x --windows must be positive and at most the {year_days:g} days of the "
            f"year, got {args.days:g} x {args.windows}"
        )
    spacing = (year_days - args.days) / max(args.windows - 1, 1)
    started = time.perf_counter()
    rows = []
    worse = dict.fromkeys(POLICIES[1:], 0)
    replans = fallbacks = 0
    for i in range(args.windows):
        window = load_window(round(i * spacing), args.days, args.data_dir)
        print(f"{window.label}: {window.jobs:,} jobs arriving", flush=True)
        results = {}
        for name in POLICIES:
            s = summarize(simulate(window.scenario, get_policy(name)))
            results[name] = s
            stats = s.get("policy_stats", {})
            replans += int(stats.get("replans", 0))
            fallbacks += int(stats.get("fallbacks_to_greedy", 0))
            inference = s["inference"]
            rows.append(
                f"| {window.label} | {name} | {s['objective_usd']:,.1f} | "
                f"{s['penalties_usd']['slo']:,.1f} | {inference['slo_violation_fraction']:.3%} | "
                f"{s['batch']['deadline_misses']} |"
            )
            print(rows[-1], flush=True)
        base = results["agnostic"]
        for name in worse:
            s = results[name]
            worse[name] += int(
                s["batch"]["deadline_misses"] > base["batch"]["deadline_misses"]
                or s["inference"]["slo_violation_fraction"]
                > base["inference"]["slo_violation_fraction"] + 1e-9
            )
    lines = [
        f"Command: `python -m benchmarks.fleet_service --windows {args.windows} --days "
        f"{args.days:g} --write docs/benchmarks.md`, {time.perf_counter() - started:.0f} s.",
        "",
        describe_machine(),
        "",
        "Each window is loaded with the day before it and the week after it and simulated to "
        "its end (`benchmarks/fleet_service.py` says why); the default forecaster throughout. "
        "SLO violations: the share of requests not served within the SLO (dropped or late).",
        "",
        "| window | policy | objective USD | SLO penalties USD | SLO violations "
        "| deadline misses |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        *(
            f"* `{name}`: windows with more deadline misses or SLO violations than "
            f"`agnostic`: {n} of {args.windows}."
            for name, n in worse.items()
        ),
        f"* `mpc`'s re-plans that found no optimal plan and ran on `greedy` until the next: "
        f"{fallbacks} of {replans}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        replace_section(args.write, "Service on the 100-site fleet", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
