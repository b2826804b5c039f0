"""Between stored job records and the simulator's job table.

The controller advances jobs with exactly the simulator's semantics (progress, checkpoint and
migration overheads, completion, work undone at deadlines) by loading the active records into
a :class:`~wattroute.sim.jobs.JobTable` for one step and writing the result back.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from wattroute.model.arrays import JobArrays
from wattroute.runtime.records import PROGRESS_FIELDS, JobRecord
from wattroute.sim.jobs import JobTable


def _hours(t: pd.Timestamp, epoch: pd.Timestamp) -> float:
    return (t - epoch).total_seconds() / 3600.0


def load_table(
    records: list[JobRecord], sites: tuple[str, ...], epoch: pd.Timestamp
) -> tuple[JobTable, np.ndarray]:
    """A job table of ``records`` (all active), times in hours since ``epoch``; and its ids."""
    n = len(records)
    index = {name: i for i, name in enumerate(sites)}
    allowed = np.ones((n, len(sites)), dtype=bool)
    for i, r in enumerate(records):
        if r.allowed_sites is not None:
            allowed[i] = [s in r.allowed_sites for s in sites]
    spec = JobArrays(
        names=tuple(r.id for r in records),
        arrival_h=np.array([_hours(r.submitted_at, epoch) for r in records]),
        arrival_step=np.zeros(n, dtype=np.int64),
        work_accelerator_hours=np.array([r.work_accelerator_hours for r in records]),
        min_accelerators=np.array([r.min_accelerators for r in records], dtype=np.int64),
        max_accelerators=np.array([r.max_accelerators for r in records], dtype=np.int64),
        deadline_h=np.array([_hours(r.deadline, epoch) for r in records]),
        checkpoint_overhead_h=np.array([r.checkpoint_overhead_h for r in records]),
        migration_overhead_h=np.array([r.migration_overhead_h for r in records]),
        allowed=allowed,
    )
    table = JobTable(spec)
    table.arrive_until(0)

    def site_index(name: str | None) -> int:
        return index.get(name, -1) if name is not None else -1

    table.done[:] = [r.done_accelerator_hours for r in records]
    table.site[:] = [site_index(r.site) if r.accelerators > 0 else -1 for r in records]
    table.accelerators[:] = [
        r.accelerators if table.site[i] >= 0 else 0 for i, r in enumerate(records)
    ]
    table.last_site[:] = [site_index(r.last_site) for r in records]
    table.pending_overhead_h[:] = [r.pending_overhead_h for r in records]
    table.overhead_paid_h[:] = [r.overhead_paid_h for r in records]
    table.moves[:] = [r.moves for r in records]
    table.stops[:] = [r.stops for r in records]
    table.remaining_at_deadline[:] = [
        np.nan if r.remaining_at_deadline is None else r.remaining_at_deadline for r in records
    ]
    return table, np.arange(n)


def store_table(
    records: list[JobRecord], table: JobTable, sites: tuple[str, ...], epoch: pd.Timestamp
) -> list[JobRecord]:
    """Copies of ``records`` with the table's progress and allocation written in."""
    out = []
    for i, record in enumerate(records):
        r = copy.copy(record)
        r.done_accelerator_hours = float(table.done[i])
        site = int(table.site[i])
        r.site = sites[site] if site >= 0 else None
        r.accelerators = int(table.accelerators[i]) if site >= 0 else 0
        last = int(table.last_site[i])
        r.last_site = sites[last] if last >= 0 else None
        r.pending_overhead_h = float(table.pending_overhead_h[i])
        r.overhead_paid_h = float(table.overhead_paid_h[i])
        r.moves = int(table.moves[i])
        r.stops = int(table.stops[i])
        undone = table.remaining_at_deadline[i]
        r.remaining_at_deadline = None if np.isnan(undone) else float(undone)
        if table.finished[i]:
            r.state = "completed"
            # Microseconds: what databases and datetime keep.
            r.completed_at = (epoch + pd.Timedelta(hours=float(table.completed_h[i]))).floor("us")
        elif site >= 0:
            r.state = "running"
        elif last >= 0:
            r.state = "paused"
        else:
            r.state = "queued"
        out.append(r)
    return out


def changed(before: list[JobRecord], after: list[JobRecord]) -> list[JobRecord]:
    """The records of ``after`` whose state, progress or allocation differ from ``before``
    (same order, same jobs): what a tick has to write back."""
    return [
        a
        for b, a in zip(before, after, strict=True)
        if any(getattr(b, f) != getattr(a, f) for f in PROGRESS_FIELDS)
    ]
