"""The crash basis: a valid starting basis from which HiGHS reaches the optimum it reaches from
its own start, and a feasible plan."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks.replan_speed import synthetic_scenario
from wattroute.optimise import PlanningProblem
from wattroute.optimise.formulation import BASIC, build, carry_solution, crash_basis
from wattroute.optimise.solver import solve
from wattroute.policies.mpc import CLASS_PLAN_RESTART_PERIODS, MPCPolicy
from wattroute.sim.jobs import JobTable
from wattroute.sim.simulator import Simulator


def _replan_problem(
    n_sites: int, n_jobs: int, seed: int, max_job_rows: int, fast_class_plans: bool = True
) -> PlanningProblem:
    """What ``mpc`` plans at the first step of a random synthetic fleet (sites with and without
    batteries, solar and import limits; one inference service; every job active)."""
    sim = Simulator(synthetic_scenario(n_sites, n_jobs, days=2, seed=seed))
    jobs = JobTable(sim.job_spec)
    jobs.arrive_until(0)
    obs = sim.observe(0, jobs, jobs.active_ids(), lambda: sim.fleet.battery_initial_kwh.copy())
    policy = MPCPolicy(max_job_rows=max_job_rows, fast_class_plans=fast_class_plans)
    problem, _ = policy._problem(obs, 1)
    return problem


@pytest.mark.parametrize(
    ("n_sites", "n_jobs", "seed", "max_job_rows"),
    [(3, 20, 0, 300), (5, 60, 1, 300), (8, 150, 2, 40), (12, 200, 3, 50), (6, 120, 4, 30)],
)
def test_the_crash_start_reaches_the_same_optimum_with_a_feasible_plan(
    n_sites: int, n_jobs: int, seed: int, max_job_rows: int
) -> None:
    lp = build(_replan_problem(n_sites, n_jobs, seed, max_job_rows))
    col, row = crash_basis(lp)
    assert (col == BASIC).sum() + (row == BASIC).sum() == lp.matrix.shape[0]

    plain, crashed = solve(lp), solve(lp, crash=True)
    assert plain.ok
    assert crashed.ok
    # Within HiGHS's tolerances (its dual feasibility tolerance, 1e-7, is a tenth of the 1e-6 USD
    # tie-break that prefers earlier work): the two starts may end at optima that far apart.
    assert crashed.objective == pytest.approx(plain.objective, rel=1e-6)
    x = crashed.x
    assert np.all(x >= lp.col_lower - 1e-7)
    assert np.all(x <= lp.col_upper + 1e-7)
    activity = lp.matrix @ x
    assert np.all(activity >= lp.row_lower - 1e-6)
    assert np.all(activity <= lp.row_upper + 1e-6)


@pytest.mark.parametrize(("n_sites", "n_jobs", "seed"), [(5, 60, 1), (8, 150, 2), (12, 200, 3)])
def test_a_fast_class_plan_is_a_plan_of_the_full_formulation_that_costs_little_more(
    n_sites: int, n_jobs: int, seed: int
) -> None:
    # Class plans price restarts over the first two periods only and drop the tie-break towards
    # earlier work; carried into the full formulation (restarts over six periods, tie-break)
    # the plan is feasible and costs no less than its optimum, and not much more.
    fast = _replan_problem(n_sites, n_jobs, seed, max_job_rows=20)
    assert fast.restart_periods == CLASS_PLAN_RESTART_PERIODS
    assert fast.early_bias_usd_per_accelerator_hour == 0.0
    full = dataclasses.replace(
        fast,
        restart_periods=PlanningProblem.restart_periods,
        early_bias_usd_per_accelerator_hour=PlanningProblem.early_bias_usd_per_accelerator_hour,
    )
    fast_lp, full_lp = build(fast), build(full)
    assert fast_lp.matrix.shape[0] < full_lp.matrix.shape[0]
    fast_x, full_x = solve(fast_lp, crash=True), solve(full_lp, crash=True)
    assert fast_x.ok
    assert full_x.ok

    carried = carry_solution(full_lp, fast_lp, fast_x.x)
    activity = full_lp.matrix @ carried
    assert np.all(activity >= full_lp.row_lower - 1e-6)
    assert np.all(activity <= full_lp.row_upper + 1e-6)
    assert np.all(carried <= full_lp.col_upper + 1e-7)
    cost = float(full_lp.cost @ carried + full_lp.offset)
    assert cost >= full_x.objective - 1e-6 * abs(full_x.objective)
    # Here 0.4-0.5 %; on the 100-site, 10,000-job re-plan of the benchmark 4e-5.
    assert cost <= full_x.objective + 1e-2 * abs(full_x.objective)
    # An optimum carried into its own formulation keeps its cost: the rises it takes are the
    # least its restart rows allow.
    own = carry_solution(full_lp, full_lp, full_x.x)
    assert float(full_lp.cost @ own + full_lp.offset) == pytest.approx(full_x.objective, rel=1e-9)


def test_carrying_a_solution_between_programs_of_different_problems_is_refused() -> None:
    small = build(_replan_problem(3, 20, 0, 300))
    other = build(_replan_problem(5, 60, 1, 300))
    with pytest.raises(ValueError, match="differ"):
        carry_solution(small, other, np.zeros(other.layout.size))


def test_only_class_plans_take_the_fast_formulation() -> None:
    defaults = (
        PlanningProblem.restart_periods,
        PlanningProblem.early_bias_usd_per_accelerator_hour,
    )
    single = _replan_problem(5, 60, 1, max_job_rows=300)
    exact = _replan_problem(5, 60, 1, max_job_rows=20, fast_class_plans=False)
    fast = _replan_problem(5, 60, 1, max_job_rows=20)
    assert (single.restart_periods, single.early_bias_usd_per_accelerator_hour) == defaults
    assert (exact.restart_periods, exact.early_bias_usd_per_accelerator_hour) == defaults
    assert (fast.restart_periods, fast.early_bias_usd_per_accelerator_hour) == (
        CLASS_PLAN_RESTART_PERIODS,
        0.0,
    )
    assert len(exact.jobs) == len(fast.jobs) < 60
