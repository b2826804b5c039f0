"""The relaxation over a receding horizon: the oracle when it sees everything, worse when not."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders import job, scenario, site
from tests.optimise.test_oracle import _small_fleet
from wattroute.optimise.oracle import solve_oracle
from wattroute.optimise.receding import solve_receding

DAY = 288


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("horizon_h", [3.0, 48.0])
def test_it_never_beats_the_oracle(seed, horizon_h):
    # Even over the whole scenario it learns of each job only when it arrives.
    sc = _small_fleet(seed)
    receding = solve_receding(sc, horizon_h=horizon_h)
    assert receding["replans"] == 48
    assert receding["objective_usd"] >= solve_oracle(sc)[1]["objective_usd"] - 1e-6


def test_a_horizon_that_does_not_reach_the_cheap_hour_pays_for_it():
    # 100 USD/MWh, 50 for two hours early on, 10 for four hours from 24 h: a job due at 27 h
    # belongs in those; a 6 h horizon sees only the 50 USD/MWh hours.
    n = 2 * DAY
    hour = np.arange(n) // 12
    price = np.where(
        (hour >= 24) & (hour < 28), 10.0, np.where((hour >= 2) & (hour < 4), 50.0, 100.0)
    )
    sc = scenario([site(price=price, n=n, carbon=0.0)], n=n, jobs=[job("j", 0.0, 4.0, 2, 27.9)])
    oracle = solve_oracle(sc)[1]
    assert oracle["cost_usd"] == pytest.approx(4.0 * 0.010)
    far = solve_receding(sc, horizon_h=30.0)
    near = solve_receding(sc, horizon_h=6.0)
    assert far["objective_usd"] == pytest.approx(oracle["objective_usd"])
    assert near["cost_usd"] == pytest.approx(4.0 * 0.050)  # ran before it saw the cheap hours


def test_work_that_cannot_be_done_in_time_costs_the_deadline_penalty():
    sc = scenario([site()], jobs=[job("j", 0.0, 10.0, 1, 4.0)])  # 10 h of work, 4 h to do it
    receding = solve_receding(sc, horizon_h=2.0)
    assert receding["work_undone_at_deadline_accelerator_hours"] == pytest.approx(6.0)
    oracle = solve_oracle(sc)[1]
    assert receding["objective_usd"] == pytest.approx(oracle["objective_usd"])
