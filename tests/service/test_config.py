"""Where the service keeps its state: the state directory, never the working directory or the
config file's folder."""

from __future__ import annotations

import textwrap

import pytest

from wattroute.errors import InputError
from wattroute.service.config import load_service_config, state_directory
from wattroute.service.server import build_state

CONFIG = """\
name: t
fleet:
  step: 1h
  sites:
    - name: a
      latitude: 40
      longitude: -100
      accelerators: {count: 4, busy_kw: 0.7, idle_kw: 0.1}
      grid: {price: 60, carbon: 300}
signals: {start: 2023-06-01T00:00:00Z, end: 2023-06-02T00:00:00Z}
database: sqlite:///state.db
ray: {checkpoint_dir: checkpoints}
"""


def test_the_state_directory_follows_the_variable_then_xdg_then_home(tmp_path):
    named = tmp_path / "named"
    assert state_directory({"WATTROUTE_STATE_DIR": str(named)}) == named.resolve()
    xdg = tmp_path / "xdg"
    assert state_directory({"XDG_STATE_HOME": str(xdg)}) == (xdg / "wattroute").resolve()
    # An empty variable counts as unset.
    assert (
        state_directory({"WATTROUTE_STATE_DIR": "", "XDG_STATE_HOME": str(xdg)})
        == (xdg / "wattroute").resolve()
    )
    assert named.is_dir()
    assert (xdg / "wattroute").is_dir()
    assert named.stat().st_mode & 0o777 == 0o700


def test_the_state_directory_defaults_to_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_directory({}) == (tmp_path / ".local" / "state" / "wattroute").resolve()


def test_a_state_directory_that_cannot_be_made_names_the_variable_and_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InputError) as caught:
        state_directory({"WATTROUTE_STATE_DIR": str(blocker / "state")})
    assert caught.value.field == "WATTROUTE_STATE_DIR"
    assert "set WATTROUTE_STATE_DIR to a writable folder" in str(caught.value)


def test_relative_state_goes_to_the_state_directory_not_beside_the_config(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "service.yaml").write_text(textwrap.dedent(CONFIG))
    state = tmp_path / "state"
    monkeypatch.setenv("WATTROUTE_STATE_DIR", str(state))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    config = load_service_config(folder / "service.yaml")
    assert config.database_url == f"sqlite:///{state.resolve() / 'state.db'}"
    assert config.checkpoint_root == str(state.resolve() / "checkpoints")
    assert sorted(p.name for p in folder.iterdir()) == ["service.yaml"]
    assert list(work.iterdir()) == []


def test_absolute_paths_and_urls_are_used_as_given(tmp_path):
    (tmp_path / "service.yaml").write_text(
        textwrap.dedent(CONFIG)
        .replace("sqlite:///state.db", f"sqlite:///{tmp_path / 'db.sqlite'}")
        .replace("checkpoint_dir: checkpoints", "checkpoint_dir: s3://bucket/ckpt")
    )
    config = load_service_config(tmp_path / "service.yaml")
    assert config.database_url == f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert config.checkpoint_root == "s3://bucket/ckpt"
    database = "postgresql+psycopg://u@127.0.0.1:5432/w"
    assert load_service_config(tmp_path / "service.yaml", database).database_url == database


def test_the_built_in_demo_keeps_its_database_in_the_state_directory(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("WATTROUTE_STATE_DIR", str(state))
    monkeypatch.chdir(tmp_path)
    config = load_service_config(None)
    assert config.database_url == f"sqlite:///{state.resolve() / 'wattroute-demo.db'}"
    assert not (tmp_path / "wattroute-demo.db").exists()


@pytest.mark.parametrize(("line", "tracked"), [("", True), ("baseline: false\n", False)])
def test_the_agnostic_baseline_runs_beside_the_fleet_unless_turned_off(tmp_path, line, tracked):
    (tmp_path / "service.yaml").write_text(textwrap.dedent(CONFIG) + line)
    state = build_state(load_service_config(tmp_path / "service.yaml"))
    try:
        assert state.controller is not None
        assert (state.controller.baseline is not None) is tracked
    finally:
        for close in reversed(state.on_close):
            close()


def test_a_database_left_beside_the_config_is_not_silently_replaced(tmp_path, monkeypatch):
    """Relative databases used to resolve beside the config: one found there, and none yet
    in the state directory, is an error naming both places, not a fresh empty database."""
    (tmp_path / "service.yaml").write_text(textwrap.dedent(CONFIG))
    (tmp_path / "state.db").write_bytes(b"SQLite format 3\x00")
    state = tmp_path / "state"
    monkeypatch.setenv("WATTROUTE_STATE_DIR", str(state))
    with pytest.raises(InputError) as caught:
        load_service_config(tmp_path / "service.yaml")
    assert caught.value.field == "database"
    assert str(tmp_path / "state.db") in caught.value.problem
    assert f"move it to {state.resolve() / 'state.db'}" in caught.value.fix
    assert not (state / "state.db").exists()


def test_the_built_in_demo_ignores_an_old_demo_database_in_the_working_folder(
    tmp_path, monkeypatch
):
    (tmp_path / "wattroute-demo.db").write_bytes(b"SQLite format 3\x00")
    monkeypatch.setenv("WATTROUTE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    config = load_service_config(None)  # the demo's state is disposable: no error
    assert config.database_url.endswith("/state/wattroute-demo.db")
