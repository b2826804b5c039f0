"""Electricity Maps carbon intensity through a mock transport (no test reaches the API)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from wattroute.runtime.providers.electricitymaps import (
    DEFAULT_BASE_URL,
    PROVIDER,
    ElectricityMapsCarbon,
)
from wattroute.runtime.providers.http import (
    ApiClient,
    AuthError,
    PayloadError,
    ProviderError,
    Secret,
    Unavailable,
)

FIXTURES = Path(__file__).parent / "fixtures" / "electricitymaps"
TOKEN = "em-s3cret-token-9f8e7d"
HISTORY = "/v3/carbon-intensity/history"
FORECAST = "/v3/carbon-intensity/forecast"
PAST_RANGE = "/v3/carbon-intensity/past-range"
HOUR = pd.Timedelta(hours=1)

Route = dict[str, Any] | list[Any] | Callable[[httpx.Request], httpx.Response]


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


class Api:
    """Routes a request by path to a payload (answered 200) or a handler; records requests."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx.Response(404, json={"error": "not found"})
        if callable(route):
            return route(request)
        return httpx.Response(200, json=route)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def source_for(
    api: Api, sleeps: list[float] | None = None, **options: Any
) -> ElectricityMapsCarbon:
    sleeps = [] if sleeps is None else sleeps
    client = ApiClient(
        PROVIDER, DEFAULT_BASE_URL, transport=httpx.MockTransport(api), sleep=sleeps.append
    )
    return ElectricityMapsCarbon("DE", Secret(TOKEN), client, **options)


def hourly(start: str, periods: int) -> pd.DatetimeIndex:
    return pd.date_range(utc(start), periods=periods, freq="h")


# -- the happy path ----------------------------------------------------------------------------


def test_observed_hours_then_the_forecast_after_the_last_one():
    api = Api({HISTORY: load("history.json"), FORECAST: load("forecast.json")})
    source = source_for(api)
    now = utc("2024-05-01T05:30")
    fetched = source.fetch(utc("2024-05-01T01:00"), utc("2024-05-01T08:00"), now)

    assert list(fetched.times) == list(hourly("2024-05-01T01:00", 7))
    # 05:00 is observed (287), so the forecast's 400 for 05:00 is not used
    np.testing.assert_array_equal(fetched.values, [315, 298.5, 305, 290, 287, 280, 275])
    np.testing.assert_array_equal(fetched.forecast, [False] * 5 + [True] * 2)
    assert fetched.kind == source.kind == "average/lifecycle"
    assert (fetched.signal, fetched.source) == ("carbon_g_per_kwh", "electricitymaps")
    assert (source.signal, source.provider) == ("carbon_g_per_kwh", "electricitymaps")
    assert fetched.interval == HOUR
    assert fetched.fetched_at == now
    assert fetched.latest_observed() == (utc("2024-05-01T05:00"), 287.0)
    assert source.last_estimated_share == pytest.approx(1 / 5)  # 05:00 of 01:00..05:00
    assert source.next_publication(now) is None

    assert api.paths() == [HISTORY, FORECAST]
    for request in api.requests:
        assert request.method == "GET"
        assert request.headers["auth-token"] == TOKEN
        assert dict(request.url.params) == {"zone": "DE", "emissionFactorType": "lifecycle"}


def test_direct_scope_is_asked_for_and_named_in_the_kind():
    api = Api({HISTORY: load("history.json"), FORECAST: load("forecast.json")})
    source = source_for(api, scope="direct", forecast=False)
    fetched = source.fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T09:00"), utc("2024-05-01T05:30")
    )

    assert fetched.kind == "average/direct"
    assert api.paths() == [HISTORY]  # no forecast asked for
    assert api.requests[0].url.params["emissionFactorType"] == "direct"
    assert not fetched.forecast.any()
    assert list(fetched.times) == list(hourly("2024-05-01T00:00", 6))


def test_an_unknown_scope_is_refused():
    api = Api({})
    with pytest.raises(ValueError, match="average/stack"):
        source_for(api, scope="stack")


def test_a_period_ahead_is_all_forecast():
    api = Api({HISTORY: load("history.json"), FORECAST: load("forecast.json")})
    source = source_for(api)
    fetched = source.fetch(
        utc("2024-05-01T06:00"), utc("2024-05-01T09:00"), utc("2024-05-01T05:30")
    )

    assert api.paths() == [FORECAST]
    assert list(fetched.times) == list(hourly("2024-05-01T06:00", 3))
    np.testing.assert_array_equal(fetched.values, [280, 275, 270.25])
    assert fetched.forecast.all()
    assert np.isnan(source.last_estimated_share)


def test_an_empty_period_asks_nothing():
    api = Api({})
    fetched = source_for(api).fetch(
        utc("2024-05-01T06:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
    )
    assert len(fetched) == 0
    assert api.requests == []


# -- older periods through /past-range ----------------------------------------------------------


def synthetic(t: pd.Timestamp) -> float:
    return float(100 + (t - utc("2024-05-01")) // HOUR % 400)


def past_range(request: httpx.Request) -> httpx.Response:
    """Hourly items from ``start`` to ``end``, both included (the chunks overlap by an hour)."""
    template = load("past_range.json")["data"][0]
    start, end = (pd.Timestamp(request.url.params[k]) for k in ("start", "end"))
    items = []
    for t in pd.date_range(start, end, freq="h"):
        item = dict(template, datetime=t.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        item["carbonIntensity"] = synthetic(t)
        items.append(item)
    return httpx.Response(200, json={"zone": "DE", "data": items})


def history_before(now: pd.Timestamp) -> dict[str, Any]:
    template = load("history.json")["history"][0]
    items = [
        dict(template, datetime=t.isoformat().replace("+00:00", "Z"), carbonIntensity=synthetic(t))
        for t in pd.date_range(now - 24 * HOUR, periods=24, freq="h")
    ]
    return {"zone": "DE", "history": items}


def test_older_periods_come_from_past_range_in_calls_of_ten_days():
    now = utc("2024-05-20T00:00")
    api = Api({PAST_RANGE: past_range, HISTORY: history_before(now)})
    source = source_for(api, forecast=False)
    start, end = utc("2024-05-01T00:00"), utc("2024-05-19T06:00")
    fetched = source.fetch(start, end, now)

    assert api.paths() == [PAST_RANGE, PAST_RANGE, HISTORY]
    asked = [(r.url.params["start"], r.url.params["end"]) for r in api.requests[:2]]
    assert asked == [
        ("2024-05-01T00:00:00Z", "2024-05-11T00:00:00Z"),
        ("2024-05-11T00:00:00Z", "2024-05-19T00:00:00Z"),
    ]
    assert all(r.url.params["zone"] == "DE" for r in api.requests)
    expected = pd.date_range(start, end, freq="h", inclusive="left")
    assert len(expected) == 18 * 24 + 6
    assert list(fetched.times) == list(expected)
    assert fetched.times.is_unique
    np.testing.assert_array_equal(fetched.values, [synthetic(t) for t in expected])
    assert not fetched.forecast.any()
    assert source.last_estimated_share == 0.0


def test_a_period_older_than_a_day_needs_neither_history_nor_forecast():
    api = Api({PAST_RANGE: past_range})
    source = source_for(api)  # forecast on, but nothing ahead is asked for
    fetched = source.fetch(utc("2024-05-01T00:00"), utc("2024-05-02T00:00"), utc("2024-05-20"))

    assert api.paths() == [PAST_RANGE]
    assert len(fetched) == 24
    assert fetched.values[5] == synthetic(utc("2024-05-01T05:00"))


# -- gaps and DST -------------------------------------------------------------------------------


def test_null_values_are_gaps():
    api = Api({HISTORY: load("history_gaps.json"), FORECAST: load("forecast.json")})
    source = source_for(api, forecast=False)
    fetched = source.fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
    )

    assert len(fetched) == 6
    np.testing.assert_array_equal(np.isnan(fetched.values), [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(fetched.values[[0, 1, 3, 4]], [320, 315, 305, 290])
    assert fetched.latest_observed() == (utc("2024-05-01T04:00"), 290.0)
    assert source.last_estimated_share == pytest.approx(1 / 4)  # 01:00 of four finite values


def test_the_forecast_fills_the_gaps_after_the_last_observed_value():
    api = Api({HISTORY: load("history_gaps.json"), FORECAST: load("forecast.json")})
    source = source_for(api)
    fetched = source.fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T07:00"), utc("2024-05-01T05:30")
    )

    assert list(fetched.times) == list(hourly("2024-05-01T00:00", 7))
    np.testing.assert_array_equal(
        fetched.values[[0, 1, 3, 4, 5, 6]], [320, 315, 305, 290, 400, 280]
    )
    assert np.isnan(fetched.values[2])  # a gap before the last observed value stays a gap
    np.testing.assert_array_equal(fetched.forecast, [False] * 5 + [True] * 2)


DST_TIMES = [
    "2024-03-30T22:00",
    "2024-03-30T23:00",
    "2024-03-31T00:00",
    "2024-03-31T01:00",  # 03:00 CEST: the clocks in Germany skip 02:00 local
    "2024-03-31T02:00",
    "2024-03-31T03:00",
]


def test_the_day_clocks_change_in_europe_stays_hourly_in_utc():
    api = Api({HISTORY: load("history_dst.json")})
    source = source_for(api, forecast=False)
    fetched = source.fetch(
        utc("2024-03-30T22:00"), utc("2024-03-31T04:00"), utc("2024-03-31T03:30")
    )

    assert list(fetched.times) == [utc(t) for t in DST_TIMES]
    assert fetched.times.is_unique
    assert set(np.diff(fetched.times.as_unit("ns").asi8)) == {HOUR.value}
    np.testing.assert_array_equal(fetched.values, [210, 205, 201, 199, 196, 204])


def test_times_with_local_offsets_are_read_as_utc():
    payload = load("history_dst.json")
    for item, t in zip(payload["history"], DST_TIMES, strict=True):
        item["datetime"] = utc(t).tz_convert("Europe/Berlin").isoformat()
    assert payload["history"][3]["datetime"] == "2024-03-31T03:00:00+02:00"
    api = Api({HISTORY: payload})
    fetched = source_for(api, forecast=False).fetch(
        utc("2024-03-30T22:00"), utc("2024-03-31T04:00"), utc("2024-03-31T03:30")
    )
    assert list(fetched.times) == [utc(t) for t in DST_TIMES]


# -- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_an_auth_error(status):
    api = Api({HISTORY: lambda r: httpx.Response(status, json={"message": "bad token"})})
    sleeps: list[float] = []
    with pytest.raises(AuthError) as caught:
        source_for(api, sleeps).fetch(
            utc("2024-05-01T00:00"), utc("2024-05-01T05:00"), utc("2024-05-01T05:30")
        )
    assert f"HTTP {status}" in str(caught.value)
    assert caught.value.provider == "electricitymaps"
    assert TOKEN not in str(caught.value)
    assert len(api.requests) == 1  # not retried
    assert sleeps == []


def test_a_429_is_waited_out_as_retry_after_asks():
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "slow down"}),
            httpx.Response(200, json=load("history.json")),
        ]
    )
    api = Api({HISTORY: lambda r: next(answers)})
    sleeps: list[float] = []
    fetched = source_for(api, sleeps, forecast=False).fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
    )
    assert sleeps == [2.0]
    assert api.paths() == [HISTORY, HISTORY]
    np.testing.assert_array_equal(fetched.values, [320, 315, 298.5, 305, 290, 287])


def test_5xx_on_every_attempt_is_unavailable():
    api = Api({HISTORY: lambda r: httpx.Response(503, text="maintenance")})
    sleeps: list[float] = []
    with pytest.raises(Unavailable, match="HTTP 503"):
        source_for(api, sleeps).fetch(
            utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
        )
    assert len(api.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_timeout_is_unavailable():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    api = Api({HISTORY: slow})
    sleeps: list[float] = []
    with pytest.raises(Unavailable, match="timed out"):
        source_for(api, sleeps).fetch(
            utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
        )
    assert len(api.requests) == 3
    assert sleeps == [0.5, 1.0]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(body: dict[str, Any]) -> Any:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body

    return change


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], Any]:
    def change(body: dict[str, Any]) -> Any:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return body

    return change


MALFORMED = {
    "a list": lambda body: body["history"],
    "no history": _drop(("history",)),
    "history an object": _set(("history",), {"datetime": "2024-05-01T00:00:00Z"}),
    "an item a number": _set(("history", 1), 315),
    "no datetime": _drop(("history", 1, "datetime")),
    "datetime not a time": _set(("history", 1, "datetime"), "yesterday"),
    "datetime a number": _set(("history", 1, "datetime"), 1714521600),
    "datetime without offset": _set(("history", 1, "datetime"), "2024-05-01T01:00:00"),
    "no carbonIntensity": _drop(("history", 1, "carbonIntensity")),
    "carbonIntensity text": _set(("history", 1, "carbonIntensity"), "315"),
    "carbonIntensity a boolean": _set(("history", 1, "carbonIntensity"), True),
    "isEstimated text": _set(("history", 1, "isEstimated"), "no"),
    "another zone": _set(("zone",), "FR"),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_history_is_a_payload_error(change):
    api = Api({HISTORY: change(copy.deepcopy(load("history.json")))})
    with pytest.raises(PayloadError):
        source_for(api, forecast=False).fetch(
            utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
        )


def test_a_body_that_is_not_json_is_a_payload_error():
    api = Api({HISTORY: lambda r: httpx.Response(200, text="<html>oops</html>")})
    with pytest.raises(PayloadError, match="not JSON"):
        source_for(api).fetch(
            utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30")
        )


def test_a_malformed_forecast_is_a_payload_error():
    forecast = load("forecast.json")
    forecast["forecast"][2]["carbonIntensity"] = "n/a"
    api = Api({HISTORY: load("history.json"), FORECAST: forecast})
    with pytest.raises(PayloadError, match=r"forecast\[2\]\.carbonIntensity"):
        source_for(api).fetch(
            utc("2024-05-01T00:00"), utc("2024-05-01T09:00"), utc("2024-05-01T05:30")
        )


# -- secrets ------------------------------------------------------------------------------------


def test_the_token_never_reaches_an_error_or_a_log_line(caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[ProviderError] = []
    window = (utc("2024-05-01T00:00"), utc("2024-05-01T06:00"), utc("2024-05-01T05:30"))

    def echo(request: httpx.Request) -> httpx.Response:
        # a provider that echoes the token it was sent
        return httpx.Response(400, text=f"invalid token {request.headers['auth-token']}")

    failing: list[Route] = [
        echo,
        lambda r: httpx.Response(401, text=f"token {TOKEN} expired"),
        lambda r: httpx.Response(429, headers={"Retry-After": "2"}, text=TOKEN),
        lambda r: httpx.Response(502, text=TOKEN),
        lambda r: httpx.Response(200, json={"zone": TOKEN, "history": []}),
    ]
    for route in failing:
        api = Api({HISTORY: route})
        with pytest.raises(ProviderError) as caught:
            source_for(api).fetch(*window)
        errors.append(caught.value)

    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    assert "invalid token ***" in str(errors[0])  # the echoed token was hidden
    assert not any(TOKEN in text for text in texts)
    assert caplog.records  # the retries were logged
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.__dict__)
    assert TOKEN not in repr(source_for(Api({})))
