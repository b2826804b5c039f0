"""A safety net for deadlines: play a decision forward and keep it only if it breaks no
promise a plain continuation would keep.

The continuation is a schedule every policy can always fall back on, step after step:
*running jobs keep running where they run; waiting jobs start, earliest deadline first, at
the allowed site with the most room, on as many accelerators as fit up to their maximum (at
least their minimum); running jobs grow, earliest deadline first, into room at their site;
jobs that can no longer finish in time go last.* Nothing is stopped or moved, so it pays no
overhead beyond the restores and migrations a decision already committed to.

:meth:`Continuation.misses` plays a decision for one step (as the simulator enacts it, with
its repairs) and then the continuation until every job is done, completion by completion (the
room a job leaves is taken at the next step), with the room each site has for batch work now
held constant. It counts the jobs that finish after their deadline, and the hours they finish
inside a margin of it and past it, in all. :meth:`Continuation.decide` is the
continuation's own decision now. A policy whose decision does worse on any of the three takes
the continuation's choice instead, for as many jobs as it takes. Then, step by step, the
number of jobs the continuation would make late never grows: for the jobs known at each step,
and as far as room stays what it is now (arrivals, inference peaks and falling power are what
the margin is for).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from wattroute.model.tolerances import ROUNDING
from wattroute.policies.base import ActiveJobs, accelerators_by_site

EPS_WORK = ROUNDING
"""Accelerator-hours treated as zero."""


def owed_after(
    jobs: ActiveJobs, site_of: np.ndarray, acc_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which jobs a decision runs, and the overhead each then owes before it progresses,
    hours: what it owes now (a stopped job's restore included), plus a restore and a
    migration if it moves, a migration if it resumes away from where it last ran, a restore if
    it stops. For a job left waiting, the migration it owes if it resumes elsewhere is not
    counted: that depends on where it resumes."""
    cur, last = jobs.site, jobs.last_site
    restore, migrate = jobs.checkpoint_overhead_h, jobs.migration_overhead_h
    running = (site_of >= 0) & (acc_of > 0)
    moves = running & (cur >= 0) & (site_of != cur)
    relocated = running & (cur < 0) & (last >= 0) & (site_of != last)
    stopped = ~running & (cur >= 0)
    owed = (
        jobs.pending_overhead_h
        + np.where(moves, restore + migrate, 0.0)
        + np.where(relocated, migrate, 0.0)
        + np.where(stopped, restore, 0.0)
    )
    return running, owed


def _one_by_one(ids: np.ndarray, chunk: int = 256) -> Iterator[int]:
    """The entries of ``ids`` as Python ints, converted a chunk at a time (a loop over them
    often stops early)."""
    for begin in range(0, ids.size, chunk):
        yield from ids[begin : begin + chunk].tolist()


@dataclass
class _State:
    """Jobs during a rollout, arrays ``(J,)``: where each runs (-1: waiting) and on how many
    accelerators, its remaining work (accelerator-hours), the overhead it must pay before it
    progresses (hours; for a waiting job, what it will owe when it starts, migration aside),
    the site it last ran at (-1: never) and when it finished (hours from now; inf: not)."""

    site: np.ndarray
    acc: np.ndarray
    remaining: np.ndarray
    owed: np.ndarray
    last: np.ndarray
    finish: np.ndarray


@dataclass(frozen=True)
class Continuation:
    """The continuation for jobs ``jobs`` with ``capacity`` accelerators for batch work at each
    site, ``(S,)``."""

    jobs: ActiveJobs
    capacity: np.ndarray

    def decide(self) -> tuple[np.ndarray, np.ndarray]:
        """The continuation's decision now: the jobs as they run, waiting jobs started and
        running jobs grown earliest deadline first. Returns ``(site, accelerators)``."""
        jobs = self.jobs
        state = _State(
            site=jobs.site.copy(),
            acc=jobs.accelerators.astype(float),
            remaining=jobs.remaining_accelerator_hours.copy(),
            owed=jobs.pending_overhead_h.copy(),
            last=jobs.last_site.copy(),
            finish=np.full(len(jobs), np.inf),
        )
        self._act(state, 0.0)
        return state.site, state.acc.astype(np.int64)

    def misses(
        self,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        step_h: float,
        margin_h: np.ndarray,
    ) -> tuple[int, float, float]:
        """Jobs that finish after their deadline, the hours jobs finish inside ``margin_h``
        of it (or past it) in all, and the hours they finish late in all (a job that never
        finishes counts as finishing a day after the last one that does), if ``site_of`` /
        ``acc_of`` runs for ``step_h`` hours and the continuation after that."""
        jobs = self.jobs
        state = self._after_decision(site_of, acc_of)
        self._advance(state, 0.0, step_h)
        t = step_h
        self._act(state, t)
        settled = self._settled(state)
        running = np.flatnonzero((state.site >= 0) & np.isinf(state.finish))
        while running.size:
            left = state.owed[running] + state.remaining[running] / state.acc[running]
            # Room a job leaves is taken at the next step, when the next decision is made.
            until = math.ceil((t + float(left.min())) / step_h - ROUNDING) * step_h
            until = max(until, t + step_h) if until <= t + ROUNDING else until
            still = self._advance(state, t, until - t, running)
            t = until
            if settled:
                # Every step of the continuation leaves it as it is: no job starts, so the
                # jobs running are those that ran and did not finish.
                running = still
            else:
                self._act(state, t)
                settled = self._settled(state)
                running = np.flatnonzero((state.site >= 0) & np.isinf(state.finish))
        deadline = jobs.deadline_h
        finish = np.where(np.isinf(state.finish), t + 24.0, state.finish)
        late = int((finish > deadline + ROUNDING).sum())
        inside = float(np.maximum(finish - (deadline - margin_h), 0.0).sum())
        return late, inside, float(np.maximum(finish - deadline, 0.0).sum())

    def _after_decision(self, site_of: np.ndarray, acc_of: np.ndarray) -> _State:
        """The rollout's state once a decision is enacted (:func:`owed_after`: a waiting job's
        migration is added once it is known where it starts)."""
        jobs = self.jobs
        site_of, acc_of = self.enacted(site_of, acc_of)
        running, pay = owed_after(jobs, site_of, acc_of)
        stopped = ~running & (jobs.site >= 0)
        return _State(
            site=np.where(running, site_of, -1),
            acc=np.where(running, acc_of, 0).astype(float),
            remaining=jobs.remaining_accelerator_hours.copy(),
            owed=pay,
            last=np.where(running, site_of, np.where(stopped, jobs.site, jobs.last_site)),
            finish=np.where(jobs.remaining_accelerator_hours <= EPS_WORK, 0.0, np.inf),
        )

    def enacted(self, site_of: np.ndarray, acc_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decision as the simulator enacts it (:mod:`wattroute.sim.repair`): a job asked
        to run where it may not or below its minimum parallelism stopped, one above its
        maximum cut to it, and where a site is asked more than it has, jobs stopped there,
        most slack first, until the rest fit."""
        jobs = self.jobs
        site_of = np.where(acc_of > 0, site_of, -1)
        running = site_of >= 0
        n_sites = self.capacity.size
        where = np.clip(site_of, 0, n_sites - 1)
        bad = running & (
            (site_of >= n_sites)
            | ~jobs.allowed[np.arange(len(jobs)), where]
            | (acc_of < jobs.min_accelerators)
        )
        site_of = np.where(bad, -1, site_of)
        acc_of = np.where(bad, 0, np.minimum(acc_of, jobs.max_accelerators))
        used = accelerators_by_site(site_of, acc_of, n_sites)
        crowded = np.flatnonzero(used > self.capacity + ROUNDING)
        if crowded.size == 0:
            return site_of, acc_of
        by_slack = np.argsort(-self.jobs.slack_h, kind="stable")
        for s in crowded.tolist():
            here = by_slack[(site_of[by_slack] == s) & (acc_of[by_slack] > 0)]
            # Job i is stopped while the site is still over: what is used there less what the
            # jobs before it gave up (sums of whole accelerators, exact in floating point).
            gave_up = np.concatenate([[0.0], np.cumsum(acc_of[here])[:-1]])
            stop = here[used[s] - gave_up > self.capacity[s] + ROUNDING]
            site_of[stop], acc_of[stop] = -1, 0
        return site_of, acc_of

    @staticmethod
    def _advance(state: _State, t: float, dt: float, ids: np.ndarray | None = None) -> np.ndarray:
        """Run the running jobs (``ids``, if the caller has them) for ``dt`` hours from
        ``t``; the ones still running then, in the same order."""
        if ids is None:
            ids = np.flatnonzero((state.site >= 0) & np.isinf(state.finish))
        if ids.size == 0:
            return ids
        owed, rem, acc = state.owed[ids], state.remaining[ids], state.acc[ids]
        done_at = t + owed + rem / acc
        paid = np.minimum(owed, dt)
        rem = rem - acc * (dt - paid)
        finished = rem <= EPS_WORK * np.maximum(acc, 1.0)
        state.owed[ids] = owed - paid
        state.remaining[ids] = np.maximum(rem, 0.0)
        if not finished.any():
            return ids
        done = ids[finished]
        state.finish[done] = done_at[finished]
        state.site[done] = -1
        state.acc[done] = 0.0
        return ids[~finished]

    @cached_property
    def _allowed(self) -> np.ndarray:
        """Where each job may run, ``(J, S)``."""
        return np.asarray(self.jobs.allowed, dtype=bool)

    @cached_property
    def _anywhere(self) -> np.ndarray:
        """Jobs that may run at every site, ``(J,)``."""
        return np.asarray(self._allowed.all(axis=1), dtype=bool)

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Each job's fewest and most accelerators, the fewest any job needs, and the jobs in
        deadline order (ties by index)."""
        jobs = self.jobs
        least = jobs.min_accelerators
        by_deadline = np.argsort(jobs.deadline_h, kind="stable")
        smallest = float(least.min()) if least.size else np.inf
        return least, jobs.max_accelerators, smallest, by_deadline

    @cached_property
    def _per_job(self) -> tuple[list[float], list[float], list[list[int] | None]]:
        """Each job's most and fewest accelerators, and the sites it may run at (``None``:
        every site), as Python lists: the continuation's step reads them one job at a time."""
        least, most = self.jobs.min_accelerators, self.jobs.max_accelerators
        sites: list[list[int] | None] = [None] * len(self.jobs)
        if self._confined.size:
            rows, cols = np.nonzero(self._allowed[self._confined])
            cuts = np.searchsorted(rows, np.arange(1, self._confined.size))
            for j, allowed in zip(self._confined.tolist(), np.split(cols, cuts), strict=True):
                sites[j] = allowed.tolist()
        return (
            most.astype(float).tolist(),
            least.astype(float).tolist(),
            sites,
        )

    @cached_property
    def _confined(self) -> np.ndarray:
        """The jobs that may not run at every site, ``(R,)``."""
        return np.flatnonzero(~self._anywhere)

    @cached_property
    def _confined_sites(self) -> np.ndarray:
        """The sites each job of :attr:`_confined` may run at, ``(R, K)``, padded with
        ``S`` (a site with no room) to the most sites any of them may run at."""
        allowed = self._allowed[self._confined]
        n_sites = self.capacity.size
        width = max(int(allowed.sum(axis=1).max(initial=0)), 1)
        # Allowed sites in index order first, then the padding.
        padded = np.where(allowed, np.arange(n_sites), n_sites)
        return np.sort(padded, axis=1)[:, :width]

    def _best_room(self, room: np.ndarray, top: float) -> np.ndarray:
        """The most room at any site each job may run at, ``(J,)`` (accelerators; ``-inf``
        where it may run nowhere)."""
        best = np.full(len(self.jobs), top)
        if self._confined.size:
            with_none = np.append(room, -np.inf)
            sites = self._confined_sites
            if sites.shape[1] > 8:
                best[self._confined] = with_none[sites].max(axis=1)
            else:  # a few sites each: a maximum along short rows is slow, one per column not
                most = with_none[sites[:, 0]]
                for k in range(1, sites.shape[1]):
                    np.maximum(most, with_none[sites[:, k]], out=most)
                best[self._confined] = most
        return best

    def _settled(self, state: _State) -> bool:
        """Whether no later step of the continuation (:meth:`_act`) can change ``state``: no
        job waits to start and every running job runs on its most accelerators. A step only
        starts waiting jobs and grows running ones; nothing in the continuation stops a job,
        and a job's accelerators never shrink, so once it holds it holds until the end (a
        rollout's last completions then skip the step: most of them, once every job has
        started)."""
        most = self._bounds[1]
        active = np.isinf(state.finish)
        running = state.site >= 0
        if (active & ~running).any():
            return False
        grows = active & running
        return not (state.acc[grows] < most[grows]).any()

    def _act(self, state: _State, t: float) -> None:
        """The continuation's step at ``t`` hours from now: start waiting jobs and grow
        running ones, earliest deadline first, into the room each site has — but jobs that
        can no longer finish in time go last, so that one late job does not make the jobs
        behind it late too (earliest deadline first's weakness in overload).

        Waiting jobs are tried one by one in plain Python (lists of whole accelerator counts
        held in floats, a heap of sites by room) and what they take is written back in one
        go; running jobs grow site by site in one pass over arrays."""
        jobs = self.jobs
        least, most, smallest, by_deadline = self._bounds
        active = np.isinf(state.finish)
        running = active & (state.site >= 0)
        used = np.bincount(
            state.site[running], weights=state.acc[running], minlength=self.capacity.size
        )
        room = np.floor(self.capacity - used + ROUNDING)
        top = float(room.max(initial=-np.inf))
        if top < smallest and top <= 0:
            return  # no room any job could start or grow in
        # Room only shrinks during the step, so a job that cannot start (or grow) in the room
        # there is before the first one does never will: those are left out up front.
        if self._confined.size == 0:
            waiting = active & ~running & (least <= top)
        else:
            waiting = active & ~running & (least <= self._best_room(room, top))
        growing = running & (state.acc < most)
        growing[growing] = room[state.site[growing]] > 0
        if not waiting.any() and not growing.any():
            return
        free = room.tolist()
        # Sites by room, most first (ties: lowest index), kept up to date lazily: an entry
        # whose room is no longer the site's is stale (room only shrinks) and is dropped.
        by_room = [(-f, s) for s, f in enumerate(free)]
        heapq.heapify(by_room)
        push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace

        # Earliest deadline first, the jobs that can no longer finish in time last.
        hopeless = t + state.owed + state.remaining / most > jobs.deadline_h + ROUNDING
        late = hopeless[by_deadline]
        order = np.concatenate([by_deadline[~late], by_deadline[late]])
        starters = order[waiting[order]]
        most_of, least_of, sites_of = self._per_job
        started: list[int] = []
        where: list[int] = []
        taken: list[float] = []
        if starters.size:
            fewest = float(least[waiting].min())
            start, at_site, take = started.append, where.append, taken.append
            # The top of the heap is the roomiest site whenever a job is tried: it is so at
            # first, and made so again after every start.
            for j in _one_by_one(starters):
                sites = sites_of[j]
                best = by_room[0][1] if sites is None else max(sites, key=free.__getitem__)
                left = free[best]
                n = left if left < most_of[j] else most_of[j]
                if n < least_of[j]:
                    continue
                start(j)
                at_site(best)
                take(n)
                left -= n
                free[best] = left
                if sites is None:  # its site is the heap's top: replaced, not left stale
                    replace(by_room, (-left, best))
                else:
                    push(by_room, (-left, best))
                negative, site = by_room[0]
                while -negative != free[site]:
                    pop(by_room)
                    negative, site = by_room[0]
                if -negative < fewest:
                    break  # no room left that any waiting job could start in
        if started:
            ids, at = np.array(started), np.array(where)
            state.site[ids] = at
            state.acc[ids] = taken
            last = state.last[ids]
            moved = ids[(last >= 0) & (last != at)]
            state.owed[moved] += jobs.migration_overhead_h[moved]
            state.last[ids] = at
        # Running jobs grow, earliest deadline first, each into the room left at its own site:
        # at each site, a job takes what it lacks of its maximum, or what the jobs before it
        # there left (sums of whole accelerators, exact in floating point).
        growers = order[growing[order]]
        if growers.size == 0 or by_room[0][0] >= 0:
            return  # none to grow, or no room left to grow into (the heap's top is current)
        at = state.site[growers]
        by_site = np.argsort(at, kind="stable")
        growers, at = growers[by_site], at[by_site]
        lacks = most[growers] - state.acc[growers]
        before = np.cumsum(lacks) - lacks
        first = np.flatnonzero(np.concatenate([[True], at[1:] != at[:-1]]))
        before -= np.repeat(before[first], np.diff(np.append(first, at.size)))
        grow = np.minimum(lacks, np.maximum(np.asarray(free)[at] - before, 0.0))
        grows = grow > 0
        state.acc[growers[grows]] += grow[grows]
