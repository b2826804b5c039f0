"""Readiness: what keeps the service from being ready, in words and as causes."""

from __future__ import annotations

import pandas as pd

from wattroute.runtime.records import Heartbeat
from wattroute.service.readiness import ReadinessRules, assess

START = pd.Timestamp("2023-06-01T00:00:00Z")
STEP = pd.Timedelta(minutes=5)
RULES = ReadinessRules(START, START + pd.Timedelta(days=7), STEP, max_lag_steps=3, max_lag_s=10)
WALL = pd.Timestamp("2026-12-01T12:00:00Z")


def _beat(step: int, seconds_ago: float = 1.0, **more) -> Heartbeat:
    return Heartbeat(
        at=WALL - pd.Timedelta(seconds=seconds_ago), step=step, time=START + step * STEP, **more
    )


def test_a_controller_on_time_is_ready():
    verdict = assess(_beat(10), START + 10 * STEP + pd.Timedelta(minutes=2), WALL, RULES)
    assert verdict.ready
    assert verdict.lag_s == 0.0


def test_a_controller_trailing_the_clock_by_more_than_a_few_steps_is_not():
    now = START + 10 * STEP
    assert assess(_beat(6), now, WALL, RULES).ready  # 3 steps behind: within
    verdict = assess(_beat(5), now, WALL, RULES)
    assert verdict.causes == ("lagging",)
    assert "trails the clock by 20 min (4 steps" in verdict.reasons[0]
    assert verdict.lag_s == 20 * 60


def test_a_fast_replay_is_allowed_its_wall_seconds_of_lag():
    fast = ReadinessRules(
        RULES.period_start, RULES.period_end, STEP, max_lag_steps=3, max_lag_s=10, speedup=600
    )
    now = START + 100 * STEP  # 10 s of wall time at 600x is 100 min: 20 steps
    assert assess(_beat(79), now, WALL, fast).ready
    assert assess(_beat(70), now, WALL, fast).causes == ("lagging",)


def test_signals_that_end_before_now_are_not_ready_whatever_the_controller_says():
    verdict = assess(_beat(2015, finished=True), pd.Timestamp("2026-12-01T12:00Z"), WALL, RULES)
    assert verdict.causes == ("finished",)
    assert "signals end at 2023-06-08T00:00:00+00:00" in verdict.reasons[0]
    assert "extend signals.end" in verdict.reasons[0]


def test_before_the_period_and_before_the_first_report():
    early = assess(None, START - pd.Timedelta(hours=1), WALL, RULES)
    assert early.causes == ("waiting", "not_started")
    assert assess(None, START, WALL, RULES).causes == ("not_started",)


def test_silence_degradation_and_the_database():
    now = START + 10 * STEP
    assert assess(_beat(10, seconds_ago=31), now, WALL, RULES).causes == ("silent",)
    degraded = assess(_beat(10, degraded=True, reasons=("price stale",)), now, WALL, RULES)
    assert degraded.reasons == ("degraded: price stale",)
    assert assess(_beat(10), now, WALL, RULES, database_ok=False).causes == ("database",)
