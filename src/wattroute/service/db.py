"""Durable state: the tables (SQLAlchemy 2), the engine, and migrations (Alembic).

SQLite by default (a file, zero set-up; WAL journal, so that readers never block the writer
and a committed transaction survives a killed process); PostgreSQL by URL
(``postgresql+psycopg://user@host/db``). The schema is created and upgraded by the Alembic
migrations in ``service/migrations``, run at start-up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    scopes: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    name: Mapped[str] = mapped_column(String(256))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    deadline: Mapped[datetime] = mapped_column(UtcDateTime)
    work_accelerator_hours: Mapped[float] = mapped_column(Float)
    min_accelerators: Mapped[int] = mapped_column(Integer)
    max_accelerators: Mapped[int] = mapped_column(Integer)
    checkpoint_overhead_h: Mapped[float] = mapped_column(Float, default=0.0)
    migration_overhead_h: Mapped[float] = mapped_column(Float, default=0.0)
    allowed_sites: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    function: Mapped[str | None] = mapped_column(String(512), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    done_accelerator_hours: Mapped[float] = mapped_column(Float, default=0.0)
    site: Mapped[str | None] = mapped_column(String(128), nullable=True)
    accelerators: Mapped[int] = mapped_column(Integer, default=0)
    last_site: Mapped[str | None] = mapped_column(String(128), nullable=True)
    pending_overhead_h: Mapped[float] = mapped_column(Float, default=0.0)
    overhead_paid_h: Mapped[float] = mapped_column(Float, default=0.0)
    moves: Mapped[int] = mapped_column(Integer, default=0)
    stops: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    remaining_at_deadline: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # SHA-256 of the submission as sent: a repeated idempotency key must come with it.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Which write outside the controller last changed the job (a submission, a cancellation):
    # on PostgreSQL the id of its transaction, on SQLite one more than the largest before. The
    # controller asks for the jobs changed since its last look by it
    # (:meth:`wattroute.service.store.SqlStore.job_changes`); its own writes leave it alone.
    changed_in: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)


class ServiceRow(Base):
    """An inference service; names are per tenant."""

    __tablename__ = "services"
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    latency_slo_ms: Mapped[float] = mapped_column(Float)
    service_time_ms: Mapped[float] = mapped_column(Float)
    replica_throughput_rps: Mapped[float] = mapped_column(Float)
    accelerators_per_replica: Mapped[int] = mapped_column(Integer)
    demand_rps: Mapped[dict[str, float]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    handler: Mapped[str | None] = mapped_column(String(512), nullable=True)


class GridEventRow(Base):
    __tablename__ = "grid_events"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(128), index=True)
    max_kw: Mapped[float] = mapped_column(Float)
    start: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    end: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(512), default="")
    peak_kw: Mapped[float] = mapped_column(Float, default=0.0)
    complied: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    compliance_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class SiteOverrideRow(Base):
    __tablename__ = "site_overrides"
    site: Mapped[str] = mapped_column(String(128), primary_key=True)
    import_limit_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    power_cap_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SiteReadingRow(Base):
    """The latest reading of each site's on-site generation (one row per site)."""

    __tablename__ = "site_readings"
    site: Mapped[str] = mapped_column(String(128), primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    solar_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    wind_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    compliance_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class SignalValueRow(Base):
    """A value a live source fetched: one row per signal, site, source and interval start
    (a refetch replaces it), so that a restarted controller has its history without asking
    the provider again (see :class:`wattroute.runtime.records.SignalValue`)."""

    __tablename__ = "signal_values"
    signal: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    forecast: Mapped[bool] = mapped_column(Boolean)
    interval_s: Mapped[float] = mapped_column(Float)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class TickRow(Base):
    __tablename__ = "ticks"
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decision_s: Mapped[float] = mapped_column(Float)
    degraded: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class HeartbeatRow(Base):
    """The controller's report about itself: one row, replaced at every tick and while it
    waits (see :class:`wattroute.runtime.records.Heartbeat`)."""

    __tablename__ = "controller_heartbeat"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    step: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    degraded: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    lag_s: Mapped[float] = mapped_column(Float)
    finished: Mapped[bool] = mapped_column(Boolean)
    signals: Mapped[dict[str, Any]] = mapped_column(JSON)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # No ping before each checkout (a round trip per request): a connection the server
    # dropped fails its request with 503 (retry is safe) and SQLAlchemy then discards the
    # pool's stale connections; pool_recycle retires idle ones before servers time them out.
    return create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800)


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the latest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def sessions(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
