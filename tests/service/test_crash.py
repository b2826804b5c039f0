"""kill -9 of a real server at random moments loses no accepted job, duplicates none, and
resumes every job from its last committed progress."""

from __future__ import annotations

import random
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.service.processes import free_port, start_server, stop_group
from wattroute.service.server import open_store

# Starts a real server and kills it with SIGKILL.
pytestmark = [pytest.mark.system, pytest.mark.slow]

CONFIG = """
name: crash-test
fleet:
  step: 5min
  carbon_price_usd_per_tonne: 100
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
      grid: {price: 40, carbon: 500, import_limit_kw: 8}
      battery: {capacity_kwh: 20, charge_kw: 5, discharge_kw: 5}
signals: {start: 2023-06-01T00:00:00Z, end: 2023-06-30T00:00:00Z}
policy: greedy
database: sqlite:///state.db
clock: {kind: replay, speedup: 6000}
auth: {required: false}
"""


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    return start_server(config, port, timeout_s=60)


def _kill(process: subprocess.Popen[bytes]) -> None:
    stop_group(process, signal.SIGKILL)


def test_kill_minus_9_loses_nothing_accepted_and_duplicates_nothing(tmp_path):
    config = tmp_path / "service.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    port = free_port()
    rng = random.Random(7)
    accepted: dict[str, str] = {}  # idempotency key -> job id, answered 2xx
    attempted: dict[str, dict[str, object]] = {}  # idempotency key -> body sent
    progress_before: dict[str, float] = {}
    url = f"sqlite:///{tmp_path / 'state.db'}"
    process = _start(config, port)
    try:
        for round_ in range(3):
            stop = threading.Event()

            def submit(stop: threading.Event = stop, round_: int = round_) -> None:
                i = 0
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                    while not stop.is_set():
                        key = f"r{round_}-{i}"
                        body = {
                            "name": key,
                            "work_accelerator_hours": 2.0 + i % 5,
                            "max_accelerators": 2,
                            "slack_h": 12,
                        }
                        attempted[key] = body
                        try:
                            r = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
                        except httpx.HTTPError:
                            return  # the server died mid-request: unknown whether accepted
                        if r.status_code in (200, 201):
                            accepted[key] = r.json()["id"]
                        i += 1

            worker = threading.Thread(target=submit)
            worker.start()
            time.sleep(rng.uniform(0.5, 2.0))
            _kill(process)
            stop.set()
            worker.join(timeout=30)
            # What was committed when the server died.
            store = open_store(url)
            for job in store.jobs(None, limit=10_000)[0]:
                progress_before[job.id] = job.done_accelerator_hours
            last = store.last_tick()
            last_step = last.step if last is not None else -1
            store.engine.dispose()
            process = _start(config, port)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                # Clients retry what they do not know the fate of: the same key, the same body.
                for key in sorted(attempted.keys() - accepted.keys()):
                    r = client.post(
                        "/v1/jobs", json=attempted[key], headers={"Idempotency-Key": key}
                    )
                    assert r.status_code in (200, 201), r.text
                    accepted[key] = r.json()["id"]
                jobs = client.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]
            by_id = {j["id"]: j for j in jobs}
            for key, job_id in accepted.items():
                assert job_id in by_id, f"accepted job {key} lost"
            names = [j["name"] for j in jobs]
            assert len(names) == len(set(names)), "a job was duplicated"
            assert len(jobs) == len(accepted)
            for job_id, done in progress_before.items():
                assert by_id[job_id]["done_accelerator_hours"] >= done - 1e-9, "progress went back"
            # The restarted controller commits its next tick within a few steps of the replay
            # clock; wait for it on a busy machine rather than for a fixed time.
            engine = sa.create_engine(url)
            deadline = time.monotonic() + 60.0
            while True:
                with engine.connect() as c:
                    steps = [
                        row[0] for row in c.exec_driver_sql("SELECT step FROM ticks ORDER BY step")
                    ]
                if (steps and steps[-1] > last_step) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            engine.dispose()
            assert steps == list(range(len(steps))), "ticks were repeated or skipped"
            assert steps[-1] > last_step, "the controller did not resume"
        assert len(accepted) > 10
    finally:
        _kill(process)
