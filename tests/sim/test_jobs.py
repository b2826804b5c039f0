"""The batch job table: progress, overheads, moves and stops, completion times, deadlines and
arrivals, for allocation sequences worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.builders import job, scenario, site
from wattroute.model import BatchJob
from wattroute.model.arrays import JobArrays
from wattroute.sim.jobs import JobTable

HOUR = pd.Timedelta("1h")
A, B = 0, 1  # site indices


def _table(*jobs: BatchJob) -> JobTable:
    """A job table over two sites, on hourly steps."""
    sites = [site(name, n=24, step=HOUR) for name in ("a", "b")]
    return JobTable(JobArrays.from_scenario(scenario(sites, n=24, jobs=jobs, step=HOUR)))


def _allocate(table: JobTable, site_index: int, accelerators: int, step: int) -> None:
    """Run job 0 at ``site_index`` (-1: stop it) on ``accelerators`` from hour ``step``."""
    table.apply_allocation(
        np.array([0]), np.array([site_index]), np.array([accelerators]), step=step
    )


def test_a_job_stopped_and_moved_twice_pays_its_overheads_and_finishes_when_computed() -> None:
    # 10 accelerator-hours, checkpoint 0.5 h after a stop, 0.25 h more to resume elsewhere.
    table = _table(job("j", 0.0, 10.0, 4, 8.0, checkpoint_h=0.5, migration_h=0.25))
    ids = np.array([0])
    table.arrive_until(0)
    assert table.active_ids().tolist() == [0]

    # Hours 0-2 at a on 2: a first start owes nothing; 2 x 2 = 4 done.
    _allocate(table, A, 2, step=0)
    assert table.pending_overhead_h.tolist() == [0.0]
    table.advance(ids, 0.0, 2.0)
    assert table.done.tolist() == [4.0]

    # Hour 2-3 stopped: a stop, and the restore is owed from now on; no progress.
    _allocate(table, -1, 0, step=2)
    assert (table.stops.tolist(), table.moves.tolist()) == ([1], [0])
    assert table.owed_overhead_h(ids).tolist() == [0.5]
    assert table.hours_to_completion(ids).tolist() == [np.inf]
    table.advance(ids, 2.0, 1.0)
    assert table.done.tolist() == [4.0]

    # Hours 3-5 at b on 3: resumes elsewhere, owes 0.5 + 0.25 = 0.75 h, then 3 x 1.25 = 3.75.
    _allocate(table, B, 3, step=3)
    assert table.pending_overhead_h.tolist() == [0.75]
    assert (table.stops.tolist(), table.moves.tolist()) == ([1], [1])
    table.advance(ids, 3.0, 2.0)
    assert table.done.tolist() == [7.75]
    assert table.overhead_paid_h.tolist() == [0.75]

    # From hour 5 at a on 4, moved while running: a stop and a move, 0.75 h owed again;
    # 2.25 left: done 0.75 + 2.25 / 4 = 1.3125 h later, at 6.3125.
    _allocate(table, A, 4, step=5)
    assert (table.stops.tolist(), table.moves.tolist()) == ([2], [2])
    assert table.hours_to_completion(ids).tolist() == [1.3125]
    table.advance(ids, 5.0, 3.0)
    assert table.completed_h.tolist() == [6.3125]
    assert table.finished.tolist() == [True]
    assert table.done.tolist() == [10.0]
    assert table.remaining.tolist() == [0.0]
    assert table.overhead_paid_h.tolist() == [1.5]
    assert (table.site.tolist(), table.accelerators.tolist()) == ([-1], [0])
    assert table.active_ids().tolist() == []

    # Finished before its deadline at 8 h: nothing undone there.
    table.close_deadlines(8.0)
    assert table.remaining_at_deadline.tolist() == [0.0]
    history = table.allocation_history()
    assert history["step"].tolist() == [0, 2, 3, 5]
    assert history["site"].tolist() == [A, -1, B, A]
    assert history["accelerators"].tolist() == [2, 0, 3, 4]


def test_resuming_where_it_stopped_costs_the_checkpoint_only_and_resizing_costs_nothing() -> None:
    table = _table(job("j", 0.0, 10.0, 4, 8.0, checkpoint_h=0.5, migration_h=0.25))
    table.arrive_until(0)
    _allocate(table, A, 2, step=0)
    _allocate(table, A, 4, step=1)  # more accelerators at the same site: free
    assert table.pending_overhead_h.tolist() == [0.0]
    assert (table.stops.tolist(), table.moves.tolist()) == ([0], [0])
    _allocate(table, -1, 0, step=2)
    _allocate(table, A, 1, step=3)  # back where it ran
    assert table.pending_overhead_h.tolist() == [0.5]
    assert (table.stops.tolist(), table.moves.tolist()) == ([1], [0])
    _allocate(table, A, 1, step=4)  # the same allocation again: no change recorded
    assert table.allocation_history()["step"].tolist() == [0, 1, 2, 3]


def test_work_undone_at_a_deadline_inside_a_block_is_what_the_allocation_leaves() -> None:
    # 10 accelerator-hours on 2 from hour 0, due at 3: 2 x 3 = 6 done by then, 4 undone; it
    # finishes at 10 / 2 = 5 h, late.
    table = _table(job("late", 0.0, 10.0, 2, 3.0))
    ids = np.array([0])
    table.arrive_until(0)
    _allocate(table, A, 2, step=0)
    table.advance(ids, 0.0, 6.0)
    assert table.remaining_at_deadline.tolist() == [4.0]
    assert table.completed_h.tolist() == [5.0]


def test_overhead_owed_counts_against_the_work_done_by_a_deadline() -> None:
    # Stopped at 1 h after 2 x 1 = 2 done, resumed at b at 2 h owing 0.5 + 0.25 h; due at 4:
    # 2 x (2 - 0.75) = 2.5 more by then, 10 - 2 - 2.5 = 5.5 undone.
    table = _table(job("j", 0.0, 10.0, 2, 4.0, checkpoint_h=0.5, migration_h=0.25))
    ids = np.array([0])
    table.arrive_until(0)
    _allocate(table, A, 2, step=0)
    table.advance(ids, 0.0, 1.0)
    _allocate(table, -1, 0, step=1)
    table.advance(ids, 1.0, 1.0)
    _allocate(table, B, 2, step=2)
    table.advance(ids, 2.0, 5.0)
    assert table.remaining_at_deadline.tolist() == [5.5]
    # It finishes 0.75 + 8 / 2 = 4.75 h after 2.
    assert table.completed_h.tolist() == [6.75]


def test_deadlines_close_with_the_work_left_and_only_up_to_the_end() -> None:
    table = _table(
        job("idle", 0.0, 6.0, 2, 2.0),  # never runs: all 6 undone at 2 h
        job("part", 0.0, 6.0, 2, 5.0),  # runs 1 h on 2: 4 undone at the end, its deadline 5
        job("after", 0.0, 6.0, 2, 30.0),  # due after the end of the run: not closed
    )
    ids = np.array([0, 1, 2])
    table.arrive_until(0)
    table.apply_allocation(ids, np.array([-1, A, -1]), np.array([0, 2, 0]), step=0)
    table.advance(ids, 0.0, 1.0)
    table.apply_allocation(ids, np.array([-1, -1, -1]), np.array([0, 0, 0]), step=1)
    table.advance(ids, 1.0, 1.5)  # to 2.5 h: the first deadline falls inside
    assert table.remaining_at_deadline[0] == 6.0
    table.close_deadlines(5.0)
    np.testing.assert_array_equal(table.remaining_at_deadline, [6.0, 4.0, np.nan])
    assert np.isnan(table.completed_h).all()


def test_jobs_become_active_at_the_first_step_at_or_after_their_arrival() -> None:
    # Hourly steps: arrivals at 2.5 h and 1 h become active at steps 3 and 1.
    table = _table(job("later", 2.5, 1.0, 1, 10.0), job("sooner", 1.0, 1.0, 1, 10.0))
    table.arrive_until(0)
    assert table.active_ids().tolist() == []
    table.arrive_until(2)
    assert table.active_ids().tolist() == [1]
    table.arrive_until(3)
    assert table.active_ids().tolist() == [1, 0]  # in arrival order


def test_finished_jobs_leave_the_active_set_and_the_rest_keep_running() -> None:
    table = _table(job("short", 0.0, 1.0, 1, 10.0), job("long", 0.0, 5.0, 1, 10.0))
    ids = np.array([0, 1])
    table.arrive_until(0)
    table.apply_allocation(ids, np.array([A, B]), np.array([1, 1]), step=0)
    table.advance(ids, 0.0, 2.0)
    assert table.completed_h.tolist() == pytest.approx([1.0, np.nan], nan_ok=True)
    assert table.active_ids().tolist() == [1]
    assert table.done.tolist() == [1.0, 2.0]
    assert table.hours_to_completion(np.array([1])).tolist() == [3.0]
