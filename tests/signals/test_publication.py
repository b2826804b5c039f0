"""When day-ahead prices become known."""

from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd
import pytest

from wattroute.signals.publication import DayAhead, known_until


def _known_at(times: pd.DatetimeIndex, rule: DayAhead, at: str) -> pd.Timestamp:
    """The first step not yet known at ``at`` (one step past the end if all are)."""
    k = int(known_until(times, rule)[times.get_loc(pd.Timestamp(at))])
    return pd.Timestamp(times[0]) + k * pd.Timedelta(times[1] - times[0])


def test_before_publication_the_rest_of_the_local_day_is_known_after_it_the_next_day_too():
    times = pd.date_range("2023-06-01T00:00Z", "2023-06-05T00:00Z", freq="5min", inclusive="left")
    caiso = DayAhead("America/Los_Angeles", time(13, 0))  # UTC-7 in June
    # 2023-06-01 10:00 PDT: the day ends at midnight PDT = 07:00 UTC on 2 June
    assert _known_at(times, caiso, "2023-06-01T17:00Z") == pd.Timestamp("2023-06-02T07:00Z")
    # a step before 13:00 PDT, and the first step at 13:00 PDT
    assert _known_at(times, caiso, "2023-06-01T19:55Z") == pd.Timestamp("2023-06-02T07:00Z")
    assert _known_at(times, caiso, "2023-06-01T20:00Z") == pd.Timestamp("2023-06-03T07:00Z")


def test_local_days_follow_daylight_saving_time():
    times = pd.date_range("2023-03-24T00:00Z", "2023-03-29T00:00Z", freq="1h", inclusive="left")
    epex = DayAhead("Europe/Berlin", time(13, 0))
    # Before the switch on 26 March, CET = UTC+1; after it, CEST = UTC+2.
    assert _known_at(times, epex, "2023-03-25T09:00Z") == pd.Timestamp("2023-03-25T23:00Z")
    assert _known_at(times, epex, "2023-03-25T12:00Z") == pd.Timestamp("2023-03-26T22:00Z")


def test_every_step_knows_at_least_itself_and_the_end_is_capped():
    times = pd.date_range("2023-06-01T00:00Z", periods=48, freq="1h")
    known = known_until(times, DayAhead("Asia/Tokyo", time(11, 0)))
    assert (known >= np.arange(1, 49)).all()
    assert known.max() == 48


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(Exception, match="Mars"):
        DayAhead("Mars/Olympus_Mons", time(12, 0))
