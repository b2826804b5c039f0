"""Job classes: a class row may do per period no more than its members could together, and a
class plan can be shared out among its members (each within its own window, parallelism and
work) wherever the members' windows and run times match."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import linprog

from tests.builders import scenario, site
from wattroute.model.arrays import FleetStatic
from wattroute.optimise import JobBlock, PlanningProblem, optimise
from wattroute.optimise.classes import ClassRules, _aggregate, job_classes, run_time_edges
from wattroute.optimise.problem import deferral_cost, window_shares

EXACT = ClassRules(run_time_growth=1e-9)  # every whole number of periods its own bucket


def _block(
    work: list[float],
    max_acc: list[int],
    deadline_h: list[float],
    n_periods: int,
    allowed: list[list[bool]] | None = None,
) -> JobBlock:
    n = len(work)
    available = window_shares(np.zeros(n), np.asarray(deadline_h, float), 1.0, n_periods)
    return JobBlock(
        work_accelerator_hours=np.asarray(work, float),
        max_accelerators=np.asarray(max_acc, float),
        available=available,
        allowed=np.ones((n, 1), bool) if allowed is None else np.asarray(allowed, bool),
        current_site=np.full(n, -1),
        switch_cost_usd_per_accelerator_hour=np.zeros(n),
        deferrable_accelerator_hours=np.zeros(n),
        deferral_cost_usd_per_accelerator_hour=np.zeros(n),
    )


def _problem(jobs: JobBlock, price: np.ndarray, accelerators: int) -> PlanningProblem:
    """One hour per period, sites with ``accelerators`` each (1 kW busy), grid at ``price``."""
    h_n, s_n = price.shape
    sites = [site(f"s{i}", n=h_n, accelerators=accelerators, busy_kw=1.0) for i in range(s_n)]
    fleet = FleetStatic.from_scenario(scenario(sites, n=h_n))
    return PlanningProblem(
        period_h=1.0,
        fleet=fleet,
        price_usd_per_mwh=price,
        carbon_g_per_kwh=np.zeros((h_n, s_n)),
        export_price_usd_per_mwh=np.zeros((h_n, s_n)),
        solar_kw=np.zeros((h_n, s_n)),
        wind_kw=np.zeros((h_n, s_n)),
        pue=np.ones((h_n, s_n)),
        carbon_price_usd_per_tonne=0.0,
        soc_kwh=fleet.battery_initial_kwh,
        terminal_value_usd_per_kwh=np.zeros(s_n),
        jobs=jobs,
        services=(),
        deadline_penalty_usd_per_accelerator_hour=10.0,
        slo_penalty_usd_per_request=0.0,
    )


def _can_share_out(class_work: np.ndarray, members: JobBlock) -> bool:
    """Whether mean accelerators per period ``class_work`` (H,) split into the members' own
    schedules: each within its parallelism times its share of the period, none beyond its work
    (one-hour periods)."""
    n, h_n = members.available.shape
    cap = (members.max_accelerators[:, np.newaxis] * members.available).ravel()
    per_period = np.zeros((h_n, n * h_n))  # sum over members of y[j, h] = class_work[h]
    per_job = np.zeros((n, n * h_n))  # sum over periods of y[j, h] <= work[j]
    for j in range(n):
        for h in range(h_n):
            per_period[h, j * h_n + h] = 1.0
            per_job[j, j * h_n + h] = 1.0
    result = linprog(
        np.zeros(n * h_n),
        A_ub=per_job,
        b_ub=members.work_accelerator_hours + 1e-5,
        A_eq=per_period,
        b_eq=class_work,
        bounds=list(zip(np.zeros(n * h_n), cap + 1e-5, strict=True)),
        method="highs",
    )
    return bool(result.status == 0)


def _members(block: JobBlock, rows: np.ndarray) -> JobBlock:
    return dataclasses.replace(
        block,
        work_accelerator_hours=block.work_accelerator_hours[rows],
        max_accelerators=block.max_accelerators[rows],
        available=block.available[rows],
    )


def test_a_class_may_use_per_period_only_what_its_members_could_together() -> None:
    # Both deadlines fall in period 2, one 0.2 into it and one 0.9: together 1.1 accelerators
    # there, not 2 (nor 0.4).
    block = _block([1.6, 1.7], [1, 1], [2.2, 2.9], 4)
    classes, row_of = job_classes(block, 1.0)
    assert row_of.tolist() == [0, 0]
    capacity = classes.max_accelerators[:, np.newaxis] * classes.available
    np.testing.assert_allclose(capacity[0], [2.0, 2.0, 1.1, 0.0])
    assert classes.work_accelerator_hours[0] == pytest.approx(3.3)


def test_one_member_class_is_the_job() -> None:
    block = _block([2.5], [3], [4.5], 6)
    classes, _ = job_classes(block, 1.0)
    np.testing.assert_allclose(
        classes.max_accelerators[:, np.newaxis] * classes.available,
        block.max_accelerators[:, np.newaxis] * block.available,
    )
    assert classes.work_accelerator_hours[0] == pytest.approx(2.5)


def test_long_and_short_jobs_with_one_deadline_are_planned_apart() -> None:
    block = _block([1.0, 6.0, 1.0], [1, 1, 1], [8.0, 8.0, 8.0], 10)
    _, row_of = job_classes(block, 1.0)
    assert row_of[0] == row_of[2] != row_of[1]


def test_a_class_plan_is_checked_against_what_members_can_do() -> None:
    # The check itself: one row for a 6-hour and a 1-hour job, both due in 8 hours, lets the
    # LP put their 7 accelerator-hours in the 4 cheap hours on 2 accelerators; the long job
    # cannot run more than 1 at a time, so the plan cannot be shared out.
    block = _block([6.0, 1.0], [1, 1], [8.0, 8.0], 8)
    merged = _aggregate(block, np.zeros(2, np.int64))
    price = np.array([[10.0]] * 4 + [[500.0]] * 4)
    plan = optimise(_problem(merged, price, accelerators=4), 10.0)
    assert not _can_share_out(plan.work[0].sum(axis=0), block)


@pytest.mark.parametrize("seed", range(6))
def test_every_class_plan_can_be_shared_out_among_its_members(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, h_n, s_n = 40, 8, 2
    max_acc = rng.integers(1, 4, n)
    run_periods = rng.integers(1, 5, n)
    deadline = run_periods + rng.integers(0, 5, n)  # whole periods, at least the run time
    allowed = rng.random((n, s_n)) < 0.7
    allowed[~allowed.any(axis=1), 0] = True
    block = _block(
        (max_acc * run_periods).astype(float).tolist(),
        max_acc.tolist(),
        deadline.astype(float).tolist(),
        h_n,
        allowed.tolist(),
    )
    classes, row_of = job_classes(block, 1.0, EXACT)
    assert len(classes) < n
    price = rng.uniform(10.0, 200.0, (h_n, s_n))
    plan = optimise(_problem(classes, price, accelerators=6), 30.0)
    for row in range(len(classes)):
        members = np.flatnonzero(row_of == row)
        assert _can_share_out(plan.work[row].sum(axis=0), _members(block, members)), row


def test_run_time_edges_double_and_cover_the_longest() -> None:
    assert run_time_edges(9.0, 1.0).tolist() == [1, 2, 4, 8, 16]
    assert run_time_edges(3.0, 1e-9).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="run_time_growth must be positive"):
        run_time_edges(3.0, 0.0)
    with pytest.raises(ValueError, match="run_time_growth must be positive"):
        ClassRules(run_time_growth=-1.0)


def test_deferral_cost_is_the_mean_cheapest_allowed_cost() -> None:
    rng = np.random.default_rng(3)
    allowed = rng.random((50, 7)) < 0.3
    cost = rng.normal(size=(5, 7))
    got = deferral_cost(allowed, cost)
    for j in range(50):
        sites = np.flatnonzero(allowed[j])
        expected = cost[:, sites].min(axis=1).mean() if sites.size else 0.0
        assert got[j] == pytest.approx(expected, abs=1e-12)
