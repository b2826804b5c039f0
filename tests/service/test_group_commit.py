"""Submissions committed in groups: each stored exactly once, answered only once committed,
idempotency keys honoured per tenant, and a submission the database refuses fails alone."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.exc import IntegrityError

from wattroute.runtime import JobRecord
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
