"""WattTime: the marginal operating emissions rate (MOER) of a grid region, gCO2/kWh.

API v3 (``https://api.watttime.org``):

* ``GET /login`` with HTTP basic auth (username and password) answers ``{"token": ...}``, a
  bearer token valid for 30 minutes; it is kept with the time it was issued and renewed after
  25 minutes, and once more when a data call is refused with it;
* ``GET /v3/historical?region=...&signal_type=co2_moer&start=...&end=...``: observed values,
  at most 32 days per call;
* ``GET /v3/forecast?region=...&signal_type=co2_moer&horizon_hours=72``: the values ahead.

Both answer ``{"data": [{"point_time": ..., "value": ...}, ...], "meta": {"units": ...,
"data_point_period_seconds": 300, ...}}``, point times being UTC interval starts. Values in
``lbs_co2_per_mwh`` are converted to gCO2/kWh (1 lb = 453.59237 g, so g/kWh = lbs/MWh x
0.45359237); ``g_co2_per_kwh`` is taken as is; any other unit is refused. The kind is
``marginal/direct`` (:func:`~wattroute.runtime.providers.values.carbon_kind`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from wattroute.runtime.providers.http import (
    ApiClient,
    AuthError,
    PayloadError,
    Secret,
)
from wattroute.runtime.providers.values import Fetched, as_utc, carbon_kind, chunks

log = logging.getLogger("wattroute.providers")

PROVIDER = "watttime"
SIGNAL = "carbon_g_per_kwh"
SIGNAL_TYPE = "co2_moer"
DEFAULT_BASE_URL = "https://api.watttime.org"

GRAMS_PER_POUND = 453.59237
"""g per lb (exact, by definition of the avoirdupois pound)."""
UNIT_FACTORS = {
    "lbs_co2_per_mwh": GRAMS_PER_POUND / 1000.0,  # lb/MWh -> g/kWh
    "g_co2_per_kwh": 1.0,
}
"""Factor from each accepted ``meta.units`` to gCO2/kWh."""

TOKEN_REFRESH_S = 25 * 60.0
"""Age, seconds, after which a login token (valid for 30 minutes) is renewed."""
HISTORICAL_MAX = pd.Timedelta(days=32)
"""The longest period one ``/v3/historical`` call may ask for."""
FORECAST_HORIZON_H = 72
"""Hours ahead asked of ``/v3/forecast``."""
FORECAST_REACH = pd.Timedelta(hours=1)
"""The forecast is asked for only if the period ends later than this before now."""
DEFAULT_INTERVAL = pd.Timedelta(minutes=5)
"""The interval when no answer says it (an empty fetch)."""


@dataclass(eq=False)
class WattTimeMarginal:
    """The marginal CO2 emissions rate of one WattTime region, gCO2/kWh, every 5 minutes.

    Parameters
    ----------
    region
        The WattTime region (balancing authority), e.g. ``CAISO_NORTH``.
    username
        The WattTime account's user name.
    password
        Its password.
    client
        The HTTP client for the API (an :class:`~wattroute.runtime.providers.http.ApiClient`
        at :data:`DEFAULT_BASE_URL`); the source registers its credentials with it.
    clock
        Epoch seconds now, to age the login token (injected by tests).
    forecast
        Whether to fill the intervals after the last observed value with the forecast.
    """

    region: str
    username: str
    password: Secret
    client: ApiClient
    clock: Callable[[], float] = time.time
    forecast: bool = True
    _token: Secret | None = field(default=None, init=False, repr=False)
    _issued_at: float = field(default=-math.inf, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("a WattTime region is required")
        self.client.add_secret(self.password)

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def signal(self) -> str:
        return SIGNAL

    @property
    def kind(self) -> str:
        return carbon_kind("marginal", "direct")

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """``None``: WattTime updates continuously."""
        return None

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """The values, gCO2/kWh, for the intervals that start in ``[start, end)``.

        Observed values come from ``/v3/historical`` (in calls of at most 32 days) for the part
        of the period before ``now``; if :attr:`forecast` is set and the period reaches the last
        hour, forecast rows fill the intervals after the last finite observed value (replacing
        the gaps there).

        Raises
        ------
        wattroute.runtime.providers.http.ProviderError
            When the API does not answer, refuses the credentials
            (:class:`~wattroute.runtime.providers.http.AuthError`) or answers with another
            shape than documented (:class:`~wattroute.runtime.providers.http.PayloadError`).
        """
        try:
            return self._fetch(as_utc(start), as_utc(end), as_utc(now))
        except PayloadError as exc:
            raise self.client.hidden(exc) from None  # the password and every token issued

    def _fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        if start >= end:
            return Fetched(
                SIGNAL,
                PROVIDER,
                self.kind,
                now,
                pd.DatetimeIndex([], tz="UTC"),
                np.zeros(0),
                np.zeros(0, dtype=bool),
                DEFAULT_INTERVAL,
            )

        interval: pd.Timedelta | None = None
        observed: dict[pd.Timestamp, float] = {}
        if start < now:
            for lo, hi in chunks(start, min(end, now), HISTORICAL_MAX):
                params = {"start": lo.isoformat(), "end": hi.isoformat()}
                values, period = self._series("/v3/historical", params)
                observed.update(values)
                interval = interval or period

        finite = [t for t, v in observed.items() if math.isfinite(v)]
        last = max(finite) if finite else None
        ahead: dict[pd.Timestamp, float] = {}
        if (
            self.forecast
            and end > now - FORECAST_REACH
            and (last is None or end > last + (interval or DEFAULT_INTERVAL))
        ):
            values, period = self._series(
                "/v3/forecast", {"horizon_hours": str(FORECAST_HORIZON_H)}
            )
            ahead = {t: v for t, v in values.items() if last is None or t > last}
            interval = interval or period

        rows: dict[pd.Timestamp, tuple[float, bool]] = {t: (v, False) for t, v in observed.items()}
        rows.update({t: (v, True) for t, v in ahead.items()})
        times = sorted(t for t in rows if start <= t < end)
        return Fetched(
            SIGNAL,
            PROVIDER,
            self.kind,
            now,
            pd.DatetimeIndex(times, tz="UTC") if times else pd.DatetimeIndex([], tz="UTC"),
            np.array([rows[t][0] for t in times], dtype=float),
            np.array([rows[t][1] for t in times], dtype=bool),
            interval or DEFAULT_INTERVAL,
        )

    # -- authentication --------------------------------------------------------------------

    def _login(self) -> Secret:
        """A new bearer token from ``/login``, kept with the time it was issued."""
        body = self.client.get_json("/login", auth=(self.username, self.password.reveal()))
        raw = body.get("token") if isinstance(body, dict) else None
        if not isinstance(raw, str) or not raw:
            raise PayloadError(PROVIDER, "answered /login without a token")
        token = Secret(raw)
        self.client.add_secret(token)
        with self._lock:
            self._token, self._issued_at = token, self.clock()
        return token

    def _current_token(self) -> Secret:
        """The kept token if it is younger than :data:`TOKEN_REFRESH_S`, else a new one."""
        with self._lock:
            token, age = self._token, self.clock() - self._issued_at
        if token is None or not 0.0 <= age < TOKEN_REFRESH_S:
            token = self._login()
        return token

    def _get(self, path: str, params: dict[str, str]) -> Any:
        """GET a data endpoint with the bearer token; logged in again once if refused."""
        query = {"region": self.region, "signal_type": SIGNAL_TYPE, **params}
        token = self._current_token()
        try:
            return self.client.get_json(path, params=query, headers=_bearer(token))
        except AuthError:
            log.info(
                "provider token refused, logging in again",
                extra={"fields": {"provider": PROVIDER, "path": path}},
            )
        token = self._login()
        return self.client.get_json(path, params=query, headers=_bearer(token))

    # -- parsing ---------------------------------------------------------------------------

    def _series(
        self, path: str, params: dict[str, str]
    ) -> tuple[dict[pd.Timestamp, float], pd.Timedelta]:
        """Time → gCO2/kWh (NaN for a gap) and the interval, from one data call."""
        body = self._get(path, params)
        if not isinstance(body, dict):
            raise PayloadError(
                PROVIDER, f"answered {path} with {type(body).__name__}, not an object"
            )
        meta = body.get("meta")
        if not isinstance(meta, dict):
            raise PayloadError(PROVIDER, f"answered {path} without a meta object")
        factor = self._factor(meta, path)
        interval = _period(meta, path)
        data = body.get("data")
        if not isinstance(data, list):
            raise PayloadError(PROVIDER, f"answered {path} without a data list")
        out: dict[pd.Timestamp, float] = {}
        for i, item in enumerate(data):
            where = f"{path} data[{i}]"
            if not isinstance(item, dict):
                raise PayloadError(PROVIDER, f"{where} is not an object")
            out[_time(item, where)] = _value(item, where) * factor
        return out, interval

    def _factor(self, meta: dict[str, Any], path: str) -> float:
        """From ``meta.units`` to gCO2/kWh; refused unless the unit is known."""
        units = meta.get("units")
        if units not in UNIT_FACTORS:
            raise PayloadError(
                PROVIDER,
                f"answered {path} in units {units!r:.40}, not lbs_co2_per_mwh or g_co2_per_kwh",
            )
        signal_type = meta.get("signal_type")
        if signal_type is not None and signal_type != SIGNAL_TYPE:
            raise PayloadError(PROVIDER, f"answered {path} with signal {signal_type!r:.40}")
        region = meta.get("region")
        if region is not None and region != self.region:
            raise PayloadError(
                PROVIDER, f"answered {path} for region {region!r:.40}, not {self.region!r}"
            )
        return UNIT_FACTORS[str(units)]


def _bearer(token: Secret) -> dict[str, str]:
    return {"authorization": f"Bearer {token.reveal()}"}


def _period(meta: dict[str, Any], path: str) -> pd.Timedelta:
    raw = meta.get("data_point_period_seconds")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < math.inf:
        raise PayloadError(
            PROVIDER, f"answered {path} without a positive meta.data_point_period_seconds"
        )
    return pd.Timedelta(seconds=float(raw))


def _value(item: dict[str, Any], where: str) -> float:
    """``value`` in the answer's unit; NaN for ``null``."""
    if "value" not in item:
        raise PayloadError(PROVIDER, f"{where} has no value")
    raw = item["value"]
    if raw is None:
        return math.nan
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(PROVIDER, f"{where}.value is not a number: {raw!r:.40}")
    value = float(raw)
    if math.isinf(value):
        raise PayloadError(PROVIDER, f"{where}.value is not finite")
    return value


def _time(item: dict[str, Any], where: str) -> pd.Timestamp:
    """``point_time``, ISO 8601 with a UTC offset, as a UTC timestamp."""
    raw = item.get("point_time")
    if not isinstance(raw, str):
        raise PayloadError(PROVIDER, f"{where} has no point_time string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PayloadError(
            PROVIDER, f"{where}.point_time is not an ISO 8601 time: {raw!r:.40}"
        ) from None
    if parsed.tzinfo is None:
        raise PayloadError(PROVIDER, f"{where}.point_time has no UTC offset: {raw!r:.40}")
    return pd.Timestamp(parsed).tz_convert("UTC")
