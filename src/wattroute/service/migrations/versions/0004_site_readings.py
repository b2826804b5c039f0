"""Sites' meter readings of on-site generation, the latest per site.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wattroute.service.db import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_readings",
        sa.Column("site", sa.String(128), primary_key=True),
        sa.Column("time", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("solar_kw", sa.Float, nullable=True),
        sa.Column("wind_kw", sa.Float, nullable=True),
        sa.Column("compliance_s", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("site_readings")
