"""Service first: do the cost-seeking policies keep the deadlines run-at-once keeps?

(1) The stress scenario (d) (``benchmarks/scenarios/stress_days.yaml``: 1-3 h of slack, at
least 2 accelerators per job, checkpoints and migrations, price spikes and negative prices) and
the same fleet on held-out days of 2022 (``stress_days_2022.yaml``: a 7,426 USD/MWh spike):
deadline misses and SLO violations of ``agnostic``, ``greedy`` and ``mpc``. (2) Random tight job
sets on a two-site fleet (5-minute steps, 16 hours, 3-10 jobs of 0.5-4 h at 2-6 accelerators
with 0.5-3 h of slack, 10-minute checkpoints, 30-minute migrations, minimum parallelism 1 or 2,
four price blocks between -50 and 3,000 USD/MWh, mirrored at the second site): on how many sets
each policy misses more deadlines than ``agnostic``, for several seeds.

    python -m benchmarks.deadlines [--sets 40] [--seeds 1,2,3,4,5,6,7] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.machine import describe_machine, replace_section
from wattroute.model import Scenario
from wattroute.policies import get_policy
from wattroute.scenario import build, load_scenario
from wattroute.sim import simulate, summarize

ROOT = Path(__file__).resolve().parents[1]
STRESS = {
    "(d) stress days": ROOT / "benchmarks" / "scenarios" / "stress_days.yaml",
    "stress days 2022 (held out)": ROOT / "benchmarks" / "scenarios" / "stress_days_2022.yaml",
}
POLICIES = ("agnostic", "greedy", "mpc")
START = pd.Timestamp("2023-06-01T00:00Z")


def random_job_set(rng: np.random.Generator) -> Scenario:
    """One random tight job set on two sites (see the module docstring)."""
    n = 16 * 12
    jobs = []
    for i in range(int(rng.integers(3, 11))):
        arrival = rng.uniform(0.0, 8.0)
        most = int(rng.integers(2, 7))
        run_h = rng.uniform(0.5, 4.0)
        slack = rng.uniform(0.5, 3.0)
        least = min(int(rng.integers(1, 3)), most)
        jobs.append(
            build.job(
                f"j{i}",
                arrival,
                run_h * most,
                most,
                arrival + 1 / 12 + run_h + slack,
                min_acc=least,
                checkpoint_h=0.17,
                migration_h=0.5,
                start=START,
            )
        )
    price = np.repeat(rng.uniform(-50.0, 3000.0, 4), n // 4)
    sites = [
        build.site("a", n=n, accelerators=8, idle_kw=0.1, price=price, start=START),
        build.site("b", n=n, accelerators=6, idle_kw=0.1, price=price[::-1].copy(), start=START),
    ]
    return build.scenario(sites, n=n, jobs=jobs, carbon_price=100.0, start=START, name="random")


def misses(scenario: Scenario) -> dict[str, tuple[int, float]]:
    """Per policy: deadline misses and SLO violation fraction."""
    out = {}
    for name in POLICIES:
        s = summarize(simulate(scenario, get_policy(name)))
        out[name] = (s["batch"]["deadline_misses"], s["inference"]["slo_violation_fraction"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=40, help="random job sets per seed")
    parser.add_argument("--seeds", default="1,2,3,4,5,6,7", help="comma-separated seeds")
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    started = time.perf_counter()
    stress = {case: misses(load_scenario(path)) for case, path in STRESS.items()}
    rows = []
    totals = {name: [0, 0, 0] for name in POLICIES[1:]}  # sets worse, misses beyond, sets better
    for seed in seeds:
        rng = np.random.default_rng(seed)
        worse = dict.fromkeys(POLICIES[1:], 0)
        extra = dict.fromkeys(POLICIES[1:], 0)
        better = dict.fromkeys(POLICIES[1:], 0)
        overloaded = 0
        for _ in range(args.sets):
            result = misses(random_job_set(rng))
            overloaded += int(result["agnostic"][0] > 0)
            for name in worse:
                more = result[name][0] - result["agnostic"][0]
                worse[name] += int(more > 0)
                extra[name] += max(more, 0)
                better[name] += int(more < 0)
        for name in worse:
            totals[name][0] += worse[name]
            totals[name][1] += extra[name]
            totals[name][2] += better[name]
        rows.append(
            f"| {seed} | {overloaded} | "
            + " | ".join(f"{worse[n]} ({extra[n]}) / {better[n]}" for n in worse)
            + " |"
        )
    n_sets = args.sets * len(seeds)
    lines = [
        f"Command: `python -m benchmarks.deadlines --sets {args.sets} --seeds {args.seeds} "
        f"--write docs/benchmarks.md`, {time.perf_counter() - started:.0f} s.",
        "",
        describe_machine(),
        "",
        "| case | policy | deadline misses | SLO violations |",
        "|---|---|---:|---:|",
        *(
            f"| {case} | {name} | {m} | {v:.2%} |"
            for case, result in stress.items()
            for name, (m, v) in result.items()
        ),
        "",
        f"Random tight job sets ({args.sets} per seed, jobs arriving over 8 hours): per seed, the "
        "sets where `agnostic` itself misses a deadline (overloaded), and for each policy the "
        "sets where it misses more deadlines than `agnostic` (the misses beyond agnostic's in "
        "all) / the sets where it misses fewer.",
        "",
        "| seed | overloaded | "
        + " | ".join(f"{n}: worse (misses) / better" for n in totals)
        + " |",
        "|---:|---:|" + "---:|" * len(totals),
        *rows,
        "| all | | " + " | ".join(f"{t[0]} ({t[1]}) / {t[2]}" for t in totals.values()) + " |",
        "",
        f"In all, of {n_sets} sets: "
        + "; ".join(f"{name} misses more than agnostic on {t[0]}" for name, t in totals.items())
        + ".",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        replace_section(args.write, "Deadlines: service first", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
