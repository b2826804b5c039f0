"""The controller keeps the active jobs in memory and reads only what changed since its last
tick: submissions and cancellations by any process, on SQLite and PostgreSQL, across a
restart, and with transactions that commit out of the order of their marks."""

from __future__ import annotations

import subprocess
import sys
import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.builders import job_record, small_fleet
from wattroute.policies import get_policy
from wattroute.runtime import JobRecord, ManualClock, build_controller
from wattroute.runtime.controller import Controller
from wattroute.runtime.records import JobChanges
from wattroute.service.server import open_store
from wattroute.service.store import SqlStore


def _job(i: int, start: pd.Timestamp, work: float = 4.0, slack: float = 6.0) -> JobRecord:
    """Job ``i``, submitted ``i`` minutes after ``start``, of tenant ``t`` or ``u`` by turns."""
    return job_record(
        i,
        start + pd.Timedelta(minutes=i),
        work,
        slack,
        tenant="t" if i % 2 else "u",
        idempotency_key=f"k{i}",
    )


def _controller(sc, store, policy: str = "greedy") -> Controller:
    return build_controller(sc, store, get_policy(policy), ManualClock(sc.start))


def _same_as_store(controller: Controller, store: SqlStore) -> None:
    """What the controller keeps is what reading every active job would give, in order."""
    assert controller.active_jobs == store.active_jobs()


class FullReload(SqlStore):
    """The store as the controller used it before: every active job, every tick."""

    def job_changes(self, since: int | None) -> JobChanges:
        return super().job_changes(None)


def test_the_jobs_kept_in_memory_follow_every_change_by_any_process(database_url):
    sc = small_fleet()
    store = open_store(database_url)
    for i in range(6):
        store.submit_job(_job(i, sc.start, work=0.5 if i == 0 else 8.0))
    controller = _controller(sc, store)
    controller.tick()
    _same_as_store(controller, store)
    running = next(j for j in controller.active_jobs if j.state == "running" and j.id != "job-0")

    # Another process cancels a running job and submits one between two ticks.
    script = (
        "import sys, pandas as pd\n"
        "from wattroute.service.server import open_store\n"
        "from tests.service.test_job_changes import _job\n"
        "store = open_store(sys.argv[1])\n"
        "store.cancel_job(sys.argv[2])\n"
        "store.submit_job(_job(40, pd.Timestamp(sys.argv[3])))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, database_url, running.id, sc.start.isoformat()],
        check=True,
        timeout=120,
    )
    tick = controller.tick()
    assert running.id not in tick.plan["jobs"]
    assert running.id not in {j.id for j in controller.active_jobs}
    assert "job-40" in {j.id for j in controller.active_jobs}
    _same_as_store(controller, store)
    cancelled = store.job(running.id)
    assert cancelled is not None
    assert cancelled.state == "cancelled"

    # Job 0 (half an accelerator-hour) finishes: it leaves the kept jobs and stays completed.
    for _ in range(24):
        controller.tick()
        _same_as_store(controller, store)
    finished = store.job("job-0")
    assert finished is not None
    assert finished.state == "completed"
    assert "job-0" not in {j.id for j in controller.active_jobs}

    # A restarted controller reads every active job again, then goes on by changes.
    resumed = _controller(sc, store)
    store.submit_job(_job(41, sc.start))
    resumed.tick()
    _same_as_store(resumed, store)
    assert "job-41" in {j.id for j in resumed.active_jobs}


def test_decisions_are_the_same_as_reading_every_active_job(tmp_path):
    sc = small_fleet()
    stores = [
        open_store(f"sqlite:///{tmp_path / 'changes.db'}"),
        FullReload(open_store(f"sqlite:///{tmp_path / 'all.db'}").engine),
    ]
    controllers = []
    for store in stores:
        for i in range(8):
            store.submit_job(_job(i, sc.start, work=2.0 + i))
        controllers.append(_controller(sc, store))
    for step in range(30):
        if step == 3:  # submitted earlier than jobs already kept: planned in its place
            for store in stores:
                store.submit_job(_job(-5, sc.start - pd.Timedelta(hours=1)))
        if step == 5:
            for store in stores:
                store.cancel_job("job-3")
        if step % 7 == 6:
            for store in stores:
                store.submit_job(_job(100 + step, sc.start + pd.Timedelta(minutes=5 * step)))
        ticks = [c.tick() for c in controllers]
        assert ticks[0].plan == ticks[1].plan
        assert ticks[0].outcome == ticks[1].outcome
    assert [j.id for j in controllers[0].active_jobs] == [j.id for j in controllers[1].active_jobs]


def test_a_change_committed_after_a_later_one_is_not_missed(database_url):
    """Transaction A marks a job first but commits after transaction B: the controller that
    read B's change must still read A's next time."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite commits one writer at a time: marks commit in their order")
    start = pd.Timestamp("2023-06-01T00:00Z")
    store = open_store(database_url)
    store.submit_job(_job(1, start))
    first = store.job_changes(None)
    assert [j.id for j in first.jobs] == ["job-1"]

    slow = store.engine.connect()
    slow.begin()
    slow.execute(
        sa.text(
            "UPDATE jobs SET state = 'cancelled', changed_in = "
            "pg_current_xact_id()::text::bigint WHERE id = 'job-1'"
        )
    )
    store.submit_job(_job(2, start))  # B: a larger mark, committed first

    seen = store.job_changes(first.since)
    assert [j.id for j in seen.jobs] == ["job-2"]
    slow.commit()
    slow.close()
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, changed_in FROM jobs")).all()
    marks: dict[str, int] = {str(job): int(mark) for job, mark in rows}
    assert marks["job-1"] < marks["job-2"]  # a reader of "larger than the last seen" misses it

    after = store.job_changes(seen.since)
    states = {j.id: j.state for j in after.jobs}
    assert states["job-1"] == "cancelled"


def test_the_controller_sees_changes_that_were_in_flight_during_its_load(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite commits one writer at a time: marks commit in their order")
    sc = small_fleet()
    store = open_store(database_url)
    for i in range(3):
        store.submit_job(_job(i, sc.start, work=8.0))
    controller = _controller(sc, store)
    controller.tick()

    # A submission in flight while a later one commits and the controller loads.
    late = _job(8, sc.start)
    slow = store.engine.connect()
    slow.begin()
    slow.execute(
        sa.text(
            "INSERT INTO jobs (id, tenant, name, submitted_at, deadline, "
            "work_accelerator_hours, min_accelerators, max_accelerators, checkpoint_overhead_h, "
            "migration_overhead_h, args, state, done_accelerator_hours, accelerators, "
            "pending_overhead_h, overhead_paid_h, moves, stops, updated_at, changed_in) "
            "VALUES (:id, 't', 'late', :at, :deadline, 4.0, 1, 2, 0.1, 0.0, '{}', 'queued', "
            "0.0, 0, 0.0, 0.0, 0, 0, now(), pg_current_xact_id()::text::bigint)"
        ),
        {"id": late.id, "at": late.submitted_at, "deadline": late.deadline},
    )
    store.submit_job(_job(7, sc.start))
    controller.tick()
    kept = {j.id for j in controller.active_jobs}
    assert "job-7" in kept
    assert late.id not in kept
    slow.commit()
    slow.close()
    controller.tick()
    assert late.id in {j.id for j in controller.active_jobs}
    _same_as_store(controller, store)

    # A cancellation in flight while the tick writes the job's progress: the tick waits for
    # it, leaves the job cancelled, and the next tick drops it.
    slow = store.engine.connect()
    slow.begin()
    slow.execute(
        sa.text(
            "UPDATE jobs SET state = 'cancelled', site = NULL, accelerators = 0, changed_in = "
            "pg_current_xact_id()::text::bigint WHERE id = 'job-1'"
        )
    )

    def finish() -> None:
        slow.commit()
        slow.close()

    timer = threading.Timer(0.5, finish)
    timer.start()
    controller.tick()
    timer.join()
    cancelled = store.job("job-1")
    assert cancelled is not None
    assert cancelled.state == "cancelled"
    tick = controller.tick()
    assert "job-1" not in tick.plan["jobs"]
    _same_as_store(controller, store)


def test_concurrent_cancellations_and_ticks_keep_memory_and_store_alike(database_url):
    sc = small_fleet()
    store = open_store(database_url)
    for i in range(20):
        store.submit_job(_job(i, sc.start, work=6.0))
    controller = _controller(sc, store, "agnostic")
    stop = threading.Event()
    api = open_store(database_url)  # another engine: other connections, as another process

    def churn() -> None:
        i = 100
        while not stop.is_set():
            api.submit_job(_job(i, sc.start + pd.Timedelta(hours=1)))
            api.cancel_job(f"job-{i - 100}")
            i += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(15):
            controller.tick()
    finally:
        stop.set()
        worker.join()
    controller.tick()  # everything committed before this tick is in
    _same_as_store(controller, store)
