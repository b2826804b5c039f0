"""``agnostic``: the carbon- and price-blind baseline.

* Inference: every demand point's requests go to the nearest site (lowest round-trip latency)
  that meets the SLO; if no site can, they are dropped and counted.
* Batch: a job runs as soon as it arrives, at full parallelism if there is room, at the allowed
  site with the most room — accelerators it can hold and power now; a running job stays where
  it is.
* Battery and genset: merit order (renewables, battery, grid, genset).

The decision stands until the next arrival: a completion changes nothing it would decide
unless jobs wait for room, and while they do it is revisited every step.
"""

from __future__ import annotations

import numpy as np

from wattroute.policies.base import HOLD_FOREVER, Decision, Observation, ServiceState


def nearest_feasible_routing(service: ServiceState) -> np.ndarray:
    """All of each demand point's requests to its nearest SLO-feasible site, shape ``(P, S)``."""
    rtt = np.where(service.feasible, service.rtt_ms, np.inf)
    shares = np.zeros_like(rtt)
    if rtt.shape[1] == 0:
        return shares
    best = np.argmin(rtt, axis=1)
    ok = np.isfinite(rtt[np.arange(rtt.shape[0]), best])
    shares[np.flatnonzero(ok), best[ok]] = 1.0
    return shares


class AgnosticPolicy:
    """Run batch at once anywhere with room; serve inference at the nearest feasible site."""

    name = "agnostic"
    description = "run batch at once where there is room; inference at the nearest feasible site"

    def __init__(self) -> None:
        self._routing: tuple[np.ndarray, ...] | None = None
        self._routed: tuple[tuple[str, bytes], ...] = ()  # the services it was computed for
        self._seen: tuple[ServiceState, ...] = ()  # the last services found to be those

    def reset(self) -> None:
        """Forget the routing of a previous fleet."""
        self._routing = None
        self._routed = ()
        self._seen = ()

    def _same_services(self, services: tuple[ServiceState, ...]) -> bool:
        """Whether ``services`` are those the routing was computed for: the same names and
        SLO-feasible sites (the same arrays as last time are not compared again)."""
        seen = self._seen
        if len(services) == len(seen) and all(
            s.name == t.name and s.feasible is t.feasible
            for s, t in zip(services, seen, strict=True)
        ):
            return True
        if tuple((s.name, s.feasible.tobytes()) for s in services) != self._routed:
            return False
        self._seen = services
        return True

    def stats(self) -> dict[str, float]:
        """None kept."""
        return {}

    def decide(self, observation: Observation) -> Decision:
        # Latency and SLOs do not change during a simulated run; a live fleet's services come
        # and go: route again when they are not the ones routed.
        services = observation.services
        if self._routing is None or not self._same_services(services):
            self._routing = tuple(nearest_feasible_routing(s) for s in services)
            self._routed = tuple((s.name, s.feasible.tobytes()) for s in services)
            self._seen = services
        routing = self._routing
        jobs = observation.jobs
        site = jobs.site.copy()
        acc = jobs.accelerators.copy()
        waiting = False
        pending = (site < 0).nonzero()[0]
        if pending.size:
            # Room is accelerators a site can both hold and power now: placing work where
            # the power is not would only see it stopped again.
            free = observation.room(site, acc, routing)
            allowed = jobs.allowed
            min_acc, max_acc = jobs.min_accelerators, jobs.max_accelerators
            for j in pending.tolist():
                room = np.where(allowed[j], free, -np.inf)
                best = int(room.argmax())
                if room[best] >= min_acc[j]:
                    site[j] = best
                    acc[j] = int(min(max_acc[j], room[best]))
                    free[best] -= acc[j]
                else:
                    waiting = True
        return Decision(
            job_site=site,
            job_accelerators=acc,
            routing=routing,
            hold_steps=1 if waiting else HOLD_FOREVER,
            revisit_on_completion=waiting,
        )
