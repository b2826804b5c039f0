"""Several API worker processes and one controller: the same service, whichever answers."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd

from tests.service.processes import free_port, start_server, stop_group

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


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_two_workers_share_jobs_time_health_and_metrics_and_stop_together(tmp_path: Path):
    config = tmp_path / "service.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    port = free_port()
    process = start_server(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        body = {"name": "j", "work_accelerator_hours": 2.0, "slack_h": 6.0}

        def submit(i: int) -> httpx.Response:
            # One connection per request, so that the kernel spreads them over the workers.
            return httpx.post(
                f"{base}/v1/jobs", json=body, headers={"Idempotency-Key": f"k{i % 20}"}
            )

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(submit, range(40)))
        assert {r.status_code for r in answers} <= {200, 201}
        # The same key twice is one job, whichever worker took each.
        ids: dict[str, set[str]] = {r.request.headers["Idempotency-Key"]: set() for r in answers}
        for r in answers:
            ids[r.request.headers["Idempotency-Key"]].add(r.json()["id"])
        assert all(len(v) == 1 for v in ids.values())
        assert sum(r.status_code == 201 for r in answers) == 20
        assert httpx.get(f"{base}/v1/jobs").json()["total"] == 20

        # The workers read the controller's heartbeat and keep its (replayed) time.
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        controller_time = pd.Timestamp(ready.json()["time"])
        submitted = [pd.Timestamp(r.json()["submitted_at"]) for r in answers]
        step = pd.Timedelta(minutes=5)
        assert all(abs(t - controller_time) < 20 * step for t in submitted)

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
        workers = [
            p for p in _children(process.pid) if "fork" in Path(f"/proc/{p}/cmdline").read_text()
        ]
        assert len(workers) == 2
        metrics_dir = Path(
            Path(f"/proc/{workers[0]}/environ")  # set by the parent for its workers
            .read_text()
            .split("PROMETHEUS_MULTIPROC_DIR=")[1]
            .split("\0")[0]
        )
        assert metrics_dir.is_dir()
    finally:
        code = stop_group(process, signal.SIGTERM)
    assert code == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}")
    assert not metrics_dir.exists()
