"""Inference routing fitted to the accelerators each site has."""

from __future__ import annotations

import numpy as np
import pytest

from wattroute.policies.base import ServiceState
from wattroute.policies.serving import fit_routing


def _service(
    rate: list[float],
    rtt: list[list[float]],
    feasible: list[list[bool]] | None = None,
    throughput: float = 10.0,
    per_replica: int = 1,
    name: str = "v",
) -> ServiceState:
    rtt_ms = np.array(rtt, dtype=float)
    ok = np.ones_like(rtt_ms, dtype=bool) if feasible is None else np.array(feasible)
    return ServiceState(name, np.array(rate, dtype=float), rtt_ms, ok, throughput, per_replica)


def _replicas(service: ServiceState, shares: np.ndarray) -> np.ndarray:
    replicas = np.ceil(service.rate_rps @ shares / service.replica_throughput_rps - 1e-9)
    return replicas * service.accelerators_per_replica


def test_requests_a_full_site_cannot_serve_go_to_the_nearest_site_with_room():
    # 70 rps at 10 rps per replica needs 7 accelerators; the site routed to has 4.
    service = _service([70.0], [[1.0, 9.0, 3.0]])
    shares = np.array([[1.0, 0.0, 0.0]])
    (fitted,) = fit_routing((service,), (shares,), np.array([4.0, 8.0, 8.0]))
    np.testing.assert_allclose(fitted, [[4 / 7, 0.0, 3 / 7]])  # site 2 is nearer than site 1
    assert (_replicas(service, fitted) <= [4, 8, 8]).all()
    assert fitted.sum() == pytest.approx(1.0)  # every request still routed
    np.testing.assert_array_equal(shares, [[1.0, 0.0, 0.0]])  # the input is not written


def test_whole_replicas_count_and_a_site_outside_the_slo_is_never_used():
    # Two accelerators per replica: 5 accelerators hold 2 replicas (40 rps), not 2.5.
    service = _service([100.0], [[1.0, 2.0, 3.0]], feasible=[[True, False, True]], per_replica=2)
    (fitted,) = fit_routing((service,), (np.array([[1.0, 0.0, 0.0]]),), np.array([5.0, 50, 4]))
    # 20 rps fit at site 2 (2 replicas); the other 80 stay at site 0, which serves 40 of
    # them: what no feasible site has room for stays where it was routed (dropped there).
    np.testing.assert_allclose(fitted, [[0.8, 0.0, 0.2]])
    np.testing.assert_allclose(_replicas(service, fitted), [16.0, 0.0, 4.0])


def test_a_routing_that_fits_is_returned_as_it_is():
    service = _service([30.0, 20.0], [[1.0, 5.0], [5.0, 1.0]])
    shares = np.array([[0.5, 0.5], [0.0, 1.0]])
    (fitted,) = fit_routing((service,), (shares,), np.array([2.0, 4.0]))
    np.testing.assert_array_equal(fitted, shares)


def test_services_share_a_site_s_accelerators_in_order():
    first = _service([60.0], [[1.0, 2.0]], name="a")
    second = _service([30.0], [[1.0, 2.0]], name="b")
    everything_at_0 = np.array([[1.0, 0.0]])
    a, b = fit_routing((first, second), (everything_at_0, everything_at_0), np.array([8.0, 8.0]))
    np.testing.assert_allclose(a, [[1.0, 0.0]])  # 6 replicas of the first service fit
    np.testing.assert_allclose(b, [[2 / 3, 1 / 3]])  # 2 accelerators left for the second
    assert _replicas(first, a)[0] + _replicas(second, b)[0] <= 8


def test_the_largest_streams_move_first_and_no_more_than_the_excess():
    # Two demand points routed to site 0 (capacity 5 = 50 rps): 80 rps in all, 30 too many.
    service = _service([60.0, 20.0], [[1.0, 4.0], [1.0, 4.0]])
    shares = np.array([[1.0, 0.0], [1.0, 0.0]])
    (fitted,) = fit_routing((service,), (shares,), np.array([5.0, 10.0]))
    routed = service.rate_rps[:, None] * fitted
    assert routed[:, 0].sum() == pytest.approx(50.0)
    np.testing.assert_allclose(routed[:, 1], [30.0, 0.0])  # taken from the 60 rps stream


def test_moved_requests_go_first_where_they_stop_no_running_work():
    # 70 rps need 7 accelerators; site 0 has 4. Site 1 is nearer than site 2, but 7 of its 8
    # accelerators run batch work: it takes the 10 rps one replica beside that work serves,
    # and site 2, which has room beside its work, the other 20, rather than stop work.
    service = _service([70.0], [[1.0, 2.0, 3.0]])
    shares = np.array([[1.0, 0.0, 0.0]])
    capacity = np.array([4.0, 8.0, 8.0])
    (fitted,) = fit_routing((service,), (shares,), capacity, beside=np.array([4.0, 1.0, 8.0]))
    np.testing.assert_allclose(fitted, [[4 / 7, 1 / 7, 2 / 7]])
    # With no room beside running work anywhere, the nearest site with room takes them.
    (fitted,) = fit_routing((service,), (shares,), capacity, beside=np.array([4.0, 0.0, 0.0]))
    np.testing.assert_allclose(fitted, [[4 / 7, 3 / 7, 0.0]])
