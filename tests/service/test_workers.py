"""Several API worker processes and one controller: the same service, whichever answers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.service.processes import (
    free_port,
    launch_server,
    start_server,
    stop_group,
    wait_gone,
    wait_healthy,
)
from wattroute.runtime.clock import ReplayClock
from wattroute.service.supervise import BIND_WAIT_S, ENV_BIND_WAIT
from wattroute.service.workers import (
    ENV_CLOCK_ANCHOR,
    ENV_CLOCK_START,
    METRICS_PREFIX,
    remove_orphaned_metrics,
)

# Real server processes, killed on purpose, and processes that watch their parent.
pytestmark = pytest.mark.system

CONFIG = """
name: workers-test
fleet:
  sites:
    - name: a
      latitude: 40
      longitude: -100
      accelerators: {count: 16, busy_kw: 0.7, idle_kw: 0.1}
      grid: {price: 60, carbon: 300}
    - name: b
      latitude: 45
      longitude: -90
      accelerators: {count: 16, busy_kw: 0.7, idle_kw: 0.1}
      grid: {price: 40, carbon: 500}
signals: {start: 2023-06-01T00:00:00Z, end: 2023-06-30T00:00:00Z}
policy: greedy
database: sqlite:///state.db
clock: {kind: replay, speedup: 600}
api: {workers: 2}
auth: {required: false}
"""


JOB = {"name": "j", "work_accelerator_hours": 2.0, "slack_h": 6.0}

# Deadlines for what must happen "at once": generous, so that a loaded machine passes, yet far
# below what the mechanism under test would take if it were broken.
STARTUP_S = 120.0  # a server start: imports, the scenario, the first tick
EXIT_S = 30.0  # a watched child that did not react would sleep CHILD_SLEEP_S


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def _workers(pid: int) -> list[int]:
    """The API worker processes of server ``pid`` (multiprocessing's spawned children)."""
    return [p for p in _children(pid) if "fork" in Path(f"/proc/{p}/cmdline").read_text()]


def _environ(pid: int, name: str) -> str:
    """Variable ``name`` of the environment process ``pid`` started with."""
    environ = Path(f"/proc/{pid}/environ").read_text()
    return environ.split(f"{name}=")[1].split("\0")[0]


def _metrics_dir(worker: int) -> Path:
    """The prometheus folder the parent of ``worker`` made (and removes when it exits)."""
    return Path(_environ(worker, "PROMETHEUS_MULTIPROC_DIR"))


def _replay_clock(worker: int, speedup: float) -> ReplayClock:
    """The replay clock the parent of ``worker`` handed its workers (its start and anchor)."""
    return ReplayClock(
        pd.Timestamp(_environ(worker, ENV_CLOCK_START)),
        speedup,
        float(_environ(worker, ENV_CLOCK_ANCHOR)),
    )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _write_config(tmp_path: Path) -> Path:
    config = tmp_path / "service.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    return config


@pytest.mark.slow
def test_two_workers_share_jobs_time_health_and_metrics_and_stop_together(tmp_path: Path):
    config = tmp_path / "service.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    port = free_port()
    process = start_server(config, port, STARTUP_S)
    base = f"http://127.0.0.1:{port}"
    try:
        body = {"name": "j", "work_accelerator_hours": 2.0, "slack_h": 6.0}
        workers = _workers(process.pid)
        assert len(workers) == 2
        clock = _replay_clock(workers[0], speedup=600)  # the controller's, as the config says

        def submit(i: int) -> tuple[httpx.Response, pd.Timestamp, pd.Timestamp]:
            """The answer, and the replayed time just before the request and just after."""
            before = clock.now()
            # One connection per request, so that the kernel spreads them over the workers.
            answer = httpx.post(
                f"{base}/v1/jobs", json=body, headers={"Idempotency-Key": f"k{i % 20}"}
            )
            return answer, before, clock.now()

        with ThreadPoolExecutor(8) as pool:
            timed = list(pool.map(submit, range(40)))
        answers = [answer for answer, _, _ in timed]
        assert {r.status_code for r in answers} <= {200, 201}
        # The same key twice is one job, whichever worker took each.
        ids: dict[str, set[str]] = {r.request.headers["Idempotency-Key"]: set() for r in answers}
        for r in answers:
            ids[r.request.headers["Idempotency-Key"]].add(r.json()["id"])
        assert all(len(v) == 1 for v in ids.values())
        assert sum(r.status_code == 201 for r in answers) == 20
        assert httpx.get(f"{base}/v1/jobs").json()["total"] == 20

        # The workers keep the controller's (replayed) time: a job created by the first of
        # two answers to a key was stamped between that request's start and end, however
        # loaded the machine (a worker on a clock of its own would be minutes off at 600x).
        first: dict[str, pd.Timestamp] = {}
        for answer, before, after in timed:
            stamped = pd.Timestamp(answer.json()["submitted_at"])
            if answer.status_code == 201:
                assert before <= stamped <= after, (before, stamped, after)
                first[answer.json()["id"]] = stamped
        # A replayed answer carries the time the job was created, not its own.
        for answer, _, _ in timed:
            assert pd.Timestamp(answer.json()["submitted_at"]) == first[answer.json()["id"]]
        # ... and read its heartbeat: ready means it plans the step their clock is at.
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text

        # Metrics merge the processes: ticks come from the controller, requests from both.
        metrics = httpx.get(f"{base}/metrics").text
        ticks = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("wattroute_ticks_total")
        )
        assert ticks >= 1
        posts = sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("wattroute_http_request_seconds_count") and 'method="POST"' in line
        )
        assert posts == 40
        assert _workers(process.pid) == workers  # none died or was replaced meanwhile
        metrics_dir = _metrics_dir(workers[0])  # set by the parent for its workers
        assert metrics_dir.is_dir()
    finally:
        code = stop_group(process, signal.SIGTERM)
    assert code == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}")
    assert not metrics_dir.exists()


@pytest.mark.slow
def test_workers_exit_with_a_killed_parent_and_a_restart_at_once_comes_up(tmp_path: Path):
    config = _write_config(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = start_server(config, port, STARTUP_S)
    second = None
    clients: list[httpx.Client] = []
    metrics_dir = None
    code = None
    try:
        workers = _workers(first.pid)
        assert len(workers) == 2
        metrics_dir = _metrics_dir(workers[0])
        assert httpx.post(f"{base}/v1/jobs", json=JOB).status_code == 201
        # Keep-alive connections stay open through the kill: they must not hold the port.
        clients = [httpx.Client() for _ in range(6)]
        assert all(c.get(f"{base}/healthz").status_code == 200 for c in clients)

        os.kill(first.pid, signal.SIGKILL)  # the parent only, not its group
        first.wait(timeout=10)
        second = launch_server(config, port)  # at once, while the workers may still run
        # Gone within the wait the restart gives the port (else it could not bind; left
        # running, they would serve on it for ever), or wait_gone raises.
        wait_gone(workers, timeout_s=BIND_WAIT_S)
        # Until they were gone, /healthz could have been answered by them: only now ask.
        wait_healthy(second, port, timeout_s=STARTUP_S)
        assert httpx.post(f"{base}/v1/jobs", json={**JOB, "name": "k"}).status_code == 201
        assert httpx.get(f"{base}/v1/jobs").json()["total"] == 2
        assert len(_workers(second.pid)) == 2
    finally:
        for client in clients:
            client.close()
        stop_group(first, signal.SIGKILL)
        if second is not None:
            code = stop_group(second, signal.SIGTERM)
        if metrics_dir is not None:  # the killed parent could not remove it
            shutil.rmtree(metrics_dir, ignore_errors=True)
    assert code == 0


def test_a_port_that_stays_busy_is_an_input_error_after_the_wait(tmp_path: Path):
    config = _write_config(tmp_path)
    scratch = tmp_path / "scratch"  # the TMPDIR of the second server
    scratch.mkdir()
    port = free_port()
    holder = socket.socket()  # another process that keeps the port
    holder.bind(("127.0.0.1", port))
    holder.listen()
    second = None
    try:
        started = time.monotonic()
        env = {**os.environ, ENV_BIND_WAIT: "1", "TMPDIR": str(scratch)}
        second = launch_server(config, port, env=env)
        _, err = second.communicate(timeout=STARTUP_S)
        waited = time.monotonic() - started
        message = err.decode()
        assert second.returncode == 2, message
        assert waited >= 1
        assert "waiting for the previous instance to release it" in message
        assert f"api.port: 127.0.0.1:{port} is in use" in message
        assert "Fix:" in message
        assert "Traceback" not in message
        # Its metrics folder (made before the bind) is removed.
        assert not list(scratch.glob("wattroute-metrics-*"))
    finally:
        holder.close()
        if second is not None:
            stop_group(second, signal.SIGKILL)


@pytest.mark.slow
def test_a_start_waits_for_a_port_released_within_the_window(tmp_path: Path):
    config = _write_config(tmp_path)
    log = tmp_path / "serve.log"
    port = free_port()
    holder = socket.socket()  # another instance, on its way out
    holder.bind(("127.0.0.1", port))
    holder.listen()
    waited = threading.Event()
    # A window wide enough for a loaded machine: the release comes half a second after the
    # server says it waits, and the server must then take the port.
    env = {**os.environ, ENV_BIND_WAIT: str(STARTUP_S)}
    process = launch_server(config, port, log=log, env=env)

    def release_once_waited() -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and process.poll() is None:
            if log.exists() and "waiting for the previous instance" in log.read_text():
                waited.set()
                time.sleep(0.5)  # a few more attempts to bind
                break
            time.sleep(0.05)
        holder.close()

    releaser = threading.Thread(target=release_once_waited, daemon=True)
    releaser.start()
    try:
        wait_healthy(process, port, timeout_s=STARTUP_S, log=log)
        assert waited.is_set()
        assert httpx.post(f"http://127.0.0.1:{port}/v1/jobs", json=JOB).status_code == 201
    finally:
        holder.close()
        releaser.join(timeout=STARTUP_S)
        code = stop_group(process, signal.SIGTERM)
    assert code == 0
    assert "port released" in log.read_text()


# A parent that starts one child and sleeps; the child watches it with exit_with_parent.
PARENT = """
import os, subprocess, sys, time
from wattroute.service.supervise import ENV_PARENT_PID

env = {**os.environ, ENV_PARENT_PID: str(os.getpid())}
child = subprocess.Popen([sys.executable, "-c", *sys.argv[1:]], env=env)
print(child.pid, flush=True)
time.sleep(120)
"""

CHILD = """
import os, signal, sys, time
from wattroute.service import supervise

mode, go = sys.argv[1], sys.argv[2]

def on_term(sig, frame):
    print("term", flush=True)
    if mode != "slow":  # "slow": a graceful shutdown that never ends
        sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
if mode == "slow":
    supervise._arm_death_signal = lambda: None  # the portable fallback alone
while mode == "late" and not os.path.exists(go):  # the parent is killed meanwhile
    time.sleep(0.01)
poll_s = 0.2 if mode == "slow" else 600.0  # else only the death signal or the pid check
supervise.exit_with_parent(poll_s=poll_s, grace_s=0.5)
print("watching", flush=True)
time.sleep(600)
"""
CHILD_SLEEP_S = 600.0  # how long a child that never reacted would run on


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(
            "signal",
            marks=pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG"),
            id="death-signal",
        ),
        pytest.param("late", id="parent-died-before-the-watch"),
        pytest.param("slow", id="polling-and-hard-exit"),
    ],
)
def test_a_watched_process_exits_when_its_parent_is_killed(tmp_path: Path, mode: str):
    go = tmp_path / "go"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, mode, str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        if mode != "late":
            assert parent.stdout.readline().strip() == b"watching"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        go.touch()
        # With the signal (or the pid check) at once, or polling 0.2 s and a hard exit 0.5 s
        # later: within EXIT_S (else wait_gone raises), where a poll of 600 s, or a graceful
        # shutdown that never ends (slow), would have left the child running CHILD_SLEEP_S.
        assert EXIT_S < CHILD_SLEEP_S
        wait_gone([child], timeout_s=EXIT_S)
        said = parent.stdout.read().decode().split()  # EOF: the child is gone
        assert "term" in said  # the graceful way first
    finally:
        stop_group(parent, signal.SIGKILL)


def test_a_start_removes_the_metrics_folders_of_killed_servers(tmp_path: Path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = tmp_path / f"{METRICS_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{METRICS_PREFIX}{os.getpid()}-def"
    other = tmp_path / "wattroute-metrics-notapid"
    for folder in (orphan, live, other):
        folder.mkdir()
    assert remove_orphaned_metrics(str(tmp_path)) == [str(orphan)]
    assert live.is_dir()
    assert other.is_dir()
