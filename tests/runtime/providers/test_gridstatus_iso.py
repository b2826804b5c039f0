"""US ISO prices through gridstatus, with a fake ISO client returning gridstatus's frames."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from gridstatus.base import Markets, NoDataFoundException

from wattroute.errors import InputError
from wattroute.runtime.providers.gridstatus_iso import IsoPrices
from wattroute.runtime.providers.http import (
    AuthError,
    BudgetExhausted,
    PayloadError,
    ProviderError,
    RateLimited,
    RequestBudget,
    RetryPolicy,
    Unavailable,
)

NOW = pd.Timestamp("2024-11-04T12:00Z")


def lmp_frame(
    tz: str,
    start: str,
    periods: int,
    freq: str,
    locations: dict[str, float],
    market: str,
    price: str = "LMP",
) -> pd.DataFrame:
    """Rows in gridstatus's documented output: local tz-aware interval bounds, one row per
    interval and location; the price of interval i at a location is ``base + i``."""
    starts = pd.date_range(start, periods=periods, freq=freq, tz=tz)
    step = pd.Timedelta(freq)
    rows = []
    for name, base in locations.items():
        for i, t in enumerate(starts):
            row = {
                "Time": t,
                "Interval Start": t,
                "Interval End": t + step,
                "Market": market,
                "Location": name,
                "Location Type": "Trading Hub",
                price: base + i,
            }
            if price == "LMP":
                row.update({"Energy": base, "Congestion": float(i), "Loss": 0.0})
            rows.append(row)
    return pd.DataFrame(rows)


def caiso_dst_day() -> pd.DataFrame:
    # 2024-11-03 in Pacific time: 25 hours (01:00 twice).
    return lmp_frame(
        "America/Los_Angeles",
        "2024-11-03",
        25,
        "1h",
        {"TH_NP15_GEN-APND": 40.0, "TH_SP15_GEN-APND": 30.0},
        "DAY_AHEAD_HOURLY",
    )


class FakeIso:
    """``get_lmp`` / ``get_spp`` answering from a script (frames or exceptions)."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, method: str, kwargs: dict[str, Any]) -> object:
        self.calls.append((method, kwargs))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def get_lmp(self, **kwargs: Any) -> object:
        return self._answer("get_lmp", kwargs)

    def get_spp(self, **kwargs: Any) -> object:
        return self._answer("get_spp", kwargs)


def http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return requests.HTTPError(f"{status} error", response=response)


def caiso(iso: FakeIso, sleeps: list[float] | None = None, **kwargs) -> IsoPrices:
    waits = sleeps if sleeps is not None else []
    return IsoPrices(
        iso,
        "CAISO",
        "TH_NP15_GEN-APND",
        retry=RetryPolicy(attempts=3, backoff_s=0.5),
        sleep=waits.append,
        **kwargs,
    )


# -- happy paths --------------------------------------------------------------------------


def test_caiso_day_ahead_on_the_dst_day():
    iso = FakeIso(caiso_dst_day())
    source = caiso(iso)
    start, end = pd.Timestamp("2024-11-03T07:00Z"), pd.Timestamp("2024-11-04T08:00Z")

    got = source.fetch(start, end, NOW)

    ((method, kwargs),) = iso.calls
    assert method == "get_lmp"
    assert kwargs["market"] is Markets.DAY_AHEAD_HOURLY
    assert kwargs["locations"] == ["TH_NP15_GEN-APND"]
    assert kwargs["date"] == start
    assert str(kwargs["date"].tz) == "America/Los_Angeles"
    assert kwargs["end"] == end
    assert (got.signal, got.kind, got.source) == ("price_usd_per_mwh", "day-ahead", "gridstatus")
    assert len(got) == 25
    assert list(got.times) == list(pd.date_range("2024-11-03T07:00Z", periods=25, freq="h"))
    assert got.times[-1] == pd.Timestamp("2024-11-04T07:00Z")
    assert got.interval == pd.Timedelta(hours=1)
    np.testing.assert_array_equal(got.values, 40.0 + np.arange(25))  # already USD/MWh
    assert not got.forecast.any()


def test_ercot_real_time_spp_on_the_central_dst_day():
    frame = lmp_frame(
        "America/Chicago",
        "2024-11-03",
        100,
        "15min",
        {"HB_HOUSTON": 20.0, "HB_NORTH": 10.0},
        "REAL_TIME_15_MIN",
        price="SPP",
    )
    iso = FakeIso(frame)
    source = IsoPrices(iso, "ERCOT", "HB_HOUSTON", market="real-time", location_type="Trading Hub")
    got = source.fetch(pd.Timestamp("2024-11-03T05:00Z"), pd.Timestamp("2024-11-04T06:00Z"), NOW)

    ((method, kwargs),) = iso.calls
    assert method == "get_spp"
    assert kwargs["market"] is Markets.REAL_TIME_15_MIN
    assert kwargs["locations"] == ["HB_HOUSTON"]
    assert kwargs["location_type"] == "Trading Hub"
    assert got.kind == "real-time"
    assert got.interval == pd.Timedelta(minutes=15)
    assert len(got) == 100  # 25 local hours
    assert got.times[0] == pd.Timestamp("2024-11-03T05:00Z")
    np.testing.assert_array_equal(got.values, 20.0 + np.arange(100))
    assert source.next_publication(NOW) is None


def test_ercot_day_ahead_asks_from_the_publication_day():
    frame = lmp_frame(
        "America/Chicago", "2024-11-05", 24, "1h", {"HB_HOUSTON": 20.0}, "DAY_AHEAD_HOURLY", "SPP"
    )
    iso = FakeIso(frame)
    source = IsoPrices(iso, "ERCOT", "HB_HOUSTON")
    got = source.fetch(pd.Timestamp("2024-11-05T06:00Z"), pd.Timestamp("2024-11-06T06:00Z"), NOW)
    kwargs = iso.calls[0][1]
    assert kwargs["date"] == pd.Timestamp("2024-11-04", tz="America/Chicago")
    assert kwargs["market"] is Markets.DAY_AHEAD_HOURLY
    assert len(got) == 24


def test_pjm_matches_the_pnode_id():
    frame = lmp_frame(
        "America/New_York", "2024-07-01", 3, "1h", {"x": 35.0}, "DAY_AHEAD_HOURLY"
    ).drop(columns="Location")
    frame.insert(4, "Location Id", 51288)
    frame.insert(5, "Location Name", "WESTERN HUB")
    iso = FakeIso(frame)
    got = IsoPrices(iso, "PJM", "51288").fetch(
        pd.Timestamp("2024-07-01T04:00Z"), pd.Timestamp("2024-07-01T07:00Z"), NOW
    )
    assert iso.calls[0][1]["locations"] == ["51288"]
    np.testing.assert_array_equal(got.values, [35.0, 36.0, 37.0])
    assert got.times[0] == pd.Timestamp("2024-07-01T04:00Z")


def test_nyiso_real_time_gap_is_nan():
    frame = lmp_frame(
        "America/New_York", "2024-07-01", 6, "5min", {"N.Y.C.": 60.0}, "REAL_TIME_5_MIN"
    )
    frame = frame.drop(index=2).reset_index(drop=True)  # the 10:10 interval is missing
    frame.loc[3, "LMP"] = np.nan  # and one price is blank
    iso = FakeIso(frame)
    source = IsoPrices(iso, "NYISO", "N.Y.C.", market="real-time")
    got = source.fetch(pd.Timestamp("2024-07-01T04:00Z"), pd.Timestamp("2024-07-01T04:30Z"), NOW)
    assert "location_type" not in iso.calls[0][1]
    assert iso.calls[0][1]["market"] is Markets.REAL_TIME_5_MIN
    assert got.interval == pd.Timedelta(minutes=5)
    assert len(got) == 6
    np.testing.assert_array_equal(got.values, [60.0, 61.0, np.nan, 63.0, np.nan, 65.0])


def test_prices_trimmed_to_the_period():
    got = caiso(FakeIso(caiso_dst_day())).fetch(
        pd.Timestamp("2024-11-03T08:00Z"), pd.Timestamp("2024-11-03T10:00Z"), NOW
    )
    assert list(got.times) == [pd.Timestamp("2024-11-03T08:00Z"), pd.Timestamp("2024-11-03T09:00Z")]
    np.testing.assert_array_equal(got.values, [41.0, 42.0])


def test_no_data_is_an_empty_answer():
    for answer in (NoDataFoundException("No data found"), caiso_dst_day().iloc[0:0]):
        got = caiso(FakeIso(answer)).fetch(NOW, NOW + pd.Timedelta(days=1), NOW)
        assert len(got) == 0
        assert got.kind == "day-ahead"


# -- errors -------------------------------------------------------------------------------


def test_401_is_an_auth_error_without_retry():
    iso = FakeIso(http_error(401))
    with pytest.raises(AuthError, match="CAISO"):
        caiso(iso).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(iso.calls) == 1


def test_429_waits_as_asked_then_succeeds():
    sleeps: list[float] = []
    iso = FakeIso(http_error(429, {"Retry-After": "7"}), caiso_dst_day())
    got = caiso(iso, sleeps).fetch(
        pd.Timestamp("2024-11-03T07:00Z"), pd.Timestamp("2024-11-04T08:00Z"), NOW
    )
    assert sleeps == [7.0]
    assert len(got) == 25
    assert len(iso.calls) == 2


def test_429_asking_too_long_is_not_sat_out():
    sleeps: list[float] = []
    iso = FakeIso(http_error(429, {"Retry-After": "3600"}))
    with pytest.raises(RateLimited) as err:
        caiso(iso, sleeps).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert err.value.retry_after_s == 3600.0
    assert sleeps == []
    assert len(iso.calls) == 1


def test_5xx_every_attempt_is_unavailable():
    sleeps: list[float] = []
    iso = FakeIso(http_error(502))
    with pytest.raises(Unavailable, match="CAISO answered HTTP 502"):
        caiso(iso, sleeps).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(iso.calls) == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    "exc", [requests.Timeout("read timed out"), requests.ConnectionError("refused")]
)
def test_timeout_or_connection_error_is_unavailable(exc):
    iso = FakeIso(exc)
    with pytest.raises(Unavailable, match="CAISO"):
        caiso(iso).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(iso.calls) == 3


def test_timeout_then_success():
    sleeps: list[float] = []
    iso = FakeIso(requests.Timeout("slow"), caiso_dst_day())
    got = caiso(iso, sleeps).fetch(
        pd.Timestamp("2024-11-03T07:00Z"), pd.Timestamp("2024-11-04T08:00Z"), NOW
    )
    assert len(got) == 25
    assert sleeps == [0.5]


def test_other_4xx_is_a_provider_error():
    iso = FakeIso(http_error(404))
    with pytest.raises(ProviderError, match="HTTP 404"):
        caiso(iso).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(iso.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        KeyError("LMP_TYPE"),
        ValueError("could not convert"),
        "not a frame",
        caiso_dst_day().drop(columns="LMP"),
        caiso_dst_day().assign(**{"Interval Start": "soon"}),
        caiso_dst_day().assign(**{"Interval Start": pd.Timestamp("2024-11-03")}),
    ],
)
def test_changed_format_is_a_payload_error_naming_the_iso(answer):
    with pytest.raises(PayloadError, match="CAISO"):
        caiso(FakeIso(answer)).fetch(
            pd.Timestamp("2024-11-03T07:00Z"), pd.Timestamp("2024-11-04T08:00Z"), NOW
        )


def test_missing_node_names_the_node_and_the_fix():
    frame = caiso_dst_day()
    frame = frame[frame["Location"] != "TH_NP15_GEN-APND"]
    with pytest.raises(PayloadError) as err:
        caiso(FakeIso(frame)).fetch(
            pd.Timestamp("2024-11-03T07:00Z"), pd.Timestamp("2024-11-04T08:00Z"), NOW
        )
    message = str(err.value)
    assert "TH_NP15_GEN-APND" in message
    assert "get_pnodes" in message


def test_budget_is_taken_per_call_and_shared():
    budget = RequestBudget(per_minute=2, clock=lambda: 1_700_000_000.0)
    first = caiso(FakeIso(caiso_dst_day()), budget=budget)
    second = IsoPrices(FakeIso(caiso_dst_day()), "CAISO", "TH_SP15_GEN-APND", budget=budget)
    first.fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    second.fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    with pytest.raises(BudgetExhausted):
        first.fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)


def test_retries_are_logged(caplog):
    caplog.set_level(logging.INFO, logger="wattroute.providers")
    iso = FakeIso(http_error(503), caiso_dst_day())
    caiso(iso).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    (record,) = [r for r in caplog.records if r.getMessage() == "provider retry"]
    assert record.fields["iso"] == "CAISO"


# -- construction and publication ---------------------------------------------------------


@pytest.mark.parametrize(
    ("iso", "node", "kwargs", "match"),
    [
        ("MISO", "X", {}, "MISO"),
        ("CAISO", "X", {"market": "intraday"}, "intraday"),
        ("ERCOT", "HB_HOUSTON", {"gridstatus_market": "REAL_TIME_5_MIN"}, "REAL_TIME_5_MIN"),
        ("CAISO", "X", {"market": "day-ahead", "gridstatus_market": "REAL_TIME_15_MIN"}, "belong"),
        ("PJM", "WESTERN HUB", {}, "pnode id"),
        ("CAISO", " ", {}, "empty"),
    ],
)
def test_bad_configuration_is_an_input_error(iso, node, kwargs, match):
    with pytest.raises(InputError, match=match):
        IsoPrices(FakeIso(None), iso, node, **kwargs)


def test_market_override():
    iso = FakeIso(caiso_dst_day().assign(Market="REAL_TIME_15_MIN"))
    source = caiso(iso, market="real-time", gridstatus_market="REAL_TIME_15_MIN")
    source.fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert iso.calls[0][1]["market"] is Markets.REAL_TIME_15_MIN


@pytest.mark.parametrize(
    ("iso", "node", "now", "expected"),
    [
        # CAISO 13:00 Pacific: the day after PDT ends, 13:00 PST = 21:00Z
        ("CAISO", "X", "2024-11-02T22:00Z", "2024-11-03T21:00Z"),
        ("CAISO", "X", "2024-07-01T12:00Z", "2024-07-01T20:00Z"),
        # ERCOT 13:30 Central
        ("ERCOT", "HB_HOUSTON", "2024-07-01T12:00Z", "2024-07-01T18:30Z"),
        # PJM 13:30 Eastern (EST in January)
        ("PJM", "51288", "2024-01-10T19:00Z", "2024-01-11T18:30Z"),
        # NYISO 11:00 Eastern (EDT)
        ("NYISO", "N.Y.C.", "2024-07-01T14:00Z", "2024-07-01T15:00Z"),
    ],
)
def test_day_ahead_next_publication(iso, node, now, expected):
    source = IsoPrices(FakeIso(None), iso, node)
    assert source.next_publication(pd.Timestamp(now)) == pd.Timestamp(expected)
