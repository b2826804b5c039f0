"""Electricity Maps: the average carbon intensity of a zone's electricity, gCO2eq/kWh.

API v3 (``https://api.electricitymap.org``), authenticated by an ``auth-token`` header:

* ``GET /v3/carbon-intensity/history?zone=DE``: the past 24 hours, hourly;
* ``GET /v3/carbon-intensity/past-range?zone=DE&start=...&end=...``: older periods, at most
  10 days per call;
* ``GET /v3/carbon-intensity/forecast?zone=DE``: the hours ahead.

Every call carries ``emissionFactorType`` (``lifecycle`` or ``direct``), which sets the kind of
the values: ``average/lifecycle`` or ``average/direct``
(:func:`~wattroute.runtime.providers.values.carbon_kind`). Times in the answers are UTC interval
starts (ISO 8601, ``Z`` or ``.000Z``); a ``carbonIntensity`` of ``null`` is a gap and becomes
NaN. Whether an observed value is an estimate (``isEstimated``) is summed up after each fetch in
:attr:`ElectricityMapsCarbon.last_estimated_share`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from wattroute.runtime.providers.http import (
    ApiClient,
    PayloadError,
    Secret,
)
from wattroute.runtime.providers.values import Fetched, as_utc, carbon_kind, chunks

PROVIDER = "electricitymaps"
SIGNAL = "carbon_g_per_kwh"
DEFAULT_BASE_URL = "https://api.electricitymap.org"

HISTORY_SPAN = pd.Timedelta(hours=24)
"""How far back ``/history`` reaches from now."""
PAST_RANGE_MAX = pd.Timedelta(days=10)
"""The longest period one ``/past-range`` call may ask for."""
INTERVAL = pd.Timedelta(hours=1)
"""The length of every value's interval: the v3 carbon-intensity endpoints are hourly."""


@dataclass(eq=False)
class ElectricityMapsCarbon:
    """The average carbon intensity of one Electricity Maps zone, gCO2eq/kWh, hourly.

    Parameters
    ----------
    zone
        The zone's identifier, e.g. ``DE`` or ``US-CAL-CISO``.
    token
        The API token.
    client
        The HTTP client for the API (an :class:`~wattroute.runtime.providers.http.ApiClient`
        at :data:`DEFAULT_BASE_URL`); the source registers its credentials with it.
    scope
        ``lifecycle`` (the default: construction and fuel chain included) or ``direct`` (at
        the stack); sent as ``emissionFactorType``.
    forecast
        Whether to fill the hours after the last observed value with the forecast.

    Attributes
    ----------
    last_estimated_share
        Of the finite observed values the last :meth:`fetch` returned, the share (0 to 1) that
        Electricity Maps flagged as estimated; NaN if it returned none.
    """

    zone: str
    token: Secret
    client: ApiClient
    scope: str = "lifecycle"
    forecast: bool = True
    last_estimated_share: float = field(default=math.nan, init=False)

    def __post_init__(self) -> None:
        if not self.zone:
            raise ValueError("an Electricity Maps zone is required")
        self._kind = carbon_kind("average", self.scope)
        self.client.add_secret(self.token)

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def signal(self) -> str:
        return SIGNAL

    @property
    def kind(self) -> str:
        return self._kind

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """``None``: Electricity Maps updates continuously."""
        return None

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """The hourly values, gCO2eq/kWh, for the intervals that start in ``[start, end)``.

        Observed values come from ``/past-range`` (in calls of at most 10 days) for the part of
        the period older than 24 hours before ``now`` and from ``/history`` for the rest; if
        :attr:`forecast` is set, forecast rows fill the hours after the last finite observed
        value (replacing the gaps there).

        Raises
        ------
        wattroute.runtime.providers.http.ProviderError
            When the API does not answer or answers with another shape than documented
            (:class:`~wattroute.runtime.providers.http.PayloadError`).
        """
        try:
            return self._fetch(as_utc(start), as_utc(end), as_utc(now))
        except PayloadError as exc:
            raise self.client.hidden(exc) from None

    def _fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        self.last_estimated_share = math.nan
        if start >= end:
            return Fetched.empty(SIGNAL, PROVIDER, self.kind, now)
        cutoff = now - HISTORY_SPAN

        observed: dict[pd.Timestamp, tuple[float, bool]] = {}
        if start < cutoff:
            for lo, hi in chunks(start, min(end, cutoff), PAST_RANGE_MAX):
                params = {"start": _iso(lo), "end": _iso(hi)}
                observed.update(self._observed("past-range", "data", params))
        if end > cutoff and start < now:
            observed.update(self._observed("history", "history", {}))

        finite = [t for t, (v, _) in observed.items() if math.isfinite(v)]
        last = max(finite) if finite else None
        ahead: dict[pd.Timestamp, float] = {}
        if self.forecast and end > cutoff and (last is None or end > last + INTERVAL):
            ahead = {t: v for t, v in self._forecast().items() if last is None or t > last}

        rows: dict[pd.Timestamp, tuple[float, bool, bool]] = {
            t: (v, False, est) for t, (v, est) in observed.items()
        }
        rows.update({t: (v, True, False) for t, v in ahead.items()})
        times = sorted(t for t in rows if start <= t < end)
        values = np.array([rows[t][0] for t in times], dtype=float)
        flags = np.array([rows[t][1] for t in times], dtype=bool)
        estimated = np.array([rows[t][2] for t in times], dtype=bool)

        counted = ~flags & np.isfinite(values)
        if counted.any():
            self.last_estimated_share = float(estimated[counted].mean())
        return Fetched(
            SIGNAL,
            PROVIDER,
            self.kind,
            now,
            pd.DatetimeIndex(times, tz="UTC") if times else pd.DatetimeIndex([], tz="UTC"),
            values,
            flags,
            INTERVAL,
        )

    # -- the calls -------------------------------------------------------------------------

    def _get(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        path = f"/v3/carbon-intensity/{endpoint}"
        query = {"zone": self.zone, "emissionFactorType": self.scope, **params}
        body = self.client.get_json(path, params=query, headers={"auth-token": self.token.reveal()})
        if not isinstance(body, dict):
            raise PayloadError(
                PROVIDER, f"answered {path} with {type(body).__name__}, not an object"
            )
        zone = body.get("zone")
        if zone is not None and zone != self.zone:
            raise PayloadError(PROVIDER, f"answered {path} for zone {zone!r}, not {self.zone!r}")
        return body

    def _observed(
        self, endpoint: str, key: str, params: dict[str, str]
    ) -> dict[pd.Timestamp, tuple[float, bool]]:
        """Time → (gCO2eq/kWh or NaN, estimated) from ``/history`` or ``/past-range``."""
        body = self._get(endpoint, params)
        out: dict[pd.Timestamp, tuple[float, bool]] = {}
        for where, item in _items(body, key, endpoint):
            when = _time(item, "datetime", where)
            value = _intensity(item, where)
            estimated = item.get("isEstimated")
            if estimated is not None and not isinstance(estimated, bool):
                raise PayloadError(PROVIDER, f"{where}.isEstimated is not a boolean")
            out[when] = (value, bool(estimated))
        return out

    def _forecast(self) -> dict[pd.Timestamp, float]:
        """Time → forecast gCO2eq/kWh (NaN for a gap) from ``/forecast``."""
        body = self._get("forecast", {})
        return {
            _time(item, "datetime", where): _intensity(item, where)
            for where, item in _items(body, "forecast", "forecast")
        }


# -- parsing -----------------------------------------------------------------------------------


def _items(body: dict[str, Any], key: str, endpoint: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if key not in body:
        raise PayloadError(PROVIDER, f"answered /{endpoint} without {key!r}")
    items = body[key]
    if not isinstance(items, list):
        raise PayloadError(PROVIDER, f"answered /{endpoint} with {key!r} not a list")
    for i, item in enumerate(items):
        where = f"{endpoint}.{key}[{i}]"
        if not isinstance(item, dict):
            raise PayloadError(PROVIDER, f"{where} is not an object")
        yield where, item


def _intensity(item: dict[str, Any], where: str) -> float:
    """``carbonIntensity``, gCO2eq/kWh; NaN for ``null``."""
    if "carbonIntensity" not in item:
        raise PayloadError(PROVIDER, f"{where} has no carbonIntensity")
    raw = item["carbonIntensity"]
    if raw is None:
        return math.nan
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(PROVIDER, f"{where}.carbonIntensity is not a number: {raw!r:.40}")
    value = float(raw)
    if math.isinf(value):
        raise PayloadError(PROVIDER, f"{where}.carbonIntensity is not finite")
    return value


def _time(item: dict[str, Any], name: str, where: str) -> pd.Timestamp:
    """An ISO 8601 time with a UTC offset (``Z`` included), as a UTC timestamp."""
    raw = item.get(name)
    if not isinstance(raw, str):
        raise PayloadError(PROVIDER, f"{where} has no {name} string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PayloadError(
            PROVIDER, f"{where}.{name} is not an ISO 8601 time: {raw!r:.40}"
        ) from None
    if parsed.tzinfo is None:
        raise PayloadError(PROVIDER, f"{where}.{name} has no UTC offset: {raw!r:.40}")
    return pd.Timestamp(parsed).tz_convert("UTC")


def _iso(when: pd.Timestamp) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
