"""The observation policies decide from: what each site can still hold and power."""

from __future__ import annotations

import numpy as np

from tests.builders import job, scenario, site
from wattroute.sim.jobs import JobTable
from wattroute.sim.simulator import Simulator


def test_room_is_what_each_site_can_both_hold_and_power_beside_the_batch_work() -> None:
    """Site ``a`` holds 8 accelerators with power for all; site ``b`` holds 8 but its import
    limit powers 5 (1 kW each): room beside 2 busy at ``a`` and 3 at ``b`` is 6 and 2, and the
    same whether the allocations or their per-site totals are given."""
    n = 24
    sc = scenario(
        [site("a", n=n), site("b", n=n, import_limit_kw=5.0)],
        n=n,
        jobs=[job("x", 0.0, 4.0, 2, 6.0), job("y", 0.0, 6.0, 3, 6.0)],
    )
    sim = Simulator(sc)
    table = JobTable(sim.job_spec)
    table.arrive_until(0)
    obs = sim.observe(0, table, np.array([0, 1]), lambda: np.zeros(2))
    site_of, acc_of = np.array([0, 1]), np.array([2, 3])
    room = obs.room(site_of, acc_of, ())
    np.testing.assert_array_equal(room, [6.0, 2.0])
    np.testing.assert_array_equal(obs.room_beside(np.array([2.0, 3.0]), ()), room)
    np.testing.assert_array_equal(obs.room(np.array([-1, -1]), np.zeros(2, int), ()), [8.0, 5.0])


def test_a_forecast_asked_for_again_is_the_same_and_each_caller_gets_its_own_copy() -> None:
    """An observation forecasts a signal once (greedy and the deadline reserve both ask for
    the day-ahead prices): the second answer is the first, to the last bit, and what one caller
    does to its copy the next does not see."""
    n = 48
    sc = scenario([site("a", n=n), site("b", n=n)], n=n, jobs=[job("x", 0.0, 4.0, 2, 6.0)])
    sim = Simulator(sc)
    table = JobTable(sim.job_spec)
    table.arrive_until(30)
    obs = sim.observe(30, table, np.array([0]), lambda: np.zeros(2))
    made = obs.history.forecast("price_usd_per_mwh", 24, obs.forecaster, obs.steps_per_day)
    first = obs.forecast("price_usd_per_mwh", 24)
    assert first.tobytes() == made.tobytes()
    first[:] = -1.0
    again = obs.forecast("price_usd_per_mwh", 24)
    assert again.tobytes() == made.tobytes()
    assert obs.forecast("price_usd_per_mwh", 12).tobytes() == made[:12].tobytes()
