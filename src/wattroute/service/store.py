"""The store on SQLAlchemy: the controller's :class:`~wattroute.runtime.records.Store`, and
what the API reads and writes.

Every method runs in its own transaction and commits before it returns, so an accepted
submission is durable before the API answers 2xx. Every create and first write is one atomic
statement, so concurrent writers never both succeed and never fail with a constraint error: a
job submitted twice with the same idempotency key (per tenant) is one job (the unique
constraint decides, under any race); a service is created by one ``INSERT ... ON CONFLICT DO
NOTHING`` (one caller gets it, the others learn it exists); a site's override and latest
reading, and the controller's heartbeat, are upserts (``INSERT ... ON CONFLICT DO UPDATE``).

Submissions are committed in groups: a submission that arrives while another group is being
committed waits for it and goes into the next group, one transaction for all of them
(:class:`GroupCommit`). Each answer still comes only after its own row is committed; a
submission the database refuses fails alone.

Every write of a job outside the controller (a submission, a cancellation) marks the job with
``changed_in``, which lets the controller read only what changed since its last tick
(:meth:`SqlStore.job_changes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session

from wattroute.runtime.providers.values import Fetched
from wattroute.runtime.records import (
    PROGRESS_FIELDS,
    GridEventRecord,
    Heartbeat,
    JobChanges,
    JobRecord,
    ServiceRecord,
    SiteOverride,
    SiteReading,
    TickRecord,
)
from wattroute.service.db import (
    GridEventRow,
    HeartbeatRow,
    JobRow,
    ServiceRow,
    SignalValueRow,
    SiteOverrideRow,
    SiteReadingRow,
    TickRow,
    TokenRow,
    UtcDateTime,
    sessions,
)

log = logging.getLogger("wattroute.store")

# Every column of a job but its id and allowed sites (stored as JSON).
JOB_FIELDS = (
    "tenant",
    "name",
    "submitted_at",
    "deadline",
    "work_accelerator_hours",
    "min_accelerators",
    "max_accelerators",
    "checkpoint_overhead_h",
    "migration_overhead_h",
    "function",
    "args",
    *PROGRESS_FIELDS,
    "idempotency_key",
    "request_hash",
)


def _ts(value: datetime | None) -> pd.Timestamp | None:
    """A timestamp from the database (which hands back UTC datetimes: UtcDateTime)."""
    if value is None:
        return None
    return pd.Timestamp(value) if value.tzinfo is UTC else pd.Timestamp(value).tz_convert("UTC")


def _dt(value: pd.Timestamp | None) -> datetime | None:
    return None if value is None else pd.Timestamp(value).to_pydatetime()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _jobs_table() -> Table:
    """The jobs table, for Core statements."""
    return cast(Table, JobRow.__table__)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


TOKEN_CHANNEL = "wattroute_tokens"
"""The PostgreSQL channel on which every creation or revocation of a token is announced."""


@dataclass(frozen=True)
class TokenGrant:
    """What a live token grants: its tenant, its stored scopes, when it expires (UTC)."""

    tenant: str
    scopes: str
    expires_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class TokenInfo:
    """What is known of a token (never the token itself). Times UTC."""

    id: int
    tenant: str
    scopes: str
    label: str
    created_at: pd.Timestamp
    expires_at: pd.Timestamp | None
    revoked: bool
    revoked_at: pd.Timestamp | None

    def status(self, now: pd.Timestamp) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def job_record(row: Row[Any]) -> JobRecord:
    """A job from a row of the jobs table (Core: the controller reads thousands per tick)."""
    m = row._mapping
    values: dict[str, Any] = {f: m[f] for f in JOB_FIELDS}
    for name in ("submitted_at", "deadline", "completed_at"):
        values[name] = _ts(values[name])
    allowed = m["allowed_sites"]
    return JobRecord(
        id=m["id"], allowed_sites=tuple(allowed) if allowed is not None else None, **values
    )


@dataclass
class _Pending:
    """One submission waiting for its group to be committed: a thread waits on ``wake``, a
    coroutine on ``future`` (of its event loop)."""

    job: JobRecord
    values: dict[str, Any]
    done: bool = False
    outcome: tuple[JobRecord, bool] | None = None
    error: BaseException | None = None
    wake: threading.Event | None = None
    future: asyncio.Future[tuple[JobRecord, bool]] | None = None


def _settle(futures: list[tuple[asyncio.Future[tuple[JobRecord, bool]], _Pending]]) -> None:
    """Hand the settled submissions to their waiting coroutines (in their event loop)."""
    for future, p in futures:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if p.error is not None:
            future.set_exception(p.error)
        else:
            assert p.outcome is not None
            future.set_result(p.outcome)


class GroupCommit:
    """Commits concurrent submissions in groups, one transaction per group.

    Submissions queue up; one committer thread, running while there are any, commits the
    queue (at most ``max_group`` submissions) and settles each of them, then the next group,
    made of whatever arrived while the one before was committing. A lone submission is
    committed at once, with no timer. A thread waits for its own submission (:meth:`submit`),
    a coroutine awaits it (:meth:`submit_async`, no thread of its own tied up meanwhile);
    the settled submissions of a group are handed to each event loop in one call. ``commit``
    takes the group and must settle every submission in it (an outcome or an error) without
    raising. The committer waits ``linger_s`` for more submissions before it ends.
    """

    def __init__(
        self,
        commit: Callable[[list[_Pending]], None],
        max_group: int = 256,
        linger_s: float = 1.0,
    ) -> None:
        self._commit = commit
        self.max_group = max_group
        self.linger_s = linger_s
        self._queue: list[_Pending] = []
        self._running = False  # whether a committer thread runs
        self._more = threading.Condition(threading.Lock())
        self.groups = 0  # how many groups were committed (for tests and metrics)

    def submit(self, pending: _Pending) -> tuple[JobRecord, bool]:
        """Queue ``pending`` and wait until it is committed; the stored job and whether it
        is new."""
        pending.wake = threading.Event()
        self._enqueue(pending)
        pending.wake.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.outcome is not None
        return pending.outcome

    async def submit_async(self, pending: _Pending) -> tuple[JobRecord, bool]:
        """:meth:`submit` for a coroutine: awaits the commit."""
        pending.future = asyncio.get_running_loop().create_future()
        self._enqueue(pending)
        return await pending.future

    def _enqueue(self, pending: _Pending) -> None:
        with self._more:
            self._queue.append(pending)
            if self._running:
                self._more.notify()
                return
            self._running = True
        threading.Thread(target=self._run, name="group-commit", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._more:
                if not self._queue:
                    self._more.wait(self.linger_s)
                if not self._queue:
                    self._running = False
                    return
                group = self._queue[: self.max_group]
                del self._queue[: self.max_group]
            try:
                self._commit(group)
            except BaseException as exc:  # pragma: no cover - commit settles everything
                for p in group:
                    if not p.done:
                        p.error, p.done = exc, True
            finally:
                self.groups += 1
                self._wake(group)

    @staticmethod
    def _wake(group: list[_Pending]) -> None:
        """Wake the waiting threads one by one, and each event loop once for all of its
        coroutines."""
        loops: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for p in group:
            if p.future is not None:
                loops.setdefault(p.future.get_loop(), []).append((p.future, p))
            elif p.wake is not None:
                p.wake.set()
        for loop, futures in loops.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_settle, futures)


_TOKEN = select(TokenRow.tenant, TokenRow.scopes, TokenRow.expires_at).where(
    TokenRow.token_hash == bindparam("token_hash"),
    TokenRow.revoked.is_(False),
    or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > bindparam("now", type_=UtcDateTime)),
)
"""A live token by its hash, at ``now``."""

_JOB = select(_jobs_table()).where(_jobs_table().c.id == bindparam("id"))
_JOB_BY_KEY = select(_jobs_table()).where(
    _jobs_table().c.tenant == bindparam("tenant"),
    _jobs_table().c.idempotency_key == bindparam("key"),
)
"""A job by its id, and by its tenant and idempotency key (built once: read on every
``GET /v1/jobs/{id}``)."""

_PROGRESS_TYPES = {
    "state": "text",
    "done_accelerator_hours": "float8",
    "site": "text",
    "accelerators": "int4",
    "last_site": "text",
    "pending_overhead_h": "float8",
    "overhead_paid_h": "float8",
    "moves": "int4",
    "stops": "int4",
    "completed_at": "timestamptz",
    "remaining_at_deadline": "float8",
    "error": "text",
}
assert set(_PROGRESS_TYPES) == set(PROGRESS_FIELDS)
_PROGRESS = text(
    "UPDATE jobs SET updated_at = :now, "
    + ", ".join(f"{f} = v.{f}" for f in PROGRESS_FIELDS)
    + " FROM unnest(CAST(:id AS text[]), "
    + ", ".join(f"CAST(:{f} AS {_PROGRESS_TYPES[f]}[])" for f in PROGRESS_FIELDS)
    + ") AS v(id, "
    + ", ".join(PROGRESS_FIELDS)
    + ") WHERE jobs.id = v.id AND jobs.state <> 'cancelled'"
).bindparams(bindparam("now", type_=UtcDateTime))
"""The progress of many jobs in one statement (PostgreSQL), a cancellation winning over it."""

_JOB_TYPES = {
    "id": "text",
    "tenant": "text",
    "name": "text",
    "submitted_at": "timestamptz",
    "deadline": "timestamptz",
    "work_accelerator_hours": "float8",
    "min_accelerators": "int4",
    "max_accelerators": "int4",
    "checkpoint_overhead_h": "float8",
    "migration_overhead_h": "float8",
    "function": "text",
    "args": "json",
    **_PROGRESS_TYPES,
    "idempotency_key": "text",
    "request_hash": "text",
    "allowed_sites": "json",
    "updated_at": "timestamptz",
}
assert set(_JOB_TYPES) == {"id", *JOB_FIELDS, "allowed_sites", "updated_at"}
_NUMBERS: dict[str, Callable[[Any], Any]] = {"float8": float, "int4": int}


def _as_array(values: list[Any], kind: str) -> list[Any]:
    """A column's values as PostgreSQL takes them in one array of ``kind``: JSON as text (as
    SQLAlchemy's JSON type stores it; None is JSON null), numbers all of one Python type (an
    array holds one type: no int among floats), the rest as they are."""
    if kind == "json":
        return [json.dumps(v) for v in values]
    number = _NUMBERS.get(kind)
    if number is None:
        return values
    return [None if v is None else number(v) for v in values]


_INSERT_JOBS = text(
    "INSERT INTO jobs ("
    + ", ".join(_JOB_TYPES)
    + ", changed_in) SELECT "
    + ", ".join(f"CAST(v.{c} AS json)" if t == "json" else f"v.{c}" for c, t in _JOB_TYPES.items())
    + ", pg_current_xact_id()::text::bigint FROM unnest("
    # JSON travels as its text: json has no array type to unnest into
    + ", ".join(f"CAST(:{c} AS {'text' if t == 'json' else t}[])" for c, t in _JOB_TYPES.items())
    + ") AS v("
    + ", ".join(_JOB_TYPES)
    + ") ON CONFLICT (tenant, idempotency_key) DO NOTHING RETURNING id"
)
"""Many submissions in one statement (PostgreSQL) whatever their number: one text, so that
it is parsed and planned once, not once per group size."""


class SqlStore:
    """Durable state on an SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = sessions(engine)
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps in
        # steps of up to 100 ms before it tries again: queueing this process's writers on a
        # lock instead keeps the tail latency of submissions down. PostgreSQL needs none.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        # A database file on this machine (SQLite in WAL mode): a read takes microseconds and
        # never waits for a writer; token lookups use a connection of their own per thread.
        database = engine.url.database
        self.local = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._readers = threading.local()
        processor = DateTime().dialect_impl(engine.dialect).result_processor(engine.dialect, None)
        self._datetime: Callable[[Any], Any] = processor or (lambda value: value)
        self.postgresql = engine.dialect.name == "postgresql"
        self.submissions = GroupCommit(self._commit_group)
        # One statement on the hot paths (reading a token or a job, inserting a group of
        # submissions) needs no transaction around it: on PostgreSQL that saves the BEGIN
        # and the ROLLBACK or COMMIT round trips of each.
        self._autocommit: Engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.postgresql else engine
        )

    def _change_mark(self) -> ColumnElement[Any]:
        """What a write outside the controller stores in ``jobs.changed_in``: on PostgreSQL
        its transaction's id; on SQLite, which commits one writer at a time, one more than
        any mark committed before."""
        if self.postgresql:
            return literal_column("pg_current_xact_id()::text::bigint")
        table = _jobs_table()
        return select(func.coalesce(func.max(table.c.changed_in), 0) + 1).scalar_subquery()

    def _change_horizon(self) -> str:
        """The mark from which a change may not have been seen yet: on PostgreSQL the oldest
        transaction still running (every one before it has ended, and all they wrote is
        visible to a read that starts after this one), on SQLite one more than the largest
        mark committed."""
        if self.postgresql:
            return "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        return "SELECT COALESCE(MAX(changed_in), 0) + 1 FROM jobs"

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction, committed on leaving."""
        with self._write_lock, self.session.begin() as s:
            yield s

    def _insert(self, model: type[DeclarativeBase]) -> Any:
        """An INSERT into ``model``'s table in this database's dialect, which knows
        ``ON CONFLICT`` (SQLite and PostgreSQL alike)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(cast(Table, model.__table__))

    def _upsert(
        self,
        s: Session,
        model: type[DeclarativeBase],
        values: dict[str, Any],
        keys: Sequence[str],
    ) -> None:
        """Insert ``values``, or update the row with the same ``keys``, in one statement."""
        statement = self._insert(model).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={k: statement.excluded[k] for k in values if k not in keys},
        )
        s.execute(statement)

    # -- tokens ------------------------------------------------------------------------------

    def add_token(
        self,
        tenant: str,
        scopes: str,
        token_hash: str,
        label: str = "",
        expires_at: pd.Timestamp | None = None,
    ) -> int:
        """Store a token's hash; its id (what ``token list`` shows and ``token revoke`` takes)."""
        with self._write() as s:
            row = TokenRow(
                tenant=tenant,
                scopes=scopes,
                token_hash=token_hash,
                label=label,
                created_at=_utcnow(),
                expires_at=_dt(expires_at),
            )
            s.add(row)
            s.flush()
            self._announce_token_change(s)
            return int(row.id)

    def token(self, token_hash: str) -> TokenGrant | None:
        """What a token that is neither revoked nor expired grants, by its hash (asked on
        most requests: the statement is built once; on a local SQLite file it is read on a
        plain connection, a tenth of the cost)."""
        if self.local:
            return self._local_token(token_hash)
        with self._autocommit.connect() as c:
            row = c.execute(_TOKEN, {"token_hash": token_hash, "now": _utcnow()}).first()
            return None if row is None else TokenGrant(row[0], row[1], _ts(row[2]))

    def _local_token(self, token_hash: str) -> TokenGrant | None:
        reader: sqlite3.Connection | None = getattr(self._readers, "connection", None)
        query = "SELECT tenant, scopes, expires_at FROM tokens WHERE token_hash = ? AND NOT revoked"
        try:
            if reader is None:
                # In WAL mode a reader never waits for writers; the short timeout bounds the
                # rare wait for a lock (a checkpoint, a migration) of whoever calls this.
                reader = sqlite3.connect(
                    str(self.engine.url.database), isolation_level=None, timeout=1.0
                )
                reader.execute("PRAGMA query_only = ON")
                self._readers.connection = reader
            row = reader.execute(query, (token_hash,)).fetchone()
        except sqlite3.OperationalError as exc:  # locked: the same answer as the engine's
            raise OperationalError(query, (), exc) from None
        if row is None:
            return None
        # SQLite keeps UtcDateTime values as text of the naive UTC time.
        expires = None if row[2] is None else pd.Timestamp(self._datetime(row[2]), tz="UTC")
        if expires is not None and expires <= pd.Timestamp.now(tz="UTC"):
            return None
        return TokenGrant(row[0], row[1], expires)

    def _announce_token_change(self, s: Session) -> None:
        """On PostgreSQL, tell every listening API process, when this transaction commits."""
        if self.engine.dialect.name == "postgresql":
            s.execute(text("SELECT pg_notify(:channel, '')"), {"channel": TOKEN_CHANNEL})

    def watch_tokens(
        self,
        on_change: Callable[[], None],
        on_up: Callable[[], None],
        on_down: Callable[[], None],
        stop: threading.Event,
        retry_s: float = 1.0,
    ) -> threading.Thread | None:
        """On PostgreSQL, a thread that listens for token changes until ``stop`` is set:
        ``on_up`` once it listens (again), ``on_change`` at each change, ``on_down`` when the
        connection is lost (it reconnects every ``retry_s``). ``None`` on SQLite, which has no
        such channel."""
        if self.engine.dialect.name != "postgresql":
            return None
        import psycopg

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )

        def listen() -> None:
            while not stop.is_set():
                try:
                    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                        conn.execute(f"LISTEN {TOKEN_CHANNEL}")
                        on_up()
                        while not stop.is_set():
                            for _ in conn.notifies(timeout=0.5):
                                on_change()
                except psycopg.Error:
                    log.warning("token change channel lost; looking tokens up each request")
                finally:
                    on_down()
                stop.wait(retry_s)

        thread = threading.Thread(target=listen, name="token-changes", daemon=True)
        thread.start()
        return thread

    def tokens(self, tenant: str | None = None) -> list[TokenInfo]:
        """Every token (of ``tenant``), oldest first."""
        query = select(TokenRow).order_by(TokenRow.id)
        if tenant is not None:
            query = query.where(TokenRow.tenant == tenant)
        with self.session() as s:
            return [
                TokenInfo(
                    r.id,
                    r.tenant,
                    r.scopes,
                    r.label,
                    cast(pd.Timestamp, _ts(r.created_at)),
                    _ts(r.expires_at),
                    r.revoked,
                    _ts(r.revoked_at),
                )
                for r in s.scalars(query)
            ]

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a token at once; ``False`` if no token has that id or it was revoked."""
        with self._write() as s:
            done = s.execute(
                update(TokenRow)
                .where(TokenRow.id == token_id, TokenRow.revoked.is_(False))
                .values(revoked=True, revoked_at=_utcnow())
            )
            self._announce_token_change(s)
            return _rowcount(done) > 0

    # -- jobs --------------------------------------------------------------------------------

    def submit_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Insert a job; ``(job, True)`` if new, ``(existing, False)`` for a repeated
        idempotency key of the same tenant. Returns once the job is committed, in a group
        with the submissions that arrived meanwhile (:class:`GroupCommit`)."""
        return self.submissions.submit(self._pending(job))

    async def submit_job_async(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """:meth:`submit_job` for a coroutine: the event loop goes on while the job's group
        is committed."""
        return await self.submissions.submit_async(self._pending(job))

    def _pending(self, job: JobRecord) -> _Pending:
        values: dict[str, Any] = {
            f: _dt(getattr(job, f))
            if f in ("submitted_at", "deadline", "completed_at")
            else getattr(job, f)
            for f in JOB_FIELDS
        }
        values.update(
            id=job.id,
            allowed_sites=list(job.allowed_sites) if job.allowed_sites is not None else None,
            updated_at=_utcnow(),
        )
        return _Pending(job, values)

    def _commit_group(self, group: list[_Pending]) -> None:
        """Insert ``group`` in one transaction; a job whose tenant used its idempotency key
        before is answered with the existing job. If the database refuses the group, each
        submission is tried in a transaction of its own, so that only a bad one fails."""
        try:
            inserted = self._insert_jobs([p.values for p in group])
        except Exception as exc:
            if len(group) == 1:
                group[0].error, group[0].done = exc, True
                return
            for p in group:
                self._commit_group([p])
            return
        for p in group:  # settled only now: the transaction has committed
            try:
                p.outcome = self._outcome(p.job, p.job.id in inserted)
            except Exception as exc:
                p.error = exc
            p.done = True

    def _insert_jobs(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert ``rows`` in one transaction, skipping those whose tenant has used their
        idempotency key before; the ids inserted."""
        if self.postgresql:
            # One statement over arrays of the values, a transaction of its own (autocommit):
            # it has committed when it returns, with no BEGIN and COMMIT round trips.
            columns = {
                name: _as_array([r[name] for r in rows], kind) for name, kind in _JOB_TYPES.items()
            }
            with self._autocommit.connect() as c:
                return {row[0] for row in c.execute(_INSERT_JOBS, columns)}
        statement = (
            self._insert(JobRow)
            .values(changed_in=self._change_mark())
            .on_conflict_do_nothing(index_elements=["tenant", "idempotency_key"])
            .returning(JobRow.id)
        )
        with self._write_lock, self.engine.begin() as c:
            # A Core insert: the ORM's unit of work costs more than the commit on this path.
            return {row[0] for row in c.execute(statement, rows)}

    def _outcome(self, job: JobRecord, inserted: bool) -> tuple[JobRecord, bool]:
        if inserted:
            return job, True
        assert job.idempotency_key is not None  # only a repeated key conflicts
        existing = self.job_by_key(job.tenant, job.idempotency_key)
        if existing is None:  # pragma: no cover - jobs are never deleted
            raise RuntimeError(f"job {job.id}: its idempotency key conflicts with no job")
        return existing, False

    def job_by_key(self, tenant: str, key: str) -> JobRecord | None:
        return self._one_job(_JOB_BY_KEY, {"tenant": tenant, "key": key})

    def job(self, job_id: str) -> JobRecord | None:
        return self._one_job(_JOB, {"id": job_id})

    def _one_job(self, query: Select[Any], params: dict[str, Any]) -> JobRecord | None:
        with self._autocommit.connect() as c:
            row = c.execute(query, params).first()
            return None if row is None else job_record(row)

    def jobs(
        self,
        tenant: str | None,
        state: str | None = None,
        site: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[JobRecord], int]:
        """Jobs (of ``tenant``, or all), newest first, and how many match in all."""
        table = _jobs_table()
        query = select(table)
        if tenant is not None:
            query = query.where(table.c.tenant == tenant)
        if state is not None:
            query = query.where(table.c.state == state)
        if site is not None:
            query = query.where(table.c.site == site)
        with self.engine.connect() as c:
            total = c.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = c.execute(
                query.order_by(table.c.submitted_at.desc(), table.c.id).limit(limit).offset(offset)
            )
            return [job_record(r) for r in rows], int(total)

    def cancel_job(self, job_id: str) -> JobRecord | None:
        """Cancel an active job; the job as it is afterwards (``None`` if unknown)."""
        with self._write() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(("queued", "running", "paused")))
                .values(
                    state="cancelled",
                    site=None,
                    accelerators=0,
                    updated_at=_utcnow(),
                    changed_in=self._change_mark(),
                )
            )
        return self.job(job_id)

    def job_counts(self, tenant: str | None = None) -> dict[str, int]:
        """Jobs by state (of ``tenant``, or all)."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        if tenant is not None:
            query = query.where(JobRow.tenant == tenant)
        with self.session() as s:
            return {state: int(n) for state, n in s.execute(query)}

    # -- the controller's store --------------------------------------------------------------

    def active_jobs(self) -> list[JobRecord]:
        table = _jobs_table()
        with self.engine.connect() as c:
            rows = c.execute(
                select(table)
                .where(table.c.state.in_(("queued", "running", "paused")))
                .order_by(table.c.submitted_at, table.c.id)
            )
            return [job_record(r) for r in rows]

    def job_changes(self, since: int | None) -> JobChanges:
        """The jobs submitted or cancelled since mark ``since``, in any state (every active
        job if ``None``), and the mark to ask from next time.

        The next mark is taken before the jobs are read: whatever commits after it has a
        mark at least as large, so it is read next time even when its transaction began
        before a larger mark committed (a job read twice is read the same way twice)."""
        table = _jobs_table()
        with self.engine.connect() as c:
            horizon = int(c.exec_driver_sql(self._change_horizon()).scalar_one())
            c.commit()  # the jobs are read in a snapshot taken after the horizon
            if since is None:
                rows = c.execute(
                    select(table)
                    .where(table.c.state.in_(("queued", "running", "paused")))
                    .order_by(table.c.submitted_at, table.c.id)
                )
            else:
                rows = c.execute(
                    select(table)
                    .where(table.c.changed_in >= since)
                    .order_by(table.c.submitted_at, table.c.id)
                )
            return JobChanges([job_record(r) for r in rows], horizon, complete=since is None)

    def services(self) -> list[ServiceRecord]:
        """Every tenant's services by tenant and name (what the controller plans, each tick)."""
        with self.session() as s:
            query = select(ServiceRow).order_by(ServiceRow.tenant, ServiceRow.name)
            return [_service(r) for r in s.scalars(query)]

    def services_page(
        self, tenant: str | None, limit: int = 100, offset: int = 0
    ) -> tuple[list[ServiceRecord], int]:
        """Services (of ``tenant``, or all) by tenant and name, and how many there are."""
        query = select(ServiceRow)
        if tenant is not None:
            query = query.where(ServiceRow.tenant == tenant)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = query.order_by(ServiceRow.tenant, ServiceRow.name).limit(limit).offset(offset)
            return [_service(r) for r in s.scalars(page)], int(total)

    def grid_events(self, start: pd.Timestamp, end: pd.Timestamp) -> list[GridEventRecord]:
        with self.session() as s:
            rows = s.scalars(
                select(GridEventRow).where(
                    GridEventRow.start < _dt(end), GridEventRow.end > _dt(start)
                )
            )
            return [_event(r) for r in rows]

    def grid_events_page(
        self, site: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[GridEventRecord], int]:
        """Grid events (at ``site``, or all) by start, and how many there are."""
        query = select(GridEventRow)
        if site is not None:
            query = query.where(GridEventRow.site == site)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(
                query.order_by(GridEventRow.start, GridEventRow.id).limit(limit).offset(offset)
            )
            return [_event(r) for r in rows], int(total)

    def site_overrides(self) -> dict[str, SiteOverride]:
        with self.session() as s:
            return {
                r.site: SiteOverride(r.import_limit_kw, r.power_cap_kw, r.offline)
                for r in s.scalars(select(SiteOverrideRow))
            }

    # -- fetched signal values ---------------------------------------------------------------

    def save_signal_values(self, site: str, fetched: Fetched) -> None:
        """Keep what a live source fetched for ``site`` (a value fetched again replaces the
        one before), in one transaction."""
        if not len(fetched):
            return
        interval_s = fetched.interval.total_seconds()
        rows = [
            {
                "signal": fetched.signal,
                "site": site,
                "source": fetched.source,
                "time": t.to_pydatetime(),
                "kind": fetched.kind,
                "value": float(v) if np.isfinite(v) else None,
                "forecast": bool(f),
                "interval_s": interval_s,
                "fetched_at": _dt(fetched.fetched_at),
            }
            for t, v, f in zip(fetched.times, fetched.values, fetched.forecast, strict=True)
        ]
        keys = ("signal", "site", "source", "time")
        with self._write() as s:
            for first in range(0, len(rows), 1000):
                statement = self._insert(SignalValueRow).values(rows[first : first + 1000])
                s.execute(
                    statement.on_conflict_do_update(
                        index_elements=list(keys),
                        set_={k: statement.excluded[k] for k in rows[0] if k not in keys},
                    )
                )

    def signal_values(self, since: pd.Timestamp) -> list[tuple[str, Fetched]]:
        """What live sources fetched for intervals from ``since`` on: per site, signal and
        source one series (its kind and latest fetch time those of the newest row)."""
        with self.session() as s:
            found = s.scalars(
                select(SignalValueRow)
                .where(SignalValueRow.time >= since.to_pydatetime())
                .order_by(
                    SignalValueRow.site,
                    SignalValueRow.signal,
                    SignalValueRow.source,
                    SignalValueRow.time,
                )
            ).all()
        groups: dict[tuple[str, str, str], list[SignalValueRow]] = {}
        for r in found:
            groups.setdefault((r.site, r.signal, r.source), []).append(r)
        out = []
        for (site, signal, source), rows in groups.items():
            newest = max(rows, key=lambda r: r.fetched_at)
            fetched = Fetched(
                signal,
                source,
                newest.kind,
                _ts(newest.fetched_at) or pd.Timestamp(0, tz="UTC"),
                pd.DatetimeIndex([_ts(r.time) for r in rows]).tz_convert("UTC"),
                np.array([np.nan if r.value is None else r.value for r in rows], dtype=float),
                np.array([r.forecast for r in rows], dtype=bool),
                pd.Timedelta(seconds=newest.interval_s),
            )
            out.append((site, fetched))
        return out

    def site_readings(self) -> dict[str, SiteReading]:
        with self.session() as s:
            return {r.site: _reading(r) for r in s.scalars(select(SiteReadingRow))}

    def set_reading(self, reading: SiteReading) -> None:
        """Replace the site's latest reading."""
        values = {
            "site": reading.site,
            "time": _dt(reading.time),
            "received_at": _dt(reading.received_at),
            "solar_kw": reading.solar_kw,
            "wind_kw": reading.wind_kw,
            "compliance_s": None,
        }
        with self._write() as s:
            self._upsert(s, SiteReadingRow, values, ("site",))

    def record_reading_compliance(self, site: str, time: pd.Timestamp, seconds: float) -> None:
        with self._write() as s:
            s.execute(
                update(SiteReadingRow)
                .where(
                    SiteReadingRow.site == site,
                    SiteReadingRow.time == time.to_pydatetime(),
                    SiteReadingRow.compliance_s.is_(None),
                )
                .values(compliance_s=seconds)
            )

    def last_tick(self) -> TickRecord | None:
        with self.session() as s:
            row = s.scalars(select(TickRow).order_by(TickRow.step.desc()).limit(1)).first()
            return None if row is None else _tick(row)

    def commit_tick(
        self, tick: TickRecord, jobs: list[JobRecord], events: list[GridEventRecord]
    ) -> None:
        now = _utcnow()
        with self._write() as s:
            s.add(
                TickRow(
                    step=tick.step,
                    time=_dt(tick.time),
                    decided_at=now,
                    decision_s=tick.decision_s,
                    degraded=tick.degraded,
                    reasons=list(tick.reasons),
                    plan=tick.plan,
                    outcome=tick.outcome,
                    state=tick.state,
                )
            )
            self._write_progress(s, jobs, now)
            for e in events:
                s.execute(
                    update(GridEventRow)
                    .where(GridEventRow.id == e.id)
                    .values(peak_kw=e.peak_kw, complied=e.complied)
                )

    def _write_progress(self, s: Session, jobs: list[JobRecord], now: datetime) -> None:
        """Write the jobs' progress; a cancellation that landed meanwhile wins over it. On
        PostgreSQL one statement over arrays of the values, elsewhere one executemany."""
        if not jobs:
            return
        if self.postgresql:
            columns: dict[str, list[Any]] = {
                "id": [job.id for job in jobs],
                **{
                    f: _as_array([getattr(job, f) for job in jobs], _PROGRESS_TYPES[f])
                    for f in PROGRESS_FIELDS
                },
            }
            columns["completed_at"] = [_dt(job.completed_at) for job in jobs]
            s.connection().execute(_PROGRESS, {**columns, "now": now})
            return
        table = _jobs_table()
        s.connection().execute(
            update(table).where(table.c.id == bindparam("job_id"), table.c.state != "cancelled"),
            [
                {
                    "job_id": job.id,
                    "updated_at": now,
                    **{f: getattr(job, f) for f in PROGRESS_FIELDS},
                    "completed_at": _dt(job.completed_at),
                }
                for job in jobs
            ],
        )

    def commit_correction(self, step: int, plan: dict[str, Any], jobs: list[JobRecord]) -> None:
        with self._write() as s:
            s.execute(update(TickRow).where(TickRow.step == step).values(plan=plan))
            self._write_progress(s, jobs, _utcnow())

    def record_compliance(self, event_id: str, seconds: float) -> None:
        with self._write() as s:
            s.execute(
                update(GridEventRow)
                .where(GridEventRow.id == event_id, GridEventRow.compliance_s.is_(None))
                .values(compliance_s=seconds)
            )

    def ticks_since(self, since: pd.Timestamp, from_step: int = 0) -> list[TickRecord]:
        """The ticks at fleet time ``since`` or later and at step ``from_step`` or later,
        oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(TickRow)
                .where(TickRow.time >= _dt(since), TickRow.step >= from_step)
                .order_by(TickRow.step)
            )
            return [_tick(r) for r in rows]

    def recent_ticks(self, count: int) -> list[TickRecord]:
        with self.session() as s:
            rows = s.scalars(select(TickRow).order_by(TickRow.step.desc()).limit(count))
            return [_tick(r) for r in rows]

    # -- services, events, overrides ----------------------------------------------------------

    def service(self, tenant: str, name: str) -> ServiceRecord | None:
        """The tenant's service ``name``."""
        with self.session() as s:
            row = s.get(ServiceRow, (tenant, name))
            return None if row is None else _service(row)

    def create_service(self, record: ServiceRecord) -> bool:
        """Create a service in one atomic insert; ``False`` if the tenant has one by that name
        (the existing one is left as it is)."""
        statement = (
            self._insert(ServiceRow)
            .values(
                tenant=record.tenant,
                name=record.name,
                latency_slo_ms=record.latency_slo_ms,
                service_time_ms=record.service_time_ms,
                replica_throughput_rps=record.replica_throughput_rps,
                accelerators_per_replica=record.accelerators_per_replica,
                demand_rps=dict(record.demand_rps),
                handler=record.handler,
                created_at=_utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["tenant", "name"])
            .returning(ServiceRow.name)  # a row back only if inserted (rowcount is not reliable)
        )
        with self._write() as s:
            return s.execute(statement).first() is not None

    def set_service_demand(
        self, tenant: str, name: str, demand_rps: dict[str, float]
    ) -> ServiceRecord | None:
        """Replace a service's demand (requests per second by demand point); the service as
        it is afterwards, ``None`` if the tenant has no such service."""
        with self._write() as s:
            done = s.execute(
                update(ServiceRow)
                .where(ServiceRow.tenant == tenant, ServiceRow.name == name)
                .values(demand_rps=dict(demand_rps))
            )
            if _rowcount(done) == 0:
                return None
        return self.service(tenant, name)

    def delete_service(self, tenant: str, name: str) -> bool:
        with self._write() as s:
            done = s.execute(
                delete(ServiceRow).where(ServiceRow.tenant == tenant, ServiceRow.name == name)
            )
            return _rowcount(done) > 0

    def add_grid_event(
        self, site: str, max_kw: float, start: pd.Timestamp, end: pd.Timestamp, reason: str
    ) -> GridEventRecord:
        event = GridEventRecord(uuid.uuid4().hex, site, max_kw, start, end, reason)
        with self._write() as s:
            s.add(
                GridEventRow(
                    id=event.id,
                    site=site,
                    max_kw=max_kw,
                    start=_dt(start),
                    end=_dt(end),
                    reason=reason,
                    peak_kw=0.0,
                    complied=None,
                    created_at=_utcnow(),
                )
            )
        return event

    def set_override(self, site: str, override: SiteOverride) -> None:
        values = {
            "site": site,
            "import_limit_kw": override.import_limit_kw,
            "power_cap_kw": override.power_cap_kw,
            "offline": override.offline,
            "updated_at": _utcnow(),
        }
        with self._write() as s:
            self._upsert(s, SiteOverrideRow, values, ("site",))

    def heartbeat(self, beat: Heartbeat) -> None:
        values = {
            "id": 1,
            "at": _dt(beat.at),
            "step": beat.step,
            "time": _dt(beat.time),
            "degraded": beat.degraded,
            "reasons": list(beat.reasons),
            "lag_s": beat.lag_s,
            "finished": beat.finished,
            "signals": beat.signals,
        }
        with self._write() as s:
            self._upsert(s, HeartbeatRow, values, ("id",))

    def last_heartbeat(self) -> Heartbeat | None:
        with self.session() as s:
            r = s.get(HeartbeatRow, 1)
            if r is None:
                return None
            at = _ts(r.at)
            assert at is not None
            return Heartbeat(
                at=at,
                step=r.step,
                time=_ts(r.time),
                degraded=r.degraded,
                reasons=tuple(r.reasons),
                lag_s=r.lag_s,
                finished=r.finished,
                signals=r.signals,
            )

    def ping(self) -> bool:
        with self.engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
        return True


def _service(r: ServiceRow) -> ServiceRecord:
    return ServiceRecord(
        r.name,
        r.tenant,
        r.latency_slo_ms,
        r.service_time_ms,
        r.replica_throughput_rps,
        r.accelerators_per_replica,
        dict(r.demand_rps),
        r.handler,
    )


def _reading(r: SiteReadingRow) -> SiteReading:
    time, received_at = _ts(r.time), _ts(r.received_at)
    assert time is not None
    assert received_at is not None
    return SiteReading(r.site, time, received_at, r.solar_kw, r.wind_kw, r.compliance_s)


def _event(r: GridEventRow) -> GridEventRecord:
    start, end = _ts(r.start), _ts(r.end)
    assert start is not None
    assert end is not None
    return GridEventRecord(
        r.id,
        r.site,
        r.max_kw,
        start,
        end,
        r.reason,
        r.peak_kw,
        r.complied,
        r.compliance_s,
        _ts(r.created_at),
    )


def _tick(r: TickRow) -> TickRecord:
    time = _ts(r.time)
    assert time is not None
    return TickRecord(
        time, r.step, r.decision_s, r.degraded, tuple(r.reasons), r.plan, r.outcome, r.state
    )
