"""Job classes: many jobs planned as fewer LP rows, none doing work its jobs could not.

A class row stands for jobs that share their allowed sites, the site they run at (or last ran
at), the planning period their deadline falls in (all deadlines past the horizon count as one)
and, rounded up to an edge of :func:`run_time_edges`, their run time at full parallelism. Its
plan is shared out among its members afterwards, so the class row is bounded by what its members
could do together:

* in every period, by the sum of its members' capacities there (each member's most
  accelerators times the share of the period before its deadline, so a member whose deadline
  cuts a period early adds only that share);
* in all, by the sum of its members' work, and past the horizon by the sum of the work each
  member could leave there.

Members with the same run time (rounded up to whole periods) and the same window can carry out
any plan within those bounds. Grouping run times that round up to the same edge lets a class
squeeze a longer member's work into fewer periods than it needs, at most by the edge spacing
(``growth``): with the default doubling edges, work of a member needing 4 periods may be planned
in 3. Run times are what keeps it small: without them (jobs grouped by sites and deadline only)
a class can plan all of a long job's work into the few cheapest periods with the accelerators
of short ones.

Units as in :class:`~wattroute.optimise.problem.JobBlock`: hours, accelerators,
accelerator-hours, USD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattroute.model.tolerances import ROUNDING
from wattroute.optimise.problem import JobBlock


def run_time_edges(last_period: float, growth: float) -> np.ndarray:
    """Bucket edges of run times in periods: 1, then each edge ``growth`` times further than
    the one before (rounded down, at least one period more), up to ``last_period`` or past it.
    ``growth`` must be positive (1.0: doubling edges 1, 2, 4, 8, ...)."""
    if not growth > 0:
        raise ValueError(f"run_time_growth must be positive, got {growth}; use e.g. 1.0")
    edges = [1]
    while edges[-1] < last_period:
        edges.append(edges[-1] + max(1, int(edges[-1] * growth)))
    return np.asarray(edges, dtype=float)


@dataclass(frozen=True)
class ClassRules:
    """How jobs are grouped.

    Parameters
    ----------
    run_time_growth
        Spacing of the run-time edges (see :func:`run_time_edges`): members of a class need
        whole periods of full parallelism that round up to the same edge. Smaller is closer
        to planning each job alone, with more rows; ``1e-9`` makes every whole number of
        periods its own edge.
    """

    run_time_growth: float = 1.0

    def __post_init__(self) -> None:
        if not self.run_time_growth > 0:
            raise ValueError(
                f"run_time_growth must be positive, got {self.run_time_growth}; use e.g. 1.0"
            )


def job_classes(
    block: JobBlock, period_h: float, rules: ClassRules = ClassRules()
) -> tuple[JobBlock, np.ndarray]:
    """Group the jobs of ``block`` into class rows; returns the class block and the class row of
    each job, ``(J,)``. ``block.available`` is each job's window (its last nonzero period the
    one its deadline falls in)."""
    n = len(block)
    if n == 0:
        return block, np.zeros(0, np.int64)
    if period_h <= 0:
        raise ValueError(f"period_h must be positive, got {period_h}")
    h_n = block.available.shape[1]
    open_ = block.available > 0
    # Period the deadline falls in: the last one the job may use (H for past the horizon).
    deadline_period = np.where(
        open_[:, -1], h_n, h_n - 1 - np.argmax(open_[:, ::-1], axis=1)
    ).astype(np.int64)
    need_h = block.work_accelerator_hours / np.maximum(block.max_accelerators, ROUNDING)
    need_periods = np.ceil(need_h / period_h - 1e-9)
    edges = run_time_edges(float(need_periods.max()), rules.run_time_growth)
    need_bucket = np.searchsorted(edges, need_periods - 1e-9)
    later = block.deferrable_accelerator_hours
    deferrable = np.zeros(n, np.int64) if later is None else (later > 0).astype(np.int64)
    keys = np.column_stack(
        [
            _row_ids(block.allowed),
            block.current_site.astype(np.int64),
            deadline_period,
            deferrable,
            need_bucket,
        ]
    )
    row_of = _row_ids(keys)
    return _aggregate(block, row_of), row_of


def _row_ids(keys: np.ndarray) -> np.ndarray:
    """Dense id of each row of a 2-D array (equal rows, equal ids), in sorted order of rows."""
    keys = np.ascontiguousarray(keys)
    if keys.dtype == bool:
        keys = np.packbits(keys, axis=1)
    flat = keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).ravel()
    _, ids = np.unique(flat, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def _aggregate(block: JobBlock, row_of: np.ndarray) -> JobBlock:
    """The class rows: summed capacities, work and deferrable work; work-weighted costs."""
    n_rows = int(row_of.max()) + 1

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(row_of, weights=values, minlength=n_rows)

    first = np.zeros(n_rows, dtype=np.int64)
    first[row_of[::-1]] = np.arange(len(row_of))[::-1]  # a representative member per class
    work = block.work_accelerator_hours
    max_acc = block.max_accelerators
    class_work = total(work)
    # Per period, the class may use what its members could use together there: their
    # capacities summed (including the shares of the periods their deadlines cut).
    capacity = np.zeros((n_rows, block.available.shape[1]))
    np.add.at(capacity, row_of, max_acc[:, np.newaxis] * block.available)
    rate = capacity.max(axis=1)
    available = capacity / np.maximum(rate, ROUNDING)[:, np.newaxis]
    deferrable = block.deferrable_accelerator_hours

    def work_weighted(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        return total(values * work) / np.maximum(class_work, ROUNDING)

    restart = block.restart_cost_usd_per_accelerator
    now = block.accelerators_now
    class_max = total(max_acc)
    return JobBlock(
        work_accelerator_hours=class_work,
        max_accelerators=rate,
        available=available,
        allowed=block.allowed[first],
        current_site=block.current_site[first],
        switch_cost_usd_per_accelerator_hour=total(
            block.switch_cost_usd_per_accelerator_hour * work
        )
        / np.maximum(class_work, ROUNDING),
        deferrable_accelerator_hours=None if deferrable is None else total(deferrable),
        deferral_cost_usd_per_accelerator_hour=work_weighted(
            block.deferral_cost_usd_per_accelerator_hour
        ),
        restart_cost_usd_per_accelerator=None
        if restart is None
        else total(restart * max_acc) / np.maximum(class_max, ROUNDING),
        accelerators_now=None if now is None else total(now),
    )
