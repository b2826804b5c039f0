"""wattroute bench: policies side by side, capture ratios, the report; simulate --oracle."""

from __future__ import annotations

import json
import re
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
    objective = {name: row["objective_usd"] for name, row in by_policy.items()}
    for name, row in by_policy.items():
        # The objective: cost + 100 USD/t x emissions + penalties.
        assert row["objective_usd"] == pytest.approx(
            row["cost_usd"] + 100.0 * row["emissions_kg"] / 1000.0 + row["penalties_usd"]
        ), name
        # The share of the oracle's saving over agnostic that the policy gets.
        assert row["capture_ratio"] == pytest.approx(
            (objective["agnostic"] - row["objective_usd"])
            / (objective["agnostic"] - objective["oracle"])
        ), name
    # The oracle bounds every policy, and both planners beat the carbon-agnostic baseline.
    for name in ("agnostic", "greedy", "mpc"):
        assert objective["oracle"] < objective[name] - 1e-6, name
        assert (out / "tiny-bench" / name / "timeseries.parquet").is_file()
    assert objective["greedy"] < objective["agnostic"]
    assert objective["mpc"] < objective["agnostic"]
    markdown = (out / "bench.md").read_text()
    mpc_capture = f"{100 * by_policy['mpc']['capture_ratio']:.1f}%"
    assert f"| tiny-bench | oracle (bound) | {objective['oracle']:.2f} |" in markdown
    assert any(
        line.startswith(f"| tiny-bench | mpc | {objective['mpc']:.2f} |")
        and line.endswith(f"| {mpc_capture} |")
        for line in markdown.splitlines()
    )
    report = (out / "report.html").read_text()
    # The comparison, then agnostic against mpc (the policy of interest): sites, fleet,
    # signals and the jobs: five charts, with plotly.js embedded once so that the file works
    # offline.
    assert report.count('class="plotly-graph-div"') == 5
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", report)) == 1
    assert "Supply against load per site, hourly means (kW)" in report
    assert "Where each batch job ran, all 3 jobs, policy against policy" in report
    assert f"<td>mpc</td><td>{objective['mpc']:,.2f}</td>" in report


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
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    # the capture written is the capture printed
    printed = capsys.readouterr().out
    shown = f"{100 * summary['capture_ratio']:.1f}%"
    assert re.search(rf"capture ratio \(vs oracle\)\s+│\s+{re.escape(shown)}", printed)
    inputs = summary["capture_ratio_inputs"]
    assert inputs["oracle_objective_usd"] == json.loads(oracle.read_text())["objective_usd"]
    # greedy beats the agnostic baseline it is measured from, and the oracle bounds it
    assert inputs["oracle_objective_usd"] < summary["objective_usd"]
    assert summary["objective_usd"] < inputs["baseline_objective_usd"]
    assert summary["capture_ratio"] == pytest.approx(
        (inputs["baseline_objective_usd"] - summary["objective_usd"])
        / (inputs["baseline_objective_usd"] - inputs["oracle_objective_usd"])
    )


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
