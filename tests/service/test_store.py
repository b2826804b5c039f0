"""The SQL store on SQLite and PostgreSQL: submissions, idempotency, ticks, cancellations."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from wattroute.runtime import JobRecord, ServiceRecord, SiteOverride, SiteReading, TickRecord
from wattroute.service.server import open_store
from wattroute.service.store import TokenGrant

T0 = pd.Timestamp("2023-06-01T00:00Z")


def _job(i: int, tenant: str = "acme", key: str | None = None) -> JobRecord:
    return JobRecord(
        id=f"job-{i}",
        tenant=tenant,
        name=f"j{i}",
        submitted_at=T0,
        deadline=T0 + pd.Timedelta(hours=8),
        work_accelerator_hours=4.0,
        min_accelerators=1,
        max_accelerators=2,
        allowed_sites=("a",),
        idempotency_key=key,
    )


def test_jobs_round_trip_with_utc_times(database_url):
    store = open_store(database_url)
    job, created = store.submit_job(_job(1))
    assert created
    back = store.job("job-1")
    assert back is not None
    assert back.deadline == job.deadline
    assert back.deadline.tzinfo is not None
    assert back.allowed_sites == ("a",)


def test_concurrent_submissions_with_one_key_make_one_job(database_url):
    store = open_store(database_url)
    results = []

    def submit(i: int) -> None:
        results.append(store.submit_job(_job(i, key="same")))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    assert len({job.id for job, _ in results}) == 1
    assert store.jobs("acme")[1] == 1


def test_a_tick_commits_progress_but_never_undoes_a_cancellation(database_url):
    store = open_store(database_url)
    store.submit_job(_job(1))
    store.submit_job(_job(2))
    running = store.active_jobs()
    store.cancel_job("job-2")  # lands while the tick is being computed
    for job in running:
        job.state, job.done_accelerator_hours, job.site, job.accelerators = "running", 1.5, "a", 2
    tick = TickRecord(T0, 0, 0.01, False, (), {"jobs": {}}, {"sites": {}}, {"soc_kwh": [1.0]})
    store.commit_tick(tick, running, [])
    first, second, last = store.job("job-1"), store.job("job-2"), store.last_tick()
    assert first is not None
    assert second is not None
    assert last is not None
    assert first.done_accelerator_hours == pytest.approx(1.5)
    assert second.state == "cancelled"
    assert last.state["soc_kwh"] == [1.0]


def test_progress_of_whole_and_fractional_numbers_together_is_stored(database_url):
    """A tick's progress may carry ``0`` for one job and ``1.5`` for another in the same
    column (PostgreSQL's arrays hold one type): both are stored as the numbers they are."""
    store = open_store(database_url)
    store.submit_job(_job(1))
    store.submit_job(_job(2))
    first, second = store.active_jobs()
    first.state, first.done_accelerator_hours, first.pending_overhead_h = "running", 0, 0
    second.state, second.done_accelerator_hours, second.pending_overhead_h = "running", 1.5, 0.25
    first.site = second.site = "a"
    first.accelerators, second.accelerators = 2, 3.0  # type: ignore[assignment]
    tick = TickRecord(T0, 0, 0.01, False, (), {"jobs": {}}, {"sites": {}}, {"soc_kwh": [1.0]})
    store.commit_tick(tick, [first, second], [])
    stored = {job.id: job for job in store.active_jobs()}
    assert stored[first.id].done_accelerator_hours == 0.0
    assert stored[second.id].done_accelerator_hours == 1.5
    assert stored[second.id].pending_overhead_h == 0.25
    assert (stored[first.id].accelerators, stored[second.id].accelerators) == (2, 3)


def test_tokens_overrides_and_events(database_url):
    store = open_store(database_url)
    store.add_token("acme", "read,submit", "ab" * 32)
    assert store.token("ab" * 32) == TokenGrant("acme", "read,submit", None)
    assert store.token("cd" * 32) is None
    store.set_override("a", SiteOverride(import_limit_kw=5.0, offline=True))
    assert store.site_overrides()["a"].offline
    received = pd.Timestamp("2026-11-27T06:00:00.123456Z")
    store.set_reading(SiteReading("a", T0, received, solar_kw=1.5))
    store.record_reading_compliance("a", T0 + pd.Timedelta(minutes=1), 0.5)  # not that one
    store.record_reading_compliance("a", T0, 0.25)
    store.record_reading_compliance("a", T0, 9.0)  # the first timing stands
    assert store.site_readings() == {"a": SiteReading("a", T0, received, 1.5, None, 0.25)}
    store.set_reading(SiteReading("a", T0 + pd.Timedelta(minutes=1), received, wind_kw=2.0))
    assert store.site_readings()["a"] == SiteReading(
        "a", T0 + pd.Timedelta(minutes=1), received, None, 2.0, None
    )
    event = store.add_grid_event("a", 2.0, T0, T0 + pd.Timedelta(hours=1), "DR")
    assert [e.id for e in store.grid_events(T0, T0 + pd.Timedelta(minutes=5))] == [event.id]
    assert store.grid_events(T0 + pd.Timedelta(hours=2), T0 + pd.Timedelta(hours=3)) == []


def test_the_migrations_build_the_schema_the_code_declares(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from wattroute.service.db import Base, make_engine, migrate

    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == [], "a model changed without a migration (or the reverse)"


def test_tokens_expire_and_revocation_holds_at_once(database_url):
    store = open_store(database_url)
    now = pd.Timestamp.now(tz="UTC")
    live = store.add_token("acme", "submit", "ab" * 32, "ci")
    gone = store.add_token("acme", "read", "cd" * 32, expires_at=now - pd.Timedelta(seconds=1))
    later = store.add_token("globex", "read", "ef" * 32, expires_at=now + pd.Timedelta(days=1))
    assert store.token("ab" * 32) == TokenGrant("acme", "submit")
    assert store.token("cd" * 32) is None  # expired
    grant = store.token("ef" * 32)
    assert grant is not None
    assert (grant.tenant, grant.scopes) == ("globex", "read")
    assert grant.expires_at is not None
    assert abs((grant.expires_at - (now + pd.Timedelta(days=1))).total_seconds()) < 1e-3
    assert store.revoke_token(live)
    assert not store.revoke_token(live)  # once
    assert not store.revoke_token(10_000)
    assert store.token("ab" * 32) is None
    listed = {t.id: t for t in store.tokens()}
    assert [listed[n].status(now) for n in (live, gone, later)] == [
        "revoked",
        "expired",
        "active",
    ]
    assert listed[live].label == "ci"
    assert listed[live].revoked_at is not None
    assert [t.id for t in store.tokens("globex")] == [later]


def test_services_are_per_tenant_and_created_once_under_any_race(database_url):
    store = open_store(database_url)

    def record(tenant: str, rate: float) -> ServiceRecord:
        return ServiceRecord("vision", tenant, 30.0, 5.0, 10.0, 1, {"p": rate})

    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(store.create_service(record("a", i))))
        for i in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 11 + [True]
    assert store.create_service(record("b", 99.0))
    assert [s.key for s in store.services()] == ["a/vision", "b/vision"]
    kept = store.service("a", "vision")
    assert kept is not None
    assert store.set_service_demand("b", "vision", {"p": 1.0}) is not None
    assert store.service("a", "vision") == kept
    assert store.set_service_demand("c", "vision", {"p": 1.0}) is None
    assert store.delete_service("b", "vision")
    assert not store.delete_service("b", "vision")
    assert store.services_page("a", 10, 0) == ([kept], 1)


def test_first_writes_of_a_site_are_upserts_under_any_race(database_url):
    store = open_store(database_url)
    received = pd.Timestamp("2026-11-27T06:00:00Z")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            store.set_reading(SiteReading("a", T0, received, solar_kw=float(i)))
            store.set_override("a", SiteOverride(power_cap_kw=float(i)))
        except BaseException as exc:  # any failure fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.site_readings()) == 1
    assert len(store.site_overrides()) == 1
