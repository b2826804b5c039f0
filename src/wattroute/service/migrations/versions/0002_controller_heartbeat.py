"""The controller's heartbeat: what every API process reads for health and signals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wattroute.service.db import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "controller_heartbeat",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("time", UtcDateTime, nullable=True),
        sa.Column("degraded", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("lag_s", sa.Float, nullable=False),
        sa.Column("finished", sa.Boolean, nullable=False),
        sa.Column("signals", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("controller_heartbeat")
