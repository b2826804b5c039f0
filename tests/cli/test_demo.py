"""``wattroute demo``, the one-command start, end to end in its own process (it starts and
stops its own Ray cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.builders import needs_shared_data

ROOT = Path(__file__).resolve().parents[2]


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
    for seen in (
        "grid event:",
        "re-plan now: grid event in force",
        "blackout:",
        "re-plan now: site lost:",
        "is back: a fresh node joins",
        "Stopped the API, the controller, every Ray actor and the Ray nodes.",
    ):
        assert seen in out, seen
    # The power-drop scene plays when a site has solar or wind output then (it does on the
    # demo's data, by a margin that depends on timing).
    if "power drop:" in out:
        assert "re-plan now: reading at" in out
    assert out.count("│ completed │") == 4, out[-3000:]
    assert "Traceback" not in out
