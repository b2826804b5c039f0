"""Make a policy's decision feasible before it is enacted.

Checks, in this order, and repairs what fails (each repair is counted):

1. shapes and values: a malformed decision is a bug in the policy and raises
   :class:`~wattroute.errors.PolicyError`;
2. batch allocations: a job may run only at an allowed site, with between its minimum and
   maximum accelerators (below the minimum it is stopped, above the maximum it is clipped);
3. accelerator capacity: inference replicas come first; batch jobs at an over-full site are
   stopped, most slack first, until the rest fits;
4. power envelope: if the facility power the site would draw exceeds what it can get now
   (renewables + battery + import limit + genset, and its power cap), batch jobs are stopped
   (most slack first); if the site cannot power its idle accelerators even then, idle ones
   are powered down, and as a last resort inference replicas are capped. Latency-bound
   inference is shed last: it has no later. What the site cannot power even then (its base
   load) stays unserved and is reported.

Routing shares are clipped to [0, 1] and rows scaled down to sum to at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from wattroute.errors import PolicyError
from wattroute.model.arrays import FleetStatic, all_set, any_set
from wattroute.model.summary import Repairs
from wattroute.model.tolerances import ROUNDING
from wattroute.policies.base import ActiveJobs, Decision


@dataclass
class RepairCounts:
    """How often decisions had to be repaired, for the summary."""

    decisions_repaired: int = 0
    jobs_moved_to_allowed: int = 0
    jobs_clamped: int = 0
    jobs_stopped_for_capacity: int = 0
    jobs_stopped_for_power: int = 0
    sites_short_of_power: int = 0
    sites_powered_down: int = 0
    sites_inference_capped: int = 0
    routing_rescaled: int = 0

    def as_dict(self) -> Repairs:
        return cast(Repairs, dict(self.__dict__))


@dataclass
class Repaired:
    """A feasible decision. ``accelerator_limit`` is how many accelerators may be powered
    (``powered_down``: fewer than all at some site)."""

    job_site: np.ndarray
    job_accelerators: np.ndarray
    routing: tuple[np.ndarray, ...]
    battery_kw: np.ndarray | None
    genset_kw: np.ndarray | None
    hold_steps: int
    accelerator_limit: np.ndarray
    powered_down: bool
    batch_accelerators: np.ndarray  # what the batch allocations occupy per site, (S,)
    changed: list[str] = field(default_factory=list)


def check_shapes(
    decision: Decision,
    n_jobs: int,
    shapes: list[tuple[int, int]],
    n_sites: int,
    routing_checked: bool = False,
) -> None:
    """Raise :class:`PolicyError` if the decision does not fit the observation
    (``routing_checked``: its routing has passed before, and is not looked at again)."""
    sites, accs = decision.job_site, decision.job_accelerators
    if getattr(sites, "shape", None) != (n_jobs,) or getattr(accs, "shape", None) != (n_jobs,):
        raise PolicyError(
            f"decision has {np.shape(sites)} job sites and {np.shape(accs)} job allocations "
            f"for {n_jobs} active jobs (give numpy arrays aligned with observation.jobs.ids)"
        )
    if len(decision.routing) != len(shapes):
        raise PolicyError(
            f"decision routes {len(decision.routing)} services, expected {len(shapes)}"
        )
    for shares, shape in zip(decision.routing, shapes, strict=True):
        if not routing_checked and (
            getattr(shares, "shape", None) != shape or not np.isfinite(shares).all()
        ):
            raise PolicyError(f"routing must be finite with shape {shape}, got {np.shape(shares)}")
    for name in ("battery_kw", "genset_kw"):
        value = getattr(decision, name)
        if value is not None and np.shape(value) != (n_sites,):
            raise PolicyError(f"{name} must have shape ({n_sites},), got {np.shape(value)}")
    hold = decision.hold_steps
    if not isinstance(hold, int | np.integer) or hold < 1:
        raise PolicyError(f"hold_steps must be a positive integer, got {hold!r}")


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
        if (row_sum > 1.0 + ROUNDING).any():
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
    site_of = np.array(decision.job_site, dtype=np.int64)
    acc = np.array(decision.job_accelerators, dtype=np.int64)
    changed: list[str] = []
    valid = _fit_sites_and_parallelism(site_of, acc, jobs, fleet.n_sites, counts, changed)
    batch, order = _fit_capacity(site_of, acc, valid, jobs, fleet, inference_need, counts, changed)
    limit = _fit_power(
        site_of,
        acc,
        batch,
        order,
        jobs,
        fleet,
        inference_need,
        inference_busy,
        supply_limit_kw / pue_now - fleet.base_it_kw,  # IT kW each site can power now
        counts,
        changed,
    )
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
        powered_down=limit is not fleet.accelerator_count
        and bool((limit < fleet.accelerator_count).any()),
        batch_accelerators=batch,
        changed=changed,
    )


def _fit_sites_and_parallelism(
    site_of: np.ndarray,
    acc: np.ndarray,
    jobs: ActiveJobs,
    n_sites: int,
    counts: RepairCounts,
    changed: list[str],
) -> np.ndarray:
    """Check 2: stop jobs asked to run where they may not or below their minimum
    parallelism, clip those above their maximum; which jobs run, ``(J,)`` (in place)."""
    valid = (site_of >= 0) & (site_of < n_sites) & (acc > 0)
    idx = valid.nonzero()[0]
    dropped = idx.size < valid.size
    if idx.size:
        allowed = jobs.allowed[idx, site_of[idx]]
        if not all_set(allowed):
            counts.jobs_moved_to_allowed += int((~allowed).sum())
            valid[idx[~allowed]] = False
            changed.append("site not allowed")
            dropped = True
        min_acc, max_acc = jobs.min_accelerators, jobs.max_accelerators
        if any_set(valid & ((acc < min_acc) | (acc > max_acc))):
            low = valid & (acc < min_acc)
            high = valid & (acc > max_acc)
            counts.jobs_clamped += int(low.sum() + high.sum())
            valid &= ~low
            np.minimum(acc, max_acc, out=acc)
            changed.append("parallelism out of bounds")
            dropped = True
    if dropped:
        invalid = ~valid
        acc[invalid] = 0
        site_of[invalid] = -1

    return valid


def _fit_capacity(
    site_of: np.ndarray,
    acc: np.ndarray,
    valid: np.ndarray,
    jobs: ActiveJobs,
    fleet: FleetStatic,
    inference_need: np.ndarray,
    counts: RepairCounts,
    changed: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Check 3: inference replicas first, then batch jobs at an over-full site stopped, most
    slack first; the batch accelerators per site ``(S,)`` and the jobs by slack, most first
    (empty if no site was crowded)."""
    n_sites = fleet.n_sites
    batch = np.bincount(site_of[valid], weights=acc[valid], minlength=n_sites)
    over = batch + inference_need - fleet.accelerator_count
    crowded = ((over > 0) & (batch > 0)).nonzero()[0]
    order = np.argsort(-jobs.slack_h, kind="stable") if crowded.size else np.zeros(0, int)
    for s in crowded:
        _, stopped = _stop_most_flexible(order, site_of, acc, int(s), float(min(over[s], batch[s])))
        counts.jobs_stopped_for_capacity += stopped
        changed.append("capacity")
    if crowded.size:
        running = site_of >= 0
        batch = np.bincount(site_of[running], weights=acc[running], minlength=n_sites)

    return batch, order


def _fit_power(
    site_of: np.ndarray,
    acc: np.ndarray,
    batch: np.ndarray,
    order: np.ndarray,
    jobs: ActiveJobs,
    fleet: FleetStatic,
    inference_need: np.ndarray,
    inference_busy: np.ndarray,
    it_room: np.ndarray,
    counts: RepairCounts,
    changed: list[str],
) -> np.ndarray:
    """Check 4: within ``it_room`` (the IT power each site can draw now, kW), stop batch jobs
    (most slack first), then power down idle accelerators, then cap inference; the
    accelerators each site may power, ``(S,)`` (``fleet.accelerator_count`` itself where no
    site is short)."""
    limit = fleet.accelerator_count
    delta_kw = fleet.busy_extra_kw
    demand_it = fleet.idle_it_kw + delta_kw * (batch + inference_busy)
    short = (demand_it > it_room + ROUNDING).nonzero()[0]
    if short.size:
        limit = limit.copy()
        if not order.size:
            order = np.argsort(-jobs.slack_h, kind="stable")
    for s in short:
        changed.append("power")
        counts.sites_short_of_power += 1

        def busy_it(site: int = int(s)) -> float:
            return float(delta_kw[site] * (batch[site] + inference_busy[site]))

        def fits(site: int = int(s), powered: float | None = None) -> bool:
            on = batch[site] + inference_need[site] if powered is None else powered
            return bool(fleet.idle_kw[site] * on + busy_it(site) <= it_room[site] + ROUNDING)

        # a) stop batch jobs, most slack first, until the site powers all its accelerators.
        for j in order:
            if fits(powered=float(fleet.accelerators[s])):
                break
            if site_of[j] == s and acc[j] > 0:
                batch[s] -= acc[j]
                acc[j] = 0
                site_of[j] = -1
                counts.jobs_stopped_for_power += 1
        if fits(powered=float(fleet.accelerators[s])):
            continue
        used = batch[s] + inference_need[s]
        counts.sites_powered_down += 1
        if fits():
            # b) power down as few idle accelerators as the room requires.
            spare = it_room[s] - busy_it() - fleet.idle_kw[s] * used
            extra = spare / fleet.idle_kw[s] if fleet.idle_kw[s] > 0 else np.inf
            limit[s] = float(min(fleet.accelerators[s], used + np.floor(max(extra, 0.0))))
        else:
            # c) cap inference, counting its replicas as fully busy.
            counts.sites_inference_capped += 1
            fully_busy = np.floor(max(it_room[s], 0.0) / fleet.busy_kw[s])
            limit[s] = float(min(fleet.accelerators[s], max(fully_busy, 0.0)))
    return limit
