"""Database fixtures: a fresh SQLite file per test, and one PostgreSQL server per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.service.postgres import binaries, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    if os.environ.get("WATTROUTE_SKIP_POSTGRES") == "1":
        pytest.skip("WATTROUTE_SKIP_POSTGRES=1")
    if binaries() is None:
        pytest.fail(
            "PostgreSQL server binaries not found: run scripts/ensure-postgres (or apt-get "
            "install -y postgresql), or set WATTROUTE_SKIP_POSTGRES=1 to skip these tests"
        )
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.system)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL to an empty database on each backend (PostgreSQL's are system tests: a server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: str = request.getfixturevalue("postgres_server")
    name = "t" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + name
