"""The crash basis: a valid starting basis from which HiGHS reaches the optimum it reaches from
its own start, and a feasible plan."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.replan_speed import synthetic_scenario
from wattroute.optimise import PlanningProblem
from wattroute.optimise.formulation import BASIC, build, crash_basis
from wattroute.optimise.solver import solve
from wattroute.policies.mpc import MPCPolicy
from wattroute.sim.jobs import JobTable
from wattroute.sim.simulator import Simulator


def _replan_problem(n_sites: int, n_jobs: int, seed: int, max_job_rows: int) -> PlanningProblem:
    """What ``mpc`` plans at the first step of a random synthetic fleet (sites with and without
    batteries, solar and import limits; one inference service; every job active)."""
    sim = Simulator(synthetic_scenario(n_sites, n_jobs, days=2, seed=seed))
    jobs = JobTable(sim.job_spec)
    jobs.arrive_until(0)
    obs = sim.observe(0, jobs, jobs.active_ids(), lambda: sim.fleet.battery_initial_kwh.copy())
    problem, _ = MPCPolicy(max_job_rows=max_job_rows)._problem(obs, 1)
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
