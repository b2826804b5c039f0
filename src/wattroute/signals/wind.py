"""Wind output from weather: the normalised generation profile of one windpowerlib turbine.

Every function here is pure: numpy arrays in, numpy arrays out. The only files read are
windpowerlib's bundled ``oedb`` turbine library; nothing touches the network. Outputs are
fractions of the turbine's nominal power, 0..1, so a site multiplies them by its wind
nameplate in kW.

What is modelled
----------------
**Wind output** (:func:`wind_profile`): one windpowerlib turbine.

1. Wind speed from the measurement height to hub height with the Hellman power law
   (:func:`windpowerlib.wind_speed.hellman`, default exponent 1/7, open terrain onshore).
2. Temperature at hub height with a -6.5 K/km lapse rate
   (:func:`windpowerlib.temperature.linear_gradient`) from a measurement at
   :data:`TEMPERATURE_HEIGHT_M` (2 m, the standard screen height).
3. Surface pressure from the site elevation with the standard atmosphere
   (:func:`pvlib.atmosphere.alt2pres`), then air density at hub height with the ideal-gas law
   and a -1/8 hPa/m pressure gradient (:func:`windpowerlib.density.ideal_gas`).
4. Power from the turbine's tabulated power curve with windpowerlib's density correction
   (:func:`windpowerlib.power_output.power_curve`, ``density_correction=True``), divided by
   the turbine's nominal power from the same library.

Limits
------
* A single turbine and its manufacturer power curve; no wake losses, availability,
  turbulence or hysteresis at cut-out; the Hellman law ignores atmospheric stability; the
  density correction moves the cut-out speed with the density, so near cut-out colder air can
  mean *less* output. Some library power curves peak slightly above or below the listed
  nominal power; the output is clipped at 1.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pvlib
import windpowerlib
from windpowerlib import WindTurbine, get_turbine_types
from windpowerlib import density as wpl_density
from windpowerlib import power_output as wpl_power_output
from windpowerlib import temperature as wpl_temperature
from windpowerlib import wind_speed as wpl_wind_speed
from windpowerlib.wind_turbine import get_turbine_data_from_file

from wattroute.errors import ScenarioError
from wattroute.signals._checks import (
    FloatArray,
    as_1d,
    check_elevation,
    check_temperature,
    check_wind_speed,
)

__all__ = [
    "DEFAULT_HELLMAN_EXPONENT",
    "DEFAULT_HUB_HEIGHT_M",
    "TEMPERATURE_HEIGHT_M",
    "available_turbines",
    "default_hub_height_m",
    "wind_profile",
]

TEMPERATURE_HEIGHT_M = 2.0
"""Height above ground in m at which the air temperature passed to :func:`wind_profile` applies."""
DEFAULT_HUB_HEIGHT_M = 100.0
"""Hub height in m used when the turbine library lists none for a turbine type."""
DEFAULT_HELLMAN_EXPONENT = 1.0 / 7.0
"""Hellman (power-law) wind shear exponent for open onshore terrain."""


# --------------------------------------------------------------------------- turbine library


@dataclass(frozen=True)
class _Turbine:
    """What :func:`wind_profile` needs of one turbine type from windpowerlib's library.

    Powers in W, lengths in m, wind speeds in m/s; the power curve sorted by wind speed.
    """

    turbine_type: str
    nominal_power_w: float
    rotor_diameter_m: float | None
    listed_hub_heights_m: tuple[float, ...]
    curve_wind_speed_m_per_s: FloatArray
    curve_power_w: FloatArray


@functools.cache
def _turbine_types() -> tuple[str, ...]:
    """Sorted names of the library's turbine types that have a power curve."""
    types = get_turbine_types(turbine_library="local", print_out=False, filter_=True)
    with_curve = types.loc[types["has_power_curve"].astype(bool), "turbine_type"]
    return tuple(sorted(str(name) for name in with_curve))


def available_turbines() -> list[str]:
    """Turbine types that have a power curve in windpowerlib's bundled (offline) library.

    Returns
    -------
    list of str
        Sorted turbine type names such as ``"E-126/4200"`` (manufacturer model / nominal kW).
    """
    return list(_turbine_types())


def _parse_hub_heights(raw: object) -> tuple[float, ...]:
    """Hub heights in m from the library's free-text field, e.g. ``"87,5; 100; 120"``."""
    if not isinstance(raw, str):
        return ()
    heights = []
    for token in re.split(r"[;/]", raw):
        token = token.strip().replace(",", ".")
        try:
            value = float(token)
        except ValueError:
            continue
        if math.isfinite(value) and value > 0.0:
            heights.append(value)
    return tuple(heights)


def _unknown_turbine(turbine_type: object) -> ScenarioError:
    """The error for a turbine type without a power curve, naming close matches."""
    names = _turbine_types()
    by_key = {name.lower(): name for name in names}
    matches = difflib.get_close_matches(str(turbine_type).lower(), list(by_key), n=4, cutoff=0.4)
    suggestions = [by_key[key] for key in matches] or list(names[:4])
    listed = ", ".join(repr(name) for name in suggestions)
    return ScenarioError(
        "wind.turbine",
        f"unknown turbine type {turbine_type!r}: windpowerlib's library has no power curve for it.",
        f"use a listed type such as {listed}; available_turbines() lists all {len(names)}.",
    )


@functools.cache
def _turbine(turbine_type: str) -> _Turbine:
    """One turbine type's data from the library (the type must have a power curve)."""
    library = get_turbine_data_from_file(turbine_type, _oedb_file("turbine_data.csv")).iloc[0]
    listed = _parse_hub_heights(library["hub_height"])
    rotor = float(library["rotor_diameter"])
    rotor_diameter_m = rotor if math.isfinite(rotor) and rotor > 0.0 else None
    hub_height_m = listed[0] if listed else DEFAULT_HUB_HEIGHT_M
    turbine = WindTurbine(hub_height=hub_height_m, turbine_type=turbine_type)
    curve = turbine.power_curve
    speeds = curve["wind_speed"].to_numpy(dtype=np.float64)
    order = np.argsort(speeds, kind="stable")
    speeds = speeds[order]
    power = curve["value"].to_numpy(dtype=np.float64)[order]
    speeds.setflags(write=False)
    power.setflags(write=False)
    return _Turbine(
        turbine_type=turbine_type,
        nominal_power_w=float(turbine.nominal_power),
        rotor_diameter_m=rotor_diameter_m,
        listed_hub_heights_m=listed,
        curve_wind_speed_m_per_s=speeds,
        curve_power_w=power,
    )


def _oedb_file(name: str) -> str:
    """Path of a file in windpowerlib's bundled ``oedb`` turbine library."""
    return os.path.join(os.path.dirname(windpowerlib.__file__), "oedb", name)


def default_hub_height_m(turbine_type: str) -> float:
    """Hub height in m used by :func:`wind_profile` when none is given.

    The first hub height that windpowerlib's turbine library lists for the type (the library
    gives the heights the manufacturer offers, e.g. ``"99; 135; 159"`` for the E-126/4200, so
    this is the lowest standard tower), or :data:`DEFAULT_HUB_HEIGHT_M` (100 m) when it lists
    none.

    Parameters
    ----------
    turbine_type
        A name from :func:`available_turbines`.

    Returns
    -------
    float
        Hub height above ground in m.

    Raises
    ------
    wattroute.errors.ScenarioError
        If the turbine type is not in the library (field ``wind.turbine``).
    """
    if turbine_type not in _turbine_types():
        raise _unknown_turbine(turbine_type)
    listed = _turbine(turbine_type).listed_hub_heights_m
    return listed[0] if listed else DEFAULT_HUB_HEIGHT_M


# --------------------------------------------------------------------------- checks


def _known_turbine(turbine_type: object) -> _Turbine:
    """The library's data for ``turbine_type``.

    Raises
    ------
    wattroute.errors.ScenarioError
        If the type is not a name with a power curve in the library (field ``wind.turbine``).
    """
    if not isinstance(turbine_type, str) or turbine_type not in _turbine_types():
        raise _unknown_turbine(turbine_type)
    return _turbine(turbine_type)


def _checked_hub_height_m(turbine: _Turbine, hub_height_m: float | None) -> float:
    """Hub height above ground in m: ``hub_height_m``, or the turbine's default if ``None``.

    Raises
    ------
    ValueError
        If the height is not a positive number.
    wattroute.errors.ScenarioError
        If the height is not above the rotor radius (field ``wind.hub_height_m``).
    """
    hub = (
        default_hub_height_m(turbine.turbine_type) if hub_height_m is None else float(hub_height_m)
    )
    if not (math.isfinite(hub) and hub > 0.0):
        raise ValueError(f"hub_height_m must be a positive number of metres, got {hub_height_m!r}.")
    if turbine.rotor_diameter_m is not None and hub <= turbine.rotor_diameter_m / 2.0:
        heights = ", ".join(f"{h:g}" for h in turbine.listed_hub_heights_m) or "none listed"
        raise ScenarioError(
            "wind.hub_height_m",
            f"a hub height of {hub:g} m is not above the rotor radius "
            f"({turbine.rotor_diameter_m / 2.0:g} m) of the {turbine.turbine_type}.",
            f"use a taller hub; the library lists these hub heights in m: {heights}.",
        )
    return hub


def _check_measurement_height(measurement_height_m: float) -> None:
    """Refuse a measurement height in m that is not a positive number.

    Raises
    ------
    ValueError
        If the height is not finite and positive.
    """
    if not (math.isfinite(measurement_height_m) and measurement_height_m > 0.0):
        raise ValueError(
            f"measurement_height_m must be a positive number of metres, "
            f"got {measurement_height_m!r}."
        )


def _checked_hellman_exponent(hellman_exponent: float | None) -> float:
    """The wind shear exponent (dimensionless, 0..1), :data:`DEFAULT_HELLMAN_EXPONENT` if
    ``None``.

    Raises
    ------
    ValueError
        If the exponent is outside 0..1.
    """
    exponent = DEFAULT_HELLMAN_EXPONENT if hellman_exponent is None else float(hellman_exponent)
    if not (math.isfinite(exponent) and 0.0 <= exponent <= 1.0):
        raise ValueError(f"hellman_exponent must be within 0..1, got {hellman_exponent!r}.")
    return exponent


# --------------------------------------------------------------------------- the model chain


def _hub_wind_speed_m_per_s(
    wind_speed_m_per_s: FloatArray,
    measurement_height_m: float,
    hub_height_m: float,
    hellman_exponent: float,
) -> FloatArray:
    """Wind speed in m/s at hub height from the speed at the measurement height (Hellman)."""
    wind_hub = wpl_wind_speed.hellman(
        wind_speed_m_per_s, measurement_height_m, hub_height_m, hellman_exponent=hellman_exponent
    )
    return np.asarray(wind_hub, dtype=np.float64)


def _hub_air_density_kg_per_m3(
    temperature_c: FloatArray, hub_height_m: float, elevation_m: float
) -> FloatArray:
    """Air density in kg/m^3 at hub height: the temperature at 2 m in degC carried up with the
    lapse rate, the standard-atmosphere pressure at the site elevation in m, the ideal-gas
    law."""
    temperature_hub_k = wpl_temperature.linear_gradient(
        temperature_c + 273.15, TEMPERATURE_HEIGHT_M, hub_height_m
    )
    pressure_pa = float(pvlib.atmosphere.alt2pres(elevation_m))
    density = wpl_density.ideal_gas(pressure_pa, 0.0, hub_height_m, temperature_hub_k)
    return np.asarray(density, dtype=np.float64)


def _power_fraction(
    turbine: _Turbine, wind_hub_m_per_s: FloatArray, density_kg_per_m3: FloatArray
) -> FloatArray:
    """Density-corrected power-curve output over nominal power, clipped to [0, 1]."""
    power_w = wpl_power_output.power_curve(
        wind_hub_m_per_s,
        turbine.curve_wind_speed_m_per_s,
        turbine.curve_power_w,
        density=density_kg_per_m3,
        density_correction=True,
    )
    fraction: FloatArray = np.clip(
        np.asarray(power_w, dtype=np.float64) / turbine.nominal_power_w, 0.0, 1.0
    )
    return fraction


def wind_profile(
    wind_speed_m_per_s: npt.ArrayLike,
    temperature_c: npt.ArrayLike,
    *,
    turbine_type: str = "E-126/4200",
    hub_height_m: float | None = None,
    measurement_height_m: float = 10.0,
    elevation_m: float = 0.0,
    hellman_exponent: float | None = None,
) -> FloatArray:
    """Output of one wind turbine as a fraction of its nominal power.

    Hellman shear to hub height, air density at hub height from temperature (lapse rate) and
    the standard-atmosphere pressure at the site elevation, then windpowerlib's
    density-corrected power curve (see the module docstring for the chain and its limits).

    Parameters
    ----------
    wind_speed_m_per_s
        Wind speed in m/s at ``measurement_height_m``, non-negative.
    temperature_c
        Air temperature in degC at 2 m above ground (:data:`TEMPERATURE_HEIGHT_M`), one value
        per wind speed (a scalar is broadcast).
    turbine_type
        A turbine type with a power curve in windpowerlib's library; see
        :func:`available_turbines`.
    hub_height_m
        Hub height above ground in m; default :func:`default_hub_height_m` (the first height
        the library lists for the type, else 100 m). Must exceed the rotor radius.
    measurement_height_m
        Height above ground in m at which ``wind_speed_m_per_s`` applies (10 m for most
        weather data).
    elevation_m
        Site elevation above sea level in m, for the air pressure.
    hellman_exponent
        Wind shear exponent, dimensionless; default :data:`DEFAULT_HELLMAN_EXPONENT` (1/7).

    Returns
    -------
    numpy.ndarray
        Electrical power / nominal power, dimensionless, in [0, 1]. Zero below cut-in and
        above the last wind speed of the power curve (cut-out).

    Raises
    ------
    wattroute.errors.ScenarioError
        If the turbine type is unknown (field ``wind.turbine``) or the hub height is not above
        the rotor radius (field ``wind.hub_height_m``).
    ValueError
        If the arrays differ in length, hold non-finite or implausible values, or a height is
        not positive.
    """
    wind = as_1d("wind_speed_m_per_s", wind_speed_m_per_s, None)
    temperature = as_1d("temperature_c", temperature_c, wind.shape[0])
    check_wind_speed("wind_speed_m_per_s", wind)
    check_temperature("temperature_c", temperature)
    turbine = _known_turbine(turbine_type)
    hub = _checked_hub_height_m(turbine, hub_height_m)
    _check_measurement_height(measurement_height_m)
    exponent = _checked_hellman_exponent(hellman_exponent)
    check_elevation(elevation_m)
    if wind.size == 0:
        return np.zeros(0, dtype=np.float64)

    wind_hub = _hub_wind_speed_m_per_s(wind, measurement_height_m, hub, exponent)
    density = _hub_air_density_kg_per_m3(temperature, hub, elevation_m)
    return _power_fraction(turbine, wind_hub, density)
