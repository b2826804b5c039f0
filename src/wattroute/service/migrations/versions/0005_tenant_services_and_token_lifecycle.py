"""Service names per tenant; tokens that expire and record their revocation; jobs keep the
hash of the request an idempotency key was first used with.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wattroute.service.db import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    "tenant, name, latency_slo_ms, service_time_ms, replica_throughput_rps, "
    "accelerators_per_replica, demand_rps, created_at, handler"
)


def _services(name: str, key: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("latency_slo_ms", sa.Float, nullable=False),
        sa.Column("service_time_ms", sa.Float, nullable=False),
        sa.Column("replica_throughput_rps", sa.Float, nullable=False),
        sa.Column("accelerators_per_replica", sa.Integer, nullable=False),
        sa.Column("demand_rps", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("handler", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint(*key, name=f"pk_{name}"),
    )


def _swap_services(key: tuple[str, ...]) -> None:
    """Rebuild the services table with primary key ``key`` (a copy, so it works alike on
    SQLite and PostgreSQL)."""
    _services("services_new", key)
    op.execute(f"INSERT INTO services_new ({COLUMNS}) SELECT {COLUMNS} FROM services")
    op.drop_table("services")
    op.rename_table("services_new", "services")


def upgrade() -> None:
    _swap_services(("tenant", "name"))
    with op.batch_alter_table("tokens") as tokens:
        tokens.add_column(sa.Column("expires_at", UtcDateTime, nullable=True))
        tokens.add_column(sa.Column("revoked_at", UtcDateTime, nullable=True))
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("request_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("request_hash")
    with op.batch_alter_table("tokens") as tokens:
        tokens.drop_column("revoked_at")
        tokens.drop_column("expires_at")
    _swap_services(("name",))
