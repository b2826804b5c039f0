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
    process = launch_server(config, port)
    wait_healthy(process, port, timeout_s)
    return process


def launch_server(
    config: Path, port: int, log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``wattroute serve --config CONFIG --port PORT`` in a new process group, not waited
    for; its stderr goes to ``log`` if given, else to a pipe."""
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("wb")) if log is not None else subprocess.PIPE
        return subprocess.Popen(
            [*SERVE, "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            env=env,
        )


def wait_healthy(
    process: subprocess.Popen[bytes], port: int, timeout_s: float = 120.0, log: Path | None = None
) -> None:
    """Wait until the server answers ``/healthz``; raises ``RuntimeError`` with its stderr (from
    its pipe, or ``log``) if it exits first, and kills its group if it is not up in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if log is not None:
                raise RuntimeError(log.read_text())
            raise RuntimeError(
                process.stderr.read().decode() if process.stderr else "server exited"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_group(process, signal.SIGKILL)
    raise RuntimeError(f"the server did not answer /healthz within {timeout_s:.0f} s")


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie, exited but not reaped by
    whoever adopted it, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pids: list[int], timeout_s: float) -> float:
    """Wait until none of ``pids`` runs; the seconds it took. Raises ``TimeoutError`` if some
    still run after ``timeout_s``."""
    started = time.monotonic()
    while any(running(pid) for pid in pids):
        if time.monotonic() - started > timeout_s:
            alive = [pid for pid in pids if running(pid)]
            raise TimeoutError(f"still running after {timeout_s:g} s: {alive}")
        time.sleep(0.02)
    return time.monotonic() - started


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
