"""The carbon-agnostic baseline run beside a live controller: the agnostic policy on the
same work, services added mid-run routed, cancellations followed, its totals in every tick."""

from __future__ import annotations

import pandas as pd

from tests.builders import small_fleet
from tests.service.helpers import sqlite_url
from wattroute.policies import get_policy
from wattroute.runtime import ManualClock, ServiceRecord, build_controller
from wattroute.runtime.controller import ControllerOptions
from wattroute.runtime.records import JobRecord
from wattroute.service.server import open_store


def job(job_id: str, start: pd.Timestamp) -> JobRecord:
    return JobRecord(job_id, "acme", job_id, start, start + pd.Timedelta(hours=12), 4.0, 1, 2)


def test_the_baseline_runs_the_agnostic_policy_on_the_same_work(tmp_path):
    sc = small_fleet()
    store = open_store(sqlite_url(tmp_path))
    controller = build_controller(
        sc,
        store,
        get_policy("greedy"),
        ManualClock(sc.start),
        options=ControllerOptions(baseline=True),
    )
    baseline = controller.baseline
    assert baseline is not None
    store.submit_job(job("j1", sc.start))
    store.submit_job(job("j2", sc.start))
    controller.tick()
    # a service created mid-run is routed by the baseline too, not left to the fallback
    store.create_service(ServiceRecord("vision", "acme", 30, 5, 10, 1, {"p": 5.0}))
    store.cancel_job("j2")
    ticks = [controller.tick() for _ in range(3)]
    assert baseline.controller.status.policy_failures == 0
    shadow = baseline.memory.last_tick()
    assert shadow is not None
    assert shadow.plan["routing"] == {"acme/vision": {"p": {"a": 1.0, "b": 0.0}}}
    assert set(shadow.plan["jobs"]) == {"j1"}  # j2 was cancelled in the live run
    totals = [t.state["baseline"]["totals"]["cost_usd"] for t in ticks]
    assert totals == sorted(totals)
    assert totals[0] > 0


def test_without_the_option_there_is_no_baseline(tmp_path):
    sc = small_fleet()
    store = open_store(sqlite_url(tmp_path))
    controller = build_controller(sc, store, get_policy("greedy"), ManualClock(sc.start))
    assert controller.baseline is None
    assert "baseline" not in controller.tick().state
