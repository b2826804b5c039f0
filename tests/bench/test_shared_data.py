"""Where tests and benchmarks find the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.shared_data import DATA_DIR_VARIABLE, ROOT, shared_data_dir


def test_the_data_is_beside_the_repository_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    assert shared_data_dir() == ROOT.parent / "shared" / "data"
    monkeypatch.setenv(DATA_DIR_VARIABLE, "  ")
    assert shared_data_dir() == ROOT.parent / "shared" / "data"


def test_the_environment_names_another_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path / "elsewhere" / ".." / "data"))
    assert shared_data_dir() == tmp_path / "data"
