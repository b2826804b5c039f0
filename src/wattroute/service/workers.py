"""What the parent process tells its API workers, through the environment.

Kept apart from the server so that it can run before ``prometheus_client`` is first imported:
its multiprocess mode is chosen at import time, from ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
import sys
import tempfile

ENV_CONFIG = "WATTROUTE_CONFIG"
ENV_DATABASE = "WATTROUTE_DATABASE"
ENV_CLOCK_START = "WATTROUTE_CLOCK_START"
ENV_CLOCK_ANCHOR = "WATTROUTE_CLOCK_ANCHOR"
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
ENV_RAY_ADDRESS = "WATTROUTE_RAY_ADDRESS"


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
    folder = tempfile.mkdtemp(prefix="wattroute-metrics-")
    os.environ[ENV_METRICS_DIR] = folder
    return folder
