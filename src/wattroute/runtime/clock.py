"""Clocks for the live controller: real time, or a replay of recorded time at a speed-up.

A clock tells the controller what time it is in the fleet's world and waits until a given
time comes. The replay clock maps wall time onto a recorded period,
``now = start + (wall - wall_at_start) x speedup``, so that a week of recorded signals plays
in minutes (``speedup=3600``: one simulated hour per second) for demos and tests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd


class Clock(Protocol):
    """The fleet's time."""

    def now(self) -> pd.Timestamp:
        """The current time, UTC."""
        ...

    def wait_until(self, when: pd.Timestamp, stop: threading.Event) -> bool:
        """Block until ``when`` or until ``stop`` is set; ``False`` if stopped."""
        ...

    def seconds_until(self, when: pd.Timestamp) -> float:
        """Wall-clock seconds until ``when`` (zero or less if it has passed)."""
        ...

    def wall_s(self) -> float:
        """Real-world time, epoch seconds: what response times (how long a grid event took
        to be met) and heartbeats are measured in, whatever pace the fleet's time keeps."""
        ...


@dataclass
class RealClock:
    """Wall-clock time."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def wait_until(self, when: pd.Timestamp, stop: threading.Event) -> bool:
        return not stop.wait(max(self.seconds_until(when), 0.0))

    def seconds_until(self, when: pd.Timestamp) -> float:
        return (when - self.now()).total_seconds()

    def wall_s(self) -> float:
        return time.time()


@dataclass
class ReplayClock:
    """Recorded time played at ``speedup`` times real time, from ``start``.

    Parameters
    ----------
    start
        The recorded time the replay begins at (UTC).
    speedup
        Recorded seconds per wall-clock second.
    anchor
        The ``time.monotonic()`` reading at which the replay stands at ``start`` (default:
        now). The monotonic clock is shared by the processes of one machine, so API workers
        given the controller's anchor agree with it on the time.
    """

    start: pd.Timestamp
    speedup: float = 3600.0
    anchor: float = field(default_factory=time.monotonic)

    def now(self) -> pd.Timestamp:
        elapsed = (time.monotonic() - self.anchor) * self.speedup
        # Microseconds: what databases and datetime keep (floored as floor("us") does, at a
        # fraction of its cost: asked at every submission).
        return (self.start + pd.Timedelta(seconds=elapsed)).replace(nanosecond=0)

    def wait_until(self, when: pd.Timestamp, stop: threading.Event) -> bool:
        return not stop.wait(max(self.seconds_until(when), 0.0))

    def seconds_until(self, when: pd.Timestamp) -> float:
        return (when - self.now()).total_seconds() / self.speedup

    def wall_s(self) -> float:
        return time.time()


@dataclass
class ManualClock:
    """A clock that moves only when told: the test double of :class:`Clock`. Its wall time
    is ``wall`` (epoch seconds) when set, else the real one."""

    current: pd.Timestamp
    wall: float | None = None

    def now(self) -> pd.Timestamp:
        return self.current

    def advance(self, by: pd.Timedelta) -> None:
        self.current = self.current + by

    def wait_until(self, when: pd.Timestamp, stop: threading.Event) -> bool:
        if when > self.current:
            self.current = when
        return not stop.is_set()

    def seconds_until(self, when: pd.Timestamp) -> float:
        return 0.0  # time jumps: nothing to wait for

    def wall_s(self) -> float:
        return time.time() if self.wall is None else self.wall
