"""Online admission of a single job: feasibility, site choice and reasons."""

from __future__ import annotations

import numpy as np
import pytest

from wattroute.optimise.admission import AdmissionState, admit


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
