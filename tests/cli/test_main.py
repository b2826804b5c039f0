"""The command line: the two happy paths, and bad input that must exit 2 with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.builders import SHARED_DATA, needs_shared_data
from wattroute.cli.main import main

MINIMAL = """
name: tiny
start: 2023-06-01T00:00:00Z
end: 2023-06-02T00:00:00Z
step: 15min
sites:
  - name: a
    latitude: 40
    longitude: -100
    accelerators: {count: 4, busy_kw: 0.5, idle_kw: 0.1}
    grid: {price: 50, carbon: 300}
    battery: {capacity_kwh: 20, charge_kw: 5, discharge_kw: 5}
batch_jobs:
  - {name: j, arrival_h: 1, work_accelerator_hours: 4, max_accelerators: 2, slack_h: 3}
"""


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())  # rich wraps lines


def test_simulate_writes_summary_and_timeseries(tmp_path, capsys):
    scenario = _write(tmp_path, MINIMAL)
    code, out, _ = _run(["simulate", str(scenario), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for key in (
        "scenario",
        "policy",
        "objective_usd",
        "cost_usd",
        "emissions_kg",
        "carbon_price_usd_per_tonne",
        "energy_kwh",
        "inference",
        "batch",
        "decision_s",
        "wall_s",
        "sites",
    ):
        assert key in summary
    assert set(summary["energy_kwh"]) == {
        "grid",
        "solar",
        "wind",
        "genset",
        "battery_charge",
        "battery_discharge",
        "curtailed",
        "export",
        "load",
        "unserved",
    }
    assert summary["batch"]["completed"] == 1
    frame = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert len(frame) == 96  # 96 steps of 15 min, one site
    assert frame["load_kw"].sum() / 4 == pytest.approx(summary["energy_kwh"]["load"], rel=1e-5)
    assert "objective (USD)" in out


def test_csv_timeseries_and_greedy(tmp_path, capsys):
    scenario = _write(tmp_path, MINIMAL)
    code, _, _ = _run(
        [
            "simulate",
            str(scenario),
            "--policy",
            "greedy",
            "--format",
            "csv",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    assert (tmp_path / "timeseries.csv").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["policy"] == "greedy"
    jobs = pd.read_csv(tmp_path / "jobs.csv")
    assert jobs["job"].tolist() == ["j"]
    assert jobs["sites"].tolist() == ["a"]


def test_simulate_writes_a_per_job_result_and_a_summary_that_fits_80_columns(tmp_path, capsys):
    scenario = _write(tmp_path, MINIMAL)
    code, out, _ = _run(["simulate", str(scenario), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    jobs = pd.read_parquet(tmp_path / "out" / "jobs.parquet")
    (row,) = jobs.to_dict("records")
    # j: 4 accelerator-hours on 2 accelerators from 01:00, due 3 h after the earliest finish
    assert row["job"] == "j"
    assert row["sites"] == "a"
    assert row["arrival"] == pd.Timestamp("2023-06-01T01:00Z")
    assert row["start"] == pd.Timestamp("2023-06-01T01:00Z")  # agnostic runs it at once
    assert row["completion"] == pd.Timestamp("2023-06-01T03:00Z")
    assert row["completed"]
    assert not row["late"]
    assert row["late_h"] == 0.0
    assert (row["moves"], row["restores"], row["overhead_h"]) == (0, 0, 0.0)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80  # capsys: rich's 80 columns
    assert "…" not in out
    assert "jobs.parquet" in out


def test_policies_lists_both_baselines(capsys):
    code, out, _ = _run(["policies"], capsys)
    assert code == 0
    assert "agnostic" in out
    assert "greedy" in out


@pytest.mark.parametrize(
    ("edit", "field", "fix"),
    [
        (
            ("capacity_kwh", "capcity_kwh"),
            "sites[0].battery.capcity_kwh",
            "did you mean 'capacity_kwh'",
        ),
        (
            ("capacity_kwh: 20", "capacity_kwh: -20"),
            "sites[0].battery.capacity_kwh",
            "greater than 0",
        ),
        (("count: 4", "count: -4"), "sites[0].accelerators.count", "greater than 0"),
        (("end: 2023-06-02T00:00:00Z", "end: 2023-05-31T00:00:00Z"), "end must be after start", ""),
        (("busy_kw: 0.5", "busy_kw: 0.05"), "idle_kw must not exceed busy_kw", ""),
        (
            ("slack_h: 3", "deadline: 2023-06-01T02:00:00Z"),
            "batch_jobs[0].max_accelerators",
            "raise max_accelerators to at least",
        ),
        (("start: 2023-06-01T00:00:00Z", "start: 2023-06-01T00:00:00"), "has no timezone", "Z"),
        (("step: 15min", "step: fortnightly"), "step", "write e.g. '5min'"),
    ],
)
def test_bad_scenarios_exit_2_naming_field_and_fix(tmp_path, capsys, edit, field, fix):
    text = MINIMAL.replace(*edit)
    code, _, err = _run(["validate", str(_write(tmp_path, text))], capsys)
    assert code == 2
    assert "Traceback" not in err
    assert field in err
    assert fix in err


def test_missing_scenario_file(tmp_path, capsys):
    code, _, err = _run(["simulate", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2
    assert "nope.yaml" in err
    assert "not found" in err


def test_missing_data_file_names_the_field_and_data_dir(tmp_path, capsys):
    text = MINIMAL.replace("grid: {price: 50, carbon: 300}", "grid: {file: grid/XX_2023.csv}")
    code, _, err = _run(["validate", str(_write(tmp_path, text))], capsys)
    assert code == 2
    assert "sites[0].grid" in err
    assert "XX_2023.csv" in err
    assert "data_dir" in err


def test_unknown_policy(tmp_path, capsys):
    code, _, err = _run(["simulate", str(_write(tmp_path, MINIMAL)), "--policy", "magic"], capsys)
    assert code == 2
    assert "--policy" in err
    assert "agnostic" in err


def test_invalid_yaml_reports_the_line(tmp_path, capsys):
    code, _, err = _run(["validate", str(_write(tmp_path, "name: [unclosed\nstart: x\n"))], capsys)
    assert code == 2
    assert "line" in err


@needs_shared_data()
def test_a_signal_that_does_not_cover_the_period(tmp_path, capsys):
    text = MINIMAL.replace(
        "grid: {price: 50, carbon: 300}", "grid: {file: grid/US-CAL-CISO_2023.csv}"
    )
    text = text.replace("2023-06-01T00", "2024-06-01T00").replace("2023-06-02T00", "2024-06-02T00")
    text = f"data_dir: {SHARED_DATA}\n" + text
    code, _, err = _run(["validate", str(_write(tmp_path, text))], capsys)
    assert code == 2
    assert "sites[0].grid" in err
    assert "covers" in err
    assert "2024-06-01" in err


@needs_shared_data()
def test_nans_in_a_signal_name_the_file_and_time_range(tmp_path, capsys):
    grid = pd.read_csv(SHARED_DATA / "grid" / "US-CAL-CISO_2023.csv")
    grid.loc[3600:3610, "price_usd_per_mwh"] = float("nan")  # 11 hours on 31 May / 1 June
    grid.to_csv(tmp_path / "grid.csv", index=False)
    text = MINIMAL.replace("grid: {price: 50, carbon: 300}", "grid: {file: grid.csv}")
    text = text.replace("2023-06-01T00", "2023-05-30T00")
    code, _, err = _run(["validate", str(_write(tmp_path, text))], capsys)
    assert code == 2
    assert "grid.csv" in err
    assert "2023-05-31" in err
    assert "max_gap" in err


@pytest.mark.system
def test_the_installed_command_runs_the_default_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wattroute.cli.main", "simulate", "--out", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["scenario"] == "default"
    assert summary["energy_kwh"]["unserved"] == pytest.approx(0.0, abs=1e-6)
    assert summary["inference"]["slo_violation_fraction"] == pytest.approx(0.0, abs=1e-9)
    assert summary["batch"]["deadline_misses"] == 0


def test_token_create_prints_a_token_the_api_accepts_with_its_scope(tmp_path, capsys):
    from tests.service.helpers import make_service, sqlite_url

    url = sqlite_url(tmp_path)
    code, out, _ = _run(
        ["token", "create", "--tenant", "acme", "--scope", "submit", "--database", url], capsys
    )
    assert code == 0
    token = out.strip()
    assert len(token) >= 32
    svc = make_service(url)
    with svc.client:
        h = {"Authorization": f"Bearer {token}"}
        job = {"name": "j", "work_accelerator_hours": 1.0, "slack_h": 2.0}
        assert svc.client.post("/v1/jobs", json=job, headers=h).status_code == 201
        assert svc.client.get("/v1/jobs", headers=h).json()["jobs"][0]["tenant"] == "acme"
        assert svc.client.patch("/v1/sites/a", json={"offline": True}, headers=h).status_code == 403
    # Only the hash is stored: the token itself is nowhere in the database file.
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("wattroute.db*"))  # with the WAL
    assert b"acme" in stored
    assert token.encode() not in stored


def test_token_create_refuses_an_unknown_scope(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code, out, err = _run(
        ["token", "create", "--tenant", "acme", "--scope", "root", "--database", url], capsys
    )
    assert code == 2
    assert out == ""
    assert "--scope" in err
    assert "read, submit, metrics, admin" in err


def test_tokens_are_listed_without_secrets_expire_and_are_revoked_by_id(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    base = ["--database", url]
    code, first, err = _run(
        ["token", "create", "--tenant", "acme", "--scope", "read", "--label", "ci", *base],
        capsys,
    )
    assert code == 0
    assert err.startswith("token 1 for acme (read)")
    code, second, err = _run(
        ["token", "create", "--tenant", "globex", "--scope", "admin", "--expires", "90d", *base],
        capsys,
    )
    assert code == 0
    assert "until" in err
    code, out, _ = _run(["token", "list", *base], capsys)
    assert code == 0
    assert "acme" in out
    assert "globex" in out
    assert "ci" in out
    assert first.strip() not in out
    assert second.strip() not in out
    assert out.count("active") == 2
    code, _, err = _run(["token", "revoke", "1", *base], capsys)
    assert (code, err.strip()) == (0, "revoked token 1")
    code, out, _ = _run(["token", "list", "--tenant", "acme", *base], capsys)
    assert "revoked" in out
    assert "globex" not in out
    code, _, err = _run(["token", "revoke", "1", "7", *base], capsys)
    assert code == 2
    assert "no active token with id 1, 7" in err
    for bad, words in (
        (["--expires", "2020-01-01T00:00:00Z"], "in the past"),
        (["--tenant", "a/b"], "not a tenant name"),
    ):
        args = ["token", "create", "--tenant", "acme", "--scope", "read", *bad, *base]
        code, out, err = _run(args, capsys)
        assert code == 2
        assert words in err
        assert out == ""


def test_the_balance_guard_is_on_unless_switched_off_and_changes_no_result(tmp_path, capsys):
    """``--no-check-balance`` only skips the check: the same summary either way."""
    scenario = _write(tmp_path, MINIMAL)
    objectives = []
    for flag, folder in (([], "checked"), (["--no-check-balance"], "unchecked")):
        out = tmp_path / folder
        code, _, err = _run(["simulate", str(scenario), "--out", str(out), *flag], capsys)
        assert code == 0, err
        objectives.append(json.loads((out / "summary.json").read_text())["objective_usd"])
    assert objectives[0] == objectives[1]
