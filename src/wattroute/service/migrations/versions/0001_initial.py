"""The initial schema: tokens, jobs, services, grid events, site overrides, ticks.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wattroute.service.db import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False, index=True),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(256), nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("submitted_at", UtcDateTime, nullable=False, index=True),
        sa.Column("deadline", UtcDateTime, nullable=False),
        sa.Column("work_accelerator_hours", sa.Float, nullable=False),
        sa.Column("min_accelerators", sa.Integer, nullable=False),
        sa.Column("max_accelerators", sa.Integer, nullable=False),
        sa.Column("checkpoint_overhead_h", sa.Float, nullable=False, server_default="0"),
        sa.Column("migration_overhead_h", sa.Float, nullable=False, server_default="0"),
        sa.Column("allowed_sites", sa.JSON, nullable=True),
        sa.Column("function", sa.String(512), nullable=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("done_accelerator_hours", sa.Float, nullable=False, server_default="0"),
        sa.Column("site", sa.String(128), nullable=True),
        sa.Column("accelerators", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_site", sa.String(128), nullable=True),
        sa.Column("pending_overhead_h", sa.Float, nullable=False, server_default="0"),
        sa.Column("overhead_paid_h", sa.Float, nullable=False, server_default="0"),
        sa.Column("moves", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stops", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.Column("remaining_at_deadline", sa.Float, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_key"),
    )
    op.create_table(
        "services",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False, index=True),
        sa.Column("latency_slo_ms", sa.Float, nullable=False),
        sa.Column("service_time_ms", sa.Float, nullable=False),
        sa.Column("replica_throughput_rps", sa.Float, nullable=False),
        sa.Column("accelerators_per_replica", sa.Integer, nullable=False),
        sa.Column("demand_rps", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "grid_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(128), nullable=False, index=True),
        sa.Column("max_kw", sa.Float, nullable=False),
        sa.Column("start", UtcDateTime, nullable=False, index=True),
        sa.Column("end", UtcDateTime, nullable=False, index=True),
        sa.Column("reason", sa.String(512), nullable=False, server_default=""),
        sa.Column("peak_kw", sa.Float, nullable=False, server_default="0"),
        sa.Column("complied", sa.Boolean, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "site_overrides",
        sa.Column("site", sa.String(128), primary_key=True),
        sa.Column("import_limit_kw", sa.Float, nullable=True),
        sa.Column("power_cap_kw", sa.Float, nullable=True),
        sa.Column("offline", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "ticks",
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("time", UtcDateTime, nullable=False, index=True),
        sa.Column("decided_at", UtcDateTime, nullable=False),
        sa.Column("decision_s", sa.Float, nullable=False),
        sa.Column("degraded", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("outcome", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("ticks", "site_overrides", "grid_events", "services", "jobs", "tokens"):
        op.drop_table(table)
