"""Real server processes for tests and benchmarks: a free port, start and wait, stop the group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVE = (sys.executable, "-m", "wattroute.cli.main", "serve")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(config: Path, port: int, timeout_s: float = 120.0) -> subprocess.Popen[bytes]:
    """``wattroute serve --config CONFIG --port PORT`` in a new process group, once it answers
    ``/healthz``; its stderr is kept for the error if it dies first."""
    process = subprocess.Popen(
        [*SERVE, "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                process.stderr.read().decode() if process.stderr else "server exited"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_group(process, signal.SIGKILL)
    raise RuntimeError(f"the server did not answer /healthz within {timeout_s:.0f} s")


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` to the server's process group (it and its workers) and wait; its exit
    code. A group that ignores SIGTERM for 30 s is killed."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout=30)
