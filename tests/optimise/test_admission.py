"""Online admission of a single job: feasibility, site choice and reasons."""

from __future__ import annotations

import numpy as np
import pytest

from wattroute.optimise.admission import BATCH, AdmissionState, admit, admit_many


def _state(free, cost, period_h=1.0):
    free = np.asarray(free, float)
    return AdmissionState(
        tuple(f"s{i}" for i in range(free.shape[1])), period_h, free, np.asarray(cost, float)
    )


def test_the_cheapest_feasible_site_wins_and_fills_its_cheapest_hours():
    state = _state(free=[[4, 4], [4, 4], [4, 4]], cost=[[3.0, 1.0], [1.0, 2.0], [1.0, 2.0]])
    result = admit(state, work_accelerator_hours=8.0, max_accelerators=4, deadline_h=3.0)
    assert result.admitted
    # s0: 4 + 4 accelerator-hours at 1.0 = 8; s1: 4 at 1.0 + 4 at 2.0 = 12
    assert result.site_name == "s0"
    assert result.cost_usd == pytest.approx(8.0)
    assert not result.starts_now  # s0's first hour is its dearest


def test_parallelism_and_deadline_limit_what_fits():
    state = _state(free=[[8], [8], [8]], cost=[[1.0], [1.0], [1.0]])
    assert admit(state, 6.0, 2, 3.0).admitted
    refused = admit(state, 6.0, 2, 2.5)  # 2 accelerators x 2.5 h = 5
    assert not refused.admitted
    assert "at most 5.00" in refused.reasons[0]


def test_allowed_sites_are_respected():
    state = _state(free=[[4, 4]], cost=[[5.0, 1.0]])
    result = admit(state, 2.0, 4, 1.0, allowed=np.array([True, False]))
    assert result.site_name == "s0"
    assert not admit(state, 2.0, 4, 1.0, allowed=np.array([False, False])).admitted


def test_a_full_fleet_refuses_with_a_reason():
    state = _state(free=[[0, 0], [0, 1]], cost=[[1.0, 1.0], [1.0, 1.0]])
    result = admit(state, 4.0, 4, 2.0)
    assert not result.admitted
    assert "s1" in result.reasons[0]


def _reference(state, work, most, deadline, allowed):
    """One job decided the plain way: at each allowed site, fill its cheapest periods first
    (ties: the earlier period); the cheapest site where the work fits wins (ties: the first).
    Returns (site or -1, cost, starts now)."""
    best = (-1, float("inf"), False)
    for s in range(len(state.names)):
        if not allowed[s]:
            continue
        hours = [
            min(max(deadline - h * state.period_h, 0.0), state.period_h)
            for h in range(state.free.shape[0])
        ]
        capacity = [min(state.free[h, s], most) * hours[h] for h in range(len(hours))]
        if sum(capacity) < work - 1e-9:
            continue
        left, cost, now = work, 0.0, False
        for h in sorted(range(len(hours)), key=lambda h: state.cost[h, s]):
            take = min(left, capacity[h])
            cost += take * state.cost[h, s]
            now = now or (h == 0 and take > 1e-12)
            left -= take
        if cost < best[1]:
            best = (s, cost, now)
    return best


@pytest.mark.parametrize(
    ("sites", "tied", "period_h"),
    [
        (3, False, 1.0),  # no more sites than candidates: every site worked out
        (7, False, 1.0),
        (40, False, 1.0),
        (40, False, 0.5),
        (40, True, 1.0),  # equal costs: bounds tie, and the first site of the cheapest wins
    ],
)
def test_many_jobs_at_once_get_the_plain_answer_each(sites, tied, period_h):
    rng = np.random.default_rng(3)
    periods, n = 24, 1300  # more than one pass of BATCH jobs
    free = rng.integers(0, 9, (periods, sites)).astype(float)
    if tied:  # quarters add up exactly in any order, so ties stay ties
        cost = rng.integers(1, 4, (periods, sites)) * 0.25
        work = rng.integers(2, 240, n) * 0.25
        deadline = rng.integers(-1, 30, n).astype(float)
    else:
        cost = rng.uniform(0.05, 0.5, (periods, sites))
        work = rng.uniform(0.5, 60.0, n)
        deadline = rng.uniform(-1.0, 30.0, n)
    state = _state(free, cost, period_h)
    most = rng.integers(1, 9, n)
    allowed = rng.random((n, sites)) < 0.6
    many = admit_many(state, work, most, deadline, allowed)
    assert n > BATCH
    assert 0.2 < many.admitted.mean() < 0.95  # both answers are exercised
    for i in range(n):
        site, usd, now = _reference(state, work[i], most[i], deadline[i], allowed[i])
        assert int(many.site[i]) == site
        assert bool(many.admitted[i]) == (site >= 0)
        if site >= 0:
            assert many.cost_usd[i] == pytest.approx(usd, rel=1e-9)
            assert bool(many.starts_now[i]) == now
        else:
            assert np.isnan(many.cost_usd[i])
        one = admit(state, float(work[i]), int(most[i]), float(deadline[i]), allowed[i])
        assert one.site == int(many.site[i])


def test_many_jobs_admitted_match_a_hand_checked_case():
    state = _state(free=[[4, 4], [4, 4], [4, 4]], cost=[[3.0, 1.0], [1.0, 2.0], [1.0, 2.0]])
    many = admit_many(state, np.array([8.0, 30.0]), np.array([4, 4]), np.array([3.0, 3.0]))
    assert many.admitted.tolist() == [True, False]
    assert many.site.tolist() == [0, -1]
    assert many.cost_usd[0] == pytest.approx(8.0)
    assert many.most_fitting_accelerator_hours.tolist() == [12.0, 12.0]
