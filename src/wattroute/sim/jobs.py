"""Batch job state: progress, overheads, completion and deadlines.

Progress is linear in time at a constant allocation: a job with ``a`` accelerators and
``o`` hours of pending overhead does ``a * max(0, tau - o)`` accelerator-hours of work in
``tau`` hours. The simulator holds allocations constant over a block, so every quantity here
(completion times, work done by a deadline) is computed exactly, not step by step.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np

from wattroute.model.arrays import JobArrays, any_set
from wattroute.model.tolerances import ROUNDING

EPS_WORK = ROUNDING  # accelerator-hours treated as zero


class JobTable:
    """Mutable state of every batch job, arrays of shape ``(J,)``.

    ``site`` and ``accelerators`` are the current allocation (-1 / 0 when not running).
    ``last_site`` is where the job last ran (-1 if never): a job not running whose
    ``last_site`` is set was stopped, and owes a checkpoint restore when it resumes.
    """

    def __init__(self, jobs: JobArrays) -> None:
        n = jobs.n_jobs
        self.spec = jobs
        self.done = np.zeros(n)
        self.site = np.full(n, -1, dtype=np.int64)
        self.accelerators = np.zeros(n, dtype=np.int64)
        self.last_site = np.full(n, -1, dtype=np.int64)
        self.pending_overhead_h = np.zeros(n)
        self.overhead_paid_h = np.zeros(n)
        self.moves = np.zeros(n, dtype=np.int64)
        self.stops = np.zeros(n, dtype=np.int64)
        self.restores = np.zeros(n, dtype=np.int64)  # checkpoint restores paid or owed
        self.completed_h = np.full(n, np.nan)
        self.remaining_at_deadline = np.full(n, np.nan)
        self.owed_at_deadline_h = np.full(n, np.nan)
        self.finished = np.zeros(n, dtype=bool)
        # Allocation changes: (step, jobs, sites, accelerators).
        self._history: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        # Jobs by arrival; the active set grows at arrivals and shrinks at completions, so a
        # step costs time in the active jobs, not in all the jobs of the run.
        self._by_arrival = np.argsort(jobs.arrival_step, kind="stable")
        self._arrival_sorted: list[int] = jobs.arrival_step[self._by_arrival].tolist()
        self._arrived = 0
        self._active = np.zeros(0, dtype=np.int64)
        # Every deadline of the run, sorted (NaN, never due, left out): a block in which none
        # falls need not look for due jobs.
        deadlines = jobs.deadline_h[~np.isnan(jobs.deadline_h)]
        self._deadlines_sorted: list[float] = np.sort(deadlines).tolist()

    @property
    def remaining(self) -> np.ndarray:
        """Work still to do per job, accelerator-hours."""
        return np.maximum(self.spec.work_accelerator_hours - self.done, 0.0)

    def remaining_of(self, ids: np.ndarray) -> np.ndarray:
        """Work still to do for jobs ``ids``, accelerator-hours."""
        return np.maximum(self.spec.work_accelerator_hours[ids] - self.done[ids], 0.0)

    def active_ids(self) -> np.ndarray:
        """Jobs that have arrived and are not finished, in arrival order."""
        return self._active

    def arrive_until(self, step: int) -> None:
        """Make every job whose arrival step is at or before ``step`` active."""
        upto = bisect_right(self._arrival_sorted, step)
        if upto > self._arrived:
            arriving = self._by_arrival[self._arrived : upto]
            self._active = np.concatenate([self._active, arriving])
            self._arrived = upto

    def apply_allocation(
        self, ids: np.ndarray, site: np.ndarray, accelerators: np.ndarray, step: int = 0
    ) -> None:
        """Set the allocation of active jobs from ``step`` on, charging checkpoint and
        migration overheads, and record the changes (:meth:`allocation_history`).

        A job that stops is marked; when a job starts after a stop, or moves between sites
        while running, it owes ``checkpoint_overhead_h`` plus ``migration_overhead_h`` if the
        new site differs from where it last ran.
        """
        if ids.size == 0:
            return
        old_site = self.site[ids]
        changed = (old_site != site) | (self.accelerators[ids] != accelerators)
        if not any_set(changed):
            return
        ids, site, accelerators, old_site = (
            ids[changed],
            site[changed],
            accelerators[changed],
            old_site[changed],
        )
        self._history.append((step, ids, site, accelerators))
        running_now = accelerators > 0
        site = np.where(running_now, site, -1)
        last_site = self.last_site[ids]
        if old_site.max() < 0 and last_site.max() < 0:
            # Only first starts (or jobs left waiting that never ran): nothing is owed,
            # stopped or moved.
            self.site[ids] = site
            self.accelerators[ids] = np.where(running_now, accelerators, 0)
            self.last_site[ids] = np.where(running_now, site, last_site)
            return
        was_running = old_site >= 0
        stopping = was_running & ~running_now
        moving = was_running & running_now & (site != old_site)
        restarting = moving | (~was_running & running_now & (last_site >= 0))
        relocated = restarting & (site != last_site)
        spec = self.spec
        self.pending_overhead_h[ids] += (
            spec.checkpoint_overhead_h[ids] * restarting
            + spec.migration_overhead_h[ids] * relocated
        )
        self.moves[ids] += relocated
        self.restores[ids] += restarting
        self.stops[ids] += stopping | moving
        self.site[ids] = site
        self.accelerators[ids] = np.where(running_now, accelerators, 0)
        self.last_site[ids] = np.where(running_now, site, last_site)

    def place(self, ids: np.ndarray, site: np.ndarray, accelerators: np.ndarray) -> None:
        """Show jobs ``ids`` where an allocation enacted between steps puts them, without
        charging overheads or recording history (the next step's allocation does both)."""
        self.site[ids] = site
        self.accelerators[ids] = np.where(site >= 0, accelerators, 0)

    def column(self, ids: np.ndarray, now_h: float, name: str) -> np.ndarray:
        """A column of :class:`~wattroute.policies.base.ActiveJobs` for jobs ``ids`` at
        ``now_h`` hours after the start."""
        spec = self.spec
        if name == "remaining_accelerator_hours":
            return self.remaining_of(ids)
        if name == "deadline_h":
            return spec.deadline_h[ids] - now_h
        if name == "pending_overhead_h":
            return self.owed_overhead_h(ids)
        if name in ("site", "accelerators", "last_site"):
            return getattr(self, name)[ids]
        return getattr(spec, name)[ids]

    def owed_overhead_h(self, ids: np.ndarray) -> np.ndarray:
        """Hours of overhead each job owes before it progresses again.

        For a stopped job this includes the checkpoint restore it will pay when it resumes
        (at the site it last ran at; a move adds ``migration_overhead_h``).
        """
        stopped = (self.site[ids] < 0) & (self.last_site[ids] >= 0)
        return self.pending_overhead_h[ids] + np.where(
            stopped, self.spec.checkpoint_overhead_h[ids], 0.0
        )

    def state(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Jobs ``ids`` now: their accelerators (as floats: they are only computed with), the
        overhead hours they owe, and their work still to do (accelerator-hours)."""
        # Float once here rather than an int-to-float cast in every operation on them after.
        acc = self.accelerators[ids].astype(np.float64)
        return acc, self.pending_overhead_h[ids], self.remaining_of(ids)

    def hours_to_completion(
        self, ids: np.ndarray, state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """Hours from now until each running job finishes at its allocation (inf if paused);
        ``state`` is :meth:`state` of ``ids``, if already read."""
        acc, overhead, remaining = self.state(ids) if state is None else state
        return np.where(acc > 0, overhead + remaining / np.maximum(acc, 1.0), np.inf)

    def advance(
        self,
        ids: np.ndarray,
        start_h: float,
        duration_h: float,
        state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Run the active jobs ``ids`` at their allocation for ``duration_h`` hours (``state``
        is :meth:`state` of ``ids`` at ``start_h``, if already read).

        Records completion times and the work still undone at each deadline that falls
        within ``[start_h, start_h + duration_h)``.
        """
        if ids.size == 0:
            return
        acc, overhead, remaining = self.state(ids) if state is None else state
        end_h = start_h + duration_h
        # Work undone at a deadline inside this interval (looked for only if some job of the
        # run has its deadline there).
        deadlines = self._deadlines_sorted
        if bisect_left(deadlines, start_h) < bisect_left(deadlines, end_h):
            self._close_due(ids, start_h, end_h, acc, overhead, remaining)
        running = acc > 0
        if any_set(overhead):
            paid = np.minimum(overhead, duration_h) * running
            work = np.minimum(acc * (duration_h - paid), remaining)
            self.pending_overhead_h[ids] = overhead - paid
            self.overhead_paid_h[ids] += paid
        else:  # nothing owed: all the time is work
            work = np.minimum(acc * duration_h, remaining)
        self.done[ids] += work
        finishing = running & (remaining - work <= EPS_WORK)
        if any_set(finishing):
            fin = ids[finishing]
            self.completed_h[fin] = (
                start_h + overhead[finishing] + remaining[finishing] / acc[finishing]
            )
            self.done[fin] = self.spec.work_accelerator_hours[fin]
            self.finished[fin] = True
            self.site[fin] = -1
            self.accelerators[fin] = 0
            self._active = self._active[~self.finished[self._active]]

    def _close_due(
        self,
        ids: np.ndarray,
        start_h: float,
        end_h: float,
        acc: np.ndarray,
        overhead: np.ndarray,
        remaining: np.ndarray,
    ) -> None:
        """Record the work and overhead undone at each deadline of jobs ``ids`` in
        ``[start_h, end_h)``, for jobs running at ``acc`` owing ``overhead`` with
        ``remaining`` work at ``start_h``."""
        deadline = self.spec.deadline_h[ids]
        due = (deadline >= start_h) & (deadline < end_h)
        if any_set(due):
            due &= np.isnan(self.remaining_at_deadline[ids])
            tau = deadline[due] - start_h
            work_by_deadline = acc[due] * np.maximum(tau - overhead[due], 0.0)
            self.remaining_at_deadline[ids[due]] = np.maximum(
                remaining[due] - work_by_deadline, 0.0
            )
            # Overhead still owed at the deadline: what a running job has not paid by then,
            # or what a stopped one left unpaid when it stopped (a restore it will owe on
            # resuming is not counted: that restart falls after the deadline).
            ran = acc[due] > 0
            self.owed_at_deadline_h[ids[due]] = np.where(
                ran, np.maximum(overhead[due] - tau, 0.0), overhead[due]
            )

    def allocation_history(self) -> dict[str, np.ndarray]:
        """Every allocation change: ``step`` from which job ``job`` ran at ``site`` (-1: not
        running) on ``accelerators``. A job stops at its completion time, ``completed_h``."""
        if not self._history:
            empty = np.zeros(0, dtype=np.int64)
            return {"step": empty, "job": empty, "site": empty, "accelerators": empty}
        steps, jobs, sites, accs = zip(*self._history, strict=True)
        step = np.concatenate([np.full(ids.size, k) for k, ids in zip(steps, jobs, strict=True)])
        job, site, acc = (np.concatenate(parts) for parts in (jobs, sites, accs))
        return {"step": step, "job": job, "site": np.where(acc > 0, site, -1), "accelerators": acc}

    def close_deadlines(self, end_h: float) -> None:
        """Record the work undone at deadlines up to the end of the run (inclusive)."""
        undone = (self.spec.deadline_h <= end_h + ROUNDING) & np.isnan(self.remaining_at_deadline)
        self.remaining_at_deadline[undone] = self.remaining[undone]
