"""Inference routing that fits the accelerators each site can hold and power now.

A plan routes each demand point's requests in the shares it found for the request rates it
forecast. Applied to the rates now, those shares can ask a site for more replicas than it has
accelerators for — the forecast was low, or the plan filled a cheap site to its last
accelerator and the simulator rounds replicas up — and the requests beyond its replicas are
dropped, while other sites within the SLO stand idle. :func:`fit_routing` moves that excess,
before the decision is made, to the nearest other SLO-feasible sites with room.
"""

from __future__ import annotations

import numpy as np

from wattroute.model.tolerances import ROUNDING
from wattroute.policies.base import ServiceState


def fit_routing(
    services: tuple[ServiceState, ...],
    routing: tuple[np.ndarray, ...],
    capacity: np.ndarray,
    beside: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """``routing`` (shares ``(P, S)`` per service, as a decision carries them) with the
    requests a site could not serve moved to other sites.

    Each site serves a service with ``ceil(routed rate / replica throughput)`` replicas of
    ``accelerators_per_replica`` accelerators each, within ``capacity`` accelerators ``(S,)``
    for all services together (taken by the services in order). Where the rate now routed to a
    site needs more, the requests of its demand points (the largest first) go to the nearest
    other sites within their SLO that still have room for whole replicas, until the site's
    replicas fit: first to sites with room within ``beside`` (``(S,)``, at most ``capacity``:
    the accelerators left beside the batch work running there, which inference would otherwise
    stop, as it comes first), then to any. Requests no feasible site has room for stay where
    they were (they are dropped there, as they would have been). Shares that fit are returned
    unchanged; the arrays given are never written.
    """
    left = np.asarray(capacity, dtype=float).copy()
    spare_beside = left.copy() if beside is None else np.minimum(beside, left).astype(float)
    fitted = []
    for service, shares in zip(services, routing, strict=True):
        rate = service.rate_rps
        throughput = service.replica_throughput_rps
        per_replica = service.accelerators_per_replica
        routed = rate @ shares  # (S,) requests per second
        most = _servable_rps(service, left)
        over = np.flatnonzero(routed > most + ROUNDING)
        if over.size:
            shares = shares.copy()
            for receiving in (_servable_rps(service, spare_beside), most):
                _move_excess(service, shares, routed, most, receiving, over)
        used = np.ceil(routed / throughput - ROUNDING) * per_replica
        left = np.maximum(left - used, 0.0)
        spare_beside = np.maximum(spare_beside - used, 0.0)
        fitted.append(shares)
    return tuple(fitted)


def _servable_rps(service: ServiceState, accelerators: np.ndarray) -> np.ndarray:
    """Requests per second that whole replicas of ``service`` on ``accelerators`` serve,
    ``(S,)``."""
    replicas = np.floor(accelerators / service.accelerators_per_replica + ROUNDING)
    return replicas * service.replica_throughput_rps


def _move_excess(
    service: ServiceState,
    shares: np.ndarray,
    routed: np.ndarray,
    most: np.ndarray,
    receiving: np.ndarray,
    over: np.ndarray,
) -> None:
    """Move requests beyond ``most`` (rps servable at each site) from the sites ``over`` to
    the nearest feasible sites with room below ``receiving`` (rps each could serve);
    ``shares`` and ``routed`` are updated in place."""
    rate = service.rate_rps
    rtt = np.where(service.feasible, service.rtt_ms, np.inf)
    nearest = np.argsort(rtt, axis=1, kind="stable")
    for s in over:
        excess = routed[s] - most[s]
        for p in np.argsort(-(rate * shares[:, s]), kind="stable"):
            here = rate[p] * shares[p, s]
            if excess <= ROUNDING or here <= ROUNDING:
                break
            for t in nearest[p]:
                if not np.isfinite(rtt[p, t]):
                    break  # the rest are infeasible too
                spare = receiving[t] - routed[t]
                if t == s or spare <= ROUNDING:
                    continue
                move = min(excess, here, spare)
                shares[p, s] -= move / rate[p]
                shares[p, t] += move / rate[p]
                routed[s] -= move
                routed[t] += move
                excess -= move
                here -= move
                if excess <= ROUNDING or here <= ROUNDING:
                    break
