"""wattroute bench: policies side by side, capture ratios, the report; simulate --oracle."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from wattroute.bench import parse_policies
from wattroute.cli.main import main
from wattroute.errors import InputError

SCENARIO = """
name: tiny-bench
start: 2023-06-01T00:00:00Z
end: 2023-06-03T00:00:00Z
step: 15min
carbon_price_usd_per_tonne: 100
sites:
  - name: a
    latitude: 40
    longitude: -100
    accelerators: {count: 8, busy_kw: 0.7, idle_kw: 0.1}
    grid: {model: {mean_price_usd_per_mwh: 60, mean_carbon_g_per_kwh: 300, seed: 4}}
  - name: b
    latitude: 45
    longitude: -90
    accelerators: {count: 8, busy_kw: 0.7, idle_kw: 0.1}
    grid:
      model: {mean_price_usd_per_mwh: 50, mean_carbon_g_per_kwh: 400, seed: 5}
      import_limit_kw: 6
    battery: {capacity_kwh: 10, charge_kw: 3, discharge_kw: 3}
batch_jobs:
  - {name: j1, arrival_h: 2, work_accelerator_hours: 12, max_accelerators: 4, slack_h: 10}
  - {name: j2, arrival_h: 20, work_accelerator_hours: 20, max_accelerators: 4, slack_h: 12}
  - {name: j3, arrival_h: 30, work_accelerator_hours: 6, max_accelerators: 2, slack_h: 8}
"""


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(SCENARIO))
    return path


def test_bench_writes_tables_summaries_and_a_report_with_capture_ratios(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["bench", str(_scenario(tmp_path)), "--out", str(out)])
    assert code == 0
    rows = json.loads((out / "bench.json").read_text())["rows"]
    by_policy = {r["policy"]: r for r in rows}
    assert set(by_policy) == {"agnostic", "greedy", "mpc", "oracle"}
    assert by_policy["agnostic"]["capture_ratio"] == pytest.approx(0.0)
    assert by_policy["oracle"]["capture_ratio"] == pytest.approx(1.0)
    for name in ("agnostic", "greedy", "mpc"):
        assert by_policy["oracle"]["objective_usd"] <= by_policy[name]["objective_usd"] + 1e-6
        assert (out / "tiny-bench" / name / "timeseries.parquet").is_file()
    assert by_policy["mpc"]["objective_usd"] < by_policy["agnostic"]["objective_usd"]
    markdown = (out / "bench.md").read_text()
    assert "| tiny-bench | oracle (bound) |" in markdown
    report = (out / "report.html").read_text()
    assert "plotly" in report
    assert "where each batch job ran" in report


def test_simulate_with_an_oracle_result_adds_the_capture_ratio(tmp_path, capsys):
    scenario = _scenario(tmp_path)
    assert main(["bench", str(scenario), "--policies", "oracle", "--out", str(tmp_path / "b")]) == 0
    oracle = tmp_path / "b" / "tiny-bench" / "oracle" / "summary.json"
    assert (
        main(
            [
                "simulate",
                str(scenario),
                "--policy",
                "greedy",
                "--oracle",
                str(oracle),
                "--out",
                str(tmp_path / "g"),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert 0.0 < summary["capture_ratio"] <= 1.0
    assert summary["capture_ratio_inputs"]["oracle_objective_usd"] <= summary["objective_usd"]


def test_an_oracle_of_another_scenario_is_refused(tmp_path, capsys):
    scenario = _scenario(tmp_path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"scenario": "x", "bound": True, "objective_usd": 1.0}))
    code = main(["simulate", str(scenario), "--oracle", str(other), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--oracle" in capsys.readouterr().err


def test_unknown_policies_are_refused_with_the_list():
    with pytest.raises(InputError, match="mpc, oracle"):
        parse_policies("agnostic,best")
