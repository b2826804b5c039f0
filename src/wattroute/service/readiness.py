"""Readiness: is the control plane doing its job now?

Ready means the database answers, the controller has reported in recently, it is planning
the step the clock is at (not trailing it, not waiting for its period to begin, not past the
end of its signals) and it plans on fresh signals. Whatever is not so is a *reason*, in words
for people (``/readyz``) and as one of a few fixed *causes* for the metric
``wattroute_not_ready{cause=...}``.

The assessment reads only the controller's heartbeat and the clock, so every API process of a
service answers alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from wattroute.runtime.records import Heartbeat

CAUSES = ("database", "not_started", "silent", "waiting", "lagging", "finished", "degraded")


@dataclass(frozen=True)
class ReadinessRules:
    """What readiness is held against.

    Parameters
    ----------
    period_start, period_end
        The period the fleet has signals for (UTC).
    step
        The planning step.
    max_lag_steps
        How many steps of fleet time the controller may trail the clock.
    max_lag_s
        How many wall seconds it may trail it (a fast replay's allowance); the larger of the
        two holds.
    heartbeat_timeout_s
        Wall seconds without a heartbeat after which the controller counts as silent.
    speedup
        Fleet seconds per wall second: 1 on real time, the replay's speed-up otherwise.
    """

    period_start: pd.Timestamp
    period_end: pd.Timestamp
    step: pd.Timedelta
    max_lag_steps: float = 3.0
    max_lag_s: float = 10.0
    heartbeat_timeout_s: float = 30.0
    speedup: float = 1.0

    @property
    def max_lag(self) -> pd.Timedelta:
        """The lag tolerated, fleet time."""
        return max(
            self.step * self.max_lag_steps, pd.Timedelta(seconds=self.max_lag_s) * self.speedup
        )


@dataclass(frozen=True)
class Readiness:
    """The verdict: ``reasons`` in words, ``causes`` from :data:`CAUSES`; ``lag_s`` how far
    the controller trails the clock, fleet seconds (``None`` before it reported)."""

    reasons: tuple[str, ...]
    causes: tuple[str, ...]
    lag_s: float | None = None

    @property
    def ready(self) -> bool:
        return not self.reasons


def assess(
    beat: Heartbeat | None,
    now: pd.Timestamp,
    wall_now: pd.Timestamp,
    rules: ReadinessRules,
    database_ok: bool = True,
) -> Readiness:
    """Readiness at fleet time ``now`` (wall time ``wall_now``), from the last heartbeat."""
    if not database_ok:
        return Readiness(("the database does not answer",), ("database",))
    reasons: list[str] = []
    causes: list[str] = []

    def add(cause: str, reason: str) -> None:
        causes.append(cause)
        reasons.append(reason)

    if now >= rules.period_end:
        add(
            "finished",
            f"the fleet's signals end at {rules.period_end.isoformat()} and the clock is at "
            f"{now.isoformat()}: nothing more can be planned (extend signals.end, or run on "
            "live signals, and restart)",
        )
    elif now < rules.period_start:
        add(
            "waiting",
            f"the fleet's period starts at {rules.period_start.isoformat()}; the clock is at "
            f"{now.isoformat()}",
        )
    if beat is None:
        add("not_started", "the controller has not reported yet")
        return Readiness(tuple(reasons), tuple(causes))
    silent_s = (wall_now - beat.at).total_seconds()
    if silent_s > rules.heartbeat_timeout_s and not beat.finished:
        add("silent", f"the controller has been silent for {silent_s:.0f} s")
    next_due = rules.period_start if beat.time is None else beat.time + rules.step
    lag = max(now - next_due, pd.Timedelta(0))
    if "finished" not in causes and "waiting" not in causes and lag > rules.max_lag:
        steps = lag / rules.step
        add(
            "lagging",
            f"the controller trails the clock by {_span(lag)} ({steps:.0f} steps; at most "
            f"{_span(rules.max_lag)} is ready)",
        )
    if beat.degraded:
        add("degraded", "degraded: " + "; ".join(beat.reasons))
    return Readiness(tuple(reasons), tuple(causes), lag.total_seconds())


def _span(delta: pd.Timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
