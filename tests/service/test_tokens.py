"""Token lookups: the per-process cache on PostgreSQL, emptied by the database at once when a
token is created or revoked, and off while that channel is down."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.service.helpers import Service, make_service
from wattroute.service.auth import Principal, TokenCache, new_token, token_hash
from wattroute.service.server import open_store

NOW = pd.Timestamp("2026-12-01T12:00:00Z")
ACME = Principal("acme", frozenset({"read"}))


def test_the_cache_keeps_nothing_a_clear_or_an_expiry_has_passed():
    cache = TokenCache()
    cache.put("a", ACME, None, cache.generation())
    assert cache.get("a", NOW) is None  # off until the change channel is up
    cache.enable()
    cache.put("a", ACME, None, cache.generation())
    assert cache.get("a", NOW) == ACME
    before = cache.generation()  # a lookup starts ...
    cache.clear()  # ... a token is revoked meanwhile ...
    cache.put("b", ACME, None, before)  # ... so what it read is not kept
    assert cache.get("b", NOW) is None
    assert cache.get("a", NOW) is None
    cache.put("c", ACME, NOW + pd.Timedelta(seconds=1), cache.generation())
    assert cache.get("c", NOW) == ACME
    assert cache.get("c", NOW + pd.Timedelta(seconds=1)) is None  # expired
    cache.disable()
    assert cache.get("c", NOW) is None


@pytest.fixture
def on_postgres(postgres_server: str) -> Iterator[Service]:
    name = "tok" + token_hash(str(time.time()))[:10]
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    service = make_service(postgres_server.rsplit("/", 1)[0] + "/" + name)
    with service.client:  # the lifespan starts the change listener
        yield service


def _until(predicate, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout
        time.sleep(0.005)
    return time.monotonic() - started


def _listener_pid(svc: Service) -> int | None:
    with svc.store.engine.connect() as c:
        return c.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%%'"
        ).scalar()


@pytest.mark.system
def test_on_postgres_a_revocation_elsewhere_empties_every_cache_at_once(on_postgres):
    svc = on_postgres
    _until(lambda: svc.state.tokens.enabled)
    operator = open_store(str(svc.store.engine.url.render_as_string(hide_password=False)))
    token = new_token()
    number = operator.add_token("acme", "read", token_hash(token))
    h = {"Authorization": f"Bearer {token}"}

    def read_and_cached() -> bool:
        assert svc.client.get("/v1/jobs", headers=h).status_code == 200
        return svc.state.tokens.get(token_hash(token), pd.Timestamp.now(tz="UTC")) is not None

    # The notice of the token's creation may arrive after a first read cached it, and empty
    # the cache (as it should): read until the token is held.
    _until(read_and_cached)
    operator.revoke_token(number)  # as `wattroute token revoke` does, from another process
    took = _until(
        lambda: svc.state.tokens.get(token_hash(token), pd.Timestamp.now(tz="UTC")) is None
    )
    assert took < 1.0
    assert svc.client.get("/v1/jobs", headers=h).status_code == 401
    operator.engine.dispose()


@pytest.mark.system
def test_on_postgres_the_cache_is_off_while_its_channel_is_down(on_postgres):
    svc = on_postgres
    _until(lambda: svc.state.tokens.enabled)
    token = new_token()
    number = svc.store.add_token("acme", "read", token_hash(token))
    h = {"Authorization": f"Bearer {token}"}
    assert svc.client.get("/v1/jobs", headers=h).status_code == 200
    pid = _listener_pid(svc)
    assert pid is not None
    with svc.store.engine.connect() as c:
        c.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        c.commit()
    _until(lambda: not svc.state.tokens.enabled)
    # Down: every request asks the database, so a revocation now holds at once.
    with svc.store.engine.begin() as c:  # behind the channel's back: no announcement
        c.exec_driver_sql(f"UPDATE tokens SET revoked = true WHERE id = {number}")
    assert svc.client.get("/v1/jobs", headers=h).status_code == 401
    _until(lambda: svc.state.tokens.enabled)  # it listens again
    assert _listener_pid(svc) not in (None, pid)
