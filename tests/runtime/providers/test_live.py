"""The live provider: fallback between sources, staleness, published values and forecasts
handed out ahead, provenance, and history kept across a restart."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from wattroute.runtime.clock import ManualClock
from wattroute.runtime.providers.http import AuthError, RateLimited, Unavailable
from wattroute.runtime.providers.live import LiveOptions, LiveProvider
from wattroute.runtime.providers.values import Fetched
from wattroute.service.server import open_store
from wattroute.service.store import SqlStore

START = pd.Timestamp("2026-06-01T00:00:00Z")
STEP = pd.Timedelta(minutes=15)


@dataclass
class FakeSource:
    """Hourly values ``level`` (+ hour of day) up to ``observed_until``, forecasts after."""

    provider: str
    signal: str = "carbon_g_per_kwh"
    kind: str = "average/lifecycle"
    level: float = 100.0
    observed_until: pd.Timestamp | None = None  # default: now
    forecasts: bool = True
    error: Exception | None = None
    unit: Literal["s", "ms", "us", "ns"] = "ns"  # of the times handed back
    calls: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        self.calls.append((start, end))
        if self.error is not None:
            raise self.error
        last = (self.observed_until or now).floor("h")
        times = pd.date_range(start.floor("h"), end, freq="h", inclusive="left")
        if not self.forecasts:
            times = times[times <= last]
        values = self.level + times.hour.to_numpy(dtype=float)
        return Fetched(
            self.signal,
            self.provider,
            self.kind,
            now,
            times.as_unit(self.unit),
            values,
            np.asarray(times > last),
        )

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        return None


def provider(sources, clock, store=None, **options) -> LiveProvider:
    return LiveProvider(
        {("carbon_g_per_kwh", 0): sources},
        ["a", "b"],
        START - pd.Timedelta(days=1),
        STEP,
        4 * 24 * 3,
        clock,
        store=store,
        options=LiveOptions(**options),
    )


def step_of(p: LiveProvider, t: pd.Timestamp) -> int:
    return int((t - p.start) / p.step)


@pytest.mark.parametrize("unit", ["s", "us", "ns"])
def test_the_first_source_answers_with_its_kind_and_time(unit):
    clock = ManualClock(START + pd.Timedelta(hours=10, minutes=20))
    first, second = FakeSource("em", level=100, unit=unit), FakeSource("entsoe", level=500)
    p = provider([first, second], clock)
    k = step_of(p, clock.now())
    values = p.read(k)
    assert values["carbon_g_per_kwh"][0] == 110.0  # 10:00 hour
    assert values["carbon_g_per_kwh"][1] == 0.0  # no source at b: its default
    assert second.calls == []  # the first answered fresh
    told = p.provenance(k)["carbon_g_per_kwh"][0]
    assert told is not None
    assert (told.source, told.kind, told.time) == (
        "em",
        "average/lifecycle",
        START + pd.Timedelta(hours=10),
    )


@pytest.mark.parametrize(
    "error",
    [
        Unavailable("em", "HTTP 503"),
        RateLimited("em", "HTTP 429", 120.0),
        AuthError("em", "refused the credentials"),
    ],
)
def test_a_failing_source_falls_back_to_the_next_and_is_left_alone(error):
    clock = ManualClock(START + pd.Timedelta(hours=10, minutes=20))
    first, second = FakeSource("em", error=error), FakeSource("entsoe", level=500)
    p = provider([first, second], clock, refresh=pd.Timedelta(minutes=1))
    k = step_of(p, clock.now())
    assert p.read(k)["carbon_g_per_kwh"][0] == 510.0
    told = p.provenance(k)["carbon_g_per_kwh"][0]
    assert told is not None
    assert told.source == "entsoe"
    # next refresh, a minute later: the failed source is not asked while it backs off
    clock.advance(pd.Timedelta(minutes=1))
    p.read(step_of(p, clock.now()))
    assert len(first.calls) == 1
    assert len(second.calls) == 2
    # 5 min when it did not say, Retry-After when it did, an hour after refused credentials
    wait = {Unavailable: 5, RateLimited: 2, AuthError: 60}[type(error)]
    clock.advance(pd.Timedelta(minutes=wait - 1))
    first.error = None
    k = step_of(p, clock.now())
    assert p.read(k)["carbon_g_per_kwh"][0] == 100.0 + clock.now().hour
    assert len(first.calls) == 2
    row = p.report()[0]
    assert row["source"] == "em"
    assert row["errors"] == {}


def test_a_stale_source_falls_back_and_an_outage_leaves_a_gap():
    clock = ManualClock(START + pd.Timedelta(hours=10, minutes=20))
    stuck = FakeSource("em", observed_until=START + pd.Timedelta(hours=2), forecasts=False)
    backup = FakeSource("entsoe", level=500)
    p = provider([stuck, backup], clock, stale_after=pd.Timedelta(hours=3))
    k = step_of(p, clock.now())
    assert p.read(k)["carbon_g_per_kwh"][0] == 510.0
    assert len(backup.calls) == 1
    # both down for hours: values held up to stale_after, then none (the controller degrades)
    backup.error = stuck.error = Unavailable("x", "down")
    clock.advance(pd.Timedelta(hours=2))
    assert p.read(step_of(p, clock.now()))["carbon_g_per_kwh"][0] == 510.0  # held
    clock.advance(pd.Timedelta(hours=3))
    assert np.isnan(p.read(step_of(p, clock.now()))["carbon_g_per_kwh"][0])


def test_published_values_and_forecasts_are_handed_out_ahead():
    clock = ManualClock(START + pd.Timedelta(hours=10))
    prices = FakeSource(
        "entsoe",
        signal="price_usd_per_mwh",
        kind="day-ahead",
        forecasts=False,
        observed_until=START + pd.Timedelta(hours=23),
    )
    carbon = FakeSource("em")
    p = LiveProvider(
        {("price_usd_per_mwh", 0): [prices], ("carbon_g_per_kwh", 0): [carbon]},
        ["a"],
        START,
        STEP,
        96 * 2,
        clock,
    )
    k = step_of(p, clock.now())
    p.read(k)
    until, rows = p.read_ahead(k)["price_usd_per_mwh"]
    assert until[0] == 96  # published to the end of the day (23:00 + 1 h)
    assert rows[0, 0] == 110.0  # 10:15
    assert rows[53, 0] == 123.0  # 23:30
    export_until, export_rows = p.read_ahead(k)["export_price_usd_per_mwh"]
    assert export_until[0] == 96  # exports are paid the import price, published alike
    np.testing.assert_array_equal(export_rows, rows)
    now = p.read(k)
    assert now["export_price_usd_per_mwh"][0] == now["price_usd_per_mwh"][0] == 110.0
    forecasts = p.read_forecasts(k)
    assert "price_usd_per_mwh" not in forecasts  # published, not forecast
    carbon_rows = forecasts["carbon_g_per_kwh"]
    assert np.isnan(carbon_rows[0, 0])  # 10:15 is in the observed hour
    assert carbon_rows[3, 0] == 111.0  # 11:00: a forecast


def test_fetched_values_survive_a_restart_without_a_refetch(tmp_path):
    store: SqlStore = open_store(f"sqlite:///{tmp_path / 's.db'}")
    clock = ManualClock(START + pd.Timedelta(hours=10, minutes=20))
    source = FakeSource("em")
    p = provider([source], clock, store=store)
    k = step_of(p, clock.now())
    before = p.read(k)["carbon_g_per_kwh"][0]
    history = [p.read(j)["carbon_g_per_kwh"][0] for j in range(k - 40, k)]
    again = FakeSource("em", error=Unavailable("em", "down"))
    clock.advance(pd.Timedelta(minutes=5))
    restarted = provider([again], clock, store=store)
    assert restarted.read(k)["carbon_g_per_kwh"][0] == before
    assert [restarted.read(j)["carbon_g_per_kwh"][0] for j in range(k - 40, k)] == history
    assert again.calls == []  # fetched 5 min ago: not due
    store.engine.dispose()


@dataclass
class HeldSource(FakeSource):
    """Answers the first fetch at once; later ones only once ``release`` is set."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        if self.calls:
            self.started.set()
            assert self.release.wait(30)
        return super().fetch(start, end, now)


def test_a_started_provider_fetches_apart_and_a_hung_source_never_holds_up_a_read():
    clock = ManualClock(START + pd.Timedelta(hours=10, minutes=20))
    source = HeldSource("em", level=100)
    p = provider([source], clock, refresh=pd.Timedelta(minutes=1))
    p.start_fetching(poll_s=0.01)  # the first fetch is done before it returns
    try:
        k = step_of(p, clock.now())
        assert p.read(k)["carbon_g_per_kwh"][0] == 110.0
        clock.advance(pd.Timedelta(hours=1))
        source.level = 200
        assert source.started.wait(30)  # the next fetch hangs in the fetching thread ...
        k = step_of(p, clock.now())
        assert p.read(k)["carbon_g_per_kwh"][0] == 110.0  # ... and the read answers: held
        source.release.set()
        deadline = time.monotonic() + 30
        while p.read(k)["carbon_g_per_kwh"][0] != 211.0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        source.release.set()
        p.stop_fetching()
