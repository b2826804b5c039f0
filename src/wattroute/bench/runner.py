"""Run policies side by side on scenarios, against the perfect-foresight oracle.

For each scenario every named policy is simulated (and the oracle solved, if named); each
result is written under ``OUT/<scenario>/<policy>/`` like ``wattroute simulate`` writes it,
with ``capture_ratio`` added when both the ``agnostic`` baseline and the oracle ran:

``capture_ratio = (baseline - policy) / (baseline - oracle)`` on ``objective_usd``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wattroute.errors import InputError
from wattroute.iotools.results import write_jobs, write_summary, write_timeseries
from wattroute.model import Scenario
from wattroute.model.summary import CaptureInputs, Summary
from wattroute.optimise.oracle import capture_ratio, solve_oracle
from wattroute.optimise.plan import Plan
from wattroute.policies import POLICIES, get_policy
from wattroute.signals.forecast import Forecaster
from wattroute.sim import RunRecord, SimulationOptions, job_frame, simulate, summarize

BASELINE = "agnostic"
ORACLE = "oracle"


@dataclass
class ScenarioResult:
    """Everything one scenario's bench produced."""

    scenario: Scenario
    summaries: dict[str, Summary] = field(default_factory=dict)
    records: dict[str, RunRecord] = field(default_factory=dict)
    oracle_plan: Plan | None = None


class RunProgress(Protocol):
    """Told where a bench is: each run's start, its simulated steps, and its end."""

    def start(self, scenario: str, policy: str, steps: int) -> None:
        """A run of ``policy`` on ``scenario`` (``steps`` steps long) begins."""

    def advance(self, done: int, total: int) -> None:
        """The current run has simulated ``done`` of its ``total`` steps."""

    def finish(self, scenario: str, policy: str, wall_s: float) -> None:
        """The run ended after ``wall_s`` seconds."""


def parse_policies(text: str) -> list[str]:
    """``"agnostic,greedy,mpc,oracle"`` -> names, checked."""
    return check_policies([n.strip() for n in text.split(",") if n.strip()], "--policies")


def check_policies(names: list[str], field: str) -> list[str]:
    """``names`` if each is a policy or ``oracle`` and there is one at least; otherwise an
    :class:`InputError` on ``field`` listing the known names."""
    unknown = [n for n in names if n != ORACLE and n not in POLICIES]
    if unknown or not names:
        raise InputError(
            field,
            f"unknown policy {', '.join(map(repr, unknown)) or '(none given)'}.",
            f"list some of: {', '.join([*POLICIES, ORACLE])}, separated by commas.",
        )
    return names


def run_scenario(
    scenario: Scenario,
    policies: list[str],
    forecaster: Forecaster,
    oracle_step_h: float = 1.0,
    progress: Callable[[str], None] | None = None,
    tracker: RunProgress | None = None,
) -> ScenarioResult:
    """Run ``policies`` on ``scenario`` (the oracle too, if named) and add capture ratios.

    ``progress`` is given a line of text as each run starts; ``tracker`` is told each run's
    start, steps and end (:class:`RunProgress`).
    """
    runs = []
    for name in policies:
        if progress:
            progress(f"{scenario.name}: {name}")
        if tracker:
            tracker.start(scenario.name, name, scenario.n_steps)
        run = run_one(
            scenario, name, forecaster, oracle_step_h, tracker.advance if tracker else None
        )
        if tracker:
            tracker.finish(scenario.name, name, run.wall_s)
        runs.append(run)
    return collect(scenario, runs)


@dataclass
class Run:
    """One policy's run on one scenario (the oracle's: its plan, no record)."""

    policy: str
    summary: Summary
    record: RunRecord | None = None
    plan: Plan | None = None
    wall_s: float = 0.0
    """Seconds the run took."""


def run_one(
    scenario: Scenario,
    policy: str,
    forecaster: Forecaster,
    oracle_step_h: float = 1.0,
    advance: Callable[[int, int], None] | None = None,
) -> Run:
    """Simulate ``policy`` on ``scenario`` (or solve the oracle, for ``oracle``); ``advance``
    is told the steps done of the total as the simulation goes."""
    started = time.perf_counter()
    if policy == ORACLE:
        plan, summary = solve_oracle(scenario, oracle_step_h)
        return Run(policy, summary, plan=plan, wall_s=time.perf_counter() - started)
    options = SimulationOptions(forecaster=forecaster, progress=advance)
    record = simulate(scenario, get_policy(policy), options)
    return Run(policy, summarize(record), record, wall_s=time.perf_counter() - started)


def collect(scenario: Scenario, runs: list[Run]) -> ScenarioResult:
    """The scenario's result from its runs, in the order given, with capture ratios."""
    result = ScenarioResult(scenario)
    for run in runs:
        result.summaries[run.policy] = run.summary
        if run.record is not None:
            result.records[run.policy] = run.record
        if run.plan is not None:
            result.oracle_plan = run.plan
    add_capture_ratios(result.summaries)
    return result


def write_results(result: ScenarioResult, out: Path) -> None:
    """Write each policy's summary, time series and per-job result under
    ``out/<scenario>/<policy>/`` (the oracle: its summary)."""
    scenario = result.scenario
    for name, summary in result.summaries.items():
        folder = out / scenario.name / name
        write_summary(summary, folder / "summary.json")
        if name in result.records:
            record = result.records[name]
            write_timeseries(record.sites.to_frame(scenario.times), folder)
            write_jobs(job_frame(record), folder)


def bench_scenario(
    scenario: Scenario,
    policies: list[str],
    out: Path,
    forecaster: Forecaster,
    oracle_step_h: float = 1.0,
    progress: Callable[[str], None] | None = None,
    tracker: RunProgress | None = None,
) -> ScenarioResult:
    """Run ``policies`` on ``scenario``, add capture ratios, write their results under ``out``
    (``progress`` and ``tracker`` as for :func:`run_scenario`)."""
    result = run_scenario(scenario, policies, forecaster, oracle_step_h, progress, tracker)
    write_results(result, out)
    return result


def add_capture_ratios(summaries: Mapping[str, Summary]) -> None:
    """Add ``capture_ratio`` (and the baseline and oracle objectives) to every summary, when
    both the baseline and the oracle are among them."""
    if BASELINE not in summaries or ORACLE not in summaries:
        return
    baseline = summaries[BASELINE]["objective_usd"]
    oracle = summaries[ORACLE]["objective_usd"]
    for summary in summaries.values():
        summary["capture_ratio"] = capture_ratio(baseline, summary["objective_usd"], oracle)
        summary["capture_ratio_inputs"] = CaptureInputs(
            baseline_objective_usd=baseline, oracle_objective_usd=oracle
        )


def table_rows(result: ScenarioResult) -> list[dict[str, Any]]:
    """One row per policy: the comparison table's columns."""
    base = result.summaries.get(BASELINE)
    rows = []
    for name, s in result.summaries.items():
        e = s["energy_kwh"]
        absorbed = base["energy_kwh"]["curtailed"] - e["curtailed"] if base else math.nan
        rows.append(
            {
                "scenario": result.scenario.name,
                "policy": name,
                "objective_usd": s["objective_usd"],
                "cost_usd": s["cost_usd"],
                "emissions_kg": s["emissions_kg"],
                "penalties_usd": s["penalties_usd"]["total"],
                "grid_kwh": e["grid"],
                "solar_kwh": e["solar"],
                "wind_kwh": e["wind"],
                "genset_kwh": e["genset"],
                "battery_discharge_kwh": e["battery_discharge"],
                "curtailed_kwh": e["curtailed"],
                "curtailed_absorbed_kwh": absorbed,
                "slo_violation_fraction": s["inference"]["slo_violation_fraction"],
                "deadline_misses": s["batch"]["deadline_misses"],
                "decision_s_total": s["decision_s"]["total"],
                "decision_s_p99": s["decision_s"]["p99"],
                "capture_ratio": s.get("capture_ratio", math.nan),
                "bound": bool(s.get("bound", False)),
            }
        )
    return rows


def _fmt(value: float, digits: int = 1) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table in markdown."""
    head = (
        "| scenario | policy | objective USD | cost USD | emissions kg | penalties USD | grid kWh "
        "| solar kWh | wind kWh | genset kWh | battery out kWh | curtailed kWh | curtailment "
        "absorbed kWh | SLO violations | deadline misses | decision s (total / p99) | capture |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        policy = f"{r['policy']} (bound)" if r["bound"] else r["policy"]
        capture = r["capture_ratio"]
        lines.append(
            f"| {r['scenario']} | {policy} | {_fmt(r['objective_usd'], 2)} "
            f"| {_fmt(r['cost_usd'], 2)} | {_fmt(r['emissions_kg'])} "
            f"| {_fmt(r['penalties_usd'], 2)} | {_fmt(r['grid_kwh'], 0)} "
            f"| {_fmt(r['solar_kwh'], 0)} | {_fmt(r['wind_kwh'], 0)} | {_fmt(r['genset_kwh'], 0)} "
            f"| {_fmt(r['battery_discharge_kwh'], 0)} | {_fmt(r['curtailed_kwh'], 0)} "
            f"| {_fmt(r['curtailed_absorbed_kwh'], 0)} | {r['slo_violation_fraction']:.2%} "
            f"| {r['deadline_misses']} | {r['decision_s_total']:.2f} / {r['decision_s_p99']:.4f} "
            f"| {'n/a' if not math.isfinite(capture) else f'{capture:.1%}'} |"
        )
    return "\n".join(lines)
