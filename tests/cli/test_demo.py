"""``wattroute demo``, the one-command start, end to end in its own process (it starts and
stops its own Ray cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import needs_shared_data

# Runs the demo as a subprocess (it starts a server and Ray).
pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@needs_shared_data()
def test_the_demo_moves_work_for_a_grid_event_and_a_blackout_and_stops_cleanly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "wattroute.cli.main", "demo", "--out", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    # Whether a change is acted on between ticks (a "re-plan now" line) or by the next tick
    # depends on timing at 600x; the tests of the controller and of Ray check that apart.
    for seen in (
        "grid event:",
        "Grid event at",
        "blackout:",
        "is back: a fresh node joins",
        "Stopped the API, the controller, every Ray actor and the Ray nodes.",
    ):
        assert seen in out, seen
    assert out.count("│ completed │") == 4, out[-3000:]
    assert "Traceback" not in out
