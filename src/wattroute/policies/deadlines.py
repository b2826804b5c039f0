"""Deadlines first: the reserve every cost-seeking decision passes through before it is made.

A deadline is a promise, not a price: a policy that defers or moves work to save money must
never do so where the job could then no longer finish in time. :func:`keep_deadlines` takes a
policy's proposed allocation and changes the least it must so that, after the next step,

1. **every job can still finish alone**: its slack — hours to its deadline, minus the overhead
   it would owe (a checkpoint restore after a stop, a restore and a migration after a move,
   whatever is still owed now), minus its remaining work at full parallelism — stays at least
   ``reserve_steps`` steps. A job the proposal would leave below that is kept where it runs
   (or resumed where it last ran, without a migration, or started where there is room) at its
   full parallelism instead: waiting, stopping and moving all cost time it does not have;
2. **the jobs can still finish together** (earliest deadline first): for every deadline, the
   work due by it (with the overheads it owes, in accelerator-hours) fits in the accelerators
   the fleet has for batch work until then. Where it does not, waiting jobs due by that
   deadline start now, earliest deadline first, until it does;
3. **a job starts or moves only where the work there can still finish together**: a job that
   runs is all but tied to its site (moving costs a restore and a migration), so a start the
   site's accelerators (beyond what inference holds) could not carry, earliest deadline
   first, with the work already there, goes to another site where they can, or waits;
4. **no running job gives up accelerators to a job due later at its site**;
5. **a decision that would break more promises than carrying on does is not made**: the
   decision is played forward (one step, then the continuation of
   :mod:`wattroute.policies.rollout`: nothing stopped or moved, waiting jobs started and
   running ones grown earliest deadline first), and if more jobs then finish late, or more
   hours inside their reserve or late in all, than under the continuation's own decision
   now, the continuation's choice is taken for the fewest jobs (earliest deadline first) that
   make it no worse.

Jobs are placed within the accelerators a site can both hold and power now
(:meth:`~wattroute.policies.base.Observation.room`); where a job that must run finds no room,
work with the most slack at that site is stopped for it. The reserve counts the overheads the
simulator charges (:mod:`wattroute.sim.jobs`), minimum parallelism and the power available.
What it guarantees, and what it only makes rare (jobs that arrive later), is set out in
docs/optimiser.md, "Deadlines first".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from wattroute.model.arrays import any_set
from wattroute.model.tolerances import ROUNDING
from wattroute.policies.base import ActiveJobs, Observation, accelerators_by_site
from wattroute.policies.rollout import Continuation, owed_after


@dataclass(frozen=True)
class Reserve:
    """How much slack every decision must leave each job.

    Parameters
    ----------
    reserve_steps
        Steps of slack every job keeps beyond the next step, so that one more step of
        waiting (a repair, a decision held a step) never makes it late.
    run_share
        Slack every job keeps in proportion to its remaining run at full parallelism: over
        a long run, inference peaks and other urgent work at its site can take some of its
        accelerators for a while, and only slack pays for that.
    """

    reserve_steps: float = 1.0
    run_share: float = 0.1

    def reserve_h(self, jobs: ActiveJobs, step_h: float) -> np.ndarray:
        """The slack each job keeps after the next step, hours: ``reserve_steps`` steps and
        ``run_share`` of its remaining run at full parallelism."""
        run_h = jobs.remaining_accelerator_hours / np.maximum(jobs.max_accelerators, 1)
        return self.reserve_steps * step_h + self.run_share * run_h

    def tied(self, jobs: ActiveJobs, step_h: float) -> np.ndarray:
        """Running jobs that cannot afford to move, ``(J,)`` bool: a move costs a step, a
        restore and a migration, and would leave them less slack than their reserve. Rule 1
        keeps each of them where it runs, so a plan that moves one plans work that does not
        happen (and leaves its own accelerators elsewhere idle)."""
        return _tied(jobs, step_h, self.reserve_h(jobs, step_h))

    def keep_deadlines(
        self,
        obs: Observation,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
        battery_setpoint: np.ndarray | None = None,
    ) -> int:
        """Change ``site_of`` and ``acc_of`` (in place) where they break the reserve; the
        number of jobs changed."""
        jobs = obs.jobs
        if len(jobs) == 0:
            return 0
        reserve_h = self.reserve_h(jobs, obs.step_h)
        # What the fit tests hold back: the reserve, or as much of it as a job's slack still
        # allows (a job with less slack than its reserve must still count there).
        held_h = np.clip(reserve_h, 0.0, np.maximum(jobs.slack_h, 0.0))
        # Accelerators each site has for batch work: all but what inference holds now.
        capacity = obs.fleet.accelerators - obs.inference_accelerators(routing)
        changed = _keep_earlier_deadlines(obs, site_of, acc_of)
        changed += _place_where_deadlines_fit(
            obs, site_of, acc_of, routing, battery_setpoint, held_h, capacity
        )
        slack = slack_after_step(jobs, site_of, acc_of, obs.step_h)
        must = slack < reserve_h - ROUNDING
        must |= _pressed_together(obs, site_of, acc_of, float(capacity.sum()), held_h)
        tied = _tied(jobs, obs.step_h, reserve_h)
        for j in np.argsort(slack, kind="stable"):
            if must[j] and _run_fully(
                obs,
                int(j),
                site_of,
                acc_of,
                routing,
                battery_setpoint,
                slack,
                reserve_h,
                held_h,
                capacity,
                bool(tied[j]),
            ):
                changed += 1
        return changed + self._no_worse_than_carrying_on(
            obs, site_of, acc_of, routing, battery_setpoint, reserve_h
        )

    @staticmethod
    def _no_worse_than_carrying_on(
        obs: Observation,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
        battery_setpoint: np.ndarray | None,
        reserve_h: np.ndarray,
    ) -> int:
        """Rule 5: where the decision plays forward to more jobs late, or to more hours
        inside their reserve or late, than the continuation's own decision, take the
        continuation's choice for the fewest jobs that makes it no worse (earliest deadline
        first: a binary search over how many of the jobs the two decisions treat differently
        follow the continuation); the number of jobs changed."""
        jobs = obs.jobs
        nobody = np.full(len(jobs), -1)
        capacity = obs.room(nobody, np.zeros(len(jobs), np.int64), routing, battery_setpoint)
        carry_on = Continuation(jobs, capacity)
        site, acc = carry_on.decide()
        proposal = np.where(acc_of > 0, site_of, -1)
        differ = np.flatnonzero((site != proposal) | (acc != acc_of))
        if differ.size == 0:
            return 0  # the decision is the continuation's own
        proposed = carry_on.misses(site_of, acc_of, obs.step_h, reserve_h)
        if proposed[0] == 0 and proposed[1] <= ROUNDING:
            return 0
        fallback = carry_on.misses(site, acc, obs.step_h, reserve_h)

        def no_worse(outcome: tuple[int, float, float]) -> bool:
            return (
                outcome[0] <= fallback[0]
                and outcome[1] <= fallback[1] + ROUNDING
                and outcome[2] <= fallback[2] + ROUNDING
            )

        if no_worse(proposed):
            return 0
        order = differ[np.argsort(jobs.deadline_h[differ], kind="stable")]

        def mixed(k: int) -> tuple[np.ndarray, np.ndarray]:
            mix_site, mix_acc = proposal.copy(), acc_of.copy()
            mix_site[order[:k]] = site[order[:k]]
            mix_acc[order[:k]] = acc[order[:k]]
            return carry_on.enacted(mix_site, mix_acc)

        low, high = 0, order.size  # the proposal fails, the continuation's decision passes
        while high - low > 1:
            middle = (low + high) // 2
            if no_worse(carry_on.misses(*mixed(middle), obs.step_h, reserve_h)):
                high = middle
            else:
                low = middle
        new_site, new_acc = mixed(high)
        changed = int(((new_site != proposal) | (new_acc != acc_of)).sum())
        site_of[:] = new_site
        acc_of[:] = new_acc
        return changed


DEADLINES = Reserve()
"""The reserve ``greedy`` and ``mpc`` pass every decision through."""


@dataclass
class ReserveStarts:
    """The jobs the reserve started, which the policy that owns this keeps running.

    The reserve starts a job the policy left waiting where a deadline needs it. A policy that
    leaves it out again at the next decision — `mpc`'s plan, whose LP prices a restart by the
    rise in *mean* accelerators (a plan of 0.3 accelerators pays 0.3 of a restore) and prices
    none beyond its first hours; `greedy`'s price threshold — only has the reserve start it a
    step or two later, and each such pause costs a whole checkpoint restore for nothing: on
    the temporal-shifting benchmark 243 of `mpc`'s 583 stops were such pauses. So a policy
    proposes such a job where it runs, on the accelerators it has, before the reserve
    checks the decision (which may still stop it, for a job with less slack).

    ``ids`` are job ids; jobs no longer active are forgotten as more are noted.
    """

    ids: set[int] = field(default_factory=set)

    def keep_running(
        self, jobs: ActiveJobs, site_of: np.ndarray, acc_of: np.ndarray, free: np.ndarray
    ) -> None:
        """Propose (in place) each such job the proposal left out where it runs, on the
        accelerators it has, as far as ``free`` (accelerators per site the proposal leaves,
        updated) holds them at its minimum parallelism."""
        if not self.ids:
            return
        for j in np.flatnonzero((site_of < 0) & (jobs.site >= 0)):
            if int(jobs.ids[j]) in self.ids:
                keep_where_it_runs(jobs, int(j), site_of, acc_of, free)

    def note(self, jobs: ActiveJobs, proposed: np.ndarray, site_of: np.ndarray) -> None:
        """Note the jobs the reserve started: waiting before, left waiting by the proposal
        (``proposed``: sites before the reserve), run by the decision (``site_of``)."""
        started = (jobs.site < 0) & (proposed < 0) & (site_of >= 0)
        if not any_set(started):
            return
        self.ids.update(jobs.ids[started].tolist())
        if len(self.ids) > len(jobs):  # forget jobs no longer active
            self.ids.intersection_update(jobs.ids.tolist())


def keep_where_it_runs(
    jobs: ActiveJobs, j: int, site_of: np.ndarray, acc_of: np.ndarray, free: np.ndarray
) -> bool:
    """Propose running job ``j`` where it runs, on the accelerators it has, as far as
    ``free`` (accelerators per site, updated) holds them at its minimum parallelism (in
    place); whether it was."""
    s = int(jobs.site[j])
    give = int(min(jobs.accelerators[j], free[s]))
    if give < jobs.min_accelerators[j]:
        return False
    site_of[j], acc_of[j] = s, give
    free[s] -= give
    return True


def _tied(jobs: ActiveJobs, step_h: float, reserve_h: np.ndarray) -> np.ndarray:
    """Running jobs whose slack cannot pay for a move (a step, a restore and a migration)
    and still keep ``reserve_h`` hours, ``(J,)`` bool."""
    move_h = step_h + jobs.checkpoint_overhead_h + jobs.migration_overhead_h
    return (jobs.site >= 0) & (jobs.slack_h - move_h < reserve_h)


def slack_after_step(
    jobs: ActiveJobs, site_of: np.ndarray, acc_of: np.ndarray, step_h: float
) -> np.ndarray:
    """Each job's slack one step from now if it runs at ``site_of`` on ``acc_of`` this step,
    hours: the time then left to its deadline, minus the overhead it will then owe, minus its
    remaining work at full parallelism. A job that keeps running where it runs owes what it
    owes now; one that starts owes a restore if it ran before, a migration if it ran
    elsewhere; one that stops or waits after running owes a restore and, in case it must
    resume elsewhere, a migration."""
    running, overhead = owed_after(jobs, site_of, acc_of)
    # A job left waiting that has run owes a restore when it resumes, and a migration too if
    # its site is full by then: the reserve counts both, so no stop leaves a job depending on
    # room coming free where it ran.
    ran = (jobs.site >= 0) | (jobs.last_site >= 0)
    overhead = np.where(~running & ran, overhead + jobs.migration_overhead_h, overhead)
    working_h = np.where(running, np.maximum(step_h - overhead, 0.0), 0.0)
    remaining = jobs.remaining_accelerator_hours - acc_of * working_h
    still_owed = np.where(running, np.maximum(overhead - step_h, 0.0), overhead)
    full = np.maximum(jobs.max_accelerators, 1)
    return jobs.deadline_h - step_h - still_owed - np.maximum(remaining, 0.0) / full


def _keep_earlier_deadlines(obs: Observation, site_of: np.ndarray, acc_of: np.ndarray) -> int:
    """No running job gives up accelerators at its site to a job due later there: where the
    proposal stops or shrinks one while it starts, resumes or widens another with a later
    deadline at the same site, the later one gives them back (earliest deadline first, as at
    a site jobs cannot leave cheaply). Without this a stateless policy can swap two tight jobs
    step after step, each swap costing a checkpoint restore. The number of jobs changed."""
    jobs = obs.jobs
    cur, had = jobs.site, jobs.accelerators.astype(np.int64)
    now = np.where(site_of >= 0, acc_of, 0)
    changed = 0
    for s in np.unique(cur[cur >= 0]):
        kept = np.where(site_of == s, now, 0)
        base = np.where(cur == s, had, 0)
        losers = np.flatnonzero((cur == s) & (kept < had))
        gainers = np.flatnonzero(kept > base)
        for x in losers[np.argsort(jobs.deadline_h[losers], kind="stable")]:
            need = int(had[x] - kept[x])
            later = gainers[jobs.deadline_h[gainers] > jobs.deadline_h[x]]
            for y in later[np.argsort(-jobs.deadline_h[later], kind="stable")]:
                if need <= 0:
                    break
                give = int(min(need, kept[y] - base[y]))
                if give <= 0:
                    continue
                kept[y] -= give
                need -= give
                if 0 < kept[y] < jobs.min_accelerators[y]:
                    need -= int(kept[y] - base[y]) if kept[y] > base[y] else 0
                    kept[y] = base[y]
                site_of[y], acc_of[y] = (s, kept[y]) if kept[y] > 0 else (-1, 0)
                changed += 1
            restored = int(had[x] - max(need, 0))
            if restored > kept[x]:
                site_of[x], acc_of[x] = s, restored
                kept[x] = restored
                changed += 1
    return changed


def _place_where_deadlines_fit(
    obs: Observation,
    site_of: np.ndarray,
    acc_of: np.ndarray,
    routing: tuple[np.ndarray, ...],
    battery_setpoint: np.ndarray | None,
    reserve_h: np.ndarray,
    capacity: np.ndarray,
) -> int:
    """Rule 3: each job the proposal starts or moves, earliest deadline first, goes where it
    is placed only if that site can still carry its work and the work already there, earliest
    deadline first; else to the site that can where its run costs least
    (:func:`cheapest_first`), else it waits. The number of jobs placed differently."""
    jobs = obs.jobs
    placed = np.flatnonzero((site_of >= 0) & (acc_of > 0) & (site_of != jobs.site))
    if placed.size == 0:
        return 0
    changed = 0
    # Accelerators each site's batch work holds, kept up to date as jobs are taken off and
    # placed (whole numbers: the same sums as counting them all again for every job).
    batch = accelerators_by_site(site_of, acc_of, obs.fleet.n_sites)
    for j in placed[np.argsort(jobs.deadline_h[placed], kind="stable")]:
        proposed, want = int(site_of[j]), int(acc_of[j])
        site_of[j], acc_of[j] = -1, 0
        batch[proposed] -= want
        room = obs.room_beside(batch, routing, battery_setpoint)
        least = int(jobs.min_accelerators[j])
        for site in _proposed_then_cheapest(obs, int(j), proposed, site_of, acc_of, routing, room):
            if not jobs.allowed[j, site] or room[site] < least:
                continue
            site_of[j], acc_of[j] = site, int(min(want, room[site]))
            if _site_carries(obs, site, site_of, capacity[site], reserve_h):
                break
            site_of[j], acc_of[j] = -1, 0
        if site_of[j] >= 0:
            batch[site_of[j]] += acc_of[j]
        changed += int(site_of[j] != proposed)
    return changed


def _proposed_then_cheapest(
    obs: Observation,
    j: int,
    proposed: int,
    site_of: np.ndarray,
    acc_of: np.ndarray,
    routing: tuple[np.ndarray, ...],
    room: np.ndarray,
) -> Iterator[int]:
    """The sites job ``j`` tries in turn: the one proposed, then the others cheapest first
    (:func:`cheapest_first`). That order is only worked out once the proposed site will not
    do, from the same allocations, as every failed try is undone (at thousands of placed jobs,
    most go where proposed)."""
    yield proposed
    for site in cheapest_first(obs, j, site_of, acc_of, routing, room):
        if site != proposed:
            yield site


def _site_carries(
    obs: Observation, site: int, site_of: np.ndarray, capacity: float, reserve_h: np.ndarray
) -> bool:
    """Whether the jobs placed at ``site`` can all finish ``reserve_h`` before their
    deadlines on its ``capacity`` accelerators, each at most at full parallelism
    (:func:`fits`)."""
    jobs = obs.jobs
    here = site_of == site
    owed = jobs.pending_overhead_h[here]
    full = jobs.max_accelerators[here].astype(np.float64)
    work = jobs.remaining_accelerator_hours[here] + owed * full
    return fits(work, full, jobs.deadline_h[here] - reserve_h[here], capacity)


def fits(
    work_accelerator_hours: np.ndarray,
    max_accelerators: np.ndarray,
    deadline_h: np.ndarray,
    capacity: float,
) -> bool:
    """Whether jobs of ``work_accelerator_hours``, each on at most ``max_accelerators``, can
    all finish within ``deadline_h`` hours from now on ``capacity`` accelerators.

    By any time ``t`` a job must have done at least ``work - max x (deadline - t)`` (what it
    could not do after ``t`` at full parallelism); the jobs fit if, at every ``t``, that
    mandatory work fits in ``capacity x t`` (jobs already too late even alone are left out).
    Both sides are piecewise linear in ``t``, so checking at every job's latest start and
    deadline suffices.

    A job's mandatory work is ``clip(max x (t - latest_start), 0, work)``: it grows at ``max``
    accelerators from its latest start to its deadline. So the total grows at the sum of the
    slopes of the jobs between those two points, and is summed along the sorted breakpoints in
    ``O(n log n)`` rather than evaluated job by job at every breakpoint (``O(n^2)``, which at
    thousands of jobs took a second a call).
    """
    full = np.maximum(max_accelerators, ROUNDING)
    latest_start = deadline_h - work_accelerator_hours / full
    # A job that cannot finish in time even alone at full parallelism is late whatever else
    # runs: it does not stop others from being placed beside it.
    possible = latest_start >= -ROUNDING
    if not possible.any():
        return True
    full = full[possible]
    times = np.concatenate([latest_start[possible], deadline_h[possible]])
    order = np.argsort(times, kind="stable")
    times = times[order]
    slope = np.cumsum(np.concatenate([full, -full])[order])  # accelerators, after each point
    mandatory = np.zeros(times.size)
    np.cumsum(slope[:-1] * np.diff(times), out=mandatory[1:])
    later = times > 0
    return bool((mandatory[later] <= max(capacity, 0.0) * times[later] + ROUNDING).all())


def _pressed_together(
    obs: Observation,
    site_of: np.ndarray,
    acc_of: np.ndarray,
    capacity: float,
    reserve_h: np.ndarray,
) -> np.ndarray:
    """Waiting jobs that must start now so that the work left after this step — overheads
    owed included, each job at most at full parallelism — still fits (:func:`fits`) in the
    accelerators the fleet has for batch work (all but what inference holds now), with
    ``reserve_h`` to spare: earliest deadline first, as few as make it fit."""
    jobs = obs.jobs
    step_h = obs.step_h
    running = (site_of >= 0) & (acc_of > 0)
    owed = jobs.pending_overhead_h
    full = jobs.max_accelerators.astype(np.float64)
    done_now = acc_of * np.where(running, np.maximum(step_h - owed, 0.0), 0.0)
    work = np.maximum(jobs.remaining_accelerator_hours - done_now, 0.0)
    later = jobs.deadline_h - step_h - reserve_h
    waiting_work = work + owed * full  # a waiting job pays its overhead later
    pressed = np.zeros(len(jobs), dtype=bool)

    def left() -> np.ndarray:
        return np.where(running | pressed, work, waiting_work)

    if fits(left(), full, later, capacity):
        return pressed
    waiting = np.flatnonzero(~running)
    for j in waiting[np.argsort(jobs.deadline_h[waiting], kind="stable")]:
        pressed[j] = True  # it starts now: this step's work at full parallelism is done
        work[j] = max(work[j] - full[j] * max(step_h - owed[j], 0.0), 0.0)
        if fits(left(), full, later, capacity):
            break
    return pressed


def _run_fully(
    obs: Observation,
    j: int,
    site_of: np.ndarray,
    acc_of: np.ndarray,
    routing: tuple[np.ndarray, ...],
    battery_setpoint: np.ndarray | None,
    slack: np.ndarray,
    reserve_h: np.ndarray,
    held_h: np.ndarray,
    capacity: np.ndarray,
    tied: bool,
) -> bool:
    """Run job ``j`` at full parallelism where it costs the least time: where it runs now (or
    last ran, sparing a migration), else at the site where its run costs least
    (:func:`cheapest_first`) among those that can still carry its work beside the work there,
    else wherever it can run at all; stop work that can afford it at that site if it must.
    ``tied``: it runs and has no slack to move (:func:`_tied`). Whether the allocation
    changed."""
    jobs = obs.jobs
    before = (int(site_of[j]), int(acc_of[j]))
    here = int(jobs.site[j]) if jobs.site[j] >= 0 else int(jobs.last_site[j])
    site_of[j], acc_of[j] = -1, 0
    room = obs.room(site_of, acc_of, routing, battery_setpoint)
    by_cost = cheapest_first(obs, j, site_of, acc_of, routing, room)
    order = list(dict.fromkeys([here, *by_cost] if here >= 0 else by_cost))
    want, least = int(jobs.max_accelerators[j]), int(jobs.min_accelerators[j])
    if tied:
        # Moving would cost it more time than it has: it stays, and work due later at its
        # site (earliest deadline first) gives way, what can afford a stop first.
        free = int(room[here])
        victims = _stoppable(obs, j, here, want - free, site_of, acc_of, slack, reserve_h)
        free += int(acc_of[victims].sum())
        site_of[victims], acc_of[victims] = -1, 0
        if free < want:
            later = np.flatnonzero(
                (site_of == here) & (jobs.deadline_h > jobs.deadline_h[j]) & (acc_of > 0)
            )
            for k in later[np.argsort(-jobs.deadline_h[later], kind="stable")]:
                if free >= want:
                    break
                free += int(acc_of[k])
                site_of[k], acc_of[k] = -1, 0
        site_of[j], acc_of[j] = here, max(min(want, free), least)
        return (here, int(acc_of[j])) != before
    for carried_only in (True, False):
        for site in order:
            if not jobs.allowed[j, site]:
                continue
            free = int(room[site])
            victims = _stoppable(obs, j, site, want - free, site_of, acc_of, slack, reserve_h)
            if free + int(acc_of[victims].sum()) < least:
                continue
            if carried_only and site != here:
                trial = site_of.copy()
                trial[victims], trial[j] = -1, site
                if not _site_carries(obs, site, trial, float(capacity[site]), held_h):
                    continue
            site_of[victims], acc_of[victims] = -1, 0
            site_of[j], acc_of[j] = site, min(want, free + int(acc_of[victims].sum()))
            return (site, int(acc_of[j])) != before
    site_of[j], acc_of[j] = before
    return False


def cheapest_first(
    obs: Observation,
    j: int,
    site_of: np.ndarray,
    acc_of: np.ndarray,
    routing: tuple[np.ndarray, ...],
    room: np.ndarray,
) -> list[int]:
    """Sites in the order job ``j``, which must run now, tries them: by what an accelerator
    is expected to cost there over the job's run at full parallelism (now, then the
    forecast; a day at most), most room first among equals. A job the reserve starts runs
    whatever the price, and once started it stays (a move costs a restore and a migration),
    so the site is the only saving left, and it is made over the whole run. Every site it
    tries must still carry the work there (rule 3), so the order costs no deadline."""
    cost = obs.accelerator_cost_usd_per_h(site_of, acc_of, routing, _run_steps(obs, j))
    return np.lexsort((-room, cost)).tolist()


def _run_steps(obs: Observation, j: int) -> int:
    """Steps job ``j`` still runs at full parallelism, overheads owed included (at least one,
    at most a day)."""
    jobs = obs.jobs
    run_h = jobs.pending_overhead_h[j] + jobs.remaining_accelerator_hours[j] / max(
        int(jobs.max_accelerators[j]), 1
    )
    return int(np.clip(np.ceil(run_h / obs.step_h - ROUNDING), 1, obs.steps_per_day))


def _stoppable(
    obs: Observation,
    j: int,
    site: int,
    needed: int,
    site_of: np.ndarray,
    acc_of: np.ndarray,
    slack: np.ndarray,
    reserve_h: np.ndarray,
) -> np.ndarray:
    """Work at ``site`` that can afford a stop for job ``j`` (its slack after one — a step
    more, a restore and a migration — keeps its reserve, and it has more slack than ``j``),
    most slack first, until ``needed`` accelerators would be free; their indices."""
    if needed <= 0:
        return np.zeros(0, dtype=np.int64)
    jobs = obs.jobs
    after_stop = slack - obs.step_h - jobs.checkpoint_overhead_h - jobs.migration_overhead_h
    others = np.flatnonzero((site_of == site) & (after_stop >= reserve_h) & (slack > slack[j]))
    others = others[np.argsort(-slack[others], kind="stable")]
    enough = np.searchsorted(np.cumsum(acc_of[others]), needed) + 1
    return others[:enough]
