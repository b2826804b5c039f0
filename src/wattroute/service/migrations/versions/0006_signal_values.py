"""Values fetched from live signal sources, kept across restarts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wattroute.service.db import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_values",
        sa.Column("signal", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(128), primary_key=True),
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("time", UtcDateTime, primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("forecast", sa.Boolean, nullable=False),
        sa.Column("interval_s", sa.Float, nullable=False),
        sa.Column("fetched_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_signal_values_fetched_at", "signal_values", ["fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_signal_values_fetched_at", "signal_values")
    op.drop_table("signal_values")
