"""The carbon-agnostic baseline."""

from __future__ import annotations

import numpy as np

from tests.builders import DemandPoint, job, scenario, service, site
from wattroute.policies.agnostic import AgnosticPolicy, nearest_feasible_routing
from wattroute.policies.base import ServiceState
from wattroute.sim import SimulationOptions, simulate, summarize


def test_nearest_feasible_routing_skips_infeasible_sites_and_drops_unreachable_points():
    state = ServiceState(
        name="v",
        rate_rps=np.array([1.0, 1.0]),
        rtt_ms=np.array([[3.0, 1.0, 2.0], [50.0, 60.0, 70.0]]),
        feasible=np.array([[True, False, True], [False, False, False]]),
        replica_throughput_rps=10.0,
        accelerators_per_replica=1,
    )
    shares = nearest_feasible_routing(state)
    np.testing.assert_array_equal(shares, [[0, 0, 1], [0, 0, 0]])


def test_jobs_start_at_once_on_allowed_sites_and_wait_only_for_room():
    sc = scenario(
        [site("small", accelerators=2), site("big", accelerators=6, latitude=41)],
        jobs=[
            job("first", 0, 4.0, 4, 10.0),
            job("pinned", 0, 2.0, 2, 10.0, allowed=("small",)),
            job("late", 0, 6.0, 6, 20.0),  # no room until "first" finishes
        ],
    )
    record = simulate(sc, AgnosticPolicy(), SimulationOptions(check_energy_balance=True))
    s = summarize(record)
    assert s["batch"]["completed"] == 3
    done = dict(zip(record.jobs.spec.names, record.jobs.completed_h, strict=True))
    assert done["first"] == 1.0  # 4 accelerator-hours on the big site's 4 free accelerators
    assert done["pinned"] == 1.0
    assert done["late"] > 1.0  # started when "first" freed the big site


def test_the_decision_holds_until_the_next_arrival_when_nothing_waits():
    sc = scenario(
        [site()],
        jobs=[job("a", 0, 2.0, 2, 10.0), job("b", 0, 1.0, 1, 10.0)],
        points=[DemandPoint("p", 40, -100)],
        services=[service("v", "p", np.full(288, 10.0))],
    )
    record = simulate(sc, AgnosticPolicy(), SimulationOptions(check_energy_balance=True))
    assert record.blocks == 1  # the arrival; the completions change nothing agnostic decides
    np.testing.assert_allclose(record.jobs.completed_h, [1.0, 1.0])
