"""Jobs carry their code's arguments and, when it fails, the error; services their handler;
grid events how long compliance took.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("args", sa.JSON, nullable=False, server_default="{}"))
        jobs.add_column(sa.Column("error", sa.Text, nullable=True))
    with op.batch_alter_table("grid_events") as events:
        events.add_column(sa.Column("compliance_s", sa.Float, nullable=True))
    with op.batch_alter_table("services") as services:
        services.add_column(sa.Column("handler", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as services:
        services.drop_column("handler")
    with op.batch_alter_table("grid_events") as events:
        events.drop_column("compliance_s")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("error")
        jobs.drop_column("args")
