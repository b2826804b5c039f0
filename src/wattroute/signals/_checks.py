"""Input checks shared by the solar and wind models (:mod:`wattroute.signals.solar`,
:mod:`wattroute.signals.wind`).

Each check raises :class:`ValueError` (or :class:`TypeError` for a wrong type) with a message
that names the argument and says how to fix it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "FloatArray",
    "as_1d",
    "check_elevation",
    "check_site",
    "check_temperature",
    "check_times",
    "check_wind_speed",
]

FloatArray = npt.NDArray[np.float64]

_MIN_TEMPERATURE_C = -90.0
_MAX_TEMPERATURE_C = 70.0


def as_1d(name: str, values: npt.ArrayLike, n: int | None) -> FloatArray:
    """``values`` as a finite float64 1-D array of length ``n`` (a scalar is broadcast).

    Parameters
    ----------
    name
        The argument's name, for the error message.
    values
        A scalar or a 1-D array, in whatever unit the caller documents.
    n
        The length expected (one value per timestamp), or ``None`` for any length (a scalar
        then becomes one value).

    Raises
    ------
    ValueError
        If ``values`` is not 1-D, has another length than ``n`` or holds a non-finite value.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(1 if n is None else n, float(array))
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}.")
    if n is not None and array.shape[0] != n:
        raise ValueError(
            f"{name} has {array.shape[0]} values but {n} were expected "
            "(one per timestamp); pass arrays of the same length."
        )
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} has {bad.size} non-finite value(s) (first at index {bad[0]}); "
            "fill gaps before computing a profile."
        )
    return array


def check_temperature(name: str, temperature_c: FloatArray) -> None:
    """Refuse air temperatures in degC outside -90..70 degC (kelvin passed by mistake, say).

    Raises
    ------
    ValueError
        If any value of ``temperature_c`` is outside the plausible range.
    """
    if temperature_c.size == 0:
        return
    low, high = float(temperature_c.min()), float(temperature_c.max())
    if low < _MIN_TEMPERATURE_C or high > _MAX_TEMPERATURE_C:
        hint = " Are these kelvin? Subtract 273.15." if high > 200.0 else ""
        raise ValueError(
            f"{name} ranges from {low:g} to {high:g} degC, outside the plausible "
            f"{_MIN_TEMPERATURE_C:g}..{_MAX_TEMPERATURE_C:g} degC.{hint}"
        )


def check_wind_speed(name: str, wind_speed_m_per_s: FloatArray) -> None:
    """Refuse negative wind speeds in m/s (a vector component rather than the speed).

    Raises
    ------
    ValueError
        If any value of ``wind_speed_m_per_s`` is negative.
    """
    if wind_speed_m_per_s.size and float(wind_speed_m_per_s.min()) < 0.0:
        raise ValueError(
            f"{name} has negative values (min {float(wind_speed_m_per_s.min()):g} m/s); "
            "pass the wind speed (a magnitude), not a vector component."
        )


def check_times(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``times`` itself, once known to be a timezone-aware :class:`pandas.DatetimeIndex`.

    Raises
    ------
    TypeError
        If ``times`` is not a :class:`pandas.DatetimeIndex`.
    ValueError
        If ``times`` has no timezone.
    """
    if not isinstance(times, pd.DatetimeIndex):
        raise TypeError(f"times must be a pandas DatetimeIndex, got {type(times).__name__}.")
    if times.tz is None:
        raise ValueError(
            "times has no timezone; pass a timezone-aware UTC DatetimeIndex, "
            "e.g. pd.date_range(..., tz='UTC')."
        )
    return times


def check_site(latitude: float, longitude: float, elevation_m: float) -> None:
    """Refuse a site position out of range.

    Parameters
    ----------
    latitude, longitude
        Decimal degrees, -90..90 and -180..180.
    elevation_m
        Elevation above sea level in m, -500..9000.

    Raises
    ------
    ValueError
        If a coordinate or the elevation is out of range.
    """
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude must be within -90..90 degrees, got {latitude!r}.")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude must be within -180..180 degrees, got {longitude!r}.")
    check_elevation(elevation_m)


def check_elevation(elevation_m: float) -> None:
    """Refuse a site elevation in m that is not finite or outside -500..9000 m.

    Raises
    ------
    ValueError
        If the elevation is out of range.
    """
    if not (math.isfinite(elevation_m) and -500.0 <= elevation_m <= 9000.0):
        raise ValueError(f"elevation_m must be within -500..9000 m, got {elevation_m!r}.")
