"""Jobs record which write outside the controller last changed them, so that the controller
reads only the jobs changed since its last tick.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before stay null: a controller reads every active job when it starts, so
    # they are never missed.
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("changed_in", sa.BigInteger, nullable=True))
    op.create_index("ix_jobs_changed_in", "jobs", ["changed_in"])


def downgrade() -> None:
    op.drop_index("ix_jobs_changed_in", "jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("changed_in")
