"""``wattroute demo --out``: the folder it writes to is its own, and nothing else is emptied."""

from __future__ import annotations

import pytest

from wattroute.cli.demo import MARKER, _fresh
from wattroute.cli.main import main
from wattroute.errors import InputError


def test_a_new_or_empty_folder_becomes_the_demo_s_and_a_previous_demo_s_is_emptied(tmp_path):
    out = tmp_path / "demo"
    _fresh(out)
    assert (out / MARKER).is_file()
    (out / "demo.db").write_text("old")
    _fresh(out)
    assert sorted(p.name for p in out.iterdir()) == [MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    _fresh(empty)
    assert (empty / MARKER).is_file()


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path, capsys):
    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years")
    assert main(["demo", "--out", str(precious)]) == 2
    err = capsys.readouterr().err
    assert "--out:" in err
    assert "is not a previous demo's folder" in err
    assert "Fix:" in err
    assert (precious / "thesis.tex").read_text() == "years"


def test_a_file_is_refused(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    with pytest.raises(InputError, match="not a previous demo's folder"):
        _fresh(path)
    assert path.read_text() == "x"
