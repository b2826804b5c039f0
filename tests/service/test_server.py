"""A real server process under real concurrent clients: atomic creates and first writes on
both databases, revocation in every worker, readiness that follows the clock."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.processes import free_port, start_server, stop_group
from wattroute.cli.main import main
from wattroute.service.auth import new_token, token_hash
from wattroute.service.server import open_store

# Starts real server processes (on SQLite and PostgreSQL).
pytestmark = pytest.mark.system

CONFIG = """
name: server-test
fleet:
  sites:
    - name: a
      latitude: 40
      longitude: -100
      accelerators: {{count: 16, busy_kw: 0.7, idle_kw: 0.1}}
      weather: {{pvlib_tmy: 723170TYA.CSV}}
      grid: {{price: 60, carbon: 300}}
      solar: {{capacity_kw: 4}}
    - name: b
      latitude: 45
      longitude: -90
      accelerators: {{count: 16, busy_kw: 0.7, idle_kw: 0.1}}
      grid: {{price: 40, carbon: 500}}
  demand_points: [{{name: p, latitude: 40, longitude: -100}}]
signals: {{start: {start}, end: {end}}}
policy: greedy
database: {database}
clock: {clock}
api: {{workers: {workers}}}
auth: {{required: true}}
"""
JUNE = {"start": "2023-06-01T00:00:00Z", "end": "2023-06-30T00:00:00Z"}
SERVICE = {
    "name": "vision",
    "latency_slo_ms": 30,
    "service_time_ms": 5,
    "replica_throughput_rps": 10,
    "demand_rps": {"p": 5},
}


def _config(tmp_path: Path, database: str, workers: int = 1, **more: str) -> Path:
    values = {**JUNE, "clock": "{kind: replay, speedup: 600}", **more}
    path = tmp_path / "service.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(database=database, workers=workers, **values)))
    return path


def _token(database: str, tenant: str, scopes: str) -> dict[str, str]:
    token = new_token()
    open_store(database).add_token(tenant, scopes, token_hash(token))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, str]]:
    """A server on each database; its base URL and the database URL."""
    port = free_port()
    process = start_server(_config(tmp_path, database_url), port)
    try:
        yield f"http://127.0.0.1:{port}", database_url
    finally:
        stop_group(process, signal.SIGTERM)


def _all_at_once(base: str, n: int, call) -> list[httpx.Response]:
    """``call(client)`` from ``n`` threads released together, each on its own keep-alive
    connection; then each connection must still answer (no keep-alive dropped after an
    error)."""
    barrier = threading.Barrier(n)
    answers: list[httpx.Response | None] = [None] * n
    after: list[int] = [0] * n

    def run(i: int) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            answers[i] = call(client)
            after[i] = client.get(f"{base}/healthz").status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert after == [200] * n
    return [a for a in answers if a is not None]


def test_concurrent_creates_and_first_writes_are_atomic(server):
    base, database = server
    acme, admin = _token(database, "acme", "submit,read"), _token(database, "ops", "admin")

    created = _all_at_once(
        base, 16, lambda c: c.post(f"{base}/v1/services", json=SERVICE, headers=acme)
    )
    codes = sorted(r.status_code for r in created)
    assert codes == [201] + [409] * 15, [r.text for r in created if r.status_code >= 500]
    assert httpx.get(f"{base}/v1/services", headers=acme).json()["total"] == 1

    readings = _all_at_once(
        base,
        16,
        lambda c: c.post(f"{base}/v1/sites/a/readings", json={"solar_kw": 1.0}, headers=admin),
    )
    assert {r.status_code for r in readings} == {202}
    overrides = _all_at_once(
        base,
        16,
        lambda c: c.patch(f"{base}/v1/sites/b", json={"power_cap_kw": 9.0}, headers=admin),
    )
    assert {r.status_code for r in overrides} == {200}
    assert httpx.get(f"{base}/v1/sites/b", headers=admin).json()["override"]["power_cap_kw"] == 9


def _cli(*args: str) -> tuple[int, str, str]:
    """``wattroute ARGS`` (in this process, as an operator's shell would run it); the exit
    code, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_a_revoked_token_is_refused_at_once_by_every_worker(tmp_path):
    database = f"sqlite:///{tmp_path / 'state.db'}"
    config = _config(tmp_path, database, workers=2)
    code, out, err = _cli(
        "token", "create", "--tenant", "acme", "--scope", "read", "--database", database
    )
    assert code == 0, err
    token, number = out.strip(), err.split()[1]
    port = free_port()
    process = start_server(config, port)
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {token}"}
    try:
        # One connection per request, so that the kernel spreads them over both workers.
        assert {httpx.get(f"{base}/v1/jobs", headers=h).status_code for _ in range(20)} == {200}
        code, _, err = _cli("token", "revoke", number, "--database", database)
        assert code == 0, err
        assert {httpx.get(f"{base}/v1/jobs", headers=h).status_code for _ in range(20)} == {401}
    finally:
        stop_group(process, signal.SIGTERM)


@pytest.fixture(scope="module")
def real_clock_server(tmp_path_factory) -> Iterator[tuple[int, dict[str, str]]]:
    """A server on real time over recorded 2023 signals: its port and an admin token."""
    folder = tmp_path_factory.mktemp("real-clock")
    database = f"sqlite:///{folder / 'state.db'}"
    config = _config(folder, database, clock="{kind: real}")
    admin = _token(database, "ops", "admin")
    port = free_port()
    process = start_server(config, port)
    try:
        yield port, admin
    finally:
        stop_group(process, signal.SIGTERM)


def test_readiness_follows_the_clock_not_just_the_heartbeat(real_clock_server):
    # Real time over recorded 2023 signals: nothing to plan now, so not ready, and submissions
    # say why instead of a deadline error.
    port, admin = real_clock_server
    base = f"http://127.0.0.1:{port}"
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 503
    assert "signals end at 2023-06-30" in ready.json()["reasons"][0]
    job = {"name": "j", "work_accelerator_hours": 1.0, "slack_h": 1.0}
    refused = httpx.post(f"{base}/v1/jobs", json=job, headers=admin)
    assert refused.status_code == 503
    assert "signals end at 2023-06-30" in refused.json()["detail"]
    scrape = httpx.get(f"{base}/metrics", headers=admin).text
    assert "wattroute_ready 0.0" in scrape
    assert 'wattroute_not_ready{cause="finished"} 1.0' in scrape
    # It did not run through June 2023 at full speed: nothing was decided.
    assert httpx.get(f"{base}/v1/plan", headers=admin).json()["step"] is None


def test_a_replay_that_ran_past_its_signals_is_not_ready(tmp_path):
    database = f"sqlite:///{tmp_path / 'state.db'}"
    # Two hours of signals at 3600x: over two seconds after the start.
    config = _config(
        tmp_path,
        database,
        start="2023-06-01T00:00:00Z",
        end="2023-06-01T02:00:00Z",
        clock="{kind: replay, speedup: 3600}",
    )
    port = free_port()
    process = start_server(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while (ready := httpx.get(f"{base}/readyz")).status_code == 200 or not ready.json()[
            "reasons"
        ]:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        while "signals end" not in " ".join(ready.json()["reasons"]):
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
            ready = httpx.get(f"{base}/readyz")
        # The clock passes the period's end a moment before the controller commits its last
        # step: readiness says so at once, and every step is still decided.
        while ready.json()["step"] != 23:
            assert ready.status_code == 503, ready.text
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
            ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert "signals end" in " ".join(ready.json()["reasons"])
    finally:
        stop_group(process, signal.SIGTERM)


def test_an_oversized_header_is_refused_before_it_is_read(real_clock_server):
    port, _ = real_clock_server
    _refused_mid_head(port)
    # The server is unharmed.
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def _refused_mid_head(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        sent = 0
        try:  # a megabyte of token, and never the end of the head
            while sent < 1024 * 1024:
                s.sendall(b"x" * 4096)
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = s.recv(65536)
    # The head was never finished (no blank line was sent): the server answered mid-head.
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"application/problem+json" in answer


def test_a_large_body_is_not_taken_for_large_headers(real_clock_server):
    port, admin = real_clock_server
    # 40 KB of body, within the body limit (64 KiB), sent with its head in one write.
    body = json.dumps(
        {"name": "x", "work_accelerator_hours": 1.0, "slack_h": 1.0, "allowed_sites": ["a"] * 8000}
    ).encode()
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: {admin['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        answer = b""
        while chunk := s.recv(65536):  # until the server closes
            answer += chunk
    # The list is too long: the app saw the request, the head was not refused.
    assert answer.startswith(b"HTTP/1.1 422 "), answer[:200]
    assert b"body.allowed_sites" in answer
