"""Alembic environment: migrations run on the connection wattroute hands over."""

from __future__ import annotations

from alembic import context

from wattroute.service.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - wattroute always passes its connection
    raise RuntimeError("run migrations through wattroute.service.db.migrate")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
