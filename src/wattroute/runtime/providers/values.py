"""What a live source hands back: a series of values with where, what kind and when.

Every value a live provider fetches carries its **source** (``electricitymaps``, ``entsoe``,
...), its **kind** and the time it was **fetched**; each row its interval start (UTC) and
whether it is a forecast or an observation (a measurement, an estimate of the past, or a
price already published). Kinds say what a number means, because two numbers in the same
unit can mean different things:

* carbon intensity: ``average`` (the mix of what generates) or ``marginal`` (what the next
  kWh causes), each ``lifecycle`` (construction, fuel chain) or ``direct`` (at the stack):
  ``average/lifecycle``, ``average/direct``, ``marginal/direct``, ...;
* prices: the market, ``day-ahead`` or ``real-time``;
* renewables and PUE: ``weather-forecast`` (a numerical weather forecast through the site's
  models).

Units are the controller's: USD/MWh, gCO2eq/kWh, kW, dimensionless PUE.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CARBON_BASES = ("average", "marginal")
CARBON_SCOPES = ("lifecycle", "direct")
PRICE_MARKETS = ("day-ahead", "real-time")
WEATHER_FORECAST = "weather-forecast"


def as_utc(when: pd.Timestamp) -> pd.Timestamp:
    """``when`` in UTC; a naive time is taken to be UTC already."""
    when = pd.Timestamp(when)
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def chunks(
    start: pd.Timestamp, end: pd.Timestamp, longest: pd.Timedelta
) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` cut into consecutive periods of at most ``longest`` (an API's limit
    on the period of one call)."""
    lo = start
    while lo < end:
        hi = min(lo + longest, end)
        yield lo, hi
        lo = hi


def carbon_kind(basis: str, scope: str) -> str:
    """``basis/scope``, e.g. ``average/lifecycle``; refused if either is unknown."""
    if basis not in CARBON_BASES or scope not in CARBON_SCOPES:
        raise ValueError(f"unknown carbon kind {basis}/{scope}")
    return f"{basis}/{scope}"


@dataclass(frozen=True, eq=False)
class Fetched:
    """Values of one signal from one source, as fetched.

    Parameters
    ----------
    signal
        The signal's name (``carbon_g_per_kwh``, ``price_usd_per_mwh``, ``solar_kw``, ...).
    source
        The provider that answered, e.g. ``electricitymaps``.
    kind
        What the values mean (see the module docstring).
    fetched_at
        When they were fetched, UTC.
    times
        Start of each value's interval, UTC, increasing.
    values
        In the signal's unit, ``(n,)``; NaN where the source had a gap.
    forecast
        ``(n,)`` booleans: True where the value is a forecast, False where observed or published.
    interval
        Length of each value's interval (an hour for hourly data).
    """

    signal: str
    source: str
    kind: str
    fetched_at: pd.Timestamp
    times: pd.DatetimeIndex
    values: np.ndarray
    forecast: np.ndarray
    interval: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))

    def __post_init__(self) -> None:
        n = len(self.times)
        if self.values.shape != (n,) or self.forecast.shape != (n,):
            raise ValueError("times, values and forecast must have the same length")
        if n and (self.times.tz is None or str(self.times.tz) != "UTC"):
            raise ValueError("times must be UTC")
        if n > 1 and not self.times.is_monotonic_increasing:
            raise ValueError("times must increase")

    @classmethod
    def empty(cls, signal: str, source: str, kind: str, fetched_at: pd.Timestamp) -> Fetched:
        return cls(
            signal,
            source,
            kind,
            fetched_at,
            pd.DatetimeIndex([], tz="UTC"),
            np.zeros(0),
            np.zeros(0, dtype=bool),
        )

    @classmethod
    def from_series(
        cls,
        signal: str,
        source: str,
        kind: str,
        fetched_at: pd.Timestamp,
        series: pd.Series,
        forecast: np.ndarray | bool = False,
        interval: pd.Timedelta | None = None,
    ) -> Fetched:
        """From a series indexed by UTC interval starts (sorted and de-duplicated here, the
        last value of a repeated time kept)."""
        series = series[~series.index.duplicated(keep="last")].sort_index()
        flags = (
            np.full(len(series), forecast, dtype=bool)
            if isinstance(forecast, bool)
            else np.asarray(forecast, dtype=bool)
        )
        index = pd.DatetimeIndex(series.index).tz_convert("UTC")
        return cls(
            signal,
            source,
            kind,
            fetched_at,
            index,
            series.to_numpy(dtype=float),
            flags,
            interval if interval is not None else _interval_of(index),
        )

    def __len__(self) -> int:
        return len(self.times)

    @property
    def observed(self) -> Fetched:
        """The rows that are not forecasts."""
        keep = ~self.forecast
        return Fetched(
            self.signal,
            self.source,
            self.kind,
            self.fetched_at,
            self.times[keep],
            self.values[keep],
            self.forecast[keep],
            self.interval,
        )

    def latest_observed(self) -> tuple[pd.Timestamp, float] | None:
        """The last observed (not forecast) finite value and its time."""
        ok = ~self.forecast & np.isfinite(self.values)
        if not ok.any():
            return None
        i = int(np.flatnonzero(ok)[-1])
        return self.times[i], float(self.values[i])


def _interval_of(times: pd.DatetimeIndex) -> pd.Timedelta:
    """The most common spacing of ``times`` (an hour if there are fewer than two)."""
    if len(times) < 2:
        return pd.Timedelta(hours=1)
    gaps = pd.Series(times[1:] - times[:-1])
    return pd.Timedelta(gaps.mode().iloc[0])


@dataclass(frozen=True)
class Provenance:
    """Where a site's value of a signal came from: the source (``electricitymaps``,
    ``replay``, ``meter``, ...), its kind, the time the value is for and when it was fetched
    (UTC; ``None`` when not known, as for a replayed file)."""

    source: str
    kind: str
    time: pd.Timestamp | None = None
    fetched_at: pd.Timestamp | None = None
