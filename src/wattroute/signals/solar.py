"""Solar output from weather: a normalised generation profile of a fixed-tilt PV system.

Every function here is pure: numpy arrays (and a pandas ``DatetimeIndex`` of the instants to
evaluate) in, numpy arrays out. The only file read is pvlib's bundled Linke turbidity table;
nothing touches the network. Outputs are fractions of the AC nameplate, 0..1, so a site
multiplies them by its solar nameplate in kW. The system's orientation and electrical
parameters are one :class:`PvSystem`.

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

References
----------
Kasten, F. and Czeplak, G. (1980). Solar and terrestrial radiation dependent on the amount and
type of cloud. Solar Energy 24, 177-189.

Erbs, D. G., Klein, S. A. and Duffie, J. A. (1982). Estimation of the diffuse radiation fraction
for hourly, daily and monthly-average global radiation. Solar Energy 28, 293-302.

Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pvlib

from wattroute.signals._checks import (
    FloatArray,
    as_1d,
    check_site,
    check_temperature,
    check_times,
    check_wind_speed,
)

__all__ = [
    "ALBEDO",
    "DEFAULT_TILT_CAP_DEG",
    "KASTEN_CZEPLAK_A",
    "KASTEN_CZEPLAK_B",
    "PvSystem",
    "clear_sky_index_from_cloud_cover",
    "default_tilt_deg",
    "irradiance_from_cloud_cover",
    "solar_profile_from_cloud_cover",
    "solar_profile_from_irradiance",
]

KASTEN_CZEPLAK_A = 0.75
"""Coefficient of the Kasten & Czeplak clear-sky index: overcast GHI is 25 % of clear-sky GHI."""
KASTEN_CZEPLAK_B = 3.4
"""Exponent of cloud cover (as a fraction) in the Kasten & Czeplak clear-sky index."""
DEFAULT_TILT_CAP_DEG = 40.0
"""Upper bound of the default tilt in degrees: ``tilt = min(|latitude|, 40)``."""
ALBEDO = 0.25
"""Ground reflectance (dimensionless) for the ground-reflected part of plane-of-array irradiance."""

_FAIMAN_U0_W_PER_M2_K = 25.0
_FAIMAN_U1_W_S_PER_M3_K = 6.84


# --------------------------------------------------------------------------- the PV system


@dataclass(frozen=True)
class PvSystem:
    """Orientation and electrical parameters of a fixed-tilt PV system.

    The output of the models here is a fraction of the AC nameplate, so the nameplate itself
    is not a parameter: a site multiplies the profile by its capacity in kW.

    Parameters
    ----------
    tilt_deg
        Module tilt in degrees from horizontal, 0..90; ``None`` (the default) for
        :func:`default_tilt_deg` at the site's latitude (``min(|latitude|, 40)``).
    azimuth_deg
        Direction the modules face in degrees clockwise from north, 0..360; ``None`` (the
        default) for facing the equator: 180 in the northern hemisphere (and on the equator),
        0 in the southern.
    dc_ac_ratio
        DC nameplate over AC nameplate (inverter loading ratio), dimensionless, positive.
    gamma_pdc_per_c
        Temperature coefficient of DC power in 1/degC (-0.004 = -0.4 %/degC), finite.
    system_losses
        Fraction of DC energy lost before the inverter (soiling, mismatch, wiring, ...),
        dimensionless, 0 inclusive to 1 exclusive.
    inverter_efficiency
        Nominal inverter efficiency, dimensionless, 0 exclusive to 1 inclusive.

    Raises
    ------
    ValueError
        If a parameter is out of its range.
    """

    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    dc_ac_ratio: float = 1.2
    gamma_pdc_per_c: float = -0.004
    system_losses: float = 0.14
    inverter_efficiency: float = 0.96

    def __post_init__(self) -> None:
        if self.tilt_deg is not None and not 0.0 <= float(self.tilt_deg) <= 90.0:
            raise ValueError(f"tilt_deg must be within 0..90 degrees, got {self.tilt_deg!r}.")
        if self.azimuth_deg is not None and not 0.0 <= float(self.azimuth_deg) <= 360.0:
            raise ValueError(
                f"azimuth_deg must be within 0..360 degrees, got {self.azimuth_deg!r}."
            )
        if not self.dc_ac_ratio > 0.0:
            raise ValueError(f"dc_ac_ratio must be positive, got {self.dc_ac_ratio!r}.")
        if not 0.0 <= self.system_losses < 1.0:
            raise ValueError(
                f"system_losses must be within 0..1 (exclusive), got {self.system_losses!r}."
            )
        if not 0.0 < self.inverter_efficiency <= 1.0:
            raise ValueError(
                f"inverter_efficiency must be within 0..1 (exclusive of 0), "
                f"got {self.inverter_efficiency!r}."
            )
        if not math.isfinite(self.gamma_pdc_per_c):
            raise ValueError(f"gamma_pdc_per_c must be finite, got {self.gamma_pdc_per_c!r}.")

    def tilt_at(self, latitude: float) -> float:
        """Module tilt in degrees from horizontal at a site at ``latitude`` (decimal degrees)."""
        return default_tilt_deg(latitude) if self.tilt_deg is None else float(self.tilt_deg)

    def azimuth_at(self, latitude: float) -> float:
        """Module azimuth in degrees clockwise from north at a site at ``latitude`` (decimal
        degrees)."""
        if self.azimuth_deg is None:
            return _equator_facing_azimuth_deg(latitude)
        return float(self.azimuth_deg)


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
    """pvlib's solar position (angles in degrees) at ``times`` for a site at ``elevation_m``."""
    location = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=elevation_m)
    solar_position: pd.DataFrame = location.get_solarposition(times)
    return solar_position


def _day_of_year(times: pd.DatetimeIndex) -> FloatArray:
    """Day of the year (1..366, UTC) of each of ``times``."""
    return np.asarray(times.tz_convert("UTC").day_of_year, dtype=np.float64)


def _irradiance(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    elevation_m: float,
    cloud_cover_pct: FloatArray,
    solar_position: pd.DataFrame,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """GHI, DNI, DHI in W/m^2 from cloud cover in percent, given the solar position."""
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
    """Irradiance in W/m^2 with NaN, negative values and night-time values set to zero."""
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
    times = check_times(times)
    check_site(latitude, longitude, elevation_m)
    cover = as_1d("cloud_cover_pct", cloud_cover_pct, len(times))
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


def _checked_cooling_weather(
    temperature_c: npt.ArrayLike, wind_speed_m_per_s: npt.ArrayLike, n: int
) -> tuple[FloatArray, FloatArray]:
    """Air temperature in degC and wind speed in m/s as checked arrays of ``n`` values.

    Raises
    ------
    ValueError
        If a length differs from ``n``, a value is not finite, a temperature is implausible or
        a wind speed negative.
    """
    temperature = as_1d("temperature_c", temperature_c, n)
    wind = as_1d("wind_speed_m_per_s", wind_speed_m_per_s, n)
    check_temperature("temperature_c", temperature)
    check_wind_speed("wind_speed_m_per_s", wind)
    return temperature, wind


def _ac_fraction(
    times: pd.DatetimeIndex,
    latitude: float,
    solar_position: pd.DataFrame,
    irradiance_w_per_m2: tuple[FloatArray, FloatArray, FloatArray],
    temperature_c: FloatArray,
    wind_speed_m_per_s: FloatArray,
    pv: PvSystem,
) -> FloatArray:
    """AC output / AC nameplate for GHI, DNI and DHI in W/m^2, air temperature in degC and
    wind speed in m/s, all already checked, given the solar position."""
    ghi, dni, dhi = irradiance_w_per_m2
    dni_extra = pvlib.irradiance.get_extra_radiation(_day_of_year(times))
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=pv.tilt_at(latitude),
        surface_azimuth=pv.azimuth_at(latitude),
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
        pdc0=pv.dc_ac_ratio,
        gamma_pdc=pv.gamma_pdc_per_c,
    )
    dc = np.maximum(np.asarray(dc, dtype=np.float64) * (1.0 - pv.system_losses), 0.0)
    efficiency = pv.inverter_efficiency
    ac = pvlib.inverter.pvwatts(dc, pdc0=1.0 / efficiency, eta_inv_nom=efficiency)
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
    pv: PvSystem | None = None,
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
    pv
        The system's orientation and electrical parameters; default ``PvSystem()`` (facing
        the equator at the default tilt, DC/AC ratio 1.2, 14 % losses).

    Returns
    -------
    numpy.ndarray
        AC power / AC nameplate, dimensionless, in [0, 1], zero at night, never NaN.

    Raises
    ------
    ValueError
        If ``times`` is naive, an array's length differs from ``len(times)``, or an input is
        not finite or out of range.
    """
    times = check_times(times)
    check_site(latitude, longitude, elevation_m)
    n = len(times)
    ghi_w = np.maximum(as_1d("ghi", ghi, n), 0.0)
    dni_w = np.maximum(as_1d("dni", dni, n), 0.0)
    dhi_w = np.maximum(as_1d("dhi", dhi, n), 0.0)
    temperature, wind = _checked_cooling_weather(temperature_c, wind_speed_m_per_s, n)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    solar_position = _solar_position(times, latitude, longitude, elevation_m)
    irradiance = (ghi_w, dni_w, dhi_w)
    pv = PvSystem() if pv is None else pv
    return _ac_fraction(times, latitude, solar_position, irradiance, temperature, wind, pv)


def solar_profile_from_cloud_cover(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    elevation_m: float,
    cloud_cover_pct: npt.ArrayLike,
    temperature_c: npt.ArrayLike,
    wind_speed_m_per_s: npt.ArrayLike,
    *,
    pv: PvSystem | None = None,
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
    pv
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
    times = check_times(times)
    check_site(latitude, longitude, elevation_m)
    n = len(times)
    cover = as_1d("cloud_cover_pct", cloud_cover_pct, n)
    temperature, wind = _checked_cooling_weather(temperature_c, wind_speed_m_per_s, n)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    solar_position = _solar_position(times, latitude, longitude, elevation_m)
    irradiance = _irradiance(times, latitude, longitude, elevation_m, cover, solar_position)
    pv = PvSystem() if pv is None else pv
    return _ac_fraction(times, latitude, solar_position, irradiance, temperature, wind, pv)
