"""Test configuration shared by the whole suite.

Every simulation checks its energy balance unless told not to (``SimulationOptions``), so every
test that simulates verifies conservation at every site and step.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _state_in_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The service's state directory (a relative SQLite database, checkpoints) is each test's
    own ``tmp_path``, inherited by the servers it starts: nothing is written to the user's
    ``~/.local/state``."""
    monkeypatch.setenv("WATTROUTE_STATE_DIR", str(tmp_path))
