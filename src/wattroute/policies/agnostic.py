"""``agnostic``: the carbon- and price-blind baseline.

* Inference: every demand point's requests go to the nearest site (lowest round-trip latency)
  that meets the SLO; if no site can, they are dropped and counted.
* Batch: a job runs as soon as it arrives, at full parallelism if there is room, at the allowed
  site with the most free accelerators; a running job stays where it is.
* Battery and genset: merit order (renewables, battery, grid, genset).

The decision stands until something changes (an arrival or a completion); while jobs wait for
room it is revisited every step.
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

    def reset(self) -> None:
        """No state to forget."""

    def decide(self, observation: Observation) -> Decision:
        routing = tuple(nearest_feasible_routing(s) for s in observation.services)
        free = observation.fleet.accelerators - observation.inference_accelerators(routing)
        jobs = observation.jobs
        site = jobs.site.copy()
        acc = jobs.accelerators.copy()
        running = site >= 0
        free -= np.bincount(site[running], weights=acc[running], minlength=free.size)
        waiting = False
        for j in np.flatnonzero(~running):
            room = np.where(jobs.allowed[j], free, -np.inf)
            best = int(np.argmax(room))
            if room[best] >= jobs.min_accelerators[j]:
                site[j] = best
                acc[j] = int(min(jobs.max_accelerators[j], room[best]))
                free[best] -= acc[j]
            else:
                waiting = True
        return Decision(
            job_site=site,
            job_accelerators=acc,
            routing=routing,
            hold_steps=1 if waiting else HOLD_FOREVER,
        )
