"""Inference serving over a block of steps: routed load, replicas, and what was served.

Requests from a demand point go to sites in the shares the decision sets. A site runs
``ceil(routed_rps / replica_throughput_rps)`` replicas of a service, each occupying
``accelerators_per_replica`` accelerators. A replica's accelerators draw idle power plus busy
power in proportion to its utilisation (routed rate / replica capacity).

Requests routed to a site whose round trip plus service time exceeds the SLO are served late;
requests a site has no accelerators for, and requests not routed at all, are dropped. Both
count against the SLO; nothing is hidden. When a site lacks accelerators for all the replicas
it needs, every service there is served in the same proportion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattroute.model.arrays import ServiceArrays


@dataclass(frozen=True)
class RoutedLoad:
    """Load per service over a block, arrays of shape ``(T, S)`` per service."""

    rate_rps: tuple[np.ndarray, ...]  # (T, P) per service
    routed_rps: tuple[np.ndarray, ...]
    within_slo_rps: tuple[np.ndarray, ...]
    replica_accelerators: tuple[np.ndarray, ...]

    @property
    def need(self) -> np.ndarray:
        """Accelerators all services need per step and site, ``(T, S)``."""
        total = self.replica_accelerators[0].copy()
        for acc in self.replica_accelerators[1:]:
            total += acc
        return total


def route(
    services: tuple[ServiceArrays, ...],
    routing: tuple[np.ndarray, ...],
    first_step: int,
    n_steps: int,
    n_sites: int,
) -> RoutedLoad | None:
    """Requests routed to each site over steps ``first_step .. first_step + n_steps``.

    Returns ``None`` when there are no services.
    """
    if not services:
        return None
    rates, routed, within, accs = [], [], [], []
    for service, shares in zip(services, routing, strict=True):
        rate = service.rate_rps[first_step : first_step + n_steps]
        to_site = rate @ shares
        rates.append(rate)
        routed.append(to_site)
        within.append(rate @ (shares * service.feasible))
        replicas = np.ceil(to_site / service.replica_throughput_rps - 1e-9)
        accs.append(np.maximum(replicas, 0.0) * service.accelerators_per_replica)
    return RoutedLoad(tuple(rates), tuple(routed), tuple(within), tuple(accs))


def busy_equivalent(services: tuple[ServiceArrays, ...], load: RoutedLoad) -> np.ndarray:
    """Utilisation-weighted accelerators of the routed load, ``(T, S)``."""
    total = np.zeros_like(load.routed_rps[0])
    for service, routed in zip(services, load.routed_rps, strict=True):
        total += routed / service.replica_throughput_rps * service.accelerators_per_replica
    return total


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
    services: tuple[ServiceArrays, ...],
    load: RoutedLoad,
    capacity: np.ndarray,
    step_s: float,
) -> Served:
    """Serve the routed load with at most ``capacity`` accelerators per site, ``(S,)``."""
    need = load.need
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(need > capacity, np.maximum(capacity, 0.0) / need, 1.0)
    n = len(services)
    requests = np.zeros(n)
    within = np.zeros(n)
    late = np.zeros(n)
    dropped = np.zeros(n)
    served_rps = np.zeros_like(need)
    for i in range(n):
        served = load.routed_rps[i] * factor
        on_time = load.within_slo_rps[i] * factor
        total = float(load.rate_rps[i].sum()) * step_s
        requests[i] = total
        within[i] = float(on_time.sum()) * step_s
        late[i] = float(served.sum()) * step_s - within[i]
        dropped[i] = total - within[i] - late[i]
        served_rps += served
    return Served(
        accelerators=np.minimum(need, np.maximum(capacity, 0.0)),
        busy_equivalent=busy_equivalent(services, load) * factor,
        requests=requests,
        within_slo=within,
        late=np.maximum(late, 0.0),
        dropped=np.maximum(dropped, 0.0),
        served_rps=served_rps,
    )
