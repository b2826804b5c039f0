"""Inference serving: replicas and utilisation of a routing, requests served within the SLO,
late and dropped, capacity shared in proportion, and the router's reuse of its work, on
services small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest

from wattroute.model.arrays import ServiceArrays
from wattroute.sim.inference import Router, route, serve

STEP_S = 60.0
STEPS = 4

# Two demand points, three sites. p0 is within the SLO of a and b, p1 of b and c.
FEASIBLE = np.array([[True, True, False], [False, True, True]])
# p0 sends half to a and half to c (outside its SLO: late); p1 sends 60 % to b, drops 40 %.
ROUTING = np.array([[0.5, 0.0, 0.5], [0.0, 0.6, 0.0]])


def _service(
    rate_rps: np.ndarray | list[list[float]],
    feasible: np.ndarray = FEASIBLE,
    throughput: float = 10.0,
    per_replica: int = 2,
    name: str = "vision",
) -> ServiceArrays:
    rate = np.asarray(rate_rps, float)
    return ServiceArrays(
        name=name,
        points=tuple(f"p{i}" for i in range(rate.shape[1])),
        rate_rps=rate,
        rtt_ms=np.where(feasible, 10.0, 50.0),
        feasible=feasible,
        latency_slo_ms=30.0,
        service_time_ms=5.0,
        replica_throughput_rps=throughput,
        accelerators_per_replica=per_replica,
    )


def _steady() -> ServiceArrays:
    """p0 asks 24 requests/s, p1 10, at every step."""
    return _service(np.tile([24.0, 10.0], (STEPS, 1)))


def test_replicas_are_rounded_up_and_utilisation_is_the_routed_share_of_their_capacity() -> None:
    load = route((_steady(),), (ROUTING,), 0, STEPS)
    # Routed: a 24 x 0.5 = 12, b 10 x 0.6 = 6, c 12 requests/s.
    np.testing.assert_allclose(load.routed_rps[0], np.tile([12.0, 6.0, 12.0], (STEPS, 1)))
    # Replicas of 10 requests/s: ceil(1.2) = 2, ceil(0.6) = 1, 2; 2 accelerators each.
    np.testing.assert_allclose(load.need, np.tile([4.0, 2.0, 4.0], (STEPS, 1)))
    # Busy-equivalent accelerators: 12 / 10 x 2 = 2.4, 6 / 10 x 2 = 1.2, 2.4.
    np.testing.assert_allclose(load.busy, np.tile([2.4, 1.2, 2.4], (STEPS, 1)))
    # Within the SLO: a's 12 and b's 6; c's 12 are routed outside p0's SLO.
    np.testing.assert_allclose(load.within_slo_rps[0], np.tile([12.0, 6.0, 0.0], (STEPS, 1)))
    np.testing.assert_allclose(load.total_routed_rps, load.routed_rps[0])


def test_requests_are_within_the_slo_late_or_dropped_and_nothing_else() -> None:
    service = _steady()
    served = serve((service,), route((service,), (ROUTING,), 0, STEPS), np.full(3, 8.0), STEP_S)
    # Over 4 steps of 60 s = 240 s. Asked: (24 + 10) x 240 = 8160. Served: (12 + 6 + 12) x 240
    # = 7200, of which within the SLO (12 + 6) x 240 = 4320 and late (at c) 12 x 240 = 2880;
    # dropped: p1's 40 %, 4 x 240 = 960.
    assert served.requests.tolist() == pytest.approx([8160.0])
    assert served.within_slo.tolist() == pytest.approx([4320.0])
    assert served.late.tolist() == pytest.approx([2880.0])
    assert served.dropped.tolist() == pytest.approx([960.0])
    np.testing.assert_allclose(served.requests, served.within_slo + served.late + served.dropped)
    np.testing.assert_allclose(served.accelerators, np.tile([4.0, 2.0, 4.0], (STEPS, 1)))
    np.testing.assert_allclose(served.served_rps, np.tile([12.0, 6.0, 12.0], (STEPS, 1)))


def test_a_site_short_of_accelerators_serves_its_load_in_proportion() -> None:
    service = _steady()
    load = route((service,), (ROUTING,), 0, STEPS)
    # a has 2 of the 4 accelerators its replicas need: it serves half of its 12 requests/s.
    served = serve((service,), load, np.array([2.0, 2.0, 4.0]), STEP_S)
    # Served (6 + 6 + 12) x 240 = 5760; within (6 + 6) x 240 = 2880; late 12 x 240 = 2880;
    # dropped 8160 - 5760 = 2400.
    assert served.within_slo.tolist() == pytest.approx([2880.0])
    assert served.late.tolist() == pytest.approx([2880.0])
    assert served.dropped.tolist() == pytest.approx([2400.0])
    np.testing.assert_allclose(served.requests, served.within_slo + served.late + served.dropped)
    np.testing.assert_allclose(served.accelerators, np.tile([2.0, 2.0, 4.0], (STEPS, 1)))
    np.testing.assert_allclose(served.busy_equivalent, np.tile([1.2, 1.2, 2.4], (STEPS, 1)))
    np.testing.assert_allclose(served.served_rps, np.tile([6.0, 6.0, 12.0], (STEPS, 1)))


def test_a_site_without_accelerators_drops_what_is_routed_to_it() -> None:
    service = _steady()
    served = serve((service,), route((service,), (ROUTING,), 0, STEPS), np.zeros(3), STEP_S)
    assert served.within_slo.tolist() == [0.0]
    assert served.late.tolist() == [0.0]
    assert served.dropped.tolist() == pytest.approx([8160.0])
    assert not served.accelerators.any()
    assert not served.busy_equivalent.any()


def test_services_sharing_a_short_site_are_served_in_the_same_proportion() -> None:
    # One site; two services of one point each, 10 and 20 requests/s, replicas of 10 / 1 acc.
    one = np.array([[True]])
    a = _service([[10.0]], one, per_replica=1, name="a")
    b = _service([[20.0]], one, per_replica=1, name="b")
    routing = (np.ones((1, 1)), np.ones((1, 1)))
    load = route((a, b), routing, 0, 1)
    assert load.need.tolist() == [[3.0]]  # 1 + 2 replicas
    served = serve((a, b), load, np.array([2.0]), STEP_S)  # 2 of 3: each served 2/3
    np.testing.assert_allclose(served.within_slo, [10.0 * 60 * 2 / 3, 20.0 * 60 * 2 / 3])
    np.testing.assert_allclose(served.dropped, [10.0 * 60 / 3, 20.0 * 60 / 3])


def test_no_routing_to_a_site_outside_the_slo_is_ever_counted_within_it() -> None:
    """Whatever the shares, within-SLO requests come only from feasible pairs."""
    rng = np.random.default_rng(3)
    service = _service(rng.uniform(0, 50, (STEPS, 2)))
    for _ in range(20):
        shares = rng.uniform(0, 1, (2, 3))
        shares /= np.maximum(shares.sum(axis=1, keepdims=True), 1.0)
        load = route((service,), (shares,), 0, STEPS)
        expected = service.rate_rps @ (shares * FEASIBLE)
        np.testing.assert_allclose(load.within_slo_rps[0], expected)
        # Only p1's share at c and p0's at a can be within the SLO there ...
        np.testing.assert_allclose(
            load.within_slo_rps[0][:, 0], service.rate_rps[:, 0] * shares[0, 0]
        )
        np.testing.assert_allclose(
            load.within_slo_rps[0][:, 2], service.rate_rps[:, 1] * shares[1, 2]
        )
        served = serve((service,), load, np.full(3, 100.0), STEP_S)
        np.testing.assert_allclose(
            served.requests, served.within_slo + served.late + served.dropped, rtol=1e-12
        )


def test_the_router_reuses_a_routing_over_later_blocks_and_counts_as_a_direct_serve() -> None:
    """Blocks served from the router's cached load and prefix sums equal routing and serving
    each block afresh, also after the routing changes and when capacity binds."""
    n = 40
    rates = np.column_stack([np.linspace(0, 60, n), np.linspace(20, 5, n)])
    service = _service(rates)
    router = Router((service,), n, STEP_S)
    other = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    blocks = [(ROUTING, 0, 3), (ROUTING, 3, 5), (ROUTING, 8, 10), (other, 18, 4), (ROUTING, 22, 18)]
    for shares, first, length in blocks:
        for capacity in (np.full(3, 100.0), np.array([2.0, 2.0, 2.0])):
            load = router.load((shares,), first, length)
            fresh = route((service,), (shares,), first, length)
            np.testing.assert_allclose(load.need, fresh.need)
            np.testing.assert_allclose(load.busy, fresh.busy)
            np.testing.assert_allclose(load.within_slo_rps[0], fresh.within_slo_rps[0])
            got = router.serve(load, capacity, first)
            want = serve((service,), fresh, capacity, STEP_S)
            for name in ("requests", "within_slo", "late", "dropped"):
                np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-9)
            np.testing.assert_allclose(got.served_rps, want.served_rps)
