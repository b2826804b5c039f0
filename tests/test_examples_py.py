"""The example scripts in examples/*.py run on a plain clone and print what the API returns."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wattroute
from wattroute.model import Scenario

# Runs the example scripts as subprocesses.
pytestmark = [pytest.mark.system, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = ("build_fleet.py", "bench.py", "simulate.py")


class Scripts:
    """The example scripts, all started at once (in a folder of their own, so that they do not
    depend on the working directory); :meth:`output` waits for one."""

    def __init__(self, cwd: Path) -> None:
        self._running = {
            name: subprocess.Popen(
                [sys.executable, str(EXAMPLES / name)],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in SCRIPTS
        }
        self._done: dict[str, str] = {}

    def output(self, name: str) -> str:
        if name not in self._done:
            process = self._running[name]
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            self._done[name] = out
        return self._done[name]

    def stop(self) -> None:
        for process in self._running.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripts]:
    started = Scripts(tmp_path_factory.mktemp("examples"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def fleet() -> Scenario:
    built: Scenario = runpy.run_path(str(EXAMPLES / "build_fleet.py"))["fleet"]()
    return built


def _objectives(text: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"^(\w+): objective_usd=([\d.]+)", text, re.M)}


def _table(text: str) -> dict[str, dict[str, Any]]:
    rows = re.finditer(r"^(\w+)\s+([\d.]+)\s+([-\d.]+)%$", text, re.M)
    return {m[1]: {"objective": float(m[2]), "capture": float(m[3]) / 100} for m in rows}


def test_build_fleet_prints_the_objectives_the_api_returns(scripts, fleet):
    text = scripts.output("build_fleet.py")
    printed = _objectives(text)
    assert set(printed) == {"greedy", "mpc"}
    for policy, objective in printed.items():
        run = wattroute.simulate(fleet, policy)
        assert objective == pytest.approx(run.summary["objective_usd"], abs=1e-6)
        assert run.summary["batch"]["completed"] == len(fleet.jobs)
    assert text.count("jobs_done=4/4") == 2
    assert "valley" in text
    assert "city" in text


def test_bench_prints_capture_ratios_against_the_oracle(scripts, fleet):
    table = _table(scripts.output("bench.py"))
    assert list(table) == ["agnostic", "greedy", "mpc", "oracle"]
    oracle = table["oracle"]["objective"]
    assert all(oracle <= row["objective"] + 1e-6 for row in table.values())
    agnostic = table["agnostic"]["objective"]
    assert table["mpc"]["objective"] < agnostic
    for name in ("greedy", "mpc"):  # the share of the oracle's saving, as printed (0.1 %)
        expected = (agnostic - table[name]["objective"]) / (agnostic - oracle)
        assert table[name]["capture"] == pytest.approx(expected, abs=6e-4), name
    greedy = wattroute.simulate(fleet, "greedy").summary["objective_usd"]
    assert table["greedy"]["objective"] == pytest.approx(greedy, abs=1e-6)


def test_simulate_prints_the_summary_and_energy_by_site_of_the_default_scenario(scripts):
    text = scripts.output("simulate.py")
    printed = _objectives(text.replace("default / mpc:", "mpc:"))
    run = wattroute.simulate(EXAMPLES / "default.yaml", "mpc")
    assert printed["mpc"] == pytest.approx(run.summary["objective_usd"], abs=1e-6)
    for site in run.scenario.sites:
        assert re.search(rf"^{site.name}\s+[\d.]+", text, re.M), site.name
