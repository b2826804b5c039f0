"""Renewable output from weather: normalised solar and wind generation profiles.

Every function here is pure: numpy arrays (and a pandas ``DatetimeIndex`` of the instants to
evaluate) in, numpy arrays out. The only files read are the data that pvlib and windpowerlib
ship inside their own packages (pvlib's Linke turbidity table, windpowerlib's ``oedb`` turbine
library); nothing touches the network. Outputs are fractions of nameplate, 0..1, so a site
multiplies them by its solar or wind nameplate in kW.

What is modelled
----------------
**Irradiance from cloud cover** (:func:`irradiance_from_cloud_cover`)

1. Solar position with pvlib's NREL SPA (:meth:`pvlib.location.Location.get_solarposition`).
2. Clear-sky GHI, DNI, DHI with the Ineichen-Perez model
   (:meth:`pvlib.location.Location.get_clearsky`, ``model="ineichen"``) and the monthly Linke
   turbidity climatology bundled with pvlib.
3. All-sky GHI = clear-sky GHI x clear-sky index, with the Kasten & Czeplak (1980) relation
   ``k = 1 - 0.75 * (cloud_cover / 100) ** 3.4`` (:func:`clear_sky_index_from_cloud_cover`).
4. GHI split into DNI and DHI with the Erbs et al. (1982) correlation
   (:func:`pvlib.irradiance.erbs`). Irradiance is zero whenever the sun's true zenith is at or
   beyond 90 degrees.

**Solar AC output** (:func:`solar_profile_from_irradiance`): a PVWatts-style fixed-tilt system.

1. Plane-of-array irradiance with the Hay-Davies sky-diffuse transposition
   (:func:`pvlib.irradiance.get_total_irradiance`, ``model="haydavies"``, ground albedo
   :data:`ALBEDO`, extraterrestrial DNI from :func:`pvlib.irradiance.get_extra_radiation`).
   Default orientation: facing the equator (azimuth 180 degrees in the northern hemisphere,
   0 in the southern) at tilt ``min(|latitude|, 40)`` degrees (:func:`default_tilt_deg`).
2. Cell temperature with the Faiman model (:func:`pvlib.temperature.faiman`, pvlib's
   default ``u0 = 25.0 W/m^2/K``, ``u1 = 6.84 W s/m^3/K``).
3. DC power with :func:`pvlib.pvsystem.pvwatts_dc` (``pdc0 = dc_ac_ratio`` in units of the
   AC nameplate, temperature coefficient ``gamma_pdc_per_c``), times ``1 - system_losses``
   (default 0.14, close to PVWatts' default 14.08 % for soiling, shading, mismatch, wiring,
   connections, light-induced degradation, nameplate rating and availability).
4. AC power with :func:`pvlib.inverter.pvwatts` with ``pdc0 = 1 / inverter_efficiency`` and
   ``eta_inv_nom = inverter_efficiency`` so that the inverter's AC rating is exactly 1.0;
   DC above that is clipped, as a real inverter does.

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
* Cloud cover is a coarse proxy for irradiance. Kasten & Czeplak is a climatological fit:
  it cannot tell thin cirrus from thick stratus, and its errors for a single hour are large
  (tens of percent). Use measured or reanalysis irradiance with
  :func:`solar_profile_from_irradiance` when you have it.
* Erbs is a statistical decomposition; DNI/DHI for any single step can be far off, which
  matters most for steep tilts.
* The Linke turbidity is a monthly climatology, not the day's aerosol load.
* No shading by horizon or neighbouring rows, no snow, no angle-of-incidence reflection
  loss, spectral effect or degradation beyond what ``system_losses`` lumps together; no
  tracking; one orientation per call.
* Values are evaluated at the instants in ``times`` (pass step midpoints); irradiance is not
  integrated over the step, so sunrise and sunset steps carry a small error.
* Wind: a single turbine and its manufacturer power curve; no wake losses, availability,
  turbulence or hysteresis at cut-out; the Hellman law ignores atmospheric stability; the
  density correction moves the cut-out speed with the density, so near cut-out colder air can
  mean *less* output. Some library power curves peak slightly above or below the listed
  nominal power; the output is clipped at 1.

References
----------
Kasten, F. and Czeplak, G. (1980). Solar and terrestrial radiation dependent on the amount and
type of cloud. Solar Energy 24, 177-189.

Erbs, D. G., Klein, S. A. and Duffie, J. A. (1982). Estimation of the diffuse radiation fraction
for hourly, daily and monthly-average global radiation. Solar Energy 28, 293-302.

Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
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
import pandas as pd
import pvlib
import windpowerlib
from windpowerlib import WindTurbine, get_turbine_types
from windpowerlib import density as wpl_density
from windpowerlib import power_output as wpl_power_output
from windpowerlib import temperature as wpl_temperature
from windpowerlib import wind_speed as wpl_wind_speed
from windpowerlib.wind_turbine import get_turbine_data_from_file

from wattroute.errors import ScenarioError

__all__ = [
    "ALBEDO",
    "DEFAULT_HELLMAN_EXPONENT",
    "DEFAULT_HUB_HEIGHT_M",
    "DEFAULT_TILT_CAP_DEG",
    "KASTEN_CZEPLAK_A",
    "KASTEN_CZEPLAK_B",
    "TEMPERATURE_HEIGHT_M",
    "available_turbines",
    "clear_sky_index_from_cloud_cover",
    "default_hub_height_m",
    "default_tilt_deg",
    "irradiance_from_cloud_cover",
    "solar_profile_from_cloud_cover",
    "solar_profile_from_irradiance",
    "wind_profile",
]

FloatArray = npt.NDArray[np.float64]

KASTEN_CZEPLAK_A = 0.75
"""Coefficient of the Kasten & Czeplak clear-sky index: overcast GHI is 25 % of clear-sky GHI."""
KASTEN_CZEPLAK_B = 3.4
"""Exponent of cloud cover (as a fraction) in the Kasten & Czeplak clear-sky index."""
DEFAULT_TILT_CAP_DEG = 40.0
"""Upper bound of the default tilt in degrees: ``tilt = min(|latitude|, 40)``."""
ALBEDO = 0.25
"""Ground reflectance (dimensionless) for the ground-reflected part of plane-of-array irradiance."""
TEMPERATURE_HEIGHT_M = 2.0
"""Height above ground in m at which the air temperature passed to :func:`wind_profile` applies."""
DEFAULT_HUB_HEIGHT_M = 100.0
"""Hub height in m used when the turbine library lists none for a turbine type."""
DEFAULT_HELLMAN_EXPONENT = 1.0 / 7.0
"""Hellman (power-law) wind shear exponent for open onshore terrain."""

_FAIMAN_U0_W_PER_M2_K = 25.0
_FAIMAN_U1_W_S_PER_M3_K = 6.84
_MIN_TEMPERATURE_C = -90.0
_MAX_TEMPERATURE_C = 70.0


# --------------------------------------------------------------------------- input checks


def _as_1d(name: str, values: npt.ArrayLike, n: int | None) -> FloatArray:
    """``values`` as a finite float64 1-D array of length ``n`` (a scalar is broadcast)."""
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


def _check_temperature(name: str, temperature_c: FloatArray) -> None:
    if temperature_c.size == 0:
        return
    low, high = float(temperature_c.min()), float(temperature_c.max())
    if low < _MIN_TEMPERATURE_C or high > _MAX_TEMPERATURE_C:
        hint = " Are these kelvin? Subtract 273.15." if high > 200.0 else ""
        raise ValueError(
            f"{name} ranges from {low:g} to {high:g} degC, outside the plausible "
            f"{_MIN_TEMPERATURE_C:g}..{_MAX_TEMPERATURE_C:g} degC.{hint}"
        )


def _check_wind_speed(name: str, wind_speed_m_per_s: FloatArray) -> None:
    if wind_speed_m_per_s.size and float(wind_speed_m_per_s.min()) < 0.0:
        raise ValueError(
            f"{name} has negative values (min {float(wind_speed_m_per_s.min()):g} m/s); "
            "pass the wind speed (a magnitude), not a vector component."
        )


def _check_times(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(times, pd.DatetimeIndex):
        raise TypeError(f"times must be a pandas DatetimeIndex, got {type(times).__name__}.")
    if times.tz is None:
        raise ValueError(
            "times has no timezone; pass a timezone-aware UTC DatetimeIndex, "
            "e.g. pd.date_range(..., tz='UTC')."
        )
    return times


def _check_site(latitude: float, longitude: float, elevation_m: float) -> None:
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude must be within -90..90 degrees, got {latitude!r}.")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude must be within -180..180 degrees, got {longitude!r}.")
    _check_elevation(elevation_m)


def _check_elevation(elevation_m: float) -> None:
    if not (math.isfinite(elevation_m) and -500.0 <= elevation_m <= 9000.0):
        raise ValueError(f"elevation_m must be within -500..9000 m, got {elevation_m!r}.")


# --------------------------------------------------------------------------- irradiance


def clear_sky_index_from_cloud_cover(cloud_cover_pct: npt.ArrayLike) -> FloatArray:
    """Clear-sky index (all-sky GHI / clear-sky GHI) from total cloud cover.

    Kasten & Czeplak (1980): ``k = 1 - 0.75 * (c / 100) ** 3.4``, with ``c`` clipped to
    0..100 %.

    Parameters
    ----------
    cloud_cover_pct
        Total cloud cover in percent of the sky, 0..100. Values outside are clipped.

    Returns
    -------
    numpy.ndarray
        Clear-sky index, dimensionless, from 1.0 (clear) down to 0.25 (overcast).
    """
    cover = np.clip(np.asarray(cloud_cover_pct, dtype=np.float64), 0.0, 100.0)
    index: FloatArray = 1.0 - KASTEN_CZEPLAK_A * (cover / 100.0) ** KASTEN_CZEPLAK_B
    return index


def _solar_position(
    times: pd.DatetimeIndex, latitude: float, longitude: float, elevation_m: float
) -> pd.DataFrame:
    location = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=elevation_m)
    solar_position: pd.DataFrame = location.get_solarposition(times)
    return solar_position


def _day_of_year(times: pd.DatetimeIndex) -> FloatArray:
    return np.asarray(times.tz_convert("UTC").day_of_year, dtype=np.float64)


def _irradiance(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    elevation_m: float,
    cloud_cover_pct: FloatArray,
    solar_position: pd.DataFrame,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """GHI, DNI, DHI in W/m^2 from cloud cover, given the solar position."""
    location = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=elevation_m)
    day_of_year = _day_of_year(times)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(day_of_year), dtype=np.float64)
    clear = location.get_clearsky(
        times,
        model="ineichen",
        solar_position=solar_position,
        dni_extra=pd.Series(dni_extra, index=times),
    )
    zenith = solar_position["zenith"].to_numpy(dtype=np.float64)
    ghi = clear["ghi"].to_numpy(dtype=np.float64) * clear_sky_index_from_cloud_cover(
        cloud_cover_pct
    )
    split = pvlib.irradiance.erbs(ghi, zenith, day_of_year)
    dni = np.asarray(split["dni"], dtype=np.float64)
    dhi = np.asarray(split["dhi"], dtype=np.float64)
    day = zenith < 90.0
    return _daytime(ghi, day), _daytime(dni, day), _daytime(dhi, day)


def _daytime(irradiance_w_per_m2: FloatArray, day: npt.NDArray[np.bool_]) -> FloatArray:
    """Irradiance with NaN, negative values and night-time values set to zero."""
    clean = np.nan_to_num(irradiance_w_per_m2, nan=0.0, posinf=0.0, neginf=0.0)
    result: FloatArray = np.where(day, np.maximum(clean, 0.0), 0.0)
    return result


def irradiance_from_cloud_cover(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    elevation_m: float,
    cloud_cover_pct: npt.ArrayLike,
) -> pd.DataFrame:
    """Global, direct and diffuse irradiance estimated from total cloud cover.

    Ineichen clear-sky irradiance (pvlib, bundled Linke turbidity climatology) scaled by the
    Kasten & Czeplak clear-sky index, then split into direct and diffuse with Erbs.

    Parameters
    ----------
    times
        Timezone-aware instants to evaluate (pass step midpoints), normally UTC.
    latitude, longitude
        Site position in decimal degrees (north and east positive).
    elevation_m
        Site elevation above sea level in m.
    cloud_cover_pct
        Total cloud cover in percent, one value per timestamp (a scalar is broadcast);
        clipped to 0..100.

    Returns
    -------
    pandas.DataFrame
        Index ``times``; columns ``ghi`` (global horizontal), ``dni`` (direct normal) and
        ``dhi`` (diffuse horizontal), all in W/m^2, non-negative and zero at night.

    Raises
    ------
    ValueError
        If ``times`` is naive, an array's length differs from ``len(times)``, or an input is
        not finite or out of range.
    """
    times = _check_times(times)
    _check_site(latitude, longitude, elevation_m)
    cover = _as_1d("cloud_cover_pct", cloud_cover_pct, len(times))
    if len(times) == 0:
        return pd.DataFrame({"ghi": cover, "dni": cover, "dhi": cover}, index=times)
    solar_position = _solar_position(times, latitude, longitude, elevation_m)
    ghi, dni, dhi = _irradiance(times, latitude, longitude, elevation_m, cover, solar_position)
    return pd.DataFrame({"ghi": ghi, "dni": dni, "dhi": dhi}, index=times)


# --------------------------------------------------------------------------- solar


def default_tilt_deg(latitude: float) -> float:
    """Default tilt of a fixed array in degrees from horizontal: ``min(|latitude|, 40)``.

    Tilting at the latitude is the classic rule for the most annual irradiation on a
    fixed plane; above about 40 degrees the diffuse share and the row spacing (ground cover)
    make steeper tilts pay off less, so the rule is capped there.

    Parameters
    ----------
    latitude
        Site latitude in decimal degrees.

    Returns
    -------
    float
        Tilt in degrees, 0..40.
    """
    return float(min(abs(latitude), DEFAULT_TILT_CAP_DEG))


def _equator_facing_azimuth_deg(latitude: float) -> float:
    """Azimuth in degrees east of north facing the equator: 180 north of it, 0 south of it."""
    return 180.0 if latitude >= 0.0 else 0.0


def _ac_fraction(
    times: pd.DatetimeIndex,
    latitude: float,
    solar_position: pd.DataFrame,
    ghi: FloatArray,
    dni: FloatArray,
    dhi: FloatArray,
    temperature_c: FloatArray,
    wind_speed_m_per_s: FloatArray,
    *,
    tilt_deg: float | None,
    azimuth_deg: float | None,
    dc_ac_ratio: float,
    gamma_pdc_per_c: float,
    system_losses: float,
    inverter_efficiency: float,
) -> FloatArray:
    """AC output / AC nameplate for irradiance already checked, given the solar position."""
    tilt = default_tilt_deg(latitude) if tilt_deg is None else float(tilt_deg)
    azimuth = _equator_facing_azimuth_deg(latitude) if azimuth_deg is None else float(azimuth_deg)
    if not 0.0 <= tilt <= 90.0:
        raise ValueError(f"tilt_deg must be within 0..90 degrees, got {tilt_deg!r}.")
    if not 0.0 <= azimuth <= 360.0:
        raise ValueError(f"azimuth_deg must be within 0..360 degrees, got {azimuth_deg!r}.")
    if not dc_ac_ratio > 0.0:
        raise ValueError(f"dc_ac_ratio must be positive, got {dc_ac_ratio!r}.")
    if not 0.0 <= system_losses < 1.0:
        raise ValueError(f"system_losses must be within 0..1 (exclusive), got {system_losses!r}.")
    if not 0.0 < inverter_efficiency <= 1.0:
        raise ValueError(
            f"inverter_efficiency must be within 0..1 (exclusive of 0), "
            f"got {inverter_efficiency!r}."
        )
    if not math.isfinite(gamma_pdc_per_c):
        raise ValueError(f"gamma_pdc_per_c must be finite, got {gamma_pdc_per_c!r}.")

    dni_extra = pvlib.irradiance.get_extra_radiation(_day_of_year(times))
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=tilt,
        surface_azimuth=azimuth,
        solar_zenith=solar_position["apparent_zenith"].to_numpy(dtype=np.float64),
        solar_azimuth=solar_position["azimuth"].to_numpy(dtype=np.float64),
        dni=dni,
        ghi=ghi,
        dhi=dhi,
        dni_extra=np.asarray(dni_extra, dtype=np.float64),
        albedo=ALBEDO,
        model="haydavies",
    )
    poa_global = np.asarray(poa["poa_global"], dtype=np.float64)
    poa_global = np.maximum(np.nan_to_num(poa_global, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    temp_cell = pvlib.temperature.faiman(
        poa_global,
        temperature_c,
        wind_speed_m_per_s,
        u0=_FAIMAN_U0_W_PER_M2_K,
        u1=_FAIMAN_U1_W_S_PER_M3_K,
    )
    dc = pvlib.pvsystem.pvwatts_dc(
        effective_irradiance=poa_global,
        temp_cell=temp_cell,
        pdc0=dc_ac_ratio,
        gamma_pdc=gamma_pdc_per_c,
    )
    dc = np.maximum(np.asarray(dc, dtype=np.float64) * (1.0 - system_losses), 0.0)
    ac = pvlib.inverter.pvwatts(dc, pdc0=1.0 / inverter_efficiency, eta_inv_nom=inverter_efficiency)
    ac = np.nan_to_num(np.asarray(ac, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    fraction: FloatArray = np.clip(ac, 0.0, 1.0)
    return fraction


def solar_profile_from_irradiance(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    elevation_m: float,
    ghi: npt.ArrayLike,
    dni: npt.ArrayLike,
    dhi: npt.ArrayLike,
    temperature_c: npt.ArrayLike,
    wind_speed_m_per_s: npt.ArrayLike,
    *,
    tilt_deg: float | None = None,
    azimuth_deg: float | None = None,
    dc_ac_ratio: float = 1.2,
    gamma_pdc_per_c: float = -0.004,
    system_losses: float = 0.14,
    inverter_efficiency: float = 0.96,
) -> FloatArray:
    """AC output of a fixed-tilt PV system as a fraction of its AC nameplate.

    Hay-Davies plane-of-array irradiance, Faiman cell temperature, PVWatts DC and inverter
    models (see the module docstring for the chain and its limits).

    Parameters
    ----------
    times
        Timezone-aware instants to evaluate (pass step midpoints), normally UTC.
    latitude, longitude
        Site position in decimal degrees (north and east positive).
    elevation_m
        Site elevation above sea level in m (sets the pressure for solar refraction).
    ghi, dni, dhi
        Global horizontal, direct normal and diffuse horizontal irradiance in W/m^2, one value
        per timestamp. Negative values (sensor offsets at night) count as zero.
    temperature_c
        Ambient air temperature in degC (a scalar is broadcast).
    wind_speed_m_per_s
        Wind speed in m/s at about 10 m, for module cooling (a scalar is broadcast).
    tilt_deg
        Module tilt in degrees from horizontal; default :func:`default_tilt_deg`
        (``min(|latitude|, 40)``).
    azimuth_deg
        Direction the modules face in degrees clockwise from north; default facing the
        equator: 180 in the northern hemisphere (and on the equator), 0 in the southern.
    dc_ac_ratio
        DC nameplate over AC nameplate (inverter loading ratio), dimensionless.
    gamma_pdc_per_c
        Temperature coefficient of DC power in 1/degC (-0.004 = -0.4 %/degC).
    system_losses
        Fraction of DC energy lost before the inverter (soiling, mismatch, wiring, ...), 0..1.
    inverter_efficiency
        Nominal inverter efficiency, 0..1.

    Returns
    -------
    numpy.ndarray
        AC power / AC nameplate, dimensionless, in [0, 1], zero at night, never NaN.

    Raises
    ------
    ValueError
        If ``times`` is naive, an array's length differs from ``len(times)``, an input is not
        finite, or a parameter is out of range.
    """
    times = _check_times(times)
    _check_site(latitude, longitude, elevation_m)
    n = len(times)
    ghi_w = np.maximum(_as_1d("ghi", ghi, n), 0.0)
    dni_w = np.maximum(_as_1d("dni", dni, n), 0.0)
    dhi_w = np.maximum(_as_1d("dhi", dhi, n), 0.0)
    temperature = _as_1d("temperature_c", temperature_c, n)
    wind = _as_1d("wind_speed_m_per_s", wind_speed_m_per_s, n)
    _check_temperature("temperature_c", temperature)
    _check_wind_speed("wind_speed_m_per_s", wind)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    solar_position = _solar_position(times, latitude, longitude, elevation_m)
    return _ac_fraction(
        times,
        latitude,
        solar_position,
        ghi_w,
        dni_w,
        dhi_w,
        temperature,
        wind,
        tilt_deg=tilt_deg,
        azimuth_deg=azimuth_deg,
        dc_ac_ratio=dc_ac_ratio,
        gamma_pdc_per_c=gamma_pdc_per_c,
        system_losses=system_losses,
        inverter_efficiency=inverter_efficiency,
    )


def solar_profile_from_cloud_cover(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    elevation_m: float,
    cloud_cover_pct: npt.ArrayLike,
    temperature_c: npt.ArrayLike,
    wind_speed_m_per_s: npt.ArrayLike,
    *,
    tilt_deg: float | None = None,
    azimuth_deg: float | None = None,
    dc_ac_ratio: float = 1.2,
    gamma_pdc_per_c: float = -0.004,
    system_losses: float = 0.14,
    inverter_efficiency: float = 0.96,
) -> FloatArray:
    """AC output of a fixed-tilt PV system from cloud cover, as a fraction of AC nameplate.

    :func:`irradiance_from_cloud_cover` followed by :func:`solar_profile_from_irradiance`
    (the solar position is computed once and shared).

    Parameters
    ----------
    times
        Timezone-aware instants to evaluate (pass step midpoints), normally UTC.
    latitude, longitude
        Site position in decimal degrees (north and east positive).
    elevation_m
        Site elevation above sea level in m.
    cloud_cover_pct
        Total cloud cover in percent, 0..100 (clipped), one value per timestamp.
    temperature_c
        Ambient air temperature in degC (a scalar is broadcast).
    wind_speed_m_per_s
        Wind speed in m/s at about 10 m, for module cooling (a scalar is broadcast).
    tilt_deg, azimuth_deg, dc_ac_ratio, gamma_pdc_per_c, system_losses, inverter_efficiency
        As in :func:`solar_profile_from_irradiance`.

    Returns
    -------
    numpy.ndarray
        AC power / AC nameplate, dimensionless, in [0, 1], zero at night, never NaN.

    Raises
    ------
    ValueError
        As :func:`solar_profile_from_irradiance`.
    """
    times = _check_times(times)
    _check_site(latitude, longitude, elevation_m)
    n = len(times)
    cover = _as_1d("cloud_cover_pct", cloud_cover_pct, n)
    temperature = _as_1d("temperature_c", temperature_c, n)
    wind = _as_1d("wind_speed_m_per_s", wind_speed_m_per_s, n)
    _check_temperature("temperature_c", temperature)
    _check_wind_speed("wind_speed_m_per_s", wind)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    solar_position = _solar_position(times, latitude, longitude, elevation_m)
    ghi, dni, dhi = _irradiance(times, latitude, longitude, elevation_m, cover, solar_position)
    return _ac_fraction(
        times,
        latitude,
        solar_position,
        ghi,
        dni,
        dhi,
        temperature,
        wind,
        tilt_deg=tilt_deg,
        azimuth_deg=azimuth_deg,
        dc_ac_ratio=dc_ac_ratio,
        gamma_pdc_per_c=gamma_pdc_per_c,
        system_losses=system_losses,
        inverter_efficiency=inverter_efficiency,
    )


# --------------------------------------------------------------------------- wind


@dataclass(frozen=True)
class _Turbine:
    """What :func:`wind_profile` needs of one turbine type from windpowerlib's library."""

    turbine_type: str
    nominal_power_w: float
    rotor_diameter_m: float | None
    listed_hub_heights_m: tuple[float, ...]
    curve_wind_speed_m_per_s: FloatArray
    curve_power_w: FloatArray


@functools.cache
def _turbine_types() -> tuple[str, ...]:
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
    wind = _as_1d("wind_speed_m_per_s", wind_speed_m_per_s, None)
    temperature = _as_1d("temperature_c", temperature_c, wind.shape[0])
    _check_wind_speed("wind_speed_m_per_s", wind)
    _check_temperature("temperature_c", temperature)
    if not isinstance(turbine_type, str) or turbine_type not in _turbine_types():
        raise _unknown_turbine(turbine_type)
    turbine = _turbine(turbine_type)
    hub = default_hub_height_m(turbine_type) if hub_height_m is None else float(hub_height_m)
    if not (math.isfinite(hub) and hub > 0.0):
        raise ValueError(f"hub_height_m must be a positive number of metres, got {hub_height_m!r}.")
    if turbine.rotor_diameter_m is not None and hub <= turbine.rotor_diameter_m / 2.0:
        heights = ", ".join(f"{h:g}" for h in turbine.listed_hub_heights_m) or "none listed"
        raise ScenarioError(
            "wind.hub_height_m",
            f"a hub height of {hub:g} m is not above the rotor radius "
            f"({turbine.rotor_diameter_m / 2.0:g} m) of the {turbine_type}.",
            f"use a taller hub; the library lists these hub heights in m: {heights}.",
        )
    if not (math.isfinite(measurement_height_m) and measurement_height_m > 0.0):
        raise ValueError(
            f"measurement_height_m must be a positive number of metres, "
            f"got {measurement_height_m!r}."
        )
    exponent = DEFAULT_HELLMAN_EXPONENT if hellman_exponent is None else float(hellman_exponent)
    if not (math.isfinite(exponent) and 0.0 <= exponent <= 1.0):
        raise ValueError(f"hellman_exponent must be within 0..1, got {hellman_exponent!r}.")
    _check_elevation(elevation_m)
    if wind.size == 0:
        return np.zeros(0, dtype=np.float64)

    wind_hub = wpl_wind_speed.hellman(wind, measurement_height_m, hub, hellman_exponent=exponent)
    temperature_hub_k = wpl_temperature.linear_gradient(
        temperature + 273.15, TEMPERATURE_HEIGHT_M, hub
    )
    pressure_pa = float(pvlib.atmosphere.alt2pres(elevation_m))
    density_kg_per_m3 = wpl_density.ideal_gas(pressure_pa, 0.0, hub, temperature_hub_k)
    power_w = wpl_power_output.power_curve(
        np.asarray(wind_hub, dtype=np.float64),
        turbine.curve_wind_speed_m_per_s,
        turbine.curve_power_w,
        density=np.asarray(density_kg_per_m3, dtype=np.float64),
        density_correction=True,
    )
    fraction: FloatArray = np.clip(
        np.asarray(power_w, dtype=np.float64) / turbine.nominal_power_w, 0.0, 1.0
    )
    return fraction
