"""Tests of the weather -> normalised wind output model (windpowerlib)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wattroute.errors import ScenarioError
from wattroute.signals.wind import available_turbines, default_hub_height_m, wind_profile

# --------------------------------------------------------------------------- wind


def at_hub(speeds_m_per_s: list[float], temperature_c: float = 15.0, **kwargs: float) -> np.ndarray:
    """E-126/4200 output with the wind speed given at hub height (no shear)."""
    speeds = np.array(speeds_m_per_s)
    return wind_profile(
        speeds,
        np.full(speeds.shape, temperature_c),
        turbine_type="E-126/4200",
        hub_height_m=135.0,
        measurement_height_m=135.0,
        **kwargs,
    )


def test_wind_zero_below_cut_in():
    # The library curve of the E-126/4200 is 0 W up to 2 m/s and 58 kW at 3 m/s.
    assert np.array_equal(at_hub([0.0, 0.5, 1.0, 1.5, 1.9]), np.zeros(5))
    # From 3 m/s on it follows the curve: 58 of 4200 kW, less the 1-2 % the thinner air at
    # 135 m and 15 degC takes (windpowerlib corrects the curve for density).
    assert at_hub([3.0])[0] == pytest.approx(58.0 / 4200.0, rel=0.02)
    assert at_hub([3.0])[0] < 58.0 / 4200.0


def test_wind_near_one_at_and_above_rated_speed():
    # Rated (4.2 MW) from 14 m/s to the last curve point at 25 m/s.
    output = at_hub([14.5, 16.0, 20.0, 24.0])
    np.testing.assert_allclose(output, 1.0, atol=0.01)
    assert at_hub([9.0])[0] < 0.7


def test_wind_zero_above_cut_out():
    assert np.array_equal(at_hub([26.0, 30.0, 40.0]), np.zeros(3))


def test_wind_output_rises_with_speed_up_to_rated():
    output = at_hub(list(np.linspace(2.0, 14.0, 49)))
    assert np.all(np.diff(output) >= 0.0)
    assert output[-1] > 0.99


def test_taller_hub_gets_more_from_the_same_10m_wind():
    speeds = np.array([4.0, 6.0, 8.0])
    low = wind_profile(speeds, np.full(3, 10.0), hub_height_m=99.0)
    high = wind_profile(speeds, np.full(3, 10.0), hub_height_m=159.0)
    assert np.all(high > low)


def test_colder_denser_air_gives_no_less_output():
    # 10 m speeds up to 15 m/s reach at most 21 m/s at hub height, clear of the cut-out.
    speeds = np.linspace(2.0, 15.0, 53)
    cold = wind_profile(speeds, np.full(speeds.shape, -20.0))
    warm = wind_profile(speeds, np.full(speeds.shape, 35.0))
    assert np.all(cold >= warm)
    assert np.any(cold > warm + 0.005)


def test_high_site_thin_air_gives_no_more_output():
    speeds = np.linspace(2.0, 15.0, 53)
    temperature = np.full(speeds.shape, 10.0)
    sea_level = wind_profile(speeds, temperature, elevation_m=0.0)
    plateau = wind_profile(speeds, temperature, elevation_m=2500.0)
    assert np.all(plateau <= sea_level)
    assert np.any(plateau < sea_level - 0.005)


def test_density_correction_moves_the_cut_out():
    # windpowerlib scales the curve's wind speeds by (1.225 / density) ** (2/3) above
    # 12.5 m/s, so the cut-out comes earlier in dense air: this is the model, not a bug.
    assert at_hub([24.5], temperature_c=-20.0)[0] == 0.0
    assert at_hub([24.5], temperature_c=35.0)[0] == pytest.approx(1.0, abs=0.01)


def test_steeper_shear_exponent_raises_hub_speed():
    speeds = np.array([5.0, 7.0])
    flat = wind_profile(speeds, 10.0, hellman_exponent=0.0, hub_height_m=135.0)
    same_height = wind_profile(
        speeds, 10.0, hub_height_m=135.0, measurement_height_m=135.0, hellman_exponent=0.3
    )
    rough = wind_profile(speeds, 10.0, hellman_exponent=0.3, hub_height_m=135.0)
    np.testing.assert_allclose(flat, same_height)
    assert np.all(rough > flat)


@settings(max_examples=30, deadline=None)
@given(
    speeds=arrays(np.float64, 50, elements=st.floats(0.0, 60.0)),
    temperature=st.floats(-40.0, 50.0),
    elevation_m=st.floats(0.0, 3000.0),
)
def test_wind_profile_is_in_unit_interval(speeds, temperature, elevation_m):
    output = wind_profile(speeds, temperature, elevation_m=elevation_m)
    assert output.shape == speeds.shape
    assert not np.isnan(output).any()
    assert output.min() >= 0.0
    assert output.max() <= 1.0


def test_every_library_turbine_runs_at_its_default_hub_height():
    turbines = available_turbines()
    assert len(turbines) > 50
    assert turbines == sorted(turbines)
    speeds = np.linspace(0.0, 40.0, 81)
    for turbine in turbines:
        output = wind_profile(speeds, np.full(speeds.shape, 15.0), turbine_type=turbine)
        assert output.min() >= 0.0, turbine
        assert output.max() <= 1.0, turbine
        assert output[0] == 0.0, turbine  # calm
        assert output[-1] == 0.0, turbine  # storm: past cut-out
        assert output.max() > 0.9, turbine


@pytest.mark.parametrize(
    ("turbine", "hub_height_m"),
    [
        ("E-126/4200", 99.0),  # "99; 135; 159"
        ("ENO114/3500", 92.0),  # "92; 127,5; 142"
        ("MM92/2050", 68.5),  # "68,5;80,0;100,0": decimal commas
        ("GE100/2500", 75.0),  # "75/85"
        ("MM100/2000", 100.0),  # no hub height listed: the 100 m default
    ],
)
def test_default_hub_height_is_first_listed_else_100m(turbine, hub_height_m):
    assert default_hub_height_m(turbine) == pytest.approx(hub_height_m)


# --------------------------------------------------------------------------- wind errors


def test_unknown_turbine_names_field_and_suggests_close_match():
    with pytest.raises(ScenarioError) as excinfo:
        wind_profile(np.array([5.0]), np.array([10.0]), turbine_type="E-126/420")
    error = excinfo.value
    assert error.field == "wind.turbine"
    message = str(error)
    assert message.startswith("wind.turbine: ")
    assert "'E-126/420'" in error.problem
    assert "'E-126/4200'" in error.fix
    assert "available_turbines()" in error.fix


def test_turbine_without_power_curve_is_unknown():
    # In windpowerlib's turbine data but without a power curve.
    assert "AD132/5000" not in available_turbines()
    with pytest.raises(ScenarioError, match=r"wind\.turbine"):
        wind_profile(np.array([5.0]), np.array([10.0]), turbine_type="AD132/5000")


def test_hub_below_rotor_radius_is_a_scenario_error():
    with pytest.raises(ScenarioError, match=r"wind\.hub_height_m.*rotor radius") as excinfo:
        wind_profile(np.array([5.0]), np.array([10.0]), hub_height_m=50.0)
    assert "99, 135, 159" in excinfo.value.fix


def test_wind_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="temperature_c has 2 values but 3 were expected"):
        wind_profile(np.array([5.0, 6.0, 7.0]), np.array([10.0, 11.0]))


def test_negative_wind_speed_raises():
    with pytest.raises(ValueError, match="magnitude"):
        wind_profile(np.array([5.0, -1.0]), np.array([10.0, 10.0]))
