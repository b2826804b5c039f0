"""The Python API: wattroute.simulate, wattroute.compare, the exported names, import time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import wattroute
from tests.builders import Battery, job, scenario, site
from wattroute.model import Scenario
from wattroute.policies import POLICIES, POLICY_NAMES
from wattroute.policies.greedy import GreedyPolicy

TIMINGS = ("wall_s", "decision_s", "policy_stats")

YAML = """
name: api-yaml
start: 2023-06-01T00:00:00Z
end: 2023-06-02T00:00:00Z
step: 15min
sites:
  - {name: only, latitude: 52, longitude: 0, accelerators: {count: 4, busy_kw: 1, idle_kw: 0},
     grid: {model: {mean_price_usd_per_mwh: 70, mean_carbon_g_per_kwh: 200, seed: 9}}}
batch_jobs: [{name: j, arrival_h: 1, work_accelerator_hours: 8, max_accelerators: 4, slack_h: 6}]
"""


def _fleet() -> Scenario:
    """A day: a site whose price falls through the day and a dearer one with a battery; four
    jobs that may wait for the cheap hours."""
    n = 288
    return scenario(
        [
            site("a", n=n, accelerators=8, idle_kw=0.1, price=np.linspace(120, 20, n)),
            site(
                "b",
                n=n,
                accelerators=8,
                idle_kw=0.1,
                price=90.0,
                latitude=41.0,
                battery=Battery(10, 3, 3),
            ),
        ],
        n=n,
        jobs=[job(f"j{i}", i, 6.0, 4, 20.0 + i) for i in range(4)],
        carbon_price=50.0,
    )


def _without_timings(summary: Any) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in TIMINGS}


def test_a_policy_by_name_and_as_an_object_give_the_same_run():
    fleet = _fleet()
    by_name = wattroute.simulate(fleet, "greedy")
    by_object = wattroute.simulate(fleet, GreedyPolicy())
    assert by_name.summary["policy"] == "greedy"
    assert _without_timings(by_name.summary) == _without_timings(by_object.summary)
    assert by_name.scenario is fleet


def test_the_time_series_adds_up_to_the_summary():
    run = wattroute.simulate(_fleet(), "agnostic")
    frame = run.timeseries
    assert len(frame) == run.scenario.n_steps * len(run.scenario.sites)
    assert set(frame["site"]) == {"a", "b"}
    step_h = run.scenario.step_h
    assert frame["grid_import_kw"].sum() * step_h == pytest.approx(
        run.summary["energy_kwh"]["grid"]
    )
    assert frame["cost_usd"].sum() == pytest.approx(run.summary["cost_usd"])
    assert run.timeseries is frame  # built once


def test_a_scenario_file_and_the_scenario_it_describes_give_the_same_run(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(YAML))
    from_path = wattroute.simulate(path, "greedy")
    from_str = wattroute.simulate(str(path), "greedy")
    loaded = wattroute.simulate(wattroute.load_scenario(path), "greedy")
    assert from_path.summary["scenario"] == "api-yaml"
    assert _without_timings(from_path.summary) == _without_timings(loaded.summary)
    assert _without_timings(from_str.summary) == _without_timings(loaded.summary)


@pytest.mark.parametrize(
    ("call", "field", "known"),
    [
        (lambda s: wattroute.simulate(s, "best"), "policy", "mpc"),
        (lambda s: wattroute.simulate(s, "greedy", forecaster="psychic"), "forecaster", "blend"),
        (lambda s: wattroute.compare(s, ("agnostic", "best")), "policies", "mpc"),
        (lambda s: wattroute.compare(s, (), oracle=False), "policies", "mpc"),
    ],
)
def test_unknown_names_are_input_errors_naming_the_field(call, field, known):
    with pytest.raises(wattroute.InputError) as caught:
        call(_fleet())
    assert caught.value.field == field
    assert known in caught.value.fix


def test_compare_bounds_every_policy_by_the_oracle_and_writes_nothing_unless_asked(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    summaries = wattroute.compare(_fleet())
    assert list(summaries) == ["agnostic", "greedy", "mpc", "oracle"]
    oracle = summaries["oracle"]
    assert oracle["bound"]
    for name in ("agnostic", "greedy", "mpc"):
        assert oracle["objective_usd"] <= summaries[name]["objective_usd"] + 1e-6
    agnostic = summaries["agnostic"]["objective_usd"]
    assert summaries["mpc"]["objective_usd"] < agnostic
    for name in ("greedy", "mpc"):  # the share of the oracle's saving over agnostic
        expected = (agnostic - summaries[name]["objective_usd"]) / (
            agnostic - oracle["objective_usd"]
        )
        assert summaries[name]["capture_ratio"] == pytest.approx(expected), name
    assert list(tmp_path.iterdir()) == []


def test_compare_writes_what_the_bench_writes_when_asked(tmp_path):
    summaries = wattroute.compare(_fleet(), ["agnostic"], out=tmp_path / "out")
    assert list(summaries) == ["agnostic", "oracle"]
    folder = tmp_path / "out" / "test"
    written = json.loads((folder / "agnostic" / "summary.json").read_text())
    assert written["objective_usd"] == pytest.approx(summaries["agnostic"]["objective_usd"])
    assert (folder / "agnostic" / "timeseries.parquet").is_file()
    assert (folder / "oracle" / "summary.json").is_file()


def test_compare_without_the_oracle_has_no_capture_ratio():
    summaries = wattroute.compare(_fleet(), ("agnostic", "greedy"), oracle=False)
    assert list(summaries) == ["agnostic", "greedy"]
    assert all("capture_ratio" not in s for s in summaries.values())


def test_every_exported_name_resolves():
    for name in wattroute.__all__:
        assert getattr(wattroute, name) is not None, name
    assert wattroute.POLICY_NAMES == POLICY_NAMES == ("agnostic", "greedy", "mpc")
    with pytest.raises(AttributeError):
        _ = wattroute.no_such_name


def test_the_policy_registry_names_each_policy_by_its_own_name():
    for name in POLICY_NAMES:
        assert POLICIES[name].name == name  # type: ignore[attr-defined]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    ).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.system  # a fresh interpreter
def test_import_wattroute_loads_no_heavy_library():
    loaded = _modules_after("import wattroute")
    assert not loaded & {"highspy", "pvlib", "scipy", "fastapi", "pandas", "numpy"}


@pytest.mark.system  # a fresh interpreter
def test_the_command_line_parser_loads_no_heavy_library():
    loaded = _modules_after("import wattroute.cli.main")
    assert not loaded & {"highspy", "pvlib", "scipy", "fastapi", "pandas", "rich", "plotly"}


def test_the_simulator_and_the_policies_load_no_solver():
    loaded = _modules_after("import wattroute.sim, wattroute.policies, wattroute.scenario.build")
    assert not loaded & {"highspy", "pvlib", "scipy", "fastapi"}
