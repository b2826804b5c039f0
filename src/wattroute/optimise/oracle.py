"""The perfect-foresight oracle: the planning LP over the whole scenario, solved once.

It is a **lower bound** on the objective of every policy the simulator can run, because it is
a relaxation of the simulated problem:

* it sees the actual signals, every job and every request from the start;
* it plans per period (default one hour) with, in each period, the *lowest* price, carbon
  intensity and PUE and the *highest* export price among its simulation steps, the mean
  renewable output and request rate, and battery, import, export and capacity limits on period
  means — each a constraint every step-by-step schedule also satisfies, or a cost no higher;
* allocations are continuous, a job may split across sites and ignore its minimum
  parallelism, and checkpoint and migration overheads are free;
* work left after a deadline costs the deadline penalty but no energy, requests are served
  with fractional replicas.

The bound holds as long as no site had to power down idle accelerators in the simulation
(a repair of last resort that the plan's penalised ``shed`` variable does not mirror); the
summary reports ``repairs.sites_powered_down`` so a reader can check.
"""

from __future__ import annotations

import math
import time
from typing import cast

import numpy as np

from wattroute.errors import InputError
from wattroute.model.arrays import FleetSignals, FleetStatic, JobArrays, ServiceArrays
from wattroute.model.costs import objective_usd
from wattroute.model.scenario import Scenario
from wattroute.model.summary import (
    ENERGY_KEYS,
    BatchTotals,
    DecisionTimes,
    EnergyKwh,
    InferenceTotals,
    LpStats,
    PenaltiesUsd,
    Requests,
    SiteTotals,
    Summary,
    no_repairs,
    period_of,
    violation_fraction,
)
from wattroute.model.tolerances import ROUNDING
from wattroute.optimise.formulation import build
from wattroute.optimise.plan import Plan, decode
from wattroute.optimise.problem import JobBlock, PlanningProblem, ServiceBlock, window_shares
from wattroute.optimise.solver import solve

UNDONE_TOLERANCE_ACCELERATOR_HOURS = 1e-6
"""Work the LP leaves undone below this is solver noise: the job counts as complete."""
WORKING_TOLERANCE_ACCELERATORS = ROUNDING
"""Mean accelerators below this in a period count as no work."""


def steps_per_period(scenario: Scenario, period_h: float) -> int:
    """Simulation steps in a planning period; the period must be a whole number of steps
    that divides the scenario."""
    k = period_h / scenario.step_h
    if abs(k - round(k)) > ROUNDING or round(k) < 1 or scenario.n_steps % round(k):
        raise InputError(
            "--oracle-step",
            f"a {period_h} h planning period is not a whole number of "
            f"{scenario.step_h * 60:g}-minute steps dividing the {scenario.n_steps} steps of "
            "the scenario.",
            "choose a period that divides the scenario, e.g. 1 (hour) for whole-hour scenarios.",
        )
    return round(k)


def _per_period(values: np.ndarray, k: int, how: str) -> np.ndarray:
    shaped = values.reshape(values.shape[0] // k, k, *values.shape[1:])
    return getattr(shaped, how)(axis=1)


def oracle_problem(scenario: Scenario, period_h: float = 1.0) -> PlanningProblem:
    """The whole scenario as one relaxed planning problem (see the module docstring)."""
    k = steps_per_period(scenario, period_h)
    fleet = FleetStatic.from_scenario(scenario)
    sig = FleetSignals.from_scenario(scenario)
    h_n = scenario.n_steps // k
    spec = JobArrays.from_scenario(scenario)
    step_h = scenario.step_h
    first_run_h = spec.arrival_step * step_h
    available = window_shares(first_run_h, spec.deadline_h, period_h, h_n)
    jobs = JobBlock(
        work_accelerator_hours=spec.work_accelerator_hours.astype(float),
        max_accelerators=spec.max_accelerators.astype(float),
        available=available,
        allowed=spec.allowed,
        current_site=np.full(spec.n_jobs, -1),
        switch_cost_usd_per_accelerator_hour=np.zeros(spec.n_jobs),
        min_accelerators=spec.min_accelerators.astype(float),
        checkpoint_overhead_h=spec.checkpoint_overhead_h.astype(float),
        migration_overhead_h=spec.migration_overhead_h.astype(float),
    )
    services = tuple(
        ServiceBlock(
            rate_rps=_per_period(np.asarray(s.rate_rps), k, "mean"),
            feasible=s.feasible,
            replica_throughput_rps=s.replica_throughput_rps,
            accelerators_per_replica=s.accelerators_per_replica,
        )
        for s in ServiceArrays.from_scenario(scenario)
    )
    return PlanningProblem(
        period_h=period_h,
        fleet=fleet,
        price_usd_per_mwh=_per_period(sig.price_usd_per_mwh, k, "min"),
        carbon_g_per_kwh=_per_period(sig.carbon_g_per_kwh, k, "min"),
        export_price_usd_per_mwh=_per_period(sig.export_price_usd_per_mwh, k, "max"),
        solar_kw=_per_period(sig.solar_kw, k, "mean"),
        wind_kw=_per_period(sig.wind_kw, k, "mean"),
        pue=_per_period(sig.pue, k, "min"),
        carbon_price_usd_per_tonne=scenario.carbon_price_usd_per_tonne,
        soc_kwh=fleet.battery_initial_kwh.copy(),
        terminal_value_usd_per_kwh=np.zeros(fleet.n_sites),
        jobs=jobs,
        services=services,
        deadline_penalty_usd_per_accelerator_hour=scenario.penalties.deadline_miss_usd_per_accelerator_hour,
        slo_penalty_usd_per_request=scenario.penalties.slo_violation_usd_per_request,
        early_bias_usd_per_accelerator_hour=0.0,
    )


def solve_oracle(
    scenario: Scenario, period_h: float = 1.0, time_limit_s: float = 600.0
) -> tuple[Plan, Summary]:
    """Solve the oracle and return its plan and a summary shaped like a simulation's."""
    started = time.perf_counter()
    problem = oracle_problem(scenario, period_h)
    lp = build(problem)
    solution = solve(lp, time_limit_s)
    if not solution.ok:
        from wattroute.errors import OptimisationError

        raise OptimisationError(solution.status, solution.seconds)
    plan = decode(problem, lp, solution)
    return plan, oracle_summary(
        scenario, plan, lp.matrix.shape, lp.matrix.nnz, time.perf_counter() - started
    )


def oracle_summary(
    scenario: Scenario, plan: Plan, shape: tuple[int, int], nonzeros: int, wall_s: float
) -> Summary:
    """The oracle's plan as a :class:`~wattroute.model.summary.Summary` (the fields of a
    simulation's, with ``bound: true``, the planning period and the LP's size)."""
    t = plan.totals()
    problem = plan.problem
    penalties = PenaltiesUsd(
        deadline=t["deadline_penalty_usd"],
        slo=t["slo_penalty_usd"],
        shed=t["shed_penalty_usd"],
        total=t["deadline_penalty_usd"] + t["slo_penalty_usd"] + t["shed_penalty_usd"],
    )
    carbon_price = scenario.carbon_price_usd_per_tonne
    seconds = plan.solution.seconds
    return Summary(
        scenario=scenario.name,
        policy="oracle",
        forecaster="perfect",
        bound=True,
        period=period_of(scenario),
        objective_usd=objective_usd(
            t["cost_usd"], t["emissions_kg"], carbon_price, penalties["total"]
        ),
        cost_usd=t["cost_usd"],
        emissions_kg=t["emissions_kg"],
        carbon_price_usd_per_tonne=carbon_price,
        carbon_intensity_kind=scenario.carbon_intensity_kind,
        penalties_usd=penalties,
        energy_kwh=cast(EnergyKwh, {key: t[key] for key in ENERGY_KEYS}),
        inference=_inference(scenario, plan),
        batch=_batch(scenario, plan),
        decision_s=DecisionTimes(total=seconds, p99=seconds, decisions=1),
        wall_s=wall_s,
        blocks=1,
        repairs=no_repairs(),
        sites=_sites(plan),
        notes=[
            *scenario.notes,
            f"oracle: perfect-foresight LP relaxation over {problem.n_periods} periods of "
            f"{problem.period_h:g} h (a lower bound; see wattroute.optimise.oracle)",
        ],
        period_h=problem.period_h,
        lp=LpStats(
            columns=shape[1],
            rows=shape[0],
            nonzeros=nonzeros,
            status=plan.solution.status,
            iterations=plan.solution.iterations,
            solve_s=seconds,
        ),
    )


def _inference(scenario: Scenario, plan: Plan) -> InferenceTotals:
    """Requests the plan serves: every request is served within the SLO or dropped."""
    seconds = plan.problem.period_h * 3600.0
    by_service: dict[str, Requests] = {}
    blocks = zip(scenario.services, plan.problem.services, plan.dropped, strict=True)
    for named, service, lost_rps in blocks:
        asked = float(service.rate_rps.sum()) * seconds
        lost = float(lost_rps.sum()) * seconds
        by_service[named.name] = Requests(
            requests=asked, served_within_slo=asked - lost, served_late=0.0, dropped=lost
        )
    requests = float(sum(r["requests"] for r in by_service.values()))
    dropped = float(sum(r["dropped"] for r in by_service.values()))
    return InferenceTotals(
        requests=requests,
        served_within_slo=requests - dropped,
        served_late=0.0,
        dropped=dropped,
        slo_violation_fraction=violation_fraction(requests, requests - dropped),
        by_service=by_service,
    )


def _batch(scenario: Scenario, plan: Plan) -> BatchTotals:
    """The plan's batch work. A job is complete when the plan leaves none of its work undone;
    it completes at the end of the last period it works in. The relaxation pays no
    checkpoints and migrations, so moves, stops and overhead are zero."""
    spec = JobArrays.from_scenario(scenario)
    undone = plan.undone_accelerator_hours
    completed = undone <= UNDONE_TOLERANCE_ACCELERATOR_HOURS
    working = plan.work.sum(axis=1) > WORKING_TOLERANCE_ACCELERATORS  # (J, H)
    last = plan.problem.n_periods - 1 - np.argmax(working[:, ::-1], axis=1)
    done_h = np.where(working.any(axis=1), (last + 1) * plan.problem.period_h, spec.arrival_h)
    earliest = spec.arrival_h + spec.work_accelerator_hours / spec.max_accelerators
    delays = np.maximum(done_h - earliest, 0.0)[completed]
    return BatchTotals(
        jobs=spec.n_jobs,
        completed=int(completed.sum()),
        deadline_misses=int((~completed).sum()),
        work_accelerator_hours=float(plan.work.sum()) * plan.problem.period_h,
        work_undone_at_deadline_accelerator_hours=float(undone.sum()),
        mean_completion_delay_h=float(delays.mean()) if delays.size else 0.0,
        moves=0,
        stops=0,
        overhead_hours=0.0,
        overhead_owed_at_deadline_h=0.0,
    )


def _sites(plan: Plan) -> dict[str, SiteTotals]:
    """Cost, emissions, energy, peak load and PUE of each site in the plan."""
    problem = plan.problem
    cost = plan.cost_usd().sum(axis=0)
    emissions = plan.emissions_kg().sum(axis=0)
    energy = plan.energy_kwh_by_site()
    peak = plan.load_kw().max(axis=0) if problem.n_periods else np.zeros(problem.n_sites)
    pue = problem.pue.mean(axis=0) if problem.n_periods else np.zeros(problem.n_sites)
    return {
        name: SiteTotals(
            cost_usd=float(cost[i]),
            emissions_kg=float(emissions[i]),
            energy_kwh=cast(EnergyKwh, {key: float(energy[key][i]) for key in ENERGY_KEYS}),
            peak_load_kw=float(peak[i]),
            mean_pue=float(pue[i]),
        )
        for i, name in enumerate(problem.fleet.names)
    }


def capture_ratio(baseline: float, policy: float, oracle: float) -> float:
    """(baseline - policy) / (baseline - oracle): the share of the achievable saving a policy
    gets; ``nan`` when the oracle saves nothing over the baseline."""
    gap = baseline - oracle
    if not math.isfinite(gap) or gap <= ROUNDING:
        return float("nan")
    return (baseline - policy) / gap
