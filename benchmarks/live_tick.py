"""Live controller tick at scale: 10,000 active jobs over 100 sites, on PostgreSQL.

A synthetic fleet (``benchmarks.replan_speed``'s: S sites with solar, batteries and import
limits, hourly signals, one inference service) and J active jobs submitted through the store
(concurrent submissions, so in groups). The controller then ticks step after step; between two
ticks another connection submits ``--churn`` new jobs and cancels a fifth as many, as the API
would. Reported per tick, wall seconds of each phase (``Controller.status.phases``):

* load: ask the store what was submitted or cancelled since the last tick and apply it to the
  active jobs kept in memory (the first tick, not counted, reads them all);
* observe: signals, the fleet's envelope (overrides, grid events), services, the observation;
* decide: the policy, and the repair of its decision;
* enact: the simulated executor advances the jobs;
* persist: write back the jobs that changed and the tick, one transaction;
* baseline: the carbon-agnostic baseline beside the fleet (with ``--baseline``);
* report: the heartbeat (signals and forecasts per site).

The first policy is also run with a store that answers every tick with every active job (what
the controller did before it kept them), for the ratio of the load phase.

    python -m benchmarks.live_tick [--sites 100] [--jobs 10000] [--ticks 5]
                                   [--policies greedy,agnostic,mpc] [--baseline]
                                   [--write docs/benchmarks.md]

PostgreSQL is started from the server binaries on the machine on 127.0.0.1 for the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from benchmarks.machine import describe_machine, replace_section
from benchmarks.replan_speed import START, synthetic_scenario
from tests.service.postgres import running_postgres
from wattroute.model.scenario import Scenario
from wattroute.policies import get_policy
from wattroute.runtime.clock import ReplayClock
from wattroute.runtime.controller import ControllerOptions, build_controller
from wattroute.runtime.records import JobChanges, JobRecord
from wattroute.service.server import open_store
from wattroute.service.store import SqlStore

PHASES = ("load", "observe", "decide", "enact", "persist", "baseline", "report")
TARGET_S = 1.0  # a tick with 10,000 active jobs and 100 sites


class FullReload(SqlStore):
    """The store as the controller used it before: every active job, every tick."""

    def job_changes(self, since: int | None) -> JobChanges:
        return super().job_changes(None)


@dataclass
class TickRun:
    policy: str
    loading: str  # "changes" or "all"
    active: list[int] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    plan_ages: list[int] = field(default_factory=list)  # steps since the plan in force was made
    stats: dict[str, float] = field(default_factory=dict)  # the policy's, after the last tick

    def own(self) -> float:
        """The median over ticks of the tick's seconds but the policy's decision."""
        return statistics.median(
            t - p.get("decide", 0.0) for t, p in zip(self.totals, self.phases, strict=True)
        )

    def median(self, phase: str) -> float:
        return statistics.median(p.get(phase, 0.0) for p in self.phases)

    def row(self) -> str:
        cells = " | ".join(f"{self.median(p) * 1000:.0f}" for p in PHASES)
        total = statistics.median(self.totals)
        return (
            f"| {self.policy} | {self.loading} | {min(self.active)} to {max(self.active)} "
            f"| {cells} | **{total * 1000:.0f}** | {max(self.totals) * 1000:.0f} |"
        )


def _jobs(n: int, sites: tuple[str, ...], rng: np.random.Generator, tag: str) -> list[JobRecord]:
    """``n`` jobs submitted at the fleet's start: 1 to 8 accelerators for 1 to 8 hours
    each, due 2 to 40 hours after they could be done; a third allowed on two sites only."""
    out = []
    for j in range(n):
        max_acc = int(rng.integers(1, 9))
        duration = float(rng.uniform(1, 8))
        allowed = None
        if j % 3 == 0:
            allowed = tuple(sites[int(i)] for i in rng.choice(len(sites), 2, replace=False))
        slack = float(rng.uniform(2, 40))
        out.append(
            JobRecord(
                id=f"{tag}-{j:06d}",
                tenant=f"tenant{j % 20}",
                name=f"bench {tag} {j}",
                submitted_at=START,
                deadline=(START + pd.Timedelta(hours=duration + slack)).floor("us"),
                work_accelerator_hours=duration * max_acc,
                min_accelerators=1,
                max_accelerators=max_acc,
                checkpoint_overhead_h=0.1,
                migration_overhead_h=0.25,
                allowed_sites=allowed,
                idempotency_key=f"{tag}-{j}",
            )
        )
    return out


def _submit(store: SqlStore, jobs: list[JobRecord]) -> None:
    """Submit ``jobs`` from 16 threads, as concurrent API requests would."""
    with ThreadPoolExecutor(16) as pool:
        for _, created in pool.map(store.submit_job, jobs):
            assert created


def _fresh(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("TRUNCATE jobs, ticks, controller_heartbeat")
    engine.dispose()


def run_one(
    url: str, scenario: Scenario, policy: str, loading: str, args: argparse.Namespace
) -> TickRun:
    _fresh(url)
    seeding = open_store(url)
    rng = np.random.default_rng(0)
    names = tuple(s.name for s in scenario.sites)
    _submit(seeding, _jobs(args.jobs, names, rng, "seed"))
    engine = seeding.engine
    store = FullReload(engine) if loading == "all" else SqlStore(engine)
    controller = build_controller(
        scenario,
        store,
        get_policy(policy),
        ReplayClock(START, 1.0),
        options=ControllerOptions(heartbeat_s=1e9, baseline=args.baseline),
    )
    run = TickRun(policy, loading)
    controller.tick()  # the first tick reads every active job
    for t in range(args.ticks):
        # Between ticks, as the API would: new jobs, and a few cancelled.
        _submit(seeding, _jobs(args.churn, names, rng, f"t{t}"))
        cancel = rng.choice(args.jobs, args.churn // 5, replace=False)
        for j in cancel:
            seeding.cancel_job(f"seed-{int(j):06d}")
        started = time.perf_counter()
        tick = controller.tick()
        run.totals.append(time.perf_counter() - started)
        run.phases.append(dict(controller.status.phases))
        run.active.append(len(controller._active))
        plan_step = getattr(controller.policy, "plan_step", None)
        if plan_step is not None:
            run.plan_ages.append(tick.step - plan_step)
        print(
            f"{policy:>9} {loading:>7} tick {t}: {run.totals[-1] * 1000:.0f} ms "
            + " ".join(f"{p}={v * 1000:.0f}" for p, v in controller.status.phases.items()),
            flush=True,
        )
    run.stats = controller.policy.stats()
    engine.dispose()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=5, help="measured ticks per run")
    parser.add_argument("--churn", type=int, default=100, help="jobs submitted between ticks")
    parser.add_argument("--policies", default="agnostic,greedy,mpc")
    parser.add_argument(
        "--no-full-reload",
        action="store_true",
        help="skip the run of the first policy reading every active job each tick",
    )
    parser.add_argument("--baseline", action="store_true", help="run the baseline beside")
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)

    scenario = synthetic_scenario(args.sites, 0)
    runs = []
    with running_postgres() as url:
        open_store(url).engine.dispose()  # migrate
        policies = args.policies.split(",")
        for n, policy in enumerate(policies):
            runs.append(run_one(url, scenario, policy, "changes", args))
            if n == 0 and not args.no_full_reload:
                runs.append(run_one(url, scenario, policy, "all", args))

    header = (
        "| policy | jobs loaded | active jobs | "
        + " | ".join(f"{p} ms" for p in PHASES)
        + " | tick ms (median) | tick ms (max) |\n|"
        + "---|" * (len(PHASES) + 5)
    )
    verdicts = []
    for run in runs:
        if run.loading != "changes":
            continue
        total = statistics.median(run.totals)
        met = total <= TARGET_S
        verdicts.append(
            f"`{run.policy}`: **{'met' if met else 'missed'}**, a median tick of "
            f"{total * 1000:.0f} ms ({total / TARGET_S:.2f} of the target), of which the "
            f"policy's decision {run.median('decide') * 1000:.0f} ms; the controller's own "
            f"part (the tick but the decision) {run.own() * 1000:.0f} ms."
        )
        if "replans_in_background" in run.stats:
            st = run.stats
            verdicts[-1] += (
                f" Re-plans: {st['replans']:.0f}, of which {st['replans_in_background']:.0f} "
                f"solved on the worker thread while ticks went on (HiGHS "
                f"{st['solve_s_total'] / max(st['replans'], 1):.2f} s on average); "
                f"{st['replans_skipped_while_solving']:.0f} not started because the last was "
                "still solving. The plan in force was made "
                + ", ".join(str(a) for a in run.plan_ages)
                + " steps before each measured tick (each tick here is a new hour, so a plan "
                "solves across ticks; at 5-minute ticks it lands within one)."
            )
        full = [r for r in runs if r.policy == run.policy and r.loading == "all"]
        if full:
            verdicts[-1] += (
                f" Loading the changes: {run.median('load') * 1000:.1f} ms, against "
                f"{full[0].median('load') * 1000:.0f} ms reading every active job."
            )
    command = " ".join(["python -m benchmarks.live_tick", *(argv or sys.argv[1:])])
    text = "\n\n".join(
        [
            f"`{command}`, {time.strftime('%Y-%m-%d')}. {describe_machine()}",
            f"The controller over a synthetic fleet of {args.sites} sites (hourly steps) with "
            f"{args.jobs:,} active jobs in PostgreSQL (`fsync=on`, on this machine); between "
            f"two ticks {args.churn} jobs are submitted and {args.churn // 5} cancelled "
            "through the store, as the API would. Per phase, the median over "
            f"{args.ticks} ticks after the first (which reads every active job): load (what "
            "was submitted or cancelled since the last tick, applied to the active jobs kept "
            "in memory), observe (signals, fleet envelope, services, the observation), decide "
            "(the policy and the repair), enact (the simulated executor), persist (the jobs "
            "that changed and the tick, one transaction), baseline (the carbon-agnostic "
            f"baseline beside, {'on' if args.baseline else 'off'}), report (the heartbeat). "
            "`jobs loaded: all` is the same controller given every active job each tick "
            "(how it loaded them before). Only the decide phase depends on the policy.",
            header + "\n" + "\n".join(r.row() for r in runs),
            f"Target (a tick with {args.jobs:,} active jobs and {args.sites} sites in ≤ "
            f"{TARGET_S:g} s):\n\n" + "\n".join(f"- {v}" for v in verdicts),
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, "Live controller tick", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
