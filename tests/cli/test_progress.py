"""Bench progress: one line per run with the time left when stderr is not a terminal, never
on stdout; the estimate of the time left."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from tests.bench.test_bench import _scenario
from wattroute.cli.main import main
from wattroute.cli.progress import BarProgress, Estimate, LineProgress


def test_bench_reports_each_run_on_stderr_and_keeps_stdout_to_the_table(tmp_path, capsys):
    out = tmp_path / "out"
    scenario = str(_scenario(tmp_path))
    code = main(["bench", scenario, "--policies", "agnostic,greedy", "--out", str(out)])
    assert code == 0
    stdout, stderr = capsys.readouterr()
    lines = stderr.splitlines()
    assert lines[0].startswith("bench 1/2: tiny-bench / agnostic (0 s elapsed, estimating")
    assert lines[1].startswith("bench 2/2: tiny-bench / greedy (")
    assert lines[1].endswith(" left)")
    assert "about " in lines[1]
    assert lines[2].startswith("bench: 2 runs in ")
    assert len(lines) == 3
    assert "bench 1/2" not in stdout
    assert "objective (USD)" in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 80
    assert "…" not in stdout
    assert len(json.loads((out / "bench.json").read_text())["rows"]) == 2  # files untouched


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_estimate_uses_each_policys_pace_and_the_run_under_way():
    clock = Clock()
    runs = [("s1", "fast", 100), ("s1", "slow", 100), ("s2", "fast", 200), ("s2", "slow", 200)]
    estimate = Estimate(runs, clock)
    estimate.start()
    assert estimate.left_s() is None  # nothing to go on yet
    clock.now = 1.0
    estimate.advance(50)
    # half of the first run in 1 s: 1 s more for it, then 2 + 2 + 4 s at the same pace
    assert estimate.left_s() == pytest.approx(1.0 + 2.0 + 4.0 + 4.0)
    clock.now = 2.0
    estimate.finish(2.0)  # fast: 0.02 s per step
    estimate.start()
    clock.now = 12.0
    estimate.finish(10.0)  # slow: 0.1 s per step
    estimate.start()
    # s2: fast 200 x 0.02 = 4 s, slow 200 x 0.1 = 20 s
    assert estimate.left_s() == pytest.approx(24.0)
    clock.now = 13.0
    assert estimate.left_s() == pytest.approx(23.0)  # a second into the fast run, no steps yet
    assert estimate.left_text() == "about 23 s left"


def test_line_progress_writes_one_line_per_run_and_a_total():
    stream = io.StringIO()
    progress = LineProgress([("s", "agnostic", 10), ("s", "oracle", 10)], stream)
    for policy in ("agnostic", "oracle"):
        progress.start("s", policy, 10)
        progress.advance(10, 10)
        progress.finish("s", policy, 0.5)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines[:2]] == [
        "bench 1/2: s / agnostic",
        "bench 2/2: s / oracle",
    ]
    assert lines[2].startswith("bench: 2 runs in")


def test_on_a_terminal_a_bar_shows_the_run_and_the_time_left_then_goes():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80)
    progress = BarProgress([("s", "agnostic", 100), ("s", "mpc", 100)], console)
    for policy in ("agnostic", "mpc"):
        progress.start("s", policy, 100)
        progress.advance(50, 100)
        progress.finish("s", policy, 0.1)
    progress.close()
    text = buffer.getvalue()
    assert "2/2 s / mpc" in text
    assert "left" in text
    assert text.endswith("\x1b[2K")  # transient: the bar is erased when done
