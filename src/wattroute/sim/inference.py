"""Inference serving over a block of steps: routed load, replicas, and what was served.

Requests from a demand point go to sites in the shares the decision sets. A site runs
``ceil(routed_rps / replica_throughput_rps)`` replicas of a service, each occupying
``accelerators_per_replica`` accelerators. A replica's accelerators draw idle power plus busy
power in proportion to its utilisation (routed rate / replica capacity).

Requests routed to a site whose round trip plus service time exceeds the SLO are served late;
requests a site has no accelerators for, and requests not routed at all, are dropped. Both
count against the SLO; nothing is hidden. When a site lacks accelerators for all the replicas
it needs, every service there is served in the same proportion.

:class:`Router` computes the load of a routing over a window of steps once and serves later
blocks with the same routing from it; request counts over a block then come from prefix sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattroute.model.arrays import ServiceArrays, all_set
from wattroute.model.tolerances import ROUNDING

MAX_WINDOW = 8192
"""Most steps a routing's load is computed ahead for, when it keeps being reused."""


@dataclass(frozen=True)
class RoutedLoad:
    """Load over a block, per service: request rates ``(T, P)``, and per site ``(T, S)``:
    routed rate, the part of it within the SLO, replica accelerators; and over all services
    the accelerators needed, their utilisation-weighted count and the routed rate."""

    rate_rps: tuple[np.ndarray, ...]
    routed_rps: tuple[np.ndarray, ...]
    within_slo_rps: tuple[np.ndarray, ...]
    need: np.ndarray
    busy: np.ndarray
    total_routed_rps: np.ndarray

    def head(self, length: int) -> RoutedLoad:
        """The first ``length`` steps."""
        return _rows(self, 0, length)


def route(
    services: tuple[ServiceArrays, ...], routing: tuple[np.ndarray, ...], first: int, length: int
) -> RoutedLoad:
    """Load of ``routing`` over steps ``first .. first + length`` (at least one service)."""
    rates, routed, within = [], [], []
    need = busy = total = None
    for service, shares in zip(services, routing, strict=True):
        rate = service.rate_rps[first : first + length]
        to_site = rate @ shares
        replicas = np.maximum(np.ceil(to_site / service.replica_throughput_rps - ROUNDING), 0.0)
        acc = replicas * service.accelerators_per_replica
        use = to_site / service.replica_throughput_rps * service.accelerators_per_replica
        rates.append(rate)
        routed.append(to_site)
        within.append(rate @ (shares * service.feasible))
        need = acc if need is None else need + acc
        busy = use if busy is None else busy + use
        total = to_site if total is None else total + to_site
    assert need is not None
    assert busy is not None
    assert total is not None
    return RoutedLoad(tuple(rates), tuple(routed), tuple(within), need, busy, total)


@dataclass(frozen=True)
class Served:
    """What the inference load became over a block.

    ``accelerators`` are the accelerators replicas occupy and ``busy_equivalent`` their
    utilisation-weighted count, ``(T, S)``; request counts are totals per service.
    """

    accelerators: np.ndarray
    busy_equivalent: np.ndarray
    requests: np.ndarray
    within_slo: np.ndarray
    late: np.ndarray
    dropped: np.ndarray
    served_rps: np.ndarray  # (T, S), all services


def serve(
    services: tuple[ServiceArrays, ...], load: RoutedLoad, capacity: np.ndarray, step_s: float
) -> Served:
    """Serve ``load`` with at most ``capacity`` accelerators per site, ``(S,)``."""
    need = load.need
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(need > capacity, np.maximum(capacity, 0.0) / need, 1.0)
    n = len(services)
    requests, within, late, dropped = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        served = float((load.routed_rps[i] * factor).sum()) * step_s
        requests[i] = float(load.rate_rps[i].sum()) * step_s
        within[i] = float((load.within_slo_rps[i] * factor).sum()) * step_s
        late[i] = max(served - within[i], 0.0)
        dropped[i] = max(requests[i] - served, 0.0)
    return Served(
        accelerators=np.minimum(need, np.maximum(capacity, 0.0)),
        busy_equivalent=load.busy * factor,
        requests=requests,
        within_slo=within,
        late=late,
        dropped=dropped,
        served_rps=load.total_routed_rps * factor,
    )


class Router:
    """Routed load and service for a run, reusing work while the routing stays the same.

    Parameters
    ----------
    services
        The run's services (at least one).
    n_steps
        Steps in the run.
    step_s
        Step length, seconds.
    """

    def __init__(self, services: tuple[ServiceArrays, ...], n_steps: int, step_s: float) -> None:
        self.services = services
        self.n_steps = n_steps
        self.step_s = step_s
        self._routing: tuple[np.ndarray, ...] | None = None
        self._first = 0
        self._load: RoutedLoad | None = None
        self._prefix: np.ndarray | None = None  # (W + 1, 3, n_services): requests, within, served
        self._window = 1

    def load(self, routing: tuple[np.ndarray, ...], first: int, length: int) -> RoutedLoad:
        """The load of ``routing`` over ``first .. first + length``."""
        cached = self._load
        same = self._routing is not None and (
            routing is self._routing
            or all(np.array_equal(a, b) for a, b in zip(routing, self._routing, strict=True))
        )
        if (
            same
            and cached is not None
            and self._first <= first
            and first + length <= self._first + cached.need.shape[0]
        ):
            self._window = min(MAX_WINDOW, self._window * 4)
            offset = first - self._first
            return _rows(cached, offset, length)
        self._window = self._window * 4 if same else max(1, self._window // 16)
        span = min(self.n_steps - first, max(length, self._window))
        self._routing = routing
        self._first = first
        self._load = route(self.services, routing, first, span)
        self._prefix = None
        return self._load.head(length)

    def serve(self, load: RoutedLoad, capacity: np.ndarray, first: int) -> Served:
        """Serve a block's load with at most ``capacity`` accelerators per site."""
        if not all_set(load.need <= capacity + ROUNDING) or self._load is None:
            return serve(self.services, load, capacity, self.step_s)
        # Nothing is capacity-limited: counts over the block from prefix sums.
        if self._prefix is None:
            self._prefix = self._prefix_sums(self._load)
        a = first - self._first
        b = a + load.need.shape[0]
        requests, within, served = (self._prefix[b] - self._prefix[a]) * self.step_s
        return Served(
            accelerators=load.need,
            busy_equivalent=load.busy,
            requests=requests,
            within_slo=within,
            late=np.maximum(served - within, 0.0),
            dropped=np.maximum(requests - served, 0.0),
            served_rps=load.total_routed_rps,
        )

    @staticmethod
    def _prefix_sums(load: RoutedLoad) -> np.ndarray:
        per_step = np.stack(
            [
                np.column_stack([r.sum(axis=1) for r in load.rate_rps]),
                np.column_stack([w.sum(axis=1) for w in load.within_slo_rps]),
                np.column_stack([r.sum(axis=1) for r in load.routed_rps]),
            ],
            axis=1,
        )
        out = np.zeros((per_step.shape[0] + 1, *per_step.shape[1:]))
        np.cumsum(per_step, axis=0, out=out[1:])
        return out


def _rows(load: RoutedLoad, offset: int, length: int) -> RoutedLoad:
    end = offset + length
    return RoutedLoad(
        tuple([a[offset:end] for a in load.rate_rps]),
        tuple([a[offset:end] for a in load.routed_rps]),
        tuple([a[offset:end] for a in load.within_slo_rps]),
        load.need[offset:end],
        load.busy[offset:end],
        load.total_routed_rps[offset:end],
    )
