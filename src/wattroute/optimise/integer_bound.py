"""An integer-aware lower bound: the oracle's relaxation plus what pausing and moving cost.

The oracle (:mod:`wattroute.optimise.oracle`) lets a job pause, resume and move between sites
for free and run on a fraction of an accelerator. This bound adds to the same linear program,
per job with overheads, site and period, two binaries — ``y``, the job runs at that site at
some step of the period, and ``z``, it runs there across the period's opening boundary — and
solves it as a mixed-integer program on HiGHS, charging:

* **restarts**: a run segment begins in a period at every site the job runs at there without
  running across the opening boundary; and where it runs across both boundaries of a period
  but not the whole period at its minimum parallelism (``work + overhead < min_accelerators``
  on average), it paused inside, so a segment begins there too. Every segment but the job's
  first pays a checkpoint restore: ``checkpoint_overhead_h`` hours on at least
  ``min_accelerators`` accelerators, busy and making no progress;
* **moves**: every site beyond the first a job runs at within a period, and a segment at a site
  the job did not run at in the period before while it ran elsewhere, adds
  ``migration_overhead_h`` hours on at least ``min_accelerators`` accelerators; a job that
  runs at a site across both boundaries of a period and at another inside it went and came
  back, one segment and one move more;
* **time and power**: that overhead takes accelerators and power like work (capacity, power
  balance, power cap), and with the work fits in the job's parallelism in its window (``work +
  overhead <= max_accelerators x share of the period x y``); a job runs at one site at a time
  across a boundary; and it does no work while it restores or migrates, so its work and its
  overhead *hours* at full parallelism fit in its window (``work + max_accelerators x
  (checkpoint x (segments - 1) + migration x moves) <= max_accelerators x window``).

Every schedule the simulator runs satisfies these constraints, so the bound stays below every
policy, as long as the overhead a job owes is paid inside its window: true of every job that
finishes by its deadline (a job progresses only once its restore is done), and of every job
that misses it unless it was still restoring at its deadline. Simulations report that
overhead as ``batch.overhead_owed_at_deadline_h``; the bound holds where it is zero.

What this bound still relaxes, besides what the oracle does (hourly means, perfect
foresight): the overhead may fall anywhere in the job's window rather than at the restart;
within a period, whole accelerators and the minimum parallelism count only through the test
above; resizing a running job is free, as it is in the simulator.

It is not always above the LP relaxation: the overhead it places may exceed the least a
restart costs, as in the simulator a job that restarts again and again keeps accelerators busy
for nothing — which, in hours of negative prices, earns money no plan of work alone can (the
LP plans exactly the work jobs need). No policy does this on purpose, but a bound must allow it.

HiGHS stops at a time limit; the bound is then the **dual bound** it proved, never the
incumbent (a schedule's cost, which may lie above the optimum). The time limit is wall time,
so how far the search gets depends on the machine's load: on a busy machine it once stopped
before it had solved its own root LP, with a dual bound far below even the oracle's LP bound.
So where the dual bound is below the oracle's, the program's LP relaxation is solved on its
own as well, and the bound is never under it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from wattroute.model.scenario import Scenario
from wattroute.optimise.formulation import LinearProgram, Rows, build
from wattroute.optimise.oracle import oracle_problem
from wattroute.optimise.problem import PlanningProblem
from wattroute.optimise.solver import solve

BUSY_FAMILIES = ("power_balance", "capacity", "power_cap", "parallelism")
"""Row families in which an overhead column counts as a busy accelerator, as work does."""


@dataclass(frozen=True)
class IntegerBound:
    """The integer-aware bound on one scenario.

    ``objective_usd`` is the bound (USD, the same objective as a simulation's
    ``objective_usd``): HiGHS's proven dual bound, or the program's LP relaxation optimum
    ``relaxation_usd`` where that is higher (solved only where the dual bound is below the
    oracle's LP bound; ``nan`` where it was not solved). ``incumbent_usd`` is the best
    solution HiGHS found (not a bound), ``gap`` their relative gap, ``status`` HiGHS's model
    status, ``lp_objective_usd`` the oracle's LP optimum on the same periods, for comparison.
    """

    objective_usd: float
    relaxation_usd: float
    lp_objective_usd: float
    incumbent_usd: float
    gap: float
    status: str
    seconds: float
    rows: int
    columns: int
    binaries: int
    nodes: int
    period_h: float


@dataclass(frozen=True)
class _Cells:
    """The work columns of jobs with overheads: job, site, period and column of each."""

    job: np.ndarray
    site: np.ndarray
    period: np.ndarray
    column: np.ndarray

    @property
    def size(self) -> int:
        return int(self.job.size)


def build_integer_bound(problem: PlanningProblem) -> LinearProgram:
    """The mixed-integer program of the bound (see the module docstring) for ``problem``,
    whose job block carries minimum parallelism and overheads."""
    lp = build(problem)
    jobs = problem.jobs
    if jobs.checkpoint_overhead_h is None or jobs.min_accelerators is None:
        raise ValueError("the integer-aware bound needs the jobs' overheads and parallelism")
    migration = (
        np.zeros(len(jobs)) if jobs.migration_overhead_h is None else jobs.migration_overhead_h
    )
    with_overheads = (jobs.checkpoint_overhead_h > 0) | (migration > 0)
    j, s, h = lp.layout.work_index
    keep = with_overheads[j]
    cells = _Cells(j[keep], s[keep], h[keep], lp.layout.offsets["work"] + np.flatnonzero(keep))
    if cells.size == 0:
        return lp
    m = _IntegerModel(
        problem, lp, cells, jobs.min_accelerators, jobs.checkpoint_overhead_h, migration
    )
    m.link_work()
    m.boundaries()
    m.starts_in_periods()
    m.moves_in_periods()
    m.returns_in_periods()
    m.overhead_paid()
    m.time_in_window()
    return m.program()


def _find(keys: np.ndarray, order: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each of ``wanted`` is among ``keys`` (``order`` sorts ``keys``), and where."""
    sorted_keys = keys[order]
    at = np.searchsorted(sorted_keys, wanted).clip(0, keys.size - 1)
    return sorted_keys[at] == wanted, order[at]


class _IntegerModel:
    """The columns and rows the bound adds to the oracle's LP, family by family.

    Per cell (job with overheads, site, period): ``ov`` overhead (mean busy accelerators),
    ``y`` (binary: runs there at some step of the period), ``z`` (binary: runs there across
    the period's opening boundary; only where the cell before exists) and ``u`` (the job runs
    there and did not in the period before). Per (job, period): ``starts`` (integer: run
    segments that begin in the period) and ``moves`` (segments that begin at another site than
    the one before).
    """

    def __init__(
        self,
        problem: PlanningProblem,
        lp: LinearProgram,
        cells: _Cells,
        least: np.ndarray,
        checkpoint: np.ndarray,
        migration: np.ndarray,
    ) -> None:
        self.problem, self.lp, self.cells = problem, lp, cells
        self.least = np.maximum(least, 1.0)
        self.checkpoint, self.migration = checkpoint, migration
        h_n, s_n = problem.n_periods, problem.n_sites
        n = cells.size
        self.keys = (cells.job * s_n + cells.site) * h_n + cells.period
        self.order = np.argsort(self.keys)
        self.has_prev, self.prev = _find(self.keys, self.order, self.keys - 1)
        self.has_prev &= cells.period > 0
        self.has_next, self.next = _find(self.keys, self.order, self.keys + 1)
        self.has_next &= cells.period < h_n - 1
        self.jh, self.jh_of_cell = np.unique(cells.job * h_n + cells.period, return_inverse=True)
        self.job_of_jh = self.jh // h_n
        self.multi = problem.jobs.allowed.sum(axis=1) > 1

        n0, n_jh = lp.cost.size, self.jh.size
        self.ov = n0 + np.arange(n)
        self.y = self.ov + n
        self.z = self.y + n  # used where has_prev
        self.u = self.z + n  # used for cells of multi-site jobs
        self.starts = n0 + 4 * n + np.arange(n_jh)
        self.moves = self.starts + n_jh
        self.n_cols = n0 + 4 * n + 2 * n_jh
        self.rows = Rows(lp.matrix.shape[0])

    def link_work(self) -> None:
        """work + overhead <= max accelerators x share of the period x y."""
        c, jobs, t = self.cells, self.problem.jobs, self.rows
        row = t.new("work_link", c.size, -np.inf, 0.0) + np.arange(c.size)
        t.entries(row, c.column, 1.0)
        t.entries(row, self.ov, 1.0)
        t.entries(row, self.y, -jobs.max_accelerators[c.job] * jobs.available[c.job, c.period])

    def boundaries(self) -> None:
        """z <= y and z <= y of the period before: running across a boundary is running on
        both sides of it."""
        idx = np.flatnonzero(self.has_prev)
        t = self.rows
        row = t.new("boundary_now", idx.size, -np.inf, 0.0) + np.arange(idx.size)
        t.entries(row, self.z[idx], 1.0)
        t.entries(row, self.y[idx], -1.0)
        row = t.new("boundary_before", idx.size, -np.inf, 0.0) + np.arange(idx.size)
        t.entries(row, self.z[idx], 1.0)
        t.entries(row, self.y[self.prev[idx]], -1.0)
        # A job runs at one site at a time.
        multi = np.flatnonzero(self.has_prev & self.multi[self.cells.job])
        first = t.new("one_site_at_a_time", self.jh.size, -np.inf, 1.0)
        t.entries(first + self.jh_of_cell[multi], self.z[multi], 1.0)

    def starts_in_periods(self) -> None:
        """Segments that begin in a period: one per site it runs at there without running
        across the period's opening boundary; and one if it runs across both boundaries but
        not the whole period at its least parallelism (a gap inside)."""
        c, t, n_jh = self.cells, self.rows, self.jh.size
        first = t.new("starts_at_sites", n_jh, -np.inf, 0.0)
        t.entries(first + self.jh_of_cell, self.y, 1.0)
        idx = np.flatnonzero(self.has_prev)
        t.entries(first + self.jh_of_cell[idx], self.z[idx], -1.0)
        t.entries(first + np.arange(n_jh), self.starts, -1.0)

        # z(h) + z(h+1) - 1 <= starts(h) + (work + overhead)(h) / least parallelism
        first = t.new("starts_inside", n_jh, -np.inf, 1.0)
        t.entries(first + self.jh_of_cell[idx], self.z[idx], 1.0)
        nxt = np.flatnonzero(self.has_next)
        t.entries(first + self.jh_of_cell[nxt], self.z[self.next[nxt]], 1.0)
        t.entries(first + np.arange(n_jh), self.starts, -1.0)
        share = -1.0 / self.least[c.job]
        t.entries(first + self.jh_of_cell, c.column, share)
        t.entries(first + self.jh_of_cell, self.ov, share)

    def moves_in_periods(self) -> None:
        """Moves (multi-site jobs): every site beyond the first it runs at in a period, and a
        segment at a site it did not run at in the period before while it ran elsewhere."""
        c, t, n_jh = self.cells, self.rows, self.jh.size
        h_n, s_n = self.problem.n_periods, self.problem.n_sites
        multi = self.multi[c.job]
        jh_multi = self.multi[self.job_of_jh]
        first = t.new("moves_sites", n_jh, -np.inf, np.where(jh_multi, 1.0, np.inf))
        t.entries(first + self.jh_of_cell[multi], self.y[multi], 1.0)
        t.entries(first + np.arange(n_jh), self.moves, -1.0)

        # u >= y - y(period before), where the cell before exists (else u = y is implied
        # by the next rows using y directly).
        idx = np.flatnonzero(multi & self.has_prev)
        row = t.new("fresh_segments", idx.size, -np.inf, 0.0) + np.arange(idx.size)
        t.entries(row, self.y[idx], 1.0)
        t.entries(row, self.y[self.prev[idx]], -1.0)
        t.entries(row, self.u[idx], -1.0)
        fresh = np.where(self.has_prev, self.u, self.y)

        idx = np.flatnonzero(multi & (c.period > 0))
        row = t.new("moves_from_elsewhere", idx.size, -np.inf, 1.0) + np.arange(idx.size)
        t.entries(row, fresh[idx], 1.0)
        t.entries(row, self.moves[self.jh_of_cell[idx]], -1.0)
        for other in range(s_n):
            wanted = (c.job[idx] * s_n + other) * h_n + c.period[idx] - 1
            found, where = _find(self.keys, self.order, wanted)
            hit = found & (c.site[idx] != other)
            t.entries(row[hit], self.y[where[hit]], 1.0)

    def returns_in_periods(self) -> None:
        """A job that runs at a site across both boundaries of a period and at another site
        inside it went and came back: one segment and one move more than the rows above count
        (they count each site once per period). Per such cell, with ``k`` other sites it runs
        at in the period, ``starts >= sites - crossings + z(h) + z(h+1) + k / (sites
        allowed - 1) - 2``, and ``moves >= sites - 1 + ...`` likewise; the share ``k / (sites
        allowed - 1)`` is at most 1, and ``starts`` and ``moves`` are whole numbers, so a
        return counts once however many sites it visited."""
        c, t = self.cells, self.rows
        h_n, s_n = self.problem.n_periods, self.problem.n_sites
        idx = np.flatnonzero(self.multi[c.job] & self.has_prev & self.has_next)
        others = 1.0 / np.maximum(self.problem.jobs.allowed.sum(axis=1) - 1, 1)
        for family, column, lower in (
            ("returns_starts", self.starts, -2.0),
            ("returns_moves", self.moves, -3.0),
        ):
            row = t.new(family, idx.size, lower, np.inf) + np.arange(idx.size)
            t.entries(row, column[self.jh_of_cell[idx]], 1.0)
            t.entries(row, self.z[idx], -1.0)
            t.entries(row, self.z[self.next[idx]], -1.0)
            for other in range(s_n):
                wanted = (c.job[idx] * s_n + other) * h_n + c.period[idx]
                found, where = _find(self.keys, self.order, wanted)
                away = found & (c.site[idx] != other)
                t.entries(row[found], self.y[where[found]], -1.0)
                t.entries(row[away], self.y[where[away]], -others[c.job[idx[away]]])
                if family == "returns_starts":
                    crossing = found & self.has_prev[where]
                    t.entries(row[crossing], self.z[where[crossing]], 1.0)

    def overhead_paid(self) -> None:
        """Overhead paid in the window covers a restore for every segment but the first, and
        a migration for every move, each on at least the least parallelism."""
        c, t = self.cells, self.rows
        least = self.least
        restore = least * self.checkpoint
        first = t.new("overhead_paid", len(self.problem.jobs), -restore, np.inf)
        t.entries(first + c.job, self.ov, self.problem.period_h)
        job_of_jh = self.job_of_jh
        t.entries(first + job_of_jh, self.starts, -restore[job_of_jh])
        t.entries(first + job_of_jh, self.moves, -(least * self.migration)[job_of_jh])

    def time_in_window(self) -> None:
        """A job does no work while it restores or migrates, and at most its full parallelism
        while it works, all within its window: work done + max accelerators x overhead hours
        <= max accelerators x (window + one restore, the first segment's, which is free).

        The overhead rows above charge overhead as accelerator-hours on the least parallelism,
        which on a wide job is a small share of its window: without this row, a job with an
        hour of slack could move a dozen times. Here each restore and move takes its hours of
        the window from the work, as in the simulator."""
        c, t, jobs = self.cells, self.rows, self.problem.jobs
        period_h = self.problem.period_h
        full = jobs.max_accelerators
        window_h = jobs.available.sum(axis=1) * period_h
        upper = full * (window_h + self.checkpoint)
        first = t.new("time_in_window", len(jobs), -np.inf, upper)
        t.entries(first + c.job, c.column, period_h)
        job_of_jh = self.job_of_jh
        t.entries(first + job_of_jh, self.starts, (full * self.checkpoint)[job_of_jh])
        t.entries(first + job_of_jh, self.moves, (full * self.migration)[job_of_jh])

    def program(self) -> LinearProgram:
        """The LP with the columns and rows added, and the integer columns marked."""
        lp, t, n0, n = self.lp, self.rows, self.lp.cost.size, self.cells.size
        # Overhead columns count as busy accelerators where work does.
        busy = np.zeros(lp.matrix.shape[0], bool)
        for family in BUSY_FAMILIES:
            if family in lp.row_families:
                lo, hi = lp.row_families[family]
                busy[lo:hi] = True
        copied = sp.diags(busy.astype(float)) @ lp.matrix[:, self.cells.column]
        top = sp.hstack(
            [lp.matrix, copied, sp.csc_matrix((lp.matrix.shape[0], self.n_cols - n0 - n))],
            format="csc",
        )
        added = sp.csc_matrix(
            (
                np.concatenate(t.vals),
                (np.concatenate(t.rows) - t.first, np.concatenate(t.cols)),
            ),
            shape=(t.count - t.first, self.n_cols),
        )
        matrix = sp.vstack([top, added], format="csc")
        matrix.sum_duplicates()
        n_jh = self.jh.size
        upper = np.concatenate(
            [lp.col_upper, np.full(n, np.inf), np.ones(3 * n), np.full(2 * n_jh, np.inf)]
        )
        upper[self.z[~self.has_prev]] = 0.0
        upper[self.u[~(self.multi[self.cells.job] & self.has_prev)]] = 0.0
        integrality = np.zeros(self.n_cols, bool)
        integrality[self.y] = True
        integrality[self.z] = True
        integrality[self.starts] = True
        integrality[self.moves[self.multi[self.job_of_jh]]] = True
        families = {**lp.row_families, **t.families}
        return LinearProgram(
            cost=np.concatenate([lp.cost, np.zeros(self.n_cols - n0)]),
            col_lower=np.concatenate([lp.col_lower, np.zeros(self.n_cols - n0)]),
            col_upper=upper,
            matrix=matrix,
            row_lower=np.concatenate([lp.row_lower, *t.lower]),
            row_upper=np.concatenate([lp.row_upper, *t.upper]),
            offset=lp.offset,
            layout=lp.layout,
            row_families=families,
            integrality=integrality,
        )


def solve_integer_bound(
    scenario: Scenario,
    period_h: float = 1.0,
    time_limit_s: float = 120.0,
    threads: int = 1,
) -> IntegerBound:
    """Solve the bound on ``scenario`` (planning periods of ``period_h`` hours) with at most
    ``time_limit_s`` seconds of branch and bound.

    Where HiGHS's dual bound is below the oracle's LP bound — as where the search has not got
    past its root by the time limit, on a loaded machine — the program's LP relaxation is
    solved too (at most ``max(time_limit_s, 600)`` seconds, as the oracle's LP), and the bound
    is the higher of the two (both are bounds).
    """
    started = time.perf_counter()
    lp_limit_s = max(time_limit_s, 600.0)
    problem = oracle_problem(scenario, period_h)
    oracle_lp = solve(build(problem), time_limit_s=lp_limit_s, threads=threads)
    lp_bound = oracle_lp.objective if oracle_lp.ok else float("nan")
    milp = build_integer_bound(problem)
    solution = solve(milp, time_limit_s=time_limit_s, threads=threads)
    bound, status = solution.dual_bound, solution.status
    relaxation = float("nan")
    if not bound >= lp_bound:  # (also where either is nan)
        # A search that got past its root is rarely below the oracle's LP; one that did not
        # may be far below. Where below, the program's own LP relaxation is solved: the bound
        # is never under it.
        relaxed = solve(replace(milp, integrality=None), lp_limit_s, threads)
        relaxation = relaxed.objective if relaxed.ok else float("-inf")
        if not np.isfinite(bound) or bound < relaxation - 1e-9 * max(abs(relaxation), 1.0):
            bound = relaxation
            status = f"{status}; bound: the LP relaxation ({relaxed.status})"
    return IntegerBound(
        objective_usd=bound,
        relaxation_usd=relaxation,
        lp_objective_usd=lp_bound,
        incumbent_usd=solution.objective,
        gap=solution.gap,
        status=status,
        seconds=time.perf_counter() - started,
        rows=int(milp.matrix.shape[0]),
        columns=int(milp.matrix.shape[1]),
        binaries=int(milp.integrality.sum()) if milp.integrality is not None else 0,
        nodes=solution.nodes,
        period_h=period_h,
    )
