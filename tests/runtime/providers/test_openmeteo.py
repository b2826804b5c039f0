"""Open-Meteo forecasts as solar, wind and PUE: the FlatBuffers answer, the alignment of
preceding-hour radiation to interval starts, the same models as the simulator, forecast flags,
errors, caching and the API key kept out of errors and logs.

Every answer is built here with the FlatBuffers builder (the ``openmeteo_sdk`` schema) and
served through ``httpx.MockTransport``; nothing reaches a real endpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import flatbuffers  # type: ignore[import-untyped]
import httpx
import numpy as np
import pandas as pd
import pvlib
import pytest
from openmeteo_sdk.Unit import Unit  # type: ignore[import-untyped]
from openmeteo_sdk.Variable import Variable  # type: ignore[import-untyped]

from wattroute.model import Pue
from wattroute.runtime.providers.http import (
    PayloadError,
    ProviderError,
    RetryPolicy,
    Secret,
    Unavailable,
)
from wattroute.runtime.providers.openmeteo import (
    COMMERCIAL_URL,
    PUBLIC_URL,
    OpenMeteoWeather,
    PueForecast,
    SolarForecast,
    WindForecast,
    openmeteo_client,
    weather_sources,
)
from wattroute.runtime.providers.values import WEATHER_FORECAST
from wattroute.scenario.schema import SiteSpec
from wattroute.signals.solar import PvSystem, solar_profile_from_irradiance
from wattroute.signals.wind import wind_profile

LAT, LON, ELEVATION = 52.52, 13.40, 38.0
# past_days=1, forecast_days=2 around the day Berlin moves its clocks (2024-03-31): UTC
# stamps do not notice
FIRST = pd.Timestamp("2024-03-30T00:00:00Z")
HOURS = 72
STAMPS = pd.date_range(FIRST, periods=HOURS, freq="h")
NOW = pd.Timestamp("2024-03-31T10:15:00Z")
KEY = "s3cr3t-key-0123456789"

SITE = {
    "name": "berlin",
    "latitude": LAT,
    "longitude": LON,
    "accelerators": {"count": 8, "busy_kw": 0.7, "idle_kw": 0.1},
    "pue": {"base": 1.1, "per_degree_c": 0.02, "reference_c": 8.0, "maximum": 1.6},
    "solar": {"capacity_kw": 500.0, "tilt_deg": 30.0, "azimuth_deg": 170.0, "dc_ac_ratio": 1.25},
    "wind": {"capacity_kw": 4200.0, "turbine": "E-126/4200", "hub_height_m": 135.0},
}

# name -> (Variable, altitude, Unit)
LAYOUT = {
    "shortwave_radiation": (Variable.shortwave_radiation, 0, Unit.watt_per_square_metre),
    "direct_normal_irradiance": (Variable.direct_normal_irradiance, 0, Unit.watt_per_square_metre),
    "diffuse_radiation": (Variable.diffuse_radiation, 0, Unit.watt_per_square_metre),
    "temperature_2m": (Variable.temperature, 2, Unit.celsius),
    "wind_speed_10m": (Variable.wind_speed, 10, Unit.metre_per_second),
    "wind_speed_100m": (Variable.wind_speed, 100, Unit.metre_per_second),
}


def weather_values() -> dict[str, np.ndarray]:
    """A spring day in Berlin, hourly at ``STAMPS``: radiation as the mean of the preceding
    hour (the clear sky at that hour's middle, somewhat clouded), instantaneous temperature
    and wind."""
    location = pvlib.location.Location(LAT, LON, tz="UTC", altitude=ELEVATION)
    clear = location.get_clearsky(STAMPS - pd.Timedelta(minutes=30), model="ineichen")
    hour = (STAMPS.hour.to_numpy() + STAMPS.dayofyear.to_numpy() * 24).astype(float)
    cloud = 0.75 + 0.2 * np.sin(hour / 5.0)
    wind10 = 4.0 + 2.5 * np.sin(hour / 7.0)
    return {
        "shortwave_radiation": clear["ghi"].to_numpy() * cloud,
        "direct_normal_irradiance": clear["dni"].to_numpy() * cloud**2,
        "diffuse_radiation": clear["dhi"].to_numpy() * (2.0 - cloud),
        "temperature_2m": 9.0 + 7.0 * np.sin((STAMPS.hour.to_numpy() - 9) * np.pi / 12),
        "wind_speed_10m": wind10,
        "wind_speed_100m": wind10 * 1.45 + 0.5,
    }


def flatbuffer(
    values: dict[str, np.ndarray],
    *,
    first: pd.Timestamp = FIRST,
    interval_s: int = 3600,
    units: dict[str, int] | None = None,
    elevation: float = ELEVATION,
) -> bytes:
    """A size-prefixed ``WeatherApiResponse`` with ``values`` as hourly variables.

    The installed ``openmeteo_sdk`` ships only the readers (its builder functions are in the
    ``.pyi`` stubs alone), so the tables are built slot by slot, in the schema's field order:
    WeatherApiResponse(latitude 0, longitude 1, elevation 2, ..., timezone 7, ..., hourly 11;
    15 fields), VariablesWithTime(time 0, time_end 1, interval 2, variables 3),
    VariableWithValues(variable 0, unit 1, value 2, values 3, values_int64 4, altitude 5, ...;
    13 fields).
    """
    units = units or {}
    b = flatbuffers.Builder(4096)
    offsets = []
    n = 0
    for name, series in values.items():
        variable, altitude, unit = LAYOUT[name]
        array = np.asarray(series, dtype=np.float32)
        n = array.size
        vector = b.CreateNumpyVector(array)
        b.StartObject(13)
        b.PrependUint8Slot(0, variable, 0)
        b.PrependUint8Slot(1, units.get(name, unit), 0)
        b.PrependUOffsetTRelativeSlot(3, vector, 0)
        b.PrependInt16Slot(5, altitude, 0)
        offsets.append(b.EndObject())
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    variables = b.EndVector()
    start_s = int(first.timestamp())
    b.StartObject(4)
    b.PrependInt64Slot(0, start_s, 0)
    b.PrependInt64Slot(1, start_s + n * interval_s, 0)
    b.PrependInt32Slot(2, interval_s, 0)
    b.PrependUOffsetTRelativeSlot(3, variables, 0)
    hourly = b.EndObject()
    timezone = b.CreateString("GMT")
    b.StartObject(15)
    b.PrependFloat32Slot(0, 52.5, 0.0)
    b.PrependFloat32Slot(1, 13.375, 0.0)
    b.PrependFloat32Slot(2, elevation, 0.0)
    b.PrependUOffsetTRelativeSlot(7, timezone, 0)
    b.PrependUOffsetTRelativeSlot(11, hourly, 0)
    b.FinishSizePrefixed(b.EndObject())
    return bytes(b.Output())


@dataclass
class Server:
    """Answers queued in order (the last repeats); records every request."""

    answers: list[httpx.Response | Exception]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(body: bytes | None = None) -> httpx.Response:
    return httpx.Response(200, content=flatbuffer(weather_values()) if body is None else body)


@dataclass
class Clock:
    t: float = NOW.timestamp()

    def __call__(self) -> float:
        return self.t


def make_weather(server: Server, *, apikey: Secret | None = None, **options):
    sleeps: list[float] = []
    client = openmeteo_client(
        apikey,
        transport=httpx.MockTransport(server),
        sleep=sleeps.append,
        retry=RetryPolicy(attempts=3, backoff_s=0.5),
    )
    clock = options.pop("clock", Clock())
    weather = OpenMeteoWeather(
        LAT, LON, client, apikey=apikey, forecast_days=2, past_days=1, clock=clock, **options
    )
    return weather, sleeps


def sources(weather: OpenMeteoWeather, site: dict[str, object] | None = None):
    spec = SiteSpec.model_validate(site or SITE)
    built = {s.signal: s for s in weather_sources(spec, weather)}
    return built["solar_kw"], built["wind_kw"], built["pue"]


START, END = STAMPS[0], STAMPS[-1] + pd.Timedelta(hours=1)


def aligned(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the model sees for the intervals starting at ``STAMPS[:-1]``: radiation stamped at
    the interval's end, temperature and wind at its midpoint."""
    out = {k: values[k][1:] for k in ("shortwave_radiation", "direct_normal_irradiance")}
    out["diffuse_radiation"] = values["diffuse_radiation"][1:]
    for k in ("temperature_2m", "wind_speed_10m", "wind_speed_100m"):
        v = values[k].astype(np.float32).astype(np.float64)
        out[k] = (v[:-1] + v[1:]) / 2.0
    for k in ("shortwave_radiation", "direct_normal_irradiance", "diffuse_radiation"):
        out[k] = out[k].astype(np.float32).astype(np.float64)
    return out


# --------------------------------------------------------------------------- happy path


def test_request_asks_for_the_documented_variables_as_flatbuffers():
    server = Server([ok()])
    weather, _ = make_weather(server)
    weather.get()
    (request,) = server.requests
    assert request.url.host == "api.open-meteo.com"
    assert request.url.path == "/v1/forecast"
    params = request.url.params
    assert params["hourly"].split(",") == [
        "shortwave_radiation",
        "direct_normal_irradiance",
        "diffuse_radiation",
        "temperature_2m",
        "wind_speed_10m",
        "wind_speed_100m",
    ]
    assert params["wind_speed_unit"] == "ms"
    assert params["timezone"] == "GMT"
    assert params["format"] == "flatbuffers"
    assert (params["forecast_days"], params["past_days"]) == ("2", "1")
    assert (float(params["latitude"]), float(params["longitude"])) == (LAT, LON)
    assert "apikey" not in params


def test_solar_is_the_simulators_pv_model_on_interval_starts():
    values = weather_values()
    weather, _ = make_weather(Server([ok(flatbuffer(values))]))
    solar, _, _ = sources(weather)
    got = solar.fetch(START, END, NOW)

    assert (got.signal, got.source, got.kind) == ("solar_kw", "openmeteo", WEATHER_FORECAST)
    assert str(got.times.tz) == "UTC"
    assert got.interval == pd.Timedelta(hours=1)
    assert (np.diff(got.times.as_unit("ns").asi8) == 3600 * 10**9).all()
    assert got.times[0] == STAMPS[0]
    assert got.times[-1] == STAMPS[-2]  # the last stamp only closes the hour before it

    a = aligned(values)
    expected = 500.0 * solar_profile_from_irradiance(
        STAMPS[:-1] + pd.Timedelta(minutes=30),
        LAT,
        LON,
        ELEVATION,
        a["shortwave_radiation"],
        a["direct_normal_irradiance"],
        a["diffuse_radiation"],
        a["temperature_2m"],
        a["wind_speed_10m"],
        pv=PvSystem(tilt_deg=30.0, azimuth_deg=170.0, dc_ac_ratio=1.25),
    )
    np.testing.assert_allclose(got.values, expected, rtol=1e-9, atol=1e-9)

    at = pd.Series(got.values, index=got.times)
    assert at[pd.Timestamp("2024-03-31T00:00Z")] == 0.0  # night
    assert at[pd.Timestamp("2024-03-31T22:00Z")] == 0.0
    assert at[pd.Timestamp("2024-03-31T11:00Z")] > 150.0  # around solar noon (11:06 UTC)
    assert at.max() <= 500.0


def test_radiation_stamped_at_the_hour_end_belongs_to_the_hour_before():
    values = weather_values()
    values["shortwave_radiation"] = np.zeros(HOURS)
    values["direct_normal_irradiance"] = np.zeros(HOURS)
    values["diffuse_radiation"] = np.zeros(HOURS)
    noon = STAMPS.searchsorted(pd.Timestamp("2024-03-31T12:00Z"))
    values["diffuse_radiation"][noon] = 300.0  # the mean over 11:00..12:00
    weather, _ = make_weather(Server([ok(flatbuffer(values))]))
    solar, _, _ = sources(weather)
    got = solar.fetch(START, END, NOW)
    lit = got.times[got.values > 0]
    assert list(lit) == [pd.Timestamp("2024-03-31T11:00Z")]


def test_wind_is_windpowerlib_from_100m_and_pue_follows_temperature():
    values = weather_values()
    weather, _ = make_weather(Server([ok(flatbuffer(values))]))
    _, wind, pue = sources(weather)
    a = aligned(values)

    got = wind.fetch(START, END, NOW)
    expected = 4200.0 * wind_profile(
        a["wind_speed_100m"],
        a["temperature_2m"],
        turbine_type="E-126/4200",
        hub_height_m=135.0,
        measurement_height_m=100.0,
        elevation_m=ELEVATION,
    )
    np.testing.assert_allclose(got.values, expected, rtol=1e-9)
    assert (got.signal, got.kind) == ("wind_kw", WEATHER_FORECAST)
    assert got.values.max() > 0.0

    p = pue.fetch(START, END, NOW)
    model = Pue(base=1.1, per_degree_c=0.02, reference_c=8.0, maximum=1.6)
    np.testing.assert_allclose(p.values, model.at_temperature(a["temperature_2m"]))
    warm = int(np.argmax(a["temperature_2m"]))
    cold = int(np.argmin(a["temperature_2m"]))
    assert p.values[warm] > p.values[cold] == pytest.approx(1.1)


def test_wind_falls_back_to_10m_where_100m_is_missing():
    values = weather_values()
    values["wind_speed_100m"][:30] = np.nan
    weather, _ = make_weather(Server([ok(flatbuffer(values))]))
    _, wind, _ = sources(weather)
    got = wind.fetch(START, END, NOW)
    a = aligned(values)
    low = slice(0, 29)  # midpoints that need a NaN 100 m value
    expected_low = 4200.0 * wind_profile(
        a["wind_speed_10m"][low],
        a["temperature_2m"][low],
        turbine_type="E-126/4200",
        hub_height_m=135.0,
        measurement_height_m=10.0,
        elevation_m=ELEVATION,
    )
    np.testing.assert_allclose(got.values[low], expected_low, rtol=1e-9)
    assert np.isfinite(got.values).all()

    # an answer without the 100 m variable at all is accepted: 10 m everywhere
    del values["wind_speed_100m"]
    weather, _ = make_weather(Server([ok(flatbuffer(values))]))
    _, wind, _ = sources(weather)
    got = wind.fetch(START, END, NOW)
    expected = 4200.0 * wind_profile(
        a["wind_speed_10m"],
        a["temperature_2m"],
        turbine_type="E-126/4200",
        hub_height_m=135.0,
        measurement_height_m=10.0,
        elevation_m=ELEVATION,
    )
    np.testing.assert_allclose(got.values, expected, rtol=1e-9)


def test_forecast_flags_and_the_period_asked_for():
    weather, _ = make_weather(Server([ok()]))
    solar, wind, pue = sources(weather)
    start, end = pd.Timestamp("2024-03-31T06:30Z"), pd.Timestamp("2024-03-31T18:00Z")
    for source in (solar, wind, pue):
        got = source.fetch(start, end, NOW)
        assert got.times[0] == pd.Timestamp("2024-03-31T07:00Z")
        assert got.times[-1] == pd.Timestamp("2024-03-31T17:00Z")
        past = got.times <= NOW  # up to the interval 10:00..11:00 that holds now
        assert (got.forecast == ~past).all()
        assert got.times[~got.forecast][-1] == pd.Timestamp("2024-03-31T10:00Z")
        assert got.latest_observed() is not None
        assert got.fetched_at == NOW


def test_a_period_outside_the_forecast_is_empty():
    weather, _ = make_weather(Server([ok()]))
    solar, _, _ = sources(weather)
    got = solar.fetch(pd.Timestamp("2024-05-01T00:00Z"), pd.Timestamp("2024-05-02T00:00Z"), NOW)
    assert len(got) == 0


def test_nan_gaps_give_nan_not_a_crash():
    values = weather_values()
    noon = STAMPS.searchsorted(pd.Timestamp("2024-03-31T12:00Z"))
    values["shortwave_radiation"][noon] = np.nan  # interval 11:00
    values["temperature_2m"][noon + 5] = np.nan  # intervals 16:00 and 17:00
    values["wind_speed_10m"][noon + 10] = np.nan  # intervals 21:00 and 22:00
    values["wind_speed_100m"][noon + 10] = np.nan
    weather, _ = make_weather(Server([ok(flatbuffer(values))]))
    solar, wind, pue = sources(weather)
    s, w, p = (x.fetch(START, END, NOW) for x in (solar, wind, pue))
    at = {name: pd.Series(f.values, index=f.times) for name, f in (("s", s), ("w", w), ("p", p))}

    def t(hhmm):
        return pd.Timestamp(f"2024-03-31T{hhmm}Z")

    assert np.isnan(at["s"][t("11:00")])
    for hhmm in ("16:00", "17:00"):  # no temperature: nothing
        assert np.isnan(at["s"][t(hhmm)])
        assert np.isnan(at["w"][t(hhmm)])
        assert np.isnan(at["p"][t(hhmm)])
    for hhmm in ("21:00", "22:00"):  # no wind at all: no solar (module cooling), no wind
        assert np.isnan(at["s"][t(hhmm)])
        assert np.isnan(at["w"][t(hhmm)])
        assert np.isfinite(at["p"][t(hhmm)])  # PUE needs no wind
    assert np.isfinite(s.values).sum() == len(s) - 5
    # Every other hour is what it is without the gaps (the sun's hours next to one included).
    clean, _ = make_weather(Server([ok(flatbuffer(weather_values()))]))
    wholes = [x.fetch(START, END, NOW) for x in sources(clean)]
    for gapped, whole in zip((s, w, p), wholes, strict=True):
        kept = np.isfinite(gapped.values)
        np.testing.assert_array_equal(gapped.values[kept], whole.values[kept])
    whole_solar = pd.Series(wholes[0].values, index=wholes[0].times)
    for hhmm in ("10:00", "12:00"):
        assert at["s"][t(hhmm)] == whole_solar[t(hhmm)] > 0.0
    assert np.isfinite(w.values).sum() == len(w) - 4
    assert np.isfinite(p.values).sum() == len(p) - 2


def test_one_request_for_the_three_sources_until_the_answer_is_old():
    server = Server([ok()])
    clock = Clock()
    weather, _ = make_weather(server, clock=clock, max_age_s=900.0)
    solar, wind, pue = sources(weather)
    for source in (solar, wind, pue):
        source.fetch(START, END, NOW)
    assert len(server.requests) == 1
    clock.t += 899.0
    solar.fetch(START, END, NOW)
    assert len(server.requests) == 1
    clock.t += 2.0
    wind.fetch(START, END, NOW)
    assert len(server.requests) == 2


def test_a_failure_is_held_briefly_for_the_other_sources():
    server = Server(
        [httpx.Response(503), httpx.Response(503), httpx.Response(503), ok(), ok(), ok()]
    )
    clock = Clock()
    weather, _ = make_weather(server, clock=clock, error_hold_s=60.0)
    solar, wind, _ = sources(weather)
    with pytest.raises(Unavailable):
        solar.fetch(START, END, NOW)
    with pytest.raises(Unavailable):
        wind.fetch(START, END, NOW)
    assert len(server.requests) == 3  # one failed refresh (three attempts), not two
    clock.t += 61.0
    assert len(wind.fetch(START, END, NOW)) == HOURS - 1
    assert len(server.requests) == 4


def test_a_constant_pue_needs_no_request():
    server = Server([ok()])
    weather, _ = make_weather(server)
    site = dict(SITE, pue=1.3)
    _, _, pue = sources(weather, site)
    got = pue.fetch(pd.Timestamp("2024-03-31T09:30Z"), pd.Timestamp("2024-03-31T13:00Z"), NOW)
    assert list(got.times.hour) == [10, 11, 12]
    assert (got.values == 1.3).all()
    assert list(got.forecast) == [False, True, True]
    assert server.requests == []
    assert pue.next_publication(NOW) is None


def test_weather_sources_build_what_the_site_has():
    weather, _ = make_weather(Server([ok()]))
    spec = SiteSpec.model_validate({k: v for k, v in SITE.items() if k not in ("solar", "wind")})
    (only,) = weather_sources(spec, weather)
    assert isinstance(only, PueForecast)
    built = weather_sources(SiteSpec.model_validate(SITE), weather)
    assert [type(s) for s in built] == [PueForecast, SolarForecast, WindForecast]
    assert all(s.provider == "openmeteo" and s.kind == WEATHER_FORECAST for s in built)
    elsewhere = SiteSpec.model_validate(dict(SITE, latitude=48.1))
    with pytest.raises(ValueError, match="not for site"):
        weather_sources(elsewhere, weather)


def test_next_publication_is_the_next_full_hour():
    weather, _ = make_weather(Server([ok()]))
    solar, wind, _ = sources(weather)
    assert solar.next_publication(NOW) == pd.Timestamp("2024-03-31T11:00Z")
    on_the_hour = pd.Timestamp("2024-03-31T11:00Z")
    assert wind.next_publication(on_the_hour) == pd.Timestamp("2024-03-31T12:00Z")


@pytest.mark.parametrize(
    "options",
    [
        {"forecast_days": 0},
        {"forecast_days": 17},
        {"past_days": -1},
        {"past_days": 93},
        {"max_age_s": -1.0},
    ],
)
def test_options_out_of_range_are_refused(options):
    client = openmeteo_client(transport=httpx.MockTransport(Server([ok()])))
    with pytest.raises(ValueError, match=next(iter(options))):
        OpenMeteoWeather(LAT, LON, client, **options)


# --------------------------------------------------------------------------- errors


def test_open_meteos_json_error_is_a_provider_error_with_its_reason():
    reason = "Cannot initialize WeatherVariable from invalid String value tempeture_2m."
    body = json.dumps({"error": True, "reason": reason})
    server = Server([httpx.Response(400, content=body)])
    weather, sleeps = make_weather(server)
    solar, _, _ = sources(weather)
    with pytest.raises(ProviderError) as caught:
        solar.fetch(START, END, NOW)
    assert type(caught.value) is ProviderError
    assert reason in str(caught.value)
    assert caught.value.provider == "openmeteo"
    assert len(server.requests) == 1
    assert sleeps == []


def test_429_with_retry_after_then_success():
    server = Server([httpx.Response(429, headers={"Retry-After": "2"}), ok()])
    weather, sleeps = make_weather(server)
    solar, _, _ = sources(weather)
    got = solar.fetch(START, END, NOW)
    assert len(got) == HOURS - 1
    assert sleeps == [2.0]
    assert len(server.requests) == 2


def test_5xx_is_unavailable_after_the_retries():
    server = Server([httpx.Response(502)])
    weather, sleeps = make_weather(server)
    _, wind, _ = sources(weather)
    with pytest.raises(Unavailable, match="HTTP 502"):
        wind.fetch(START, END, NOW)
    assert len(server.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_timeout_is_unavailable():
    server = Server([httpx.ReadTimeout("slow")])
    weather, _ = make_weather(server)
    _, _, pue = sources(weather)
    with pytest.raises(Unavailable, match="timed out"):
        pue.fetch(START, END, NOW)


def _truncated() -> bytes:
    return flatbuffer(weather_values())[:-40]


def _garbage_with_a_length() -> bytes:
    return (12).to_bytes(4, "little") + b"\xff" * 12


def _two_locations() -> bytes:
    body = flatbuffer(weather_values())
    return body + body


def _wind_in_kmh() -> bytes:
    return flatbuffer(weather_values(), units={"wind_speed_10m": Unit.kilometres_per_hour})


def _no_temperature() -> bytes:
    values = weather_values()
    del values["temperature_2m"]
    return flatbuffer(values)


def _times_disagree() -> bytes:
    values = {k: v[:-1] for k, v in weather_values().items()}
    values["temperature_2m"] = weather_values()["temperature_2m"]
    return flatbuffer(values)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Bad gateway</body></html>",
        b'{"latitude": 52.52, "hourly": {}}',
        _truncated(),
        _garbage_with_a_length(),
        _two_locations(),
        _wind_in_kmh(),
        _no_temperature(),
        _times_disagree(),
    ],
    ids=[
        "empty",
        "html",
        "json",
        "truncated",
        "garbage",
        "two-locations",
        "km/h",
        "no-temperature",
        "lengths-disagree",
    ],
)
def test_a_malformed_body_is_a_payload_error(body):
    weather, _ = make_weather(Server([ok(body)]))
    solar, _, _ = sources(weather)
    with pytest.raises(PayloadError):
        solar.fetch(START, END, NOW)


def test_an_error_in_the_stream_is_unavailable():
    body = flatbuffer(weather_values()) + b"Unexpected error while streaming data"
    weather, _ = make_weather(Server([ok(body)]))
    with pytest.raises(Unavailable, match="Unexpected error"):
        weather.get()


# --------------------------------------------------------------------------- the API key


def test_the_key_goes_to_the_commercial_endpoint_and_nowhere_else(caplog):
    caplog.set_level(logging.DEBUG)
    key = Secret(KEY)
    reason = f"The API key {KEY} is not valid for this endpoint."
    server = Server(
        [
            ok(),
            httpx.Response(400, content=json.dumps({"error": True, "reason": reason})),
            httpx.Response(400, content=f"no JSON here, key={KEY}"),
            httpx.Response(503),
            httpx.ReadTimeout(f"timed out reading ?apikey={KEY}"),
        ]
    )
    clock = Clock()
    weather, _ = make_weather(server, apikey=key, clock=clock, error_hold_s=0.0)
    weather.get()
    request = server.requests[0]
    assert f"https://{request.url.host}" == COMMERCIAL_URL != PUBLIC_URL
    assert request.url.params["apikey"] == KEY

    errors = []
    for _ in range(3):
        clock.t += 10_000.0
        with pytest.raises(ProviderError) as caught:
            weather.get()
        errors.append(caught.value)
    assert "is not valid" in str(errors[0])
    assert isinstance(errors[2], Unavailable)
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
    assert KEY not in repr(weather)
    logged = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in line for line in logged)  # httpx logs the URL
    assert all(KEY not in line for line in logged)
    assert all(KEY not in str(getattr(r, "fields", "")) for r in caplog.records)
