"""A bench's runs on Ray against the same bench run locally, one after another.

Runs ``agnostic``, ``greedy``, ``mpc`` and the oracle on the built-in default scenario and on
(c) the stranded-power scenario, first in this process (as ``wattroute bench`` does), then as
Ray tasks on a cluster started on this machine (``wattroute bench --ray auto``), and checks
that the two give the same results (every field but those that measure wall-clock time).

    python -m benchmarks.sweep [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks.machine import describe_machine, replace_section
from benchmarks.policies import load_benchmark_scenario
from wattroute.bench.runner import ScenarioResult, run_scenario
from wattroute.bench.sweep import AUTO, run_on_ray, without_wall_clock
from wattroute.scenario import default_scenario_path
from wattroute.signals.forecast import get_forecaster

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = (default_scenario_path(), ROOT / "benchmarks" / "scenarios" / "stranded_power.yaml")
POLICIES = ["agnostic", "greedy", "mpc", "oracle"]
FORECASTER = "blend"


def same(local: list[ScenarioResult], remote: list[ScenarioResult]) -> bool:
    """Whether every summary is the same apart from wall-clock fields."""
    return [without_wall_clock(dict(r.summaries)) for r in local] == [
        without_wall_clock(dict(r.summaries)) for r in remote
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="markdown file to update")
    args = parser.parse_args(argv)
    scenarios = [load_benchmark_scenario(Path(p)) for p in SCENARIOS]
    started = time.perf_counter()
    local = [run_scenario(s, POLICIES, get_forecaster(FORECASTER)) for s in scenarios]
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    remote = run_on_ray(scenarios, POLICIES, FORECASTER, 1.0, AUTO)
    ray_s = time.perf_counter() - started
    identical = same(local, remote)
    cores = os.cpu_count() or 1
    body = (
        "Command: `python -m benchmarks.sweep --write docs/benchmarks.md` (`make bench`), "
        f"{time.strftime('%Y-%m-%d')}.\n\n{describe_machine()}\n\n"
        f"`wattroute bench` of {', '.join(POLICIES)} on the built-in default scenario and (c) "
        f"stranded power ({len(scenarios) * len(POLICIES)} runs), in one process against the "
        f"same runs as Ray tasks on a cluster it starts on this machine (`--ray auto`: {cores} "
        "CPUs, every port on loopback; the time includes starting and stopping it).\n\n"
        "| how | wall s | speed-up |\n|---|---:|---:|\n"
        f"| one process, one run after another | {local_s:.1f} | 1.00x |\n"
        f"| Ray tasks, `--ray auto` | {ray_s:.1f} | {local_s / ray_s:.2f}x |\n\n"
        f"Same results (every summary field but wall-clock times): "
        f"{'yes' if identical else 'NO'}. On a cluster the runs spread over every node's "
        "CPUs; the longest single run bounds the wall time."
    )
    print(body)
    if args.write:
        replace_section(args.write, "Bench sweeps on Ray", body)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
