"""Scale: a hundred sites and the whole Alibaba PAI trace under ``greedy`` and ``mpc``.

Runs ``benchmarks/scenarios/fleet_100_sites_year.yaml`` (100 sites in 10 grid zones, 2023
data at 5-minute steps, about 99,000 batch jobs) with each policy and reports the wall time,
the decisions per second and where the decision time goes (for ``mpc``: its re-plans against
the steps in between). A year takes long, so by default it measures ``--windows`` weeks spread
over the year (``--days`` each; ``--windows 1 --days 364`` runs the whole year) and
extrapolates the year's wall time from the steps measured. Each window is loaded with a day
before it, run but not timed, so that it starts with the jobs already running then, and a week
after it, so that the jobs arriving in it are all there (the loader leaves out jobs due after a
period's end); the run stops at the window's last step. With ``--write``, replaces the "Scale"
section of the given markdown file.

    python -m benchmarks.scale [--days 7] [--windows 4] [--policies greedy,mpc]
                               [--data-dir DIR] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.machine import describe_machine, replace_section
from benchmarks.shared_data import add_data_dir_argument
from wattroute.model.arrays import JobArrays
from wattroute.model.scenario import Scenario
from wattroute.policies import get_policy
from wattroute.policies.base import Decision, Observation, Policy
from wattroute.scenario import build_scenario, parse_scenario
from wattroute.sim import SimulationOptions, simulate

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "fleet_100_sites_year.yaml"
WARM_UP = pd.Timedelta(days=1)
"""Run before a window that does not start the year, untimed: the jobs running at its start."""
MARGIN = pd.Timedelta(days=7)
"""Loaded beyond a window's end, so that the jobs arriving in it are all there."""


@dataclass(frozen=True)
class Window:
    """A stretch of the year as a scenario: timing starts at step ``first`` and stops at step
    ``last``; ``jobs`` arrive in between."""

    scenario: Scenario
    first: int
    last: int
    jobs: int
    label: str


class _MeasuredEnoughError(Exception):
    """The run has reached the step it measures to."""


def year_of_scenario() -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    """The scenario's start, end and step."""
    raw = yaml.safe_load(SCENARIO.read_text())
    return pd.Timestamp(raw["start"]), pd.Timestamp(raw["end"]), pd.Timedelta(raw["step"])


def load_window(first_day: float, days: float, data_dir: Path | None) -> Window:
    """Days ``first_day .. first_day + days`` of the scenario (with :data:`WARM_UP` before and
    :data:`MARGIN` after)."""
    raw = yaml.safe_load(SCENARIO.read_text())
    start, end, step = year_of_scenario()
    begin = start + pd.Timedelta(days=first_day)
    loaded_from = max(start, begin - WARM_UP)
    cut = min(end, begin + pd.Timedelta(days=days))
    raw["start"] = loaded_from.isoformat()
    raw["end"] = min(end, cut + MARGIN).isoformat()
    # Trace arrivals are hours after the scenario's start: keep them where they fall in the year.
    shift_h = (loaded_from - start) / pd.Timedelta(hours=1)
    raw["batch_trace"]["arrival_offset_h"] = raw["batch_trace"]["arrival_offset_h"] - shift_h
    spec = parse_scenario(raw, str(SCENARIO))
    folder = data_dir if data_dir is not None else SCENARIO.parent / (spec.data_dir or ".")
    scenario = build_scenario(spec, folder.resolve())
    first, last = int((begin - loaded_from) / step), int((cut - loaded_from) / step)
    arrival = JobArrays.from_scenario(scenario).arrival_step
    return Window(
        scenario=scenario,
        first=first,
        last=last,
        jobs=int(((arrival >= first) & (arrival < last)).sum()),
        label=f"days {first_day:g}-{first_day + days:g}",
    )


@dataclass
class Timed:
    """A policy whose decisions are timed, split into re-plans (a decision after which the
    policy's ``replans`` count grew) and the rest, seconds."""

    policy: Policy
    replan_s: list[float] = field(default_factory=list)
    other_s: list[float] = field(default_factory=list)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.policy.name

    def reset(self) -> None:
        self.policy.reset()

    def stats(self) -> dict[str, float]:
        return self.policy.stats()

    def decide(self, observation: Observation) -> Decision:
        # mpc counts its re-plans (``replans``); stats() would work out percentiles each time.
        before = getattr(self.policy, "replans", 0)
        started = time.perf_counter()
        decision = self.policy.decide(observation)
        elapsed = time.perf_counter() - started
        replanned = getattr(self.policy, "replans", 0) > before
        (self.replan_s if replanned else self.other_s).append(elapsed)
        return decision


@dataclass
class Measured:
    """What a policy's runs over the windows came to: steps and wall time (s), decisions,
    seconds in decisions, re-plans and seconds in them."""

    steps: int = 0
    wall_s: float = 0.0
    decisions: int = 0
    decided_s: float = 0.0
    replans: int = 0
    replan_s: float = 0.0


def run_window(window: Window, policy: Policy, into: Measured) -> None:
    """Simulate ``policy`` over ``window`` and add what its timed part measured to ``into``."""
    timed = Timed(policy)
    mark: list[tuple[float, int, float, int, float]] = []

    def snapshot() -> tuple[float, int, float, int, float]:
        return (
            time.perf_counter(),
            len(timed.replan_s) + len(timed.other_s),
            sum(timed.replan_s) + sum(timed.other_s),
            len(timed.replan_s),
            sum(timed.replan_s),
        )

    def progress(done: int, _: int) -> None:
        if not mark and done >= window.first:
            mark.append(snapshot())  # the warm-up is over: time from here
        if done >= window.last:
            raise _MeasuredEnoughError

    if window.first == 0:
        mark.append(snapshot())
    with contextlib.suppress(_MeasuredEnoughError):
        simulate(
            window.scenario,
            timed,
            SimulationOptions(check_energy_balance=False, progress=progress),
        )
    end = snapshot()
    into.steps += window.last - window.first
    into.wall_s += end[0] - mark[0][0]
    into.decisions += end[1] - mark[0][1]
    into.decided_s += end[2] - mark[0][2]
    into.replans += end[3] - mark[0][3]
    into.replan_s += end[4] - mark[0][4]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0, help="days in each window")
    parser.add_argument("--windows", type=int, default=4, help="windows spread over the year")
    parser.add_argument("--policies", default="greedy,mpc", help="comma-separated policies")
    add_data_dir_argument(parser)
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args()
    start, end, step = year_of_scenario()
    year_days = (end - start) / pd.Timedelta(days=1)
    if not 0 < args.days * args.windows <= year_days or args.windows < 1:
        parser.error(
            f"--days x --windows must be positive and at most the {year_days:g} days of the "
            f"year, got {args.days:g} x {args.windows}"
        )
    year_steps = int((end - start) / step)
    spacing = (year_days - args.days) / max(args.windows - 1, 1)

    started = time.perf_counter()
    windows = [load_window(int(i * spacing), args.days, args.data_dir) for i in range(args.windows)]
    load_s = time.perf_counter() - started
    n_sites = len(windows[0].scenario.sites)
    n_jobs = sum(w.jobs for w in windows)
    for w in windows:
        print(f"{w.label}: {w.jobs:,} jobs arriving in {w.last - w.first:,} steps", flush=True)
    print(f"{n_sites} sites; loaded in {load_s:.0f} s", flush=True)

    lines = [
        "| policy | steps timed | wall (s) | decisions/s | in decisions (s) | re-plans "
        "| in re-plans (s) | the year, extrapolated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for name in args.policies.split(","):
        measured = Measured()
        for w in windows:
            run_window(w, get_policy(name), measured)
        between = measured.decisions - measured.replans
        notes.append(
            f"`{name}` spends {measured.decided_s / measured.wall_s:.0%} of its wall time "
            f"deciding, {measured.decided_s / measured.decisions * 1e3:.1f} ms a decision"
            + (
                f"; {measured.replan_s / measured.decided_s:.0%} of that in its re-plans "
                f"({measured.replan_s / measured.replans * 1e3:.0f} ms each), the rest "
                f"({(measured.decided_s - measured.replan_s) / max(between, 1) * 1e3:.1f} ms "
                "a step) following the plan through the deadline reserve"
                if measured.replans
                else ""
            )
            + "."
        )
        rate = measured.decisions / measured.wall_s
        year_min = measured.wall_s * year_steps / measured.steps / 60.0
        print(
            f"{name}: {measured.decisions:,} decisions in {measured.wall_s:.1f} s "
            f"({rate:.1f}/s), {measured.decided_s:.1f} s deciding, {measured.replans} re-plans "
            f"taking {measured.replan_s:.1f} s; the year: about {year_min:.0f} min",
            flush=True,
        )
        lines.append(
            f"| `{name}` | {measured.steps:,} | {measured.wall_s:.1f} | {rate:.1f} "
            f"| {measured.decided_s:.1f} | {measured.replans:,} | {measured.replan_s:.1f} "
            f"| {year_min:.0f} min |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write:
        whole = args.windows == 1 and args.days >= year_days
        extent = (
            "the whole year"
            if whole
            else f"{args.windows} windows of {args.days:g} days spread over the year ("
            + ", ".join(w.label for w in windows)
            + f"; {sum(w.last - w.first for w in windows):,} of the year's {year_steps:,} steps)"
        )
        body = "\n".join(
            [
                "Command: `make bench` (runs `python -m benchmarks.scale "
                f"--days {args.days:g} --windows {args.windows} --write {args.write}`), "
                f"{time.strftime('%Y-%m-%d')}.",
                "",
                describe_machine(),
                "",
                f"Scenario: `{SCENARIO.relative_to(HERE.parent)}` — {n_sites} sites in 10 grid "
                "zones (how the sites are made from the data is in the file: the data has one "
                "grid and one weather series per zone, and sites of a zone differ in "
                "accelerators, solar, wind, battery, PUE and location), 5-minute steps, "
                f"{extent}, with the {n_jobs:,} Alibaba PAI jobs that arrive in them; loading "
                f"took {load_s:.0f} s (not counted below). Each window is run from a day before "
                "it (untimed, so that it starts with the work already running) and timed to "
                "its end. Wall time is the simulation; the time in decisions is split into "
                "`mpc`'s re-plans (a decision that solved a new plan) and the steps between. "
                + (
                    "The run is the whole year."
                    if whole
                    else "The year's wall time is extrapolated linearly from the steps timed: "
                    "both policies decide at every step, and the windows sample the year's "
                    "light and busy weeks of the trace alike."
                ),
                "",
                table,
                "",
                " ".join(notes),
            ]
        )
        replace_section(args.write, "Scale", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
