"""Submissions committed in groups: each stored exactly once, answered only once committed,
idempotency keys honoured per tenant, and a submission the database refuses fails alone."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, cast

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

from wattroute.runtime import JobRecord
from wattroute.service.db import JobRow
from wattroute.service.server import open_store
from wattroute.service.store import SqlStore

T0 = pd.Timestamp("2023-06-01T00:00Z")


def _job(job_id: str, tenant: str, key: str | None) -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant=tenant,
        name=job_id,
        submitted_at=T0,
        deadline=T0 + pd.Timedelta(hours=8),
        work_accelerator_hours=4.0,
        min_accelerators=1,
        max_accelerators=2,
        idempotency_key=key,
    )


def _submit_all(store: SqlStore, jobs: list[JobRecord], check: SqlStore) -> list[Any]:
    """Submit ``jobs`` at once from a thread each; per job its answer or its error, and
    whether the job it was answered with was readable from ``check`` when the answer came."""
    barrier = threading.Barrier(len(jobs))
    out: list[Any] = [None] * len(jobs)

    def submit(i: int) -> None:
        barrier.wait()
        try:
            job, created = store.submit_job(jobs[i])
        except Exception as exc:
            out[i] = exc
            return
        out[i] = (job, created, check.job(job.id) is not None)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_submissions_are_stored_once_and_answered_after_commit(database_url):
    store = open_store(database_url)
    check = open_store(database_url)  # other connections: what another process would read
    jobs = []
    for i in range(48):
        tenant = "acme" if (i // 12) % 2 else "zeta"
        # Each key k0..k11 is sent twice by each of two tenants: one job per tenant and key.
        jobs.append(_job(f"job-{i}", tenant, f"k{i % 12}"))
    jobs += [_job(f"free-{i}", "acme", None) for i in range(16)]
    answers = _submit_all(store, jobs, check)

    assert all(isinstance(a, tuple) for a in answers)
    assert all(readable for _, _, readable in answers), "answered before its commit"
    created = [job.id for job, new, _ in answers if new]
    assert len(created) == len(set(created)) == 12 * 2 + 16
    # Every submission of one (tenant, key) is answered with the one job stored for it.
    by_key: dict[tuple[str, str], set[str]] = {}
    for sent, (job, _, _) in zip(jobs, answers, strict=True):
        assert job.tenant == sent.tenant
        if sent.idempotency_key is not None:
            by_key.setdefault((sent.tenant, sent.idempotency_key), set()).add(job.id)
    assert all(len(ids) == 1 for ids in by_key.values())
    assert len(by_key) == 24
    assert store.jobs("acme")[1] + store.jobs("zeta")[1] == 24 + 16
    assert store.submissions.groups < len(jobs), "no two submissions shared a commit"


def test_a_refused_submission_fails_alone(database_url, monkeypatch):
    store = open_store(database_url)
    store.submit_job(_job("taken", "acme", None))
    # Hold the first group's commit until every other submission waits, so that they all
    # go into the next group together, the bad one with them.
    insert = store._insert_jobs
    release = threading.Event()
    calls = []

    def held(rows: list[dict[str, Any]]) -> set[str]:
        calls.append(len(rows))
        if len(calls) == 1:
            release.wait(10)
        return insert(rows)

    monkeypatch.setattr(store, "_insert_jobs", held)
    first = threading.Thread(target=store.submit_job, args=(_job("first", "acme", "a"),))
    first.start()
    while not calls:
        threading.Event().wait(0.01)
    jobs = [_job(f"job-{i}", "acme", f"k{i}") for i in range(6)]
    jobs.append(_job("taken", "zeta", "z"))  # an id already stored: the database refuses it
    jobs.append(_job("job-dup", "acme", "k2"))  # a repeated key in the same group

    answers: list[Any] = [None] * len(jobs)

    def submit(i: int) -> None:
        try:
            answers[i] = store.submit_job(jobs[i])
        except Exception as exc:
            answers[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    while len(store.submissions._queue) < len(jobs):
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *threads]:
        t.join()

    assert calls[:2] == [1, len(jobs)]  # one group of them all, refused, then one by one
    assert isinstance(answers[6], IntegrityError)
    for i in range(6):
        job, created = answers[i]
        assert created
        assert store.job(job.id) is not None
    repeated, created = answers[7]
    assert not created
    assert repeated.id == "job-2"
    assert store.jobs("zeta")[1] == 0
    assert store.jobs("acme")[1] == 1 + 1 + 6


@pytest.mark.parametrize("n", [1, 5])
def test_a_group_answers_each_submission_with_its_own_job(database_url, n):
    store = open_store(database_url)
    answers = _submit_all(store, [_job(f"j{i}", "acme", f"k{i}") for i in range(n)], store)
    assert sorted(job.id for job, created, _ in answers if created) == [f"j{i}" for i in range(n)]


def test_coroutines_and_threads_share_groups_and_are_answered_after_commit(database_url):
    store = open_store(database_url)
    check = open_store(database_url)
    coroutine_jobs = [_job(f"co-{i}", "acme", f"c{i % 6}") for i in range(12)]
    thread_jobs = [_job(f"th-{i}", "acme", f"c{i}") for i in range(3)]  # keys the coroutines use

    async def submit_all() -> list[Any]:
        async def one(job: JobRecord) -> Any:
            stored, created = await store.submit_job_async(job)
            return stored, created, check.job(stored.id) is not None

        return await asyncio.gather(*(one(j) for j in coroutine_jobs))

    thread_answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda j=j: thread_answers.append(store.submit_job(j)))
        for j in thread_jobs
    ]
    for t in threads:
        t.start()
    answers = asyncio.run(submit_all())
    for t in threads:
        t.join()

    assert all(readable for _, _, readable in answers), "answered before its commit"
    by_key: dict[str | None, set[str]] = {}
    for sent, (job, _, _) in zip(coroutine_jobs, answers, strict=True):
        by_key.setdefault(sent.idempotency_key, set()).add(job.id)
    for job, _ in thread_answers:
        by_key[job.idempotency_key].add(job.id)
    assert len(by_key) == 6
    assert all(len(ids) == 1 for ids in by_key.values())  # one job per key, whoever sent it
    created = [c for _, c, _ in answers] + [c for _, c in thread_answers]
    assert sum(created) == 6  # one job per key in all
    assert store.jobs("acme")[1] == 6
    assert store.submissions.groups < len(coroutine_jobs) + len(thread_jobs)


def test_a_refused_coroutine_submission_raises_in_its_coroutine(database_url):
    store = open_store(database_url)
    store.submit_job(_job("taken", "acme", None))
    with pytest.raises(IntegrityError):
        asyncio.run(store.submit_job_async(_job("taken", "zeta", None)))


def test_a_group_stores_the_rows_a_single_insert_would(database_url):
    """The group's statement (on PostgreSQL one over arrays of values) stores each job as
    SQLAlchemy's own insert of the same values does: numbers, times, JSON (None as JSON
    null), texts."""
    store = open_store(database_url)
    jobs = [
        dataclasses.replace(
            _job(f"g-{i}", "acme", f"k{i}"),
            work_accelerator_hours=3 if i % 2 else 2.5,  # ints among floats
            allowed_sites=None if i % 2 else ("a", "b"),
            args={} if i % 2 else {"x": [1, 2.5, None, "é"]},
            function=None if i % 2 else "wattroute.examples:sleep",
        )
        for i in range(4)
    ]
    pending = [store._pending(job) for job in jobs]
    assert store._insert_jobs([p.values for p in pending]) == {job.id for job in jobs}
    table = cast(Table, JobRow.__table__)
    with store.engine.begin() as c:
        for job in jobs:
            values = dict(store._pending(dataclasses.replace(job, id="core-" + job.id)).values)
            values["idempotency_key"] = "core-" + str(job.idempotency_key)
            c.execute(store._insert(JobRow).values(changed_in=0), [values])
    skip = {"id", "idempotency_key", "updated_at", "changed_in"}
    columns = [col for col in table.c if col.name not in skip]
    text_of = [
        sa.cast(col, sa.Text) if col.name in ("args", "allowed_sites") else col for col in columns
    ]
    with store.engine.connect() as c:
        rows = {r[0]: r[1:] for r in c.execute(sa.select(table.c.id, *text_of))}
    for job in jobs:
        assert rows[job.id] == rows["core-" + job.id]
        assert store.job(job.id) == job
