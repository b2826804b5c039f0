"""Open-Meteo weather forecasts as each site's solar, wind and PUE forecast.

One :class:`OpenMeteoWeather` per site fetches Open-Meteo's numerical weather forecast for the
site's coordinates (``GET /v1/forecast``) and keeps the answer for ``max_age_s``; three
:class:`~wattroute.runtime.providers.source.Source` objects read it and turn it into the
controller's signals through the **same models the simulator uses**
(:mod:`wattroute.signals.solar`, :mod:`wattroute.signals.wind` and
:class:`wattroute.model.Pue`):

* :class:`SolarForecast`, ``solar_kw``: nameplate x
  :func:`~wattroute.signals.solar.solar_profile_from_irradiance` with the site's
  :class:`~wattroute.signals.solar.PvSystem` (tilt, azimuth, DC/AC ratio), built from the
  site's spec by :func:`wattroute.scenario.load.pv_system` as the loader builds it;
* :class:`WindForecast`, ``wind_kw``: nameplate x
  :func:`~wattroute.signals.wind.wind_profile` for the site's turbine and hub height,
  from the 100 m wind speed (``measurement_height_m=100``) where the forecast has it, else
  from the 10 m wind speed;
* :class:`PueForecast`, ``pue``: the site's :class:`~wattroute.model.Pue` at the forecast
  air temperature (a PUE that does not depend on temperature is its base value, with no
  request at all).

:func:`weather_sources` builds the three from a :class:`~wattroute.scenario.schema.SiteSpec`.

The request
-----------
``hourly=shortwave_radiation,direct_normal_irradiance,diffuse_radiation,temperature_2m,
wind_speed_10m,wind_speed_100m``, ``wind_speed_unit=ms``, ``timezone=GMT``,
``forecast_days`` (1..16, default 7), ``past_days`` (0..92, default 2, so that a restarted
controller has the recent past) and ``format=flatbuffers``; ``apikey`` for the commercial
endpoint (``https://customer-api.open-meteo.com``), held as a
:class:`~wattroute.runtime.providers.http.Secret` and hidden in every error and log line.
``wind_speed_100m`` is a surface variable the forecast API accepts although its documentation
lists 80, 120 and 180 m: a model that lacks it answers NaN (and an answer without it is
accepted), and the wind then comes from 10 m.

Hourly rather than ``minutely_15``: 15-minute values are native only for a few regional
models (central Europe, North America) and are interpolated from hourly values elsewhere,
the horizon is shorter, and the controller plans on hourly or coarser steps; hourly
radiation is also what the simulator's weather files hold.

The body is a stream of size-prefixed ``WeatherApiResponse`` FlatBuffers messages (the
``openmeteo_sdk`` schema), parsed here as the ``openmeteo_requests`` client parses it (that
client itself is not used: it brings ``niquests`` and ``urllib3-future``, which takes the
place of ``urllib3`` under every ``requests`` user in the environment — ENTSO-E, gridstatus);
each variable is found by its ``Variable()`` and ``Altitude()`` (``temperature`` at 2 m,
``wind_speed`` at 10 and 100 m) and its ``Unit()`` is checked (degC, m/s, W/m^2).

Times
-----
Times are Unix seconds, so UTC whatever the site's time zone (a daylight-saving change does
not show). Open-Meteo stamps hourly values at ``t``; **radiation** at ``t`` is the mean over
the *preceding* hour ``[t - 1 h, t)``, while temperature and wind speed are instantaneous at
``t``. Every series here is put on **interval starts** ``s`` for the intervals
``[s, s + 1 h)``, as the simulator's signals are:

* radiation for ``[s, s + 1 h)`` is the value stamped ``s + 1 h``;
* temperature and wind speed at the interval's midpoint are the mean of the values at ``s``
  and ``s + 1 h`` (linear interpolation, as the scenario loader evaluates weather at step
  midpoints);
* the PV model is evaluated at the midpoint ``s + 30 min``.

So ``n`` stamps give ``n - 1`` intervals, from the first stamp to the hour before the last.

Forecast flags
--------------
Every value is the weather model's. Rows whose interval starts after ``now`` are forecasts
(``forecast=True``); rows that start at or before ``now`` are the model's analysis of the
recent past (``forecast=False``), which the controller uses as the observation when no meter
reading exists.

Gaps and errors
---------------
A NaN in an input (a variable a model does not have for some hours) gives NaN in the outputs
that need it, computed only where every input is finite. HTTP 400 with Open-Meteo's JSON
``{"error": true, "reason": "..."}`` is a
:class:`~wattroute.runtime.providers.http.ProviderError` carrying the reason; a body that does
not parse, or lacks a variable or has a wrong unit, is a
:class:`~wattroute.runtime.providers.http.PayloadError`; an error Open-Meteo writes into the
stream (a message starting with ``Unexpected``) is
:class:`~wattroute.runtime.providers.http.Unavailable`. Retries, ``Retry-After``, timeouts, 5xx
and the request budget are :class:`~wattroute.runtime.providers.http.ApiClient`'s. A failure
is held for ``error_hold_s`` so that the three sources of a site do not each retry it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from openmeteo_sdk.Unit import Unit  # type: ignore[import-untyped]
from openmeteo_sdk.Variable import Variable  # type: ignore[import-untyped]
from openmeteo_sdk.WeatherApiResponse import WeatherApiResponse  # type: ignore[import-untyped]

from wattroute.model import Pue
from wattroute.runtime.providers.http import (
    ApiClient,
    PayloadError,
    ProviderError,
    Secret,
    Unavailable,
)
from wattroute.runtime.providers.source import Source
from wattroute.runtime.providers.values import WEATHER_FORECAST, Fetched, as_utc
from wattroute.scenario.load import pv_system, site_pue
from wattroute.scenario.schema import SiteSpec
from wattroute.signals.solar import PvSystem, solar_profile_from_irradiance
from wattroute.signals.wind import wind_profile

__all__ = [
    "COMMERCIAL_URL",
    "FORECAST_PATH",
    "HOURLY_VARIABLES",
    "PROVIDER",
    "PUBLIC_URL",
    "OpenMeteoWeather",
    "PueForecast",
    "SolarForecast",
    "WeatherForecast",
    "WindForecast",
    "openmeteo_client",
    "weather_sources",
]

log = logging.getLogger("wattroute.providers")

PROVIDER = "openmeteo"
"""The provider's name in errors, logs, budgets and :class:`Fetched` values."""
PUBLIC_URL = "https://api.open-meteo.com"
"""Open-Meteo's free API (non-commercial use, no key)."""
COMMERCIAL_URL = "https://customer-api.open-meteo.com"
"""Open-Meteo's commercial API (``apikey`` required)."""
FORECAST_PATH = "/v1/forecast"
HOURLY_VARIABLES = (
    "shortwave_radiation",
    "direct_normal_irradiance",
    "diffuse_radiation",
    "temperature_2m",
    "wind_speed_10m",
    "wind_speed_100m",
)
"""The hourly variables requested, in Open-Meteo's names."""

MAX_FORECAST_DAYS = 16
MAX_PAST_DAYS = 92
_STREAM_ERROR = 0x78656E55  # "Unex" read as a little-endian length: an error in the stream
_MAX_VARIABLES = 256
_PARSE_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError, AttributeError)


@dataclass(frozen=True)
class _Wanted:
    """How one requested variable appears in the FlatBuffers answer."""

    variable: int
    altitude: int
    unit: int
    required: bool


_WANTED: dict[str, _Wanted] = {
    "shortwave_radiation": _Wanted(
        Variable.shortwave_radiation, 0, Unit.watt_per_square_metre, True
    ),
    "direct_normal_irradiance": _Wanted(
        Variable.direct_normal_irradiance, 0, Unit.watt_per_square_metre, True
    ),
    "diffuse_radiation": _Wanted(Variable.diffuse_radiation, 0, Unit.watt_per_square_metre, True),
    "temperature_2m": _Wanted(Variable.temperature, 2, Unit.celsius, True),
    "wind_speed_10m": _Wanted(Variable.wind_speed, 10, Unit.metre_per_second, True),
    "wind_speed_100m": _Wanted(Variable.wind_speed, 100, Unit.metre_per_second, False),
}


# --------------------------------------------------------------------------- the weather


@dataclass(frozen=True, eq=False)
class WeatherForecast:
    """Open-Meteo's hourly weather at one site, on interval starts (see the module docstring
    for the alignment).

    Parameters
    ----------
    times
        Start of each interval, UTC, increasing, ``interval`` apart.
    interval
        Length of each interval (an hour).
    ghi_w_per_m2, dni_w_per_m2, dhi_w_per_m2
        Global horizontal, direct normal and diffuse horizontal irradiance, W/m^2, mean over
        the interval; NaN where the model has none.
    temperature_c
        Air temperature at 2 m, degC, at the interval's midpoint.
    wind_speed_10m_m_per_s, wind_speed_100m_m_per_s
        Wind speed at 10 m and 100 m above ground, m/s, at the interval's midpoint (all NaN
        when the model has no 100 m wind).
    latitude, longitude
        The coordinates asked for (the site's), decimal degrees.
    elevation_m
        Elevation Open-Meteo reports for the coordinates, m above sea level.
    fetched_at
        When the answer arrived, UTC.
    """

    times: pd.DatetimeIndex
    interval: pd.Timedelta
    ghi_w_per_m2: np.ndarray
    dni_w_per_m2: np.ndarray
    dhi_w_per_m2: np.ndarray
    temperature_c: np.ndarray
    wind_speed_10m_m_per_s: np.ndarray
    wind_speed_100m_m_per_s: np.ndarray
    latitude: float
    longitude: float
    elevation_m: float
    fetched_at: pd.Timestamp

    def __len__(self) -> int:
        return len(self.times)

    @property
    def midpoints(self) -> pd.DatetimeIndex:
        """The middle of each interval, UTC: where the models are evaluated."""
        return self.times + self.interval / 2

    def rows(self, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        """Indices of the intervals that start in ``[start, end)``."""
        return np.flatnonzero((self.times >= start) & (self.times < end))


def openmeteo_client(
    apikey: Secret | None = None, *, base_url: str | None = None, **options: Any
) -> ApiClient:
    """An :class:`ApiClient` for Open-Meteo: the commercial endpoint when there is a key, the
    free one otherwise, with the key registered as a secret.

    Parameters
    ----------
    apikey
        The commercial API key, or ``None`` for the free API.
    base_url
        Overrides the endpoint (a self-hosted Open-Meteo, a test server).
    **options
        Passed to :class:`ApiClient` (``timeout_s``, ``retry``, ``budget``, ``transport``,
        ``sleep``).
    """
    url = base_url or (COMMERCIAL_URL if apikey is not None else PUBLIC_URL)
    secrets = [apikey] if apikey is not None else []
    return ApiClient(PROVIDER, url, secrets=secrets, **options)


class OpenMeteoWeather:
    """Open-Meteo's forecast for one site's coordinates, fetched at most every ``max_age_s``.

    Parameters
    ----------
    latitude, longitude
        The site's coordinates, decimal degrees (north and east positive).
    client
        The HTTP client (one may serve every site; it holds the retry policy and the budget);
        default :func:`openmeteo_client` with ``apikey``.
    apikey
        Key of the commercial API, sent as the ``apikey`` parameter and registered with the
        client as a secret; ``None`` for the free API.
    forecast_days
        Days of forecast asked for, 1..16 (the first is today, UTC).
    past_days
        Days of the past included, 0..92.
    max_age_s
        How long an answer is reused, seconds: the sources of one site make one request per
        refresh.
    error_hold_s
        How long a failure is answered again without a request, seconds (the sources of a
        site then fail over together instead of each retrying); 0 disables it.
    clock
        Epoch seconds now (injected by tests).

    Raises
    ------
    ValueError
        If a coordinate, ``forecast_days``, ``past_days`` or an age is out of range.
    """

    def __init__(
        self,
        latitude: float,
        longitude: float,
        client: ApiClient | None = None,
        *,
        apikey: Secret | None = None,
        forecast_days: int = 7,
        past_days: int = 2,
        max_age_s: float = 900.0,
        error_hold_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
            raise ValueError(f"latitude must be within -90..90 degrees, got {latitude!r}")
        if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
            raise ValueError(f"longitude must be within -180..180 degrees, got {longitude!r}")
        if not (isinstance(forecast_days, int) and 1 <= forecast_days <= MAX_FORECAST_DAYS):
            raise ValueError(
                f"forecast_days must be an integer within 1..{MAX_FORECAST_DAYS}, "
                f"got {forecast_days!r}"
            )
        if not (isinstance(past_days, int) and 0 <= past_days <= MAX_PAST_DAYS):
            raise ValueError(
                f"past_days must be an integer within 0..{MAX_PAST_DAYS}, got {past_days!r}"
            )
        if not (math.isfinite(max_age_s) and max_age_s >= 0.0):
            raise ValueError(f"max_age_s must be a non-negative number, got {max_age_s!r}")
        if not (math.isfinite(error_hold_s) and error_hold_s >= 0.0):
            raise ValueError(f"error_hold_s must be a non-negative number, got {error_hold_s!r}")
        self.latitude = float(latitude)
        self.longitude = float(longitude)
        self.client = client if client is not None else openmeteo_client(apikey)
        self._apikey = apikey
        if apikey is not None:
            self.client.add_secret(apikey)
        self.forecast_days = forecast_days
        self.past_days = past_days
        self.max_age_s = float(max_age_s)
        self.error_hold_s = float(error_hold_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, WeatherForecast] | None = None
        self._failed: tuple[float, ProviderError] | None = None
        self.requests = 0  # answers asked for (each may be several HTTP attempts)

    def __repr__(self) -> str:
        key = ", apikey=***" if self._apikey is not None else ""
        return f"OpenMeteoWeather({self.latitude}, {self.longitude}{key})"

    @property
    def provider(self) -> str:
        return PROVIDER

    def params(self) -> dict[str, str | int | float]:
        """The query parameters of the request (the key included, if any)."""
        params: dict[str, str | int | float] = {
            "latitude": self.latitude,
            "longitude": self.longitude,
            "hourly": ",".join(HOURLY_VARIABLES),
            "wind_speed_unit": "ms",
            "timezone": "GMT",
            "forecast_days": self.forecast_days,
            "past_days": self.past_days,
            "format": "flatbuffers",
        }
        if self._apikey is not None:
            params["apikey"] = self._apikey.reveal()
        return params

    def get(self) -> WeatherForecast:
        """The forecast: the cached answer while it is younger than ``max_age_s``, else a new
        one.

        Raises
        ------
        wattroute.runtime.providers.http.ProviderError
            Or a subclass, when Open-Meteo gives no usable answer (see the module docstring).
        """
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self.max_age_s:
                return self._cached[1]
            if self._failed is not None and now - self._failed[0] < self.error_hold_s:
                raise self._failed[1]
            try:
                weather = self._fetch(now)
            except ProviderError as exc:
                self._failed = (now, exc)
                raise
            self._failed = None
            self._cached = (now, weather)
            return weather

    def _fetch(self, now: float) -> WeatherForecast:
        self.requests += 1
        try:
            response = self.client.get(FORECAST_PATH, params=self.params())
        except ProviderError as exc:
            if type(exc) is not ProviderError:
                raise
            # a 4xx other than 401/403/429: Open-Meteo says why in a JSON body
            reason = _reason(exc.problem)
            if reason is None:
                raise
            raise ProviderError(PROVIDER, f"refused the request: {self._hide(reason)}") from None
        fetched_at = pd.Timestamp(now, unit="s", tz="UTC")
        weather = self._parse(response.content, fetched_at)
        log.debug(
            "open-meteo forecast",
            extra={
                "fields": {
                    "provider": PROVIDER,
                    "latitude": self.latitude,
                    "longitude": self.longitude,
                    "intervals": len(weather),
                    "elevation_m": weather.elevation_m,
                }
            },
        )
        return weather

    def _hide(self, text: str) -> str:
        if self._apikey is not None and self._apikey.reveal():
            text = text.replace(self._apikey.reveal(), "***")
        return text

    def _parse(self, body: bytes, fetched_at: pd.Timestamp) -> WeatherForecast:
        try:
            messages = _messages(body)
            if len(messages) != 1:
                raise _MalformedError(f"{len(messages)} locations in the answer, expected one")
            return self._forecast(messages[0], fetched_at)
        except _MalformedError as exc:
            raise PayloadError(PROVIDER, f"unexpected forecast answer: {exc}") from None
        except _StreamFailureError as exc:
            raise Unavailable(PROVIDER, f"failed while answering: {self._hide(str(exc))}") from None
        except _PARSE_ERRORS as exc:
            raise PayloadError(
                PROVIDER, f"the forecast answer is not a FlatBuffers message ({type(exc).__name__})"
            ) from None

    def _forecast(self, message: Any, fetched_at: pd.Timestamp) -> WeatherForecast:
        hourly = message.Hourly()
        if hourly is None:
            raise _MalformedError("no hourly values")
        interval_s = int(hourly.Interval())
        first_s, end_s = int(hourly.Time()), int(hourly.TimeEnd())
        if interval_s <= 0 or end_s < first_s or (end_s - first_s) % interval_s:
            raise _MalformedError(f"times {first_s}..{end_s} every {interval_s} s")
        n = (end_s - first_s) // interval_s
        count = int(hourly.VariablesLength())
        if count > _MAX_VARIABLES:
            raise _MalformedError(f"{count} variables")
        found: dict[str, np.ndarray] = {}
        for j in range(count):
            var = hourly.Variables(j)
            if var is None or var.PressureLevel() or var.EnsembleMember() or var.PreviousDay():
                continue
            for name, wanted in _WANTED.items():
                if (var.Variable(), var.Altitude()) != (wanted.variable, wanted.altitude):
                    continue
                if var.Unit() != wanted.unit:
                    raise _MalformedError(f"{name} in unit {_unit_name(var.Unit())}")
                values = np.array(var.ValuesAsNumpy(), dtype=np.float64).reshape(-1)
                if values.shape != (n,):
                    raise _MalformedError(f"{name} has {values.size} values for {n} times")
                found[name] = values
        missing = [name for name, w in _WANTED.items() if w.required and name not in found]
        if missing:
            raise _MalformedError(f"no {', '.join(missing)}")
        if n < 2:
            raise _MalformedError(f"{n} hourly values, need at least two")
        nan = np.full(n, np.nan)
        step = pd.Timedelta(seconds=interval_s)
        stamps = pd.date_range(pd.Timestamp(first_s, unit="s", tz="UTC"), periods=n, freq=step)

        def ending(name: str) -> np.ndarray:
            # a mean over the preceding interval, moved to that interval's start
            return found.get(name, nan)[1:]

        def middle(name: str) -> np.ndarray:
            # instantaneous at the stamps, interpolated to the midpoints
            values = found.get(name, nan)
            return (values[:-1] + values[1:]) / 2.0

        elevation = float(message.Elevation())
        return WeatherForecast(
            times=stamps[:-1],
            interval=step,
            ghi_w_per_m2=ending("shortwave_radiation"),
            dni_w_per_m2=ending("direct_normal_irradiance"),
            dhi_w_per_m2=ending("diffuse_radiation"),
            temperature_c=middle("temperature_2m"),
            wind_speed_10m_m_per_s=middle("wind_speed_10m"),
            wind_speed_100m_m_per_s=middle("wind_speed_100m"),
            latitude=self.latitude,
            longitude=self.longitude,
            elevation_m=elevation if math.isfinite(elevation) else 0.0,
            fetched_at=fetched_at,
        )

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """The next full hour after ``now``.

        Open-Meteo ingests each weather model's runs as the national weather services publish
        them (every 1 to 6 hours depending on the model, several models a day), so new values
        can appear any hour; the next full hour is when a refresh is worth trying (a cached
        answer is reused for ``max_age_s`` anyway).
        """
        return as_utc(now).floor("h") + pd.Timedelta(hours=1)


class _MalformedError(Exception):
    """The answer parses but has not the documented shape."""


class _StreamFailureError(Exception):
    """Open-Meteo wrote an error into the stream instead of a message."""


def _messages(body: bytes) -> list[Any]:
    """The size-prefixed ``WeatherApiResponse`` messages of a body."""
    if not body:
        raise _MalformedError("an empty body")
    messages = []
    total, pos = len(body), 0
    while pos < total:
        if total - pos < 4:
            raise _MalformedError("a truncated message")
        length = int.from_bytes(body[pos : pos + 4], byteorder="little")
        if length == _STREAM_ERROR:
            raise _StreamFailureError(body[pos:].decode("utf-8", "replace")[:200])
        if length == 0 or pos + 4 + length > total:
            raise _MalformedError("a message whose length does not match the body")
        messages.append(WeatherApiResponse.GetRootAs(body, pos + 4))
        pos += 4 + length
    return messages


def _unit_name(unit: int) -> str:
    for name, value in vars(Unit).items():
        if value == unit and not name.startswith("_"):
            return name
    return str(unit)


def _reason(problem: str) -> str | None:
    """Open-Meteo's ``reason`` from the text of an HTTP error that quotes its JSON body."""
    start = problem.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(problem[start:])
    except ValueError:
        body = None
    if isinstance(body, dict):
        reason = body.get("reason")
        return str(reason) if reason is not None else None
    # the quoted body may be cut short: take what there is of the reason
    match = re.search(r'"reason"\s*:\s*"((?:[^"\\]|\\.)*)', problem[start:])
    return match.group(1) + "..." if match else None


# --------------------------------------------------------------------------- the sources


def _fetched(
    signal: str,
    weather: WeatherForecast,
    rows: np.ndarray,
    values: np.ndarray,
    now: pd.Timestamp,
) -> Fetched:
    times = weather.times[rows]
    return Fetched(
        signal,
        PROVIDER,
        WEATHER_FORECAST,
        weather.fetched_at,
        times,
        np.asarray(values, dtype=np.float64),
        np.asarray(times > as_utc(now), dtype=bool),
        weather.interval,
    )


def _model_error(exc: ValueError) -> PayloadError:
    return PayloadError(PROVIDER, f"forecast values the model refuses: {exc}")


class SolarForecast:
    """``solar_kw`` of a site's PV from Open-Meteo's irradiance (see the module docstring).

    Parameters
    ----------
    weather
        The site's forecast (its coordinates are the site's).
    capacity_kw
        AC nameplate of the PV, kW.
    pv
        The PV system's orientation and electrical parameters, as the scenario loader builds
        them (:func:`wattroute.scenario.load.pv_system`); default ``PvSystem()``.

    Raises
    ------
    ValueError
        If the capacity is not positive.
    """

    signal = "solar_kw"
    kind = WEATHER_FORECAST

    def __init__(
        self,
        weather: OpenMeteoWeather,
        capacity_kw: float,
        pv: PvSystem | None = None,
    ) -> None:
        if not (math.isfinite(capacity_kw) and capacity_kw > 0.0):
            raise ValueError(f"capacity_kw must be positive, got {capacity_kw!r}")
        self.weather = weather
        self.capacity_kw = float(capacity_kw)
        self.pv = PvSystem() if pv is None else pv

    @property
    def provider(self) -> str:
        return PROVIDER

    def _profile(
        self,
        times: pd.DatetimeIndex,
        elevation_m: float,
        ghi: np.ndarray,
        dni: np.ndarray,
        dhi: np.ndarray,
        temperature_c: np.ndarray,
        wind_m_per_s: np.ndarray,
    ) -> np.ndarray:
        return solar_profile_from_irradiance(
            times,
            self.weather.latitude,
            self.weather.longitude,
            elevation_m,
            ghi,
            dni,
            dhi,
            temperature_c,
            wind_m_per_s,
            pv=self.pv,
        )

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """AC output in kW per interval starting in ``[start, end)``; NaN where an input is
        missing."""
        w = self.weather.get()
        rows = w.rows(as_utc(start), as_utc(end))
        inputs = (
            w.ghi_w_per_m2[rows],
            w.dni_w_per_m2[rows],
            w.dhi_w_per_m2[rows],
            w.temperature_c[rows],
            w.wind_speed_10m_m_per_s[rows],
        )
        ok = np.logical_and.reduce([np.isfinite(x) for x in inputs])
        values = np.full(len(rows), np.nan)
        if ok.any():
            try:
                profile = self._profile(
                    w.midpoints[rows][ok], w.elevation_m, *(x[ok] for x in inputs)
                )
            except ValueError as exc:
                raise _model_error(exc) from None
            values[ok] = self.capacity_kw * profile
        return _fetched(self.signal, w, rows, values, now)

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        return self.weather.next_publication(now)


class WindForecast:
    """``wind_kw`` of a site's turbines from Open-Meteo's wind speed (see the module
    docstring).

    Parameters
    ----------
    weather
        The site's forecast.
    capacity_kw
        Nameplate of the wind plant, kW.
    turbine_type
        A turbine type in windpowerlib's library
        (:func:`~wattroute.signals.wind.available_turbines`).
    hub_height_m
        Hub height above ground, m; default the library's first listed height.

    Raises
    ------
    wattroute.errors.ScenarioError
        If the turbine type is unknown or the hub is not above the rotor radius.
    ValueError
        If the capacity is not positive.
    """

    signal = "wind_kw"
    kind = WEATHER_FORECAST

    def __init__(
        self,
        weather: OpenMeteoWeather,
        capacity_kw: float,
        turbine_type: str = "E-126/4200",
        hub_height_m: float | None = None,
    ) -> None:
        if not (math.isfinite(capacity_kw) and capacity_kw > 0.0):
            raise ValueError(f"capacity_kw must be positive, got {capacity_kw!r}")
        self.weather = weather
        self.capacity_kw = float(capacity_kw)
        self.turbine_type = turbine_type
        self.hub_height_m = hub_height_m
        # refuse an unknown turbine or a hub below the rotor radius now
        self._profile(np.zeros(1), np.full(1, 15.0), 10.0, 0.0)

    @property
    def provider(self) -> str:
        return PROVIDER

    def _profile(
        self,
        wind_m_per_s: np.ndarray,
        temperature_c: np.ndarray,
        measurement_height_m: float,
        elevation_m: float,
    ) -> np.ndarray:
        return wind_profile(
            wind_m_per_s,
            temperature_c,
            turbine_type=self.turbine_type,
            hub_height_m=self.hub_height_m,
            measurement_height_m=measurement_height_m,
            elevation_m=elevation_m,
        )

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """Output in kW per interval starting in ``[start, end)``: from the 100 m wind where
        it is known, else from the 10 m wind; NaN where neither (or the temperature) is."""
        w = self.weather.get()
        rows = w.rows(as_utc(start), as_utc(end))
        temperature = w.temperature_c[rows]
        at_100 = w.wind_speed_100m_m_per_s[rows]
        at_10 = w.wind_speed_10m_m_per_s[rows]
        warm = np.isfinite(temperature)
        use_100 = warm & np.isfinite(at_100)
        use_10 = warm & ~use_100 & np.isfinite(at_10)
        values = np.full(len(rows), np.nan)
        try:
            for use, speed, height in ((use_100, at_100, 100.0), (use_10, at_10, 10.0)):
                if use.any():
                    profile = self._profile(speed[use], temperature[use], height, w.elevation_m)
                    values[use] = self.capacity_kw * profile
        except ValueError as exc:
            raise _model_error(exc) from None
        return _fetched(self.signal, w, rows, values, now)

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        return self.weather.next_publication(now)


class PueForecast:
    """``pue`` of a site from Open-Meteo's air temperature through its
    :class:`~wattroute.model.Pue` model.

    A PUE that does not depend on temperature is its base value on an hourly grid, and no
    request is made for it.

    Parameters
    ----------
    weather
        The site's forecast.
    pue
        The site's PUE model.
    """

    signal = "pue"
    kind = WEATHER_FORECAST

    def __init__(self, weather: OpenMeteoWeather, pue: Pue) -> None:
        self.weather = weather
        self.pue = pue

    @property
    def provider(self) -> str:
        return PROVIDER

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """PUE (dimensionless) per interval starting in ``[start, end)``; NaN where the
        temperature is missing."""
        start, end, now = as_utc(start), as_utc(end), as_utc(now)
        if not self.pue.depends_on_temperature:
            hour = pd.Timedelta(hours=1)
            times = pd.date_range(start.ceil("h"), end, freq=hour, inclusive="left")
            return Fetched(
                self.signal,
                PROVIDER,
                WEATHER_FORECAST,
                now,
                times,
                np.full(len(times), self.pue.base),
                np.asarray(times > now, dtype=bool),
                hour,
            )
        w = self.weather.get()
        rows = w.rows(start, end)
        temperature = w.temperature_c[rows]
        ok = np.isfinite(temperature)
        values = np.full(len(rows), np.nan)
        values[ok] = self.pue.at_temperature(temperature[ok])
        return _fetched(self.signal, w, rows, values, now)

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        if not self.pue.depends_on_temperature:
            return None
        return self.weather.next_publication(now)


def weather_sources(spec: SiteSpec, weather: OpenMeteoWeather) -> list[Source]:
    """The weather-driven sources of one site: its PUE always, its solar and wind if it has
    them, all reading ``weather`` (one request per refresh for the three).

    Capacities, PV system (tilt, azimuth, DC/AC ratio), turbine and hub height come from the
    spec as :mod:`wattroute.scenario.load` reads them; a site whose solar or wind the
    simulator takes from a trace gets the same model from the forecast here (the trace is
    history, not a forecast). The elevation is the one Open-Meteo reports for the
    coordinates.

    Raises
    ------
    ValueError
        If ``weather`` is for other coordinates than the site's.
    wattroute.errors.ScenarioError
        If the turbine type is unknown or its hub is not above the rotor radius.
    """
    if not (
        math.isclose(weather.latitude, spec.latitude, abs_tol=1e-6)
        and math.isclose(weather.longitude, spec.longitude, abs_tol=1e-6)
    ):
        raise ValueError(
            f"the weather is for ({weather.latitude}, {weather.longitude}), "
            f"not for site {spec.name!r} at ({spec.latitude}, {spec.longitude})"
        )
    sources: list[Source] = [PueForecast(weather, site_pue(spec))]
    if spec.solar is not None:
        sources.append(SolarForecast(weather, spec.solar.capacity_kw, pv_system(spec)))
    if spec.wind is not None:
        sources.append(
            WindForecast(weather, spec.wind.capacity_kw, spec.wind.turbine, spec.wind.hub_height_m)
        )
    return sources
