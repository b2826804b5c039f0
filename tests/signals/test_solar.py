"""Tests of the weather -> normalised solar output model (pvlib)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wattroute.signals.solar import (
    PvSystem,
    clear_sky_index_from_cloud_cover,
    default_tilt_deg,
    irradiance_from_cloud_cover,
    solar_profile_from_cloud_cover,
    solar_profile_from_irradiance,
)

# Fremont, California: a mid-latitude site with a well-known solar geometry.
LAT, LON, ELEV_M = 37.4, -121.95, 10.0
STEP_H = 5 / 60


def midpoints(start: str, periods: int, freq: str = "5min") -> pd.DatetimeIndex:
    """Step midpoints of a regular UTC grid starting at ``start``."""
    step = pd.Timedelta(freq)
    return pd.date_range(start, periods=periods, freq=freq, tz="UTC") + step / 2


@pytest.fixture(scope="module")
def solstice() -> pd.DatetimeIndex:
    """2023-06-21 at 5-min resolution, covering the whole Pacific daylight day."""
    return midpoints("2023-06-21T08:00Z", 288)


def clear_day(times: pd.DatetimeIndex, pv: PvSystem | None = None) -> np.ndarray:
    n = len(times)
    return solar_profile_from_cloud_cover(
        times, LAT, LON, ELEV_M, np.zeros(n), np.full(n, 20.0), np.full(n, 2.0), pv=pv
    )


# --------------------------------------------------------------------------- clear-sky index


def test_clear_sky_index_endpoints_and_clipping():
    index = clear_sky_index_from_cloud_cover(np.array([-20.0, 0.0, 50.0, 100.0, 130.0]))
    np.testing.assert_allclose(index, [1.0, 1.0, 1 - 0.75 * 0.5**3.4, 0.25, 0.25])


def test_clear_sky_index_decreases_with_cloud_cover():
    index = clear_sky_index_from_cloud_cover(np.linspace(0.0, 100.0, 101))
    assert np.all(np.diff(index) < 0)


# --------------------------------------------------------------------------- irradiance


def test_irradiance_is_zero_at_night_and_positive_by_day(solstice):
    irradiance = irradiance_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.zeros(len(solstice)))
    assert list(irradiance.columns) == ["ghi", "dni", "dhi"]
    assert irradiance.index.equals(solstice)
    elevation = pvlib.solarposition.get_solarposition(solstice, LAT, LON)["elevation"].to_numpy()
    night = elevation < -1.0
    day = elevation > 5.0
    assert night.any()
    assert day.any()
    assert (irradiance.loc[night] == 0).all().all()
    assert (irradiance.loc[day, "ghi"] > 0).all()
    # A clear summer noon at 37 degN: GHI near 1000 W/m^2, mostly direct.
    assert 900.0 < irradiance["ghi"].max() < 1100.0
    assert irradiance["dni"].max() > 3 * irradiance["dhi"].max()


def test_irradiance_components_close_on_ghi(solstice):
    cover = np.linspace(0.0, 100.0, len(solstice))
    irradiance = irradiance_from_cloud_cover(solstice, LAT, LON, ELEV_M, cover)
    zenith = pvlib.solarposition.get_solarposition(solstice, LAT, LON)["zenith"].to_numpy()
    day = zenith < 85.0
    closure = irradiance["dni"] * np.cos(np.radians(zenith)) + irradiance["dhi"]
    np.testing.assert_allclose(closure[day], irradiance["ghi"][day], rtol=1e-6, atol=1e-6)


def test_overcast_ghi_is_a_quarter_of_clear(solstice):
    n = len(solstice)
    clear = irradiance_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.zeros(n))
    overcast = irradiance_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.full(n, 100.0))
    np.testing.assert_allclose(overcast["ghi"], 0.25 * clear["ghi"], rtol=1e-9)


# --------------------------------------------------------------------------- solar profile


def test_clear_day_is_zero_at_night_and_peaks_near_solar_noon(solstice):
    profile = clear_day(solstice)
    elevation = pvlib.solarposition.get_solarposition(solstice, LAT, LON)["elevation"].to_numpy()
    assert np.all(profile[elevation < 0.0] == 0.0)
    assert np.all(profile[elevation > 10.0] > 0.0)
    # Solar noon at 121.95 degW on 21 June: 12:00 + 8 h 07.8 min + 1.7 min (equation of time).
    solar_noon = pd.Timestamp("2023-06-21T20:09:30Z")
    peak = solstice[int(np.argmax(profile))]
    assert abs(peak - solar_noon) <= pd.Timedelta("20min")


def test_clear_summer_day_capacity_factor_is_plausible(solstice):
    profile = clear_day(solstice)
    capacity_factor = profile.sum() * STEP_H / 24.0
    assert 0.25 <= capacity_factor <= 0.45
    assert 0.7 < profile.max() < 1.0  # the default 1.2 dc/ac ratio does not clip at 20 degC


def test_more_cloud_means_less_energy(solstice):
    n = len(solstice)
    energies = [
        solar_profile_from_cloud_cover(
            solstice, LAT, LON, ELEV_M, np.full(n, cover), 20.0, 2.0
        ).sum()
        for cover in (0.0, 25.0, 50.0, 75.0, 100.0)
    ]
    assert np.all(np.diff(energies) < 0), energies
    # Overcast still lets diffuse light through: a quarter of the clear-sky GHI (Kasten &
    # Czeplak), and about as much of the energy (a little more: diffuse light on the tilted
    # module, cooler cells).
    assert energies[-1] / energies[0] == pytest.approx(0.25, abs=0.03)


def test_high_dc_ac_ratio_clips_at_one(solstice):
    clipped = clear_day(solstice, PvSystem(dc_ac_ratio=2.0))
    assert clipped.max() == 1.0
    assert np.count_nonzero(clipped == 1.0) >= 12  # a plateau of at least an hour
    unclipped = clear_day(solstice, PvSystem(dc_ac_ratio=1.0))
    assert unclipped.max() < 1.0
    assert clipped.sum() > unclipped.sum()


def test_hotter_modules_make_less_power(solstice):
    n = len(solstice)
    cool = solar_profile_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.zeros(n), 5.0, 2.0)
    hot = solar_profile_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.zeros(n), 40.0, 2.0)
    assert hot.sum() < cool.sum()


def test_cloud_chain_equals_irradiance_then_profile(solstice):
    n = len(solstice)
    cover = np.linspace(0.0, 100.0, n)
    temperature = np.linspace(10.0, 30.0, n)
    wind = np.linspace(0.0, 8.0, n)
    irradiance = irradiance_from_cloud_cover(solstice, LAT, LON, ELEV_M, cover)
    two_step = solar_profile_from_irradiance(
        solstice,
        LAT,
        LON,
        ELEV_M,
        irradiance["ghi"].to_numpy(),
        irradiance["dni"].to_numpy(),
        irradiance["dhi"].to_numpy(),
        temperature,
        wind,
        pv=PvSystem(tilt_deg=25.0),
    )
    chained = solar_profile_from_cloud_cover(
        solstice, LAT, LON, ELEV_M, cover, temperature, wind, pv=PvSystem(tilt_deg=25.0)
    )
    np.testing.assert_allclose(chained, two_step, rtol=1e-12, atol=1e-12)


def test_negative_irradiance_counts_as_zero(solstice):
    n = len(solstice)
    zeros = np.zeros(n)
    negative = np.full(n, -5.0)
    profile = solar_profile_from_irradiance(
        solstice, LAT, LON, ELEV_M, negative, negative, negative, 20.0, 2.0
    )
    assert np.array_equal(profile, zeros)


def test_default_orientation_faces_the_equator():
    # Sydney in June (winter, low northern sun): the default north-facing array beats a
    # south-facing one by far.
    times = midpoints("2023-06-20T18:00Z", 288)
    n = len(times)
    args = (times, -33.9, 151.2, 50.0, np.zeros(n), 12.0, 2.0)
    default = solar_profile_from_cloud_cover(*args)
    facing_north = solar_profile_from_cloud_cover(
        *args, pv=PvSystem(azimuth_deg=0.0, tilt_deg=33.9)
    )
    facing_south = solar_profile_from_cloud_cover(*args, pv=PvSystem(azimuth_deg=180.0))
    np.testing.assert_allclose(default, facing_north)
    assert default.sum() > 2.0 * facing_south.sum()


def test_system_losses_scale_the_output(solstice):
    lossless = clear_day(solstice, PvSystem(dc_ac_ratio=1.0, system_losses=0.0))
    lossy = clear_day(solstice, PvSystem(dc_ac_ratio=1.0, system_losses=0.14))
    # The inverter's part-load efficiency curve makes the ratio not exactly 0.86.
    assert lossy.sum() / lossless.sum() == pytest.approx(0.86, abs=0.01)


def test_default_tilt_rule():
    assert default_tilt_deg(37.4) == pytest.approx(37.4)
    assert default_tilt_deg(-33.9) == pytest.approx(33.9)
    assert default_tilt_deg(60.0) == 40.0
    assert default_tilt_deg(0.0) == 0.0


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    latitude=st.floats(-60.0, 60.0),
    start_day=st.integers(0, 364),
)
def test_profile_is_in_unit_interval_and_never_nan(data, latitude, start_day):
    times = midpoints("2023-01-01T00:00Z", 48, "1h") + pd.Timedelta(days=start_day)
    n = len(times)
    cover = data.draw(arrays(np.float64, n, elements=st.floats(-10.0, 110.0)))
    temperature = data.draw(arrays(np.float64, n, elements=st.floats(-40.0, 50.0)))
    wind = data.draw(arrays(np.float64, n, elements=st.floats(0.0, 40.0)))
    dc_ac = data.draw(st.floats(0.8, 2.5))
    profile = solar_profile_from_cloud_cover(
        times, latitude, 10.0, 100.0, cover, temperature, wind, pv=PvSystem(dc_ac_ratio=dc_ac)
    )
    assert profile.shape == (n,)
    assert not np.isnan(profile).any()
    assert profile.min() >= 0.0
    assert profile.max() <= 1.0


def test_no_pv_system_means_the_default_one(solstice):
    assert np.array_equal(clear_day(solstice), clear_day(solstice, PvSystem()))


def test_pv_system_orientation_defaults_follow_the_latitude():
    pv = PvSystem()
    assert pv.tilt_at(37.4) == pytest.approx(37.4)
    assert pv.azimuth_at(37.4) == 180.0
    assert (pv.tilt_at(-60.0), pv.azimuth_at(-60.0)) == (40.0, 0.0)
    chosen = PvSystem(tilt_deg=10, azimuth_deg=200)
    assert (chosen.tilt_at(-60.0), chosen.azimuth_at(-60.0)) == (10.0, 200.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tilt_deg", 95.0, r"tilt_deg must be within 0\.\.90 degrees, got 95\.0"),
        ("tilt_deg", float("nan"), "tilt_deg must be within"),
        ("azimuth_deg", -10.0, r"azimuth_deg must be within 0\.\.360 degrees"),
        ("dc_ac_ratio", 0.0, "dc_ac_ratio must be positive"),
        ("system_losses", 1.0, r"system_losses must be within 0\.\.1 \(exclusive\)"),
        ("inverter_efficiency", 0.0, "inverter_efficiency must be within"),
        ("inverter_efficiency", 1.01, "inverter_efficiency must be within"),
        ("gamma_pdc_per_c", float("inf"), "gamma_pdc_per_c must be finite"),
    ],
)
def test_pv_system_refuses_out_of_range_parameters(field, value, message):
    with pytest.raises(ValueError, match=message):
        PvSystem(**{field: value})


# --------------------------------------------------------------------------- solar errors


def test_mismatched_lengths_raise(solstice):
    n = len(solstice)
    with pytest.raises(ValueError, match=r"temperature_c has 3 values but 288 were expected"):
        solar_profile_from_cloud_cover(
            solstice, LAT, LON, ELEV_M, np.zeros(n), np.zeros(3), np.zeros(n)
        )
    with pytest.raises(ValueError, match=r"cloud_cover_pct has 287 values"):
        irradiance_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.zeros(n - 1))


def test_naive_times_raise():
    naive = pd.date_range("2023-06-21", periods=4, freq="h")
    with pytest.raises(ValueError, match="timezone"):
        irradiance_from_cloud_cover(naive, LAT, LON, ELEV_M, np.zeros(4))


def test_nan_weather_raises(solstice):
    n = len(solstice)
    cover = np.zeros(n)
    cover[7] = np.nan
    with pytest.raises(ValueError, match=r"cloud_cover_pct has 1 non-finite value\(s\) .*index 7"):
        solar_profile_from_cloud_cover(solstice, LAT, LON, ELEV_M, cover, 20.0, 2.0)


def test_kelvin_temperature_is_caught(solstice):
    n = len(solstice)
    with pytest.raises(ValueError, match="kelvin"):
        solar_profile_from_cloud_cover(solstice, LAT, LON, ELEV_M, np.zeros(n), 293.0, 2.0)
