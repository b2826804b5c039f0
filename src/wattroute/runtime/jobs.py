"""Between stored job records and the simulator's job table.

The controller advances jobs with exactly the simulator's semantics (progress, checkpoint and
migration overheads, completion, work undone at deadlines) by loading the active records into
a :class:`~wattroute.sim.jobs.JobTable` for one step and writing the result back.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np
import pandas as pd

from wattroute.model.arrays import JobArrays
from wattroute.runtime.records import PROGRESS_FIELDS, JobRecord
from wattroute.sim.jobs import JobTable


def _hours(times: list[pd.Timestamp], epoch: pd.Timestamp) -> np.ndarray:
    """Hours from ``epoch`` to each of ``times`` (as ``(t - epoch).total_seconds() / 3600``,
    to the last bit, without a Timedelta per time)."""
    ns = np.array([t.value for t in times], dtype=np.int64) - epoch.value
    return ns / 1e9 / 3600.0


def load_table(
    records: list[JobRecord], sites: tuple[str, ...], epoch: pd.Timestamp
) -> tuple[JobTable, np.ndarray]:
    """A job table of ``records`` (all active), times in hours since ``epoch``; and its ids."""
    n = len(records)
    index = {name: i for i, name in enumerate(sites)}
    allowed = np.ones((n, len(sites)), dtype=bool)
    for i, r in enumerate(records):
        if r.allowed_sites is not None:
            allowed[i] = False
            allowed[i, [index[s] for s in r.allowed_sites if s in index]] = True
    spec = JobArrays(
        names=tuple(r.id for r in records),
        arrival_h=_hours([r.submitted_at for r in records], epoch),
        arrival_step=np.zeros(n, dtype=np.int64),
        work_accelerator_hours=np.array([r.work_accelerator_hours for r in records]),
        min_accelerators=np.array([r.min_accelerators for r in records], dtype=np.int64),
        max_accelerators=np.array([r.max_accelerators for r in records], dtype=np.int64),
        deadline_h=_hours([r.deadline for r in records], epoch),
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


# The table's arrays that a step can change, and that store_table writes back.
_PROGRESS_ARRAYS = (
    "done",
    "site",
    "accelerators",
    "last_site",
    "pending_overhead_h",
    "overhead_paid_h",
    "moves",
    "stops",
    "remaining_at_deadline",
    "finished",
)


def progress_snapshot(table: JobTable) -> dict[str, np.ndarray]:
    """Copies of the table's progress arrays, to tell later which jobs a step moved."""
    return {name: getattr(table, name).copy() for name in _PROGRESS_ARRAYS}


def moved(table: JobTable, before: dict[str, np.ndarray]) -> np.ndarray:
    """The rows whose progress or allocation differ from ``before`` (a
    :func:`progress_snapshot`): the only jobs whose records a step can have changed."""
    out = np.zeros(len(table.done), dtype=bool)
    for name in _PROGRESS_ARRAYS:
        now, then = getattr(table, name), before[name]
        if name == "remaining_at_deadline":
            out |= (now != then) & ~(np.isnan(now) & np.isnan(then))
        else:
            out |= now != then
    return np.flatnonzero(out)


def store_table(
    records: list[JobRecord],
    table: JobTable,
    sites: tuple[str, ...],
    epoch: pd.Timestamp,
    rows: np.ndarray | None = None,
) -> list[JobRecord]:
    """Copies of ``records`` with the table's progress and allocation written in; record
    ``i`` is the table's row ``rows[i]`` (row ``i`` if ``rows`` is not given)."""
    at = np.arange(len(records)) if rows is None else np.asarray(rows)
    done = table.done[at].tolist()
    site = table.site[at].tolist()
    accelerators = table.accelerators[at].tolist()
    last = table.last_site[at].tolist()
    pending = table.pending_overhead_h[at].tolist()
    paid = table.overhead_paid_h[at].tolist()
    moves = table.moves[at].tolist()
    stops = table.stops[at].tolist()
    undone = table.remaining_at_deadline[at].tolist()
    finished = table.finished[at].tolist()
    completed_h = table.completed_h[at].tolist()
    out = []
    new = object.__new__
    for i, record in enumerate(records):
        r = new(JobRecord)
        r.__dict__.update(record.__dict__)
        r.done_accelerator_hours = done[i]
        s = site[i]
        r.site = sites[s] if s >= 0 else None
        r.accelerators = accelerators[i] if s >= 0 else 0
        r.last_site = sites[last[i]] if last[i] >= 0 else None
        r.pending_overhead_h = pending[i]
        r.overhead_paid_h = paid[i]
        r.moves = moves[i]
        r.stops = stops[i]
        r.remaining_at_deadline = None if np.isnan(undone[i]) else undone[i]
        if finished[i]:
            r.state = "completed"
            # Microseconds: what databases and datetime keep.
            r.completed_at = (epoch + pd.Timedelta(hours=completed_h[i])).floor("us")
        elif s >= 0:
            r.state = "running"
        elif last[i] >= 0:
            r.state = "paused"
        else:
            r.state = "queued"
        out.append(r)
    return out


_progress = attrgetter(*PROGRESS_FIELDS)


def changed(before: list[JobRecord], after: list[JobRecord]) -> list[JobRecord]:
    """The records of ``after`` whose state, progress or allocation differ from ``before``
    (same order, same jobs): what a tick has to write back."""
    return [a for b, a in zip(before, after, strict=True) if _progress(b) != _progress(a)]
