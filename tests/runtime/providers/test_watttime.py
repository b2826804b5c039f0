"""WattTime marginal emissions through a mock transport (no test reaches the API)."""

from __future__ import annotations

import base64
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

from wattroute.runtime.providers.http import (
    ApiClient,
    AuthError,
    PayloadError,
    ProviderError,
    Secret,
    Unavailable,
)
from wattroute.runtime.providers.watttime import DEFAULT_BASE_URL, PROVIDER, WattTimeMarginal

FIXTURES = Path(__file__).parent / "fixtures" / "watttime"
USER = "grid-user"
PASSWORD = "wt-Pa55word-7c6b5a"
LOGIN = "/login"
HISTORICAL = "/v3/historical"
FORECAST = "/v3/forecast"
FIVE_MIN = pd.Timedelta(minutes=5)
LB_PER_MWH = 0.45359237  # g/kWh in one lb/MWh

Route = dict[str, Any] | Callable[[httpx.Request], httpx.Response]


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def token(n: int) -> str:
    return f"wt-token-{n}-d41d8cd98f00b204"


class Api:
    """WattTime's login (tokens ``token(1)``, ``token(2)``, ... for the right basic auth) and
    data routes (a payload answered 200, or a handler) for accepted bearer tokens; records
    every request."""

    def __init__(self, routes: dict[str, Route], refused: set[str] | None = None) -> None:
        self.routes = routes
        self.refused = refused or set()  # tokens the data routes answer 401 to
        self.issued: list[str] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == LOGIN:
            expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return httpx.Response(401, text="Unauthorized")
            self.issued.append(token(len(self.issued) + 1))
            return httpx.Response(200, json={"token": self.issued[-1]})
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or bearer in self.refused:
            return httpx.Response(401, json={"error": "invalid token"})
        route = self.routes.get(path)
        if route is None:
            return httpx.Response(404, json={"error": "not found"})
        if callable(route):
            return route(request)
        return httpx.Response(200, json=route)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def bearers(self) -> list[str]:
        return [r.headers["authorization"] for r in self.requests if r.url.path != LOGIN]


def source_for(
    api: Api,
    sleeps: list[float] | None = None,
    clock: Callable[[], float] = lambda: 1_714_521_600.0,
    password: str = PASSWORD,
    **options: Any,
) -> WattTimeMarginal:
    sleeps = [] if sleeps is None else sleeps
    client = ApiClient(
        PROVIDER, DEFAULT_BASE_URL, transport=httpx.MockTransport(api), sleep=sleeps.append
    )
    return WattTimeMarginal("CAISO_NORTH", USER, Secret(password), client, clock, **options)


WINDOW = (utc("2024-05-01T00:05"), utc("2024-05-01T00:50"), utc("2024-05-01T00:32"))


# -- the happy path ----------------------------------------------------------------------------


def test_observed_values_then_the_forecast_converted_to_g_per_kwh():
    api = Api({HISTORICAL: load("historical.json"), FORECAST: load("forecast.json")})
    source = source_for(api)
    fetched = source.fetch(*WINDOW)

    expected_times = pd.date_range(utc("2024-05-01T00:05"), periods=9, freq="5min")
    assert list(fetched.times) == list(expected_times)
    # lbs/MWh x 453.59237 g/lb / 1000 kWh/MWh; 00:30 is observed (900), not the forecast's 111
    expected = [907.18474, 226.796185, 385.644232974, 0.0, 559.9597807650, 408.233133]
    expected += [430.9127515, 498.951607, 544.310844]
    np.testing.assert_allclose(fetched.values, expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(fetched.forecast, [False] * 6 + [True] * 3)
    assert fetched.kind == source.kind == "marginal/direct"
    assert (fetched.signal, fetched.source) == ("carbon_g_per_kwh", "watttime")
    assert (source.signal, source.provider) == ("carbon_g_per_kwh", "watttime")
    assert fetched.interval == FIVE_MIN
    assert fetched.fetched_at == WINDOW[2]
    assert source.next_publication(WINDOW[2]) is None

    assert api.paths() == [LOGIN, HISTORICAL, FORECAST]
    login = api.requests[0]
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert login.headers["authorization"] == f"Basic {basic}"
    assert api.bearers() == [f"Bearer {token(1)}"] * 2
    historical, forecast = api.requests[1:]
    assert dict(historical.url.params) == {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "start": "2024-05-01T00:05:00+00:00",
        "end": "2024-05-01T00:32:00+00:00",
    }
    assert dict(forecast.url.params) == {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "horizon_hours": "72",
    }


def test_pounds_per_mwh_become_grams_per_kwh_exactly():
    payload = load("historical.json")
    payload["data"] = payload["data"][:3]  # 1000, 2000, 500 lbs/MWh
    api = Api({HISTORICAL: payload})
    fetched = source_for(api, forecast=False).fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T00:15"), utc("2024-05-01T00:32")
    )
    assert fetched.values.tolist() == [453.59237, 907.18474, 226.796185]
    assert fetched.values[0] == 1000 * LB_PER_MWH


def test_grams_per_kwh_are_taken_as_they_are():
    payload = load("historical.json")
    payload["meta"]["units"] = "g_co2_per_kwh"
    api = Api({HISTORICAL: payload})
    fetched = source_for(api, forecast=False).fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T00:15"), utc("2024-05-01T00:32")
    )
    assert fetched.values.tolist() == [1000.0, 2000.0, 500.0]


@pytest.mark.parametrize("units", ["kg_co2_per_mwh", "lbs_co2_per_kwh", "percent", None])
def test_other_units_are_refused(units):
    payload = load("historical.json")
    payload["meta"]["units"] = units
    api = Api({HISTORICAL: payload})
    with pytest.raises(PayloadError, match="units"):
        source_for(api).fetch(*WINDOW)


def test_a_period_ahead_is_all_forecast():
    api = Api({HISTORICAL: load("historical.json"), FORECAST: load("forecast.json")})
    fetched = source_for(api).fetch(
        utc("2024-05-01T00:35"), utc("2024-05-01T00:55"), utc("2024-05-01T00:32")
    )
    assert api.paths() == [LOGIN, FORECAST]
    assert list(fetched.times) == list(
        pd.date_range(utc("2024-05-01T00:35"), periods=4, freq="5min")
    )
    np.testing.assert_allclose(
        fetched.values, np.array([950.0, 1100.0, 1200.0, 1300.0]) * LB_PER_MWH, rtol=1e-15
    )
    assert fetched.forecast.all()


def chunked_historical(request: httpx.Request) -> httpx.Response:
    """A point every 5 minutes from ``start`` to ``end``, both included (chunks overlap)."""
    start, end = (pd.Timestamp(request.url.params[k]) for k in ("start", "end"))
    times = pd.date_range(start, end, freq="5min")
    data = [{"point_time": t.isoformat(), "value": float(t.day * 10 + t.hour)} for t in times]
    return httpx.Response(200, json={"data": data, "meta": load("historical.json")["meta"]})


def test_long_periods_are_asked_for_in_calls_of_32_days():
    api = Api({HISTORICAL: chunked_historical})
    start, end = utc("2024-05-01T00:00"), utc("2024-06-10T00:00")
    fetched = source_for(api, forecast=False).fetch(start, end, utc("2024-06-15T00:00"))

    assert api.paths() == [LOGIN, HISTORICAL, HISTORICAL]
    asked = [(r.url.params["start"], r.url.params["end"]) for r in api.requests[1:]]
    assert asked == [
        ("2024-05-01T00:00:00+00:00", "2024-06-02T00:00:00+00:00"),
        ("2024-06-02T00:00:00+00:00", "2024-06-10T00:00:00+00:00"),
    ]
    expected = pd.date_range(start, end, freq="5min", inclusive="left")
    assert len(expected) == 40 * 288
    assert list(fetched.times) == list(expected)
    assert fetched.times.is_unique
    np.testing.assert_allclose(
        fetched.values, (expected.day * 10 + expected.hour).to_numpy() * LB_PER_MWH, rtol=1e-15
    )


# -- the token ----------------------------------------------------------------------------------


def test_the_token_is_kept_for_25_minutes_then_renewed():
    now = [1_714_521_600.0]
    api = Api({HISTORICAL: load("historical.json")})
    source = source_for(api, clock=lambda: now[0], forecast=False)

    source.fetch(*WINDOW)
    now[0] += 24 * 60
    source.fetch(*WINDOW)
    assert api.paths().count(LOGIN) == 1
    now[0] += 61  # 25 min 1 s after the login
    source.fetch(*WINDOW)

    assert api.paths() == [LOGIN, HISTORICAL, HISTORICAL, LOGIN, HISTORICAL]
    assert api.bearers() == [f"Bearer {token(1)}"] * 2 + [f"Bearer {token(2)}"]


def test_a_refused_token_means_one_new_login_and_one_retry():
    api = Api({HISTORICAL: load("historical.json"), FORECAST: load("forecast.json")})
    api.refused = {token(1)}  # revoked early by the provider
    fetched = source_for(api).fetch(*WINDOW)

    assert api.paths() == [LOGIN, HISTORICAL, LOGIN, HISTORICAL, FORECAST]
    assert api.bearers() == [f"Bearer {token(1)}"] + [f"Bearer {token(2)}"] * 2
    assert len(fetched) == 9


def test_a_second_refusal_is_an_auth_error():
    api = Api({HISTORICAL: load("historical.json")})
    api.refused = {token(1), token(2), token(3)}
    with pytest.raises(AuthError, match="HTTP 401") as caught:
        source_for(api).fetch(*WINDOW)
    assert api.paths() == [LOGIN, HISTORICAL, LOGIN, HISTORICAL]
    assert caught.value.provider == "watttime"


def test_a_wrong_password_is_an_auth_error_without_a_data_call():
    api = Api({HISTORICAL: load("historical.json")})
    sleeps: list[float] = []
    with pytest.raises(AuthError) as caught:
        source_for(api, sleeps, password="not-the-password").fetch(*WINDOW)
    assert api.paths() == [LOGIN]
    assert sleeps == []
    assert "not-the-password" not in str(caught.value)


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": 42}, ["wt-token"]])
def test_a_login_answer_without_a_token_is_a_payload_error(body):
    def login(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    client = ApiClient(PROVIDER, DEFAULT_BASE_URL, transport=httpx.MockTransport(login))
    source = WattTimeMarginal("CAISO_NORTH", USER, Secret(PASSWORD), client)
    with pytest.raises(PayloadError, match="/login"):
        source.fetch(*WINDOW)


# -- failures -----------------------------------------------------------------------------------


def test_a_429_is_waited_out_as_retry_after_asks():
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "rate limited"}),
            httpx.Response(200, json=load("historical.json")),
        ]
    )
    api = Api({HISTORICAL: lambda r: next(answers)})
    sleeps: list[float] = []
    fetched = source_for(api, sleeps, forecast=False).fetch(*WINDOW)
    assert sleeps == [2.0]
    assert api.paths() == [LOGIN, HISTORICAL, HISTORICAL]
    assert fetched.values[0] == 2000 * LB_PER_MWH


def test_5xx_on_every_attempt_is_unavailable():
    api = Api({HISTORICAL: lambda r: httpx.Response(500, text="internal error")})
    sleeps: list[float] = []
    with pytest.raises(Unavailable, match="HTTP 500"):
        source_for(api, sleeps).fetch(*WINDOW)
    assert api.paths() == [LOGIN] + [HISTORICAL] * 3
    assert sleeps == [0.5, 1.0]


def test_a_timeout_is_unavailable():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    api = Api({HISTORICAL: slow})
    sleeps: list[float] = []
    with pytest.raises(Unavailable, match="timed out"):
        source_for(api, sleeps).fetch(*WINDOW)
    assert api.paths() == [LOGIN] + [HISTORICAL] * 3
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
    "a list": lambda body: body["data"],
    "no data": _drop(("data",)),
    "data an object": _set(("data",), {"point_time": "2024-05-01T00:00:00+00:00"}),
    "no meta": _drop(("meta",)),
    "meta a list": _set(("meta",), []),
    "no period": _drop(("meta", "data_point_period_seconds")),
    "period zero": _set(("meta", "data_point_period_seconds"), 0),
    "period text": _set(("meta", "data_point_period_seconds"), "300"),
    "another region": _set(("meta", "region"), "PJM_DC"),
    "another signal": _set(("meta", "signal_type"), "health_damage"),
    "an item a number": _set(("data", 2), 500),
    "no point_time": _drop(("data", 2, "point_time")),
    "point_time not a time": _set(("data", 2, "point_time"), "2024-05-01 noon"),
    "point_time without offset": _set(("data", 2, "point_time"), "2024-05-01T00:10:00"),
    "no value": _drop(("data", 2, "value")),
    "value text": _set(("data", 2, "value"), "500"),
    "value a boolean": _set(("data", 2, "value"), False),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_a_payload_error(change):
    api = Api({HISTORICAL: change(copy.deepcopy(load("historical.json")))})
    with pytest.raises(PayloadError):
        source_for(api, forecast=False).fetch(*WINDOW)


def test_a_body_that_is_not_json_is_a_payload_error():
    api = Api({HISTORICAL: lambda r: httpx.Response(200, text="<html>oops</html>")})
    with pytest.raises(PayloadError, match="not JSON"):
        source_for(api).fetch(*WINDOW)


# -- gaps and DST -------------------------------------------------------------------------------


def test_null_values_are_gaps():
    payload = load("historical.json")
    payload["data"][2]["value"] = None
    payload["data"][4]["value"] = None
    api = Api({HISTORICAL: payload})
    fetched = source_for(api, forecast=False).fetch(
        utc("2024-05-01T00:00"), utc("2024-05-01T00:35"), utc("2024-05-01T00:32")
    )
    assert len(fetched) == 7
    np.testing.assert_array_equal(np.isnan(fetched.values), [0, 0, 1, 0, 1, 0, 0])
    assert fetched.values[3] == 850.2 * LB_PER_MWH
    assert fetched.latest_observed() == (utc("2024-05-01T00:30"), 900 * LB_PER_MWH)


DST_TIMES = pd.date_range(utc("2024-11-03T08:45"), periods=7, freq="5min")


def test_the_night_clocks_fall_back_in_california_stays_5_minutes_apart_in_utc():
    api = Api({HISTORICAL: load("historical_dst.json")})
    fetched = source_for(api, forecast=False).fetch(
        utc("2024-11-03T08:45"), utc("2024-11-03T09:20"), utc("2024-11-03T09:30")
    )
    assert list(fetched.times) == list(DST_TIMES)
    assert fetched.times.is_unique
    assert set(np.diff(fetched.times.as_unit("ns").asi8)) == {FIVE_MIN.value}
    np.testing.assert_allclose(fetched.values, np.arange(940.0, 971.0, 5.0) * LB_PER_MWH)


def test_local_times_repeated_by_the_fall_back_are_read_as_distinct_utc_times():
    payload = load("historical_dst.json")
    for item, t in zip(payload["data"], DST_TIMES, strict=True):
        item["point_time"] = t.tz_convert("America/Los_Angeles").isoformat()
    # 01:45 PDT then 01:00 PST: the local clock goes back
    assert payload["data"][0]["point_time"] == "2024-11-03T01:45:00-07:00"
    assert payload["data"][3]["point_time"] == "2024-11-03T01:00:00-08:00"
    api = Api({HISTORICAL: payload})
    fetched = source_for(api, forecast=False).fetch(
        utc("2024-11-03T08:45"), utc("2024-11-03T09:20"), utc("2024-11-03T09:30")
    )
    assert list(fetched.times) == list(DST_TIMES)


# -- secrets ------------------------------------------------------------------------------------


def test_the_password_and_the_token_never_reach_an_error_or_a_log_line(caplog):
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD, token(1), token(2)]
    errors: list[ProviderError] = []

    def echo(request: httpx.Request) -> httpx.Response:
        # a provider that echoes the credentials it was sent
        sent = request.headers["authorization"]
        return httpx.Response(400, text=f"bad request with {sent} for {USER}:{PASSWORD}")

    def echo_in_payload(request: httpx.Request) -> httpx.Response:
        payload = load("historical.json")
        payload["data"][0]["point_time"] = request.headers["authorization"]
        return httpx.Response(200, json=payload)

    failing: list[tuple[Route, set[str]]] = [
        (echo, set()),
        (echo_in_payload, set()),
        (lambda r: httpx.Response(429, headers={"Retry-After": "2"}, text=PASSWORD), set()),
        (lambda r: httpx.Response(503, text=f"{PASSWORD} {token(1)}"), set()),
        (load("historical.json"), {token(1), token(2)}),  # refused, logged in again, refused
    ]
    for route, refused in failing:
        api = Api({HISTORICAL: route}, refused)
        with pytest.raises(ProviderError) as caught:
            source_for(api).fetch(*WINDOW)
        errors.append(caught.value)
    with pytest.raises(AuthError) as caught:
        source_for(Api({}), password=PASSWORD + "-wrong").fetch(*WINDOW)
    errors.append(caught.value)

    assert isinstance(errors[1], PayloadError)
    assert "Bearer ***" in str(errors[0])
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    for secret in [*secrets, PASSWORD + "-wrong"]:
        assert not any(secret in text for text in texts), secret
    assert any("logging in again" in r.getMessage() for r in caplog.records)
    assert any("retry" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        for secret in secrets:
            assert secret not in record.getMessage()
            assert secret not in repr(record.__dict__)
    assert PASSWORD not in repr(source_for(Api({})))
