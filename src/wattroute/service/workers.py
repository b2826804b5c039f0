"""What the parent process tells its API workers, through the environment.

Kept apart from the server so that it can run before ``prometheus_client`` is first imported:
its multiprocess mode is chosen at import time, from ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV_CONFIG = "WATTROUTE_CONFIG"
ENV_DATABASE = "WATTROUTE_DATABASE"
ENV_CLOCK_START = "WATTROUTE_CLOCK_START"
ENV_CLOCK_ANCHOR = "WATTROUTE_CLOCK_ANCHOR"
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
ENV_RAY_ADDRESS = "WATTROUTE_RAY_ADDRESS"
METRICS_PREFIX = "wattroute-metrics-"


def prepare_workers(workers: int) -> str | None:
    """With several workers, point prometheus_client at a fresh folder for its multiprocess
    mode (the server removes it at exit); the folder, or ``None`` for one worker.

    Raises
    ------
    RuntimeError
        If prometheus_client was imported already (it would not see the folder).
    """
    if workers == 1:
        return None
    if "prometheus_client" in sys.modules and not os.environ.get(ENV_METRICS_DIR):
        raise RuntimeError("prepare_workers must run before prometheus_client is imported")
    remove_orphaned_metrics()
    folder = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ[ENV_METRICS_DIR] = folder
    return folder


def remove_orphaned_metrics(root: str | None = None) -> list[str]:
    """Remove the metrics folders of servers that died without removing theirs (killed with
    SIGKILL); the folders removed. A folder's name carries the pid of the server that made it;
    one whose process is gone is an orphan."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = folder.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
