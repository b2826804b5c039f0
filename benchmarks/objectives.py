"""Objectives of every policy and the oracle on the benchmark scenarios, to hold a change that
should not alter decisions to that promise.

Runs ``agnostic``, ``greedy``, ``mpc`` (default forecaster), ``mpc`` with perfect forecasts and
the oracle on (a) ``examples/temporal_shifting.yaml``, (b) ``examples/multi_site_fleet.yaml``,
(c) ``benchmarks/scenarios/stranded_power.yaml`` and the built-in default scenario, and writes
their objective, cost, emissions, penalties and energy by source as JSON. Given ``--compare``
(a JSON written by an earlier checkout), it prints and writes the two side by side with the
largest relative difference over every number.

    python -m benchmarks.objectives --json out/objectives.json
    git stash; python -m benchmarks.objectives --json out/before.json; git stash pop
    python -m benchmarks.objectives --json out/after.json --compare out/before.json \\
        --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from benchmarks.machine import describe_machine, replace_section
from benchmarks.policies import load_benchmark_scenario
from wattroute.optimise.oracle import solve_oracle
from wattroute.policies import get_policy
from wattroute.policies.mpc import MPCPolicy
from wattroute.scenario import default_scenario_path
from wattroute.signals.forecast import Clairvoyant
from wattroute.sim import SimulationOptions, simulate, summarize

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "a": ROOT / "examples" / "temporal_shifting.yaml",
    "b": ROOT / "examples" / "multi_site_fleet.yaml",
    "c": ROOT / "benchmarks" / "scenarios" / "stranded_power.yaml",
    "default": default_scenario_path(),
}
RUNS = ("agnostic", "greedy", "mpc", "mpc, perfect forecasts", "oracle")


def _numbers(summary: Any) -> dict[str, Any]:
    return {
        "objective_usd": summary["objective_usd"],
        "cost_usd": summary["cost_usd"],
        "emissions_kg": summary["emissions_kg"],
        "penalties_usd": summary["penalties_usd"]["total"],
        "energy_kwh": dict(summary["energy_kwh"]),
    }


def measure() -> dict[str, dict[str, dict[str, Any]]]:
    """Per scenario and run, the numbers compared."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, path in SCENARIOS.items():
        scenario = load_benchmark_scenario(path)
        runs: dict[str, dict[str, Any]] = {}
        for name in RUNS[:3]:
            runs[name] = _numbers(summarize(simulate(scenario, get_policy(name))))
        perfect = SimulationOptions(forecaster=Clairvoyant())
        runs[RUNS[3]] = _numbers(summarize(simulate(scenario, MPCPolicy(), perfect)))
        runs["oracle"] = _numbers(solve_oracle(scenario, 1.0)[1])
        out[key] = runs
        print(key, {n: round(r["objective_usd"], 6) for n, r in runs.items()}, flush=True)
    return out


def _flat(value: Any, prefix: str = "") -> dict[str, float]:
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): float(value)}


def largest_relative_difference(before: dict[str, Any], after: dict[str, Any]) -> float:
    """The largest ``|after - before| / max(|before|, 1e-9)`` over every number of both."""
    a, b = _flat(before), _flat(after)
    if a.keys() != b.keys():
        missing = sorted(a.keys() ^ b.keys())
        raise SystemExit(f"--compare: the files hold different runs ({', '.join(missing[:5])})")
    return max(abs(b[k] - a[k]) / max(abs(a[k]), 1e-9) for k in a)


def table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Objectives side by side, markdown."""
    lines = [
        "| scenario | run | objective USD before | objective USD after | relative difference |",
        "|---|---|---:|---:|---:|",
    ]
    for key, runs in after.items():
        for name, numbers in runs.items():
            x, y = before[key][name]["objective_usd"], numbers["objective_usd"]
            diff = abs(y - x) / max(abs(x), 1e-9)
            lines.append(f"| {key} | {name} | {x:.6f} | {y:.6f} | {diff:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("out/objectives.json"))
    parser.add_argument("--compare", type=Path, help="a JSON of an earlier checkout")
    parser.add_argument("--label", default="", help="what changed, for the docs section")
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args(argv)
    after = measure()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(after, indent=1) + "\n")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    worst = largest_relative_difference(before, after)
    body = "\n\n".join(
        [
            "Command: `python -m benchmarks.objectives --json out/after.json --compare "
            "out/before.json --write docs/benchmarks.md` (the before file from the earlier "
            f"checkout, same command without `--compare`). {args.label}".strip(),
            describe_machine(),
            table(before, after),
            f"Largest relative difference over every objective, cost, emissions, penalty and "
            f"energy total: {worst:.1e}.",
        ]
    )
    print(body)
    if args.write:
        replace_section(args.write, "Objectives before and after a refactor", body)
    return 0 if math.isfinite(worst) else 1


if __name__ == "__main__":
    sys.exit(main())
