"""The per-job result: where and when each job ran, its moves and overheads, its deadline."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.builders import START, Scripted, job, scenario, site
from wattroute.sim import SimulationOptions, job_frame, simulate, summarize


def _moved_and_late():
    # j: 3 h of work on one accelerator, 1 h at a, paused 1 h, resumed at b: done at 4.75 h
    # (0.25 h restore + 0.5 h migration), 0.75 h after its 4 h deadline. k waits for j, then
    # runs at b and is unfinished at its deadline (5 h) and at the end (10 h).
    plan = lambda step: 0 if step < 12 else (-1 if step < 24 else 1)  # noqa: E731
    sc = scenario(
        [site("a"), site("b")],
        n=120,
        jobs=[
            job("j", 0, 3.0, 1, 4.0, checkpoint_h=0.25, migration_h=0.5),
            job("k", 0, 100.0, 1, 5.0),
            job("later", 0, 1.0, 1, 48.0),
        ],
    )
    return simulate(sc, Scripted(plan), SimulationOptions())


def test_a_job_that_moved_and_finished_late_is_described_row_by_row():
    record = _moved_and_late()
    frame = job_frame(record).set_index("job")
    j = frame.loc["j"]
    assert j["sites"] == "a>b"
    assert (j["moves"], j["stops"], j["restores"]) == (1, 1, 1)
    assert j["overhead_h"] == pytest.approx(0.75)
    assert j["arrival"] == START
    assert j["start"] == START
    assert j["completion"] == START + pd.Timedelta(hours=4.75)
    assert j["deadline"] == START + pd.Timedelta(hours=4)
    assert j["completed"]
    assert j["late"]
    assert j["late_h"] == pytest.approx(0.75)
    assert j["work_done_accelerator_hours"] == pytest.approx(3.0)
    assert j["completion_delay_h"] == pytest.approx(1.75)  # the fastest was 3 h
    assert j["work_undone_at_deadline_accelerator_hours"] == pytest.approx(0.75)  # 1 acc x 0.75 h

    k = frame.loc["k"]
    assert k["sites"] == "b"
    assert k["start"] >= j["completion"] - pd.Timedelta(minutes=5)
    assert (k["completed"], k["late"]) == (False, True)
    assert k["completion"] is pd.NaT
    assert k["late_h"] == pytest.approx(5.0)  # at least: from its deadline to the end
    assert (k["moves"], k["restores"]) == (0, 0)

    later = frame.loc["later"]  # never ran; its deadline is after the end: not late
    assert later["sites"] == ""
    assert later["start"] is pd.NaT
    assert not later["late"]
    assert later["late_h"] == 0.0
    assert pd.isna(later["work_undone_at_deadline_accelerator_hours"])


def test_the_per_job_result_adds_up_to_the_summary():
    record = _moved_and_late()
    frame, batch = job_frame(record), summarize(record)["batch"]
    assert len(frame) == batch["jobs"]
    assert int(frame["completed"].sum()) == batch["completed"]
    assert int(frame["late"].sum()) == batch["deadline_misses"]
    assert int(frame["moves"].sum()) == batch["moves"]
    assert int(frame["stops"].sum()) == batch["stops"]
    assert frame["overhead_h"].sum() == pytest.approx(batch["overhead_hours"])
    assert frame["work_done_accelerator_hours"].sum() == pytest.approx(
        batch["work_accelerator_hours"]
    )
    done = frame["completed"]
    assert frame.loc[done, "completion_delay_h"].mean() == pytest.approx(
        batch["mean_completion_delay_h"]
    )
