"""``wattroute bench --ray``: the runs as Ray tasks give the local bench's results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from wattroute.bench.sweep import without_wall_clock
from wattroute.cli.main import main
from wattroute.execution.cluster import LocalSites
from wattroute.scenario import default_scenario_path

POLICIES = "agnostic,greedy,mpc,oracle"


@pytest.mark.system  # starts a Ray cluster on loopback, and stops it
@pytest.mark.slow
def test_a_bench_on_ray_gives_the_local_results(tmp_path, capsys):
    scenario = default_scenario_path()
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["bench", str(scenario), "--policies", POLICIES, "--out", str(local)]) == 0
    assert (
        main(
            ["bench", str(scenario), "--policies", POLICIES, "--out", str(remote), "--ray", "auto"]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "bench 4/4" in err  # progress as runs end
    rows = json.loads((local / "bench.json").read_text())["rows"]
    assert [r["policy"] for r in rows] == ["agnostic", "greedy", "mpc", "oracle"]
    assert without_wall_clock(
        json.loads((remote / "bench.json").read_text())
    ) == without_wall_clock({"rows": rows})
    for policy in POLICIES.split(","):
        folder = Path("default") / policy
        assert without_wall_clock(
            json.loads((remote / folder / "summary.json").read_text())
        ) == without_wall_clock(json.loads((local / folder / "summary.json").read_text()))
        if policy != "oracle":
            for name in ("timeseries.parquet", "jobs.parquet"):
                pd.testing.assert_frame_equal(
                    pd.read_parquet(remote / folder / name), pd.read_parquet(local / folder / name)
                )
    assert (remote / "report.html").is_file()


@pytest.mark.system  # starts a Ray cluster on loopback, and stops it
@pytest.mark.slow
def test_a_running_cluster_on_loopback_is_joined_on_loopback(tmp_path):
    """Given a cluster's address, the bench joins it, and on loopback stays there (Ray would
    swap 127.0.0.1 for the machine's network address)."""
    sites = LocalSites(sites=[], head_cpus=1)
    address = sites.start()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "wattroute.cli.main",
                "bench",
                str(default_scenario_path()),
                "--policies",
                "agnostic",
                "--out",
                str(tmp_path),
                "--ray",
                address,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        sites.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert address.startswith("127.0.0.1:")
    assert json.loads((tmp_path / "bench.json").read_text())["rows"][0]["policy"] == "agnostic"


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1:9", "no Ray cluster answers at '127.0.0.1:9'"),
        ("ray://127.0.0.1:9", "no Ray cluster answers at 'ray://127.0.0.1:9'"),
        ("head-node", "'head-node' is not a cluster address (HOST:PORT or ray://HOST:PORT)"),
    ],
)
def test_a_cluster_that_does_not_answer_is_named_with_the_fix(tmp_path, capsys, address, problem):
    scenario = str(default_scenario_path())
    code = main(
        ["bench", scenario, "--policies", "agnostic", "--out", str(tmp_path), "--ray", address]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--ray: {problem}" in err
    assert "--ray auto" in err
    assert "Traceback" not in err
    assert not (tmp_path / "bench.json").exists()
