"""When a signal's values become known: day-ahead market prices are published ahead.

A measured signal (carbon intensity, weather, request rates) is known only up to now. A
day-ahead market's prices are not: the market clears once a day and publishes the prices of
every hour of the next *local* delivery day at a fixed local time (CAISO and ERCOT in the early
afternoon, EPEX SPOT for Germany-Luxembourg shortly before 13:00 CET, JEPX mid-morning, NYISO
late morning). A planner that reads them is not looking ahead; one that ignores them throws
away information every market participant has.

:func:`known_until` turns such a rule into, per step, the first step whose value is not yet
published; :class:`~wattroute.signals.forecast.History` hands out the published rows and
nothing later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DayAhead:
    """Prices of each local delivery day published the day before.

    Parameters
    ----------
    timezone
        The market's IANA time zone, e.g. ``"America/Los_Angeles"``; delivery days run from
        local midnight to local midnight.
    published
        Local time of day at which the next delivery day's prices are known. Give the time
        results are reliably out, not the auction's gate closure.
    """

    timezone: str
    published: time

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises for an unknown zone


def known_until(times: pd.DatetimeIndex, rule: DayAhead) -> np.ndarray:
    """For each step, the index of the first step whose value is not yet published, ``(N,)``.

    At a step before the publication time the rest of the current local day is known (its
    prices came out yesterday); from the publication time on, the next local day as well.
    Every step knows at least itself. Steps past the end of ``times`` are capped at ``N``.
    """
    utc = times.tz_convert("UTC") if times.tz is not None else times.tz_localize("UTC")
    local = utc.tz_convert(rule.timezone).tz_localize(None)  # wall-clock time, naive
    day = local.normalize()
    published = local - day >= pd.Timedelta(
        hours=rule.published.hour, minutes=rule.published.minute
    )
    end_local = day + pd.to_timedelta(np.where(published, 2, 1), unit="D")
    # Local midnights exist and are unambiguous in every zone that moves its clocks at night.
    end = end_local.tz_localize(rule.timezone, nonexistent="shift_forward", ambiguous=False)
    first_unknown = np.searchsorted(utc.asi8, end.tz_convert("UTC").asi8, side="left")
    return np.maximum(first_unknown, np.arange(1, len(times) + 1)).astype(np.int64)
