"""Make a policy's decision feasible before it is enacted.

Checks, in this order, and repairs what fails (each repair is counted):

1. shapes and values: a malformed decision is a bug in the policy and raises
   :class:`~wattroute.errors.PolicyError`;
2. batch allocations: a job may run only at an allowed site, with between its minimum and
   maximum accelerators (below the minimum it is stopped, above the maximum it is clipped);
3. accelerator capacity: inference replicas come first; batch jobs at an over-full site are
   stopped, most slack first, until the rest fits;
4. power envelope: if the facility power the site would draw exceeds what it can get now
   (renewables + battery + import limit + genset, and its power cap), idle accelerators are
   powered down, and if that is not enough batch jobs are stopped (most slack first), then
   inference replicas are capped. Latency-bound inference is shed last: it has no later.
   What the site cannot power even then (its base load) stays unserved and is reported.

Routing shares are clipped to [0, 1] and rows scaled down to sum to at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wattroute.errors import PolicyError
from wattroute.model.arrays import FleetStatic
from wattroute.policies.base import ActiveJobs, Decision


@dataclass
class RepairCounts:
    """How often decisions had to be repaired, for the summary."""

    decisions_repaired: int = 0
    jobs_moved_to_allowed: int = 0
    jobs_clamped: int = 0
    jobs_stopped_for_capacity: int = 0
    jobs_stopped_for_power: int = 0
    sites_powered_down: int = 0
    sites_inference_capped: int = 0
    routing_rescaled: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Repaired:
    """A feasible decision. ``accelerator_limit`` is how many accelerators may be powered."""

    job_site: np.ndarray
    job_accelerators: np.ndarray
    routing: tuple[np.ndarray, ...]
    battery_kw: np.ndarray | None
    genset_kw: np.ndarray | None
    hold_steps: int
    accelerator_limit: np.ndarray
    changed: list[str] = field(default_factory=list)


def check_shapes(
    decision: Decision, n_jobs: int, shapes: list[tuple[int, int]], n_sites: int
) -> None:
    """Raise :class:`PolicyError` if the decision does not fit the observation."""
    if np.shape(decision.job_site) != (n_jobs,) or np.shape(decision.job_accelerators) != (n_jobs,):
        raise PolicyError(
            f"decision has {np.shape(decision.job_site)} job sites and "
            f"{np.shape(decision.job_accelerators)} job allocations for {n_jobs} active jobs"
        )
    if len(decision.routing) != len(shapes):
        raise PolicyError(
            f"decision routes {len(decision.routing)} services, expected {len(shapes)}"
        )
    for shares, shape in zip(decision.routing, shapes, strict=True):
        if np.shape(shares) != shape or not np.all(np.isfinite(shares)):
            raise PolicyError(f"routing must be finite with shape {shape}, got {np.shape(shares)}")
    for name in ("battery_kw", "genset_kw"):
        value = getattr(decision, name)
        if value is not None and np.shape(value) != (n_sites,):
            raise PolicyError(f"{name} must have shape ({n_sites},), got {np.shape(value)}")
    if not isinstance(decision.hold_steps, int | np.integer) or decision.hold_steps < 1:
        raise PolicyError(f"hold_steps must be a positive integer, got {decision.hold_steps!r}")


def _stop_most_flexible(
    order: np.ndarray, site_of: np.ndarray, acc: np.ndarray, site: int, excess: float
) -> tuple[float, int]:
    """Stop jobs at ``site`` in ``order`` until ``excess`` accelerators are freed."""
    stopped = 0
    for j in order:
        if excess <= 0:
            break
        if site_of[j] == site and acc[j] > 0:
            excess -= float(acc[j])
            acc[j] = 0
            site_of[j] = -1
            stopped += 1
    return excess, stopped


def clean_routing(routing: tuple[np.ndarray, ...], counts: RepairCounts) -> tuple[np.ndarray, ...]:
    """Clip shares to [0, 1] and scale rows that sum to more than 1 down to 1."""
    out = []
    for shares in routing:
        clipped = np.clip(np.asarray(shares, dtype=np.float64), 0.0, 1.0)
        row_sum = clipped.sum(axis=1, keepdims=True)
        if (row_sum > 1.0 + 1e-9).any():
            counts.routing_rescaled += 1
            clipped = clipped / np.maximum(row_sum, 1.0)
        out.append(clipped)
    return tuple(out)


def repair(
    decision: Decision,
    routing: tuple[np.ndarray, ...],
    jobs: ActiveJobs,
    fleet: FleetStatic,
    inference_need: np.ndarray,
    inference_busy: np.ndarray,
    pue_now: np.ndarray,
    supply_limit_kw: np.ndarray,
    counts: RepairCounts,
) -> Repaired:
    """Return a feasible version of ``decision`` for the current step.

    Parameters
    ----------
    decision
        The policy's decision, already shape-checked.
    routing
        Its routing, cleaned by :func:`clean_routing`.
    jobs
        The active jobs the decision is about.
    fleet
        Site constants.
    inference_need
        Accelerators the decision's routing needs at each site now, ``(S,)``.
    inference_busy
        Utilisation-weighted accelerators of that routing now, ``(S,)``.
    pue_now
        PUE at each site now.
    supply_limit_kw
        Facility power each site can draw now at most, kW, ``(S,)``.
    counts
        Repair counters, updated in place.
    """
    n_sites = fleet.n_sites
    site_of = np.asarray(decision.job_site, dtype=np.int64).copy()
    acc = np.asarray(decision.job_accelerators, dtype=np.int64).copy()
    changed: list[str] = []

    # 2. allowed sites and parallelism bounds.
    acc[(site_of < 0) | (site_of >= n_sites)] = 0
    site_of[acc <= 0] = -1
    running = site_of >= 0
    if running.any():
        idx = np.flatnonzero(running)
        not_allowed = ~jobs.allowed[idx, site_of[idx]]
        if not_allowed.any():
            counts.jobs_moved_to_allowed += int(not_allowed.sum())
            acc[idx[not_allowed]] = 0
            site_of[idx[not_allowed]] = -1
            changed.append("site not allowed")
    low = (acc > 0) & (acc < jobs.min_accelerators)
    high = acc > jobs.max_accelerators
    if low.any() or high.any():
        counts.jobs_clamped += int(low.sum() + high.sum())
        acc[low] = 0
        site_of[low] = -1
        acc = np.minimum(acc, jobs.max_accelerators)
        changed.append("parallelism out of bounds")

    # 3. capacity: inference first, then batch, most slack stopped first.
    order = np.argsort(-jobs.slack_h, kind="stable")
    batch = np.bincount(site_of[site_of >= 0], weights=acc[site_of >= 0], minlength=n_sites)
    over = batch + inference_need - fleet.accelerators
    for s in np.flatnonzero((over > 0) & (batch > 0)):
        _, stopped = _stop_most_flexible(order, site_of, acc, int(s), float(min(over[s], batch[s])))
        counts.jobs_stopped_for_capacity += stopped
        changed.append("capacity")
    batch = np.bincount(site_of[site_of >= 0], weights=acc[site_of >= 0], minlength=n_sites)
    limit = fleet.accelerators.astype(np.float64).copy()

    # 4. power envelope.
    delta_kw = fleet.busy_kw - fleet.idle_kw
    it_room = supply_limit_kw / pue_now - fleet.base_it_kw  # IT kW each site can power now
    demand_it = fleet.idle_kw * limit + delta_kw * (batch + inference_busy)
    for s in np.flatnonzero(demand_it > it_room + 1e-9):
        changed.append("power")
        counts.sites_powered_down += 1

        def busy_it(site: int = int(s)) -> float:
            return float(delta_kw[site] * (batch[site] + inference_busy[site]))

        def fits(site: int = int(s)) -> bool:
            used = batch[site] + inference_need[site]
            return bool(fleet.idle_kw[site] * used + busy_it(site) <= it_room[site] + 1e-9)

        # b) stop batch jobs, most slack first, until the rest fits (with idle ones off).
        for j in order:
            if fits():
                break
            if site_of[j] == s and acc[j] > 0:
                batch[s] -= acc[j]
                acc[j] = 0
                site_of[j] = -1
                counts.jobs_stopped_for_power += 1
        used = batch[s] + inference_need[s]
        if fits():
            # a) keep as many idle accelerators powered as the room allows.
            spare = it_room[s] - busy_it() - fleet.idle_kw[s] * used
            extra = spare / fleet.idle_kw[s] if fleet.idle_kw[s] > 0 else np.inf
            limit[s] = float(min(fleet.accelerators[s], used + np.floor(max(extra, 0.0))))
        else:
            # c) cap inference, counting its replicas as fully busy.
            counts.sites_inference_capped += 1
            limit[s] = float(max(np.floor(max(it_room[s], 0.0) / fleet.busy_kw[s]), 0.0))
    if changed:
        counts.decisions_repaired += 1

    return Repaired(
        job_site=site_of,
        job_accelerators=acc,
        routing=routing,
        battery_kw=None if decision.battery_kw is None else np.asarray(decision.battery_kw, float),
        genset_kw=None if decision.genset_kw is None else np.asarray(decision.genset_kw, float),
        hold_steps=int(decision.hold_steps),
        accelerator_limit=limit,
        changed=changed,
    )
