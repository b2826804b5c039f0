"""Tests of to_grid: hold/interpolate, gaps, coverage, index checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattroute.errors import SignalError
from wattroute.signals.resample import FilledGap, to_grid

T0 = pd.Timestamp("2023-01-01T00:00Z")
H = pd.Timedelta("1h")
M5 = pd.Timedelta("5min")
SRC = "grid/X.csv:price_usd_per_mwh"


def hourly(values: list[float], start: pd.Timestamp = T0) -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="h"), dtype=float)


def grid(series: pd.Series, n_steps: int, *, how="hold", start=T0, step=M5, max_gap=H * 3):
    return to_grid(series, start, step, n_steps, how=how, max_gap=max_gap, source=SRC)


# ----------------------------------------------------------------------- values


def test_hold_hourly_to_5min_exact() -> None:
    values, gaps = grid(hourly([1.0, 2.0, 4.0]), 36, how="hold")
    assert values.dtype == np.float64
    assert values.shape == (36,)
    np.testing.assert_array_equal(values, [1.0] * 12 + [2.0] * 12 + [4.0] * 12)
    assert gaps == []


def test_interpolate_hourly_to_5min_exact() -> None:
    values, gaps = grid(hourly([1.0, 2.0, 4.0]), 36, how="interpolate")
    expected = np.concatenate(
        [1.0 + np.arange(12) / 12, 2.0 + 2.0 * np.arange(12) / 12, np.full(12, 4.0)]
    )
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    assert values[18] == pytest.approx(3.0)  # 01:30 is half-way between 2 and 4
    assert gaps == []


def test_hold_with_unaligned_start_and_coarser_step() -> None:
    series = hourly([10.0, 20.0, 30.0, 40.0])
    values, _ = grid(series, 3, start=T0 + pd.Timedelta("30min"), step=H)
    np.testing.assert_array_equal(values, [10.0, 20.0, 30.0])
    five_min = pd.Series(
        np.arange(48.0), index=pd.date_range(T0, periods=48, freq="5min"), dtype=float
    )
    values, _ = grid(five_min, 4, step=pd.Timedelta("15min"))  # samples, does not average
    np.testing.assert_array_equal(values, [0.0, 3.0, 6.0, 9.0])


def test_non_utc_index_is_the_same_instants() -> None:
    series = hourly([1.0, 2.0, 4.0])
    berlin = series.tz_convert("Europe/Berlin")
    np.testing.assert_array_equal(grid(series, 36)[0], grid(berlin, 36)[0])
    start_tokyo = T0.tz_convert("Asia/Tokyo")
    np.testing.assert_array_equal(grid(series, 36)[0], grid(series, 36, start=start_tokyo)[0])


# ----------------------------------------------------------------------- gaps


def test_nan_gap_within_max_gap_hold() -> None:
    series = hourly([1.0, 2.0, np.nan, np.nan, 5.0, 6.0])
    values, gaps = grid(series, 6, step=H, how="hold", max_gap=2 * H)
    np.testing.assert_array_equal(values, [1.0, 2.0, 2.0, 2.0, 5.0, 6.0])
    assert gaps == [
        FilledGap(
            source=SRC,
            start=pd.Timestamp("2023-01-01T02:00Z"),
            end=pd.Timestamp("2023-01-01T03:00Z"),
            length=2 * H,
        )
    ]
    assert gaps[0].describe() == (
        "grid/X.csv:price_usd_per_mwh: filled 2 h gap 2023-01-01T02:00Z..2023-01-01T03:00Z"
    )


def test_nan_gap_within_max_gap_interpolate() -> None:
    series = hourly([1.0, 2.0, np.nan, np.nan, 5.0, 6.0])
    values, gaps = grid(series, 6, step=H, how="interpolate", max_gap=2 * H)
    np.testing.assert_allclose(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert [(g.start, g.length) for g in gaps] == [(pd.Timestamp("2023-01-01T02:00Z"), 2 * H)]


def test_missing_timestamps_are_gaps_like_nans() -> None:
    with_nans = hourly([1.0, 2.0, np.nan, np.nan, 5.0, 6.0])
    dropped = with_nans.dropna()
    for how in ("hold", "interpolate"):
        a, gaps_a = grid(with_nans, 72, how=how, max_gap=2 * H)
        b, gaps_b = grid(dropped, 72, how=how, max_gap=2 * H)
        np.testing.assert_array_equal(a, b)
        assert gaps_a == gaps_b
        assert len(gaps_b) == 1


def test_gap_longer_than_max_gap_raises_with_time_range() -> None:
    series = hourly([1.0, 2.0, np.nan, np.nan, np.nan, 6.0, 7.0])
    with pytest.raises(SignalError) as info:
        grid(series, 7, step=H, max_gap=2 * H)
    err = info.value
    assert err.field == SRC
    assert "3 h gap" in err.problem
    assert "2023-01-01T02:00Z to 2023-01-01T04:00Z" in err.problem
    assert "max_gap = 2 h" in err.problem
    assert "fill the gap in the file or raise max_gap" in err.fix
    assert str(err).startswith(SRC)
    # Raising max_gap is enough.
    values, gaps = grid(series, 7, step=H, max_gap=3 * H)
    assert not np.isnan(values).any()
    assert gaps[0].length == 3 * H


def test_zero_max_gap_fills_nothing() -> None:
    with pytest.raises(SignalError, match="1 h gap"):
        grid(hourly([1.0, np.nan, 3.0]), 3, step=H, max_gap=pd.Timedelta(0))


def test_gap_counts_only_where_it_changes_a_grid_value() -> None:
    series = hourly([0.0, np.nan, 4.0, 6.0, 8.0])
    start, step = T0 + pd.Timedelta("30min"), 2 * H  # grid instants 00:30, 02:30
    # hold: 00:30 takes the 00:00 value; no grid instant falls in the missing hour 01:00..02:00.
    values, gaps = grid(series, 2, how="hold", start=start, step=step, max_gap=pd.Timedelta(0))
    np.testing.assert_array_equal(values, [0.0, 4.0])
    assert gaps == []
    # interpolate: 00:30 lies between 00:00 and 02:00, so the missing 01:00 value matters.
    values, gaps = grid(series, 2, how="interpolate", start=start, step=step, max_gap=H)
    np.testing.assert_allclose(values, [1.0, 5.0])
    assert [(g.start, g.end, g.length) for g in gaps] == [(T0 + H, T0 + H, H)]
    with pytest.raises(SignalError, match="1 h gap"):
        grid(series, 2, how="interpolate", start=start, step=step, max_gap=pd.Timedelta(0))


def test_clock_jitter_is_not_a_gap_but_a_missing_reading_is() -> None:
    offsets_min = [0, 60, 121, 180, 239, 300, 396, 456, 516]  # 300 -> 396: one reading missing
    index = pd.DatetimeIndex([T0 + pd.Timedelta(minutes=m) for m in offsets_min])
    series = pd.Series(np.arange(9.0), index=index)
    values, gaps = grid(series, 5, step=H, max_gap=pd.Timedelta(0))
    # Latest reading at or before each hour: 02:00 still has 01:00's (02:01 comes after it).
    np.testing.assert_array_equal(values, [0.0, 1.0, 1.0, 3.0, 4.0])
    assert gaps == []
    with pytest.raises(SignalError, match="1 h gap with no valid value from 2023-01-01T06:00Z"):
        grid(series, 8, step=H, max_gap=pd.Timedelta(0))
    _, gaps = grid(series, 8, step=H, max_gap=H)
    assert [g.describe() for g in gaps] == [
        f"{SRC}: filled 1 h gap 2023-01-01T06:00Z..2023-01-01T06:00Z"
    ]


def test_gap_outside_period_is_ignored() -> None:
    series = hourly([1.0, 2.0, 3.0, np.nan, np.nan, np.nan, np.nan, 8.0, 9.0])
    values, gaps = grid(series, 3, step=H, max_gap=H)  # period 00:00..03:00, before the gap
    np.testing.assert_array_equal(values, [1.0, 2.0, 3.0])
    assert gaps == []
    values, gaps = grid(series, 2, step=H, start=T0 + 7 * H, max_gap=H)  # after it
    np.testing.assert_array_equal(values, [8.0, 9.0])
    assert gaps == []


def test_leading_and_trailing_nans_shorten_coverage_not_gaps() -> None:
    series = hourly([np.nan, 2.0, 3.0, np.nan])
    values, gaps = grid(series, 2, step=H, start=T0 + H, max_gap=pd.Timedelta(0))
    np.testing.assert_array_equal(values, [2.0, 3.0])
    assert gaps == []
    with pytest.raises(SignalError, match="after 1 leading and 1 trailing NaN"):
        grid(series, 4, step=H, max_gap=pd.Timedelta(0))


# ----------------------------------------------------------------------- coverage


def test_coverage_end_is_last_instant_plus_resolution() -> None:
    series = hourly([1.0, 2.0, 4.0])  # covers 00:00 .. 03:00
    values, _ = grid(series, 36)  # up to 03:00 exactly
    assert len(values) == 36
    with pytest.raises(SignalError) as info:
        grid(series, 37)
    err = info.value
    assert "covers 2023-01-01T00:00Z .. 2023-01-01T03:00Z" in err.problem
    assert "but the scenario needs 2023-01-01T00:00Z .. 2023-01-01T03:05Z" in err.problem
    assert "choose a scenario period within the data" in err.fix


def test_coverage_start_before_data() -> None:
    series = hourly([1.0, 2.0, 4.0])
    with pytest.raises(SignalError, match=r"covers .* but the scenario needs 2022-12-31T23:55Z"):
        grid(series, 12, start=T0 - M5)


def test_all_nan_series() -> None:
    with pytest.raises(SignalError, match="no valid value"):
        grid(hourly([np.nan, np.nan]), 1)


# ----------------------------------------------------------------------- index checks


def test_unsorted_index_names_first_offending_timestamp() -> None:
    index = pd.DatetimeIndex(
        ["2023-01-01T00:00Z", "2023-01-01T02:00Z", "2023-01-01T01:00Z", "2023-01-01T03:00Z"]
    )
    with pytest.raises(SignalError, match="not sorted") as info:
        grid(pd.Series([1.0, 2.0, 3.0, 4.0], index=index), 3, step=H)
    assert "2023-01-01T01:00Z comes after 2023-01-01T02:00Z" in info.value.problem
    assert "sort" in info.value.fix


def test_duplicate_timestamp() -> None:
    index = pd.DatetimeIndex(["2023-01-01T00:00Z", "2023-01-01T01:00Z", "2023-01-01T01:00Z"])
    with pytest.raises(SignalError, match="2023-01-01T01:00Z more than once"):
        grid(pd.Series([1.0, 2.0, 3.0], index=index), 2, step=H)


def test_naive_or_non_datetime_index() -> None:
    naive = hourly([1.0, 2.0]).tz_localize(None)
    with pytest.raises(SignalError, match="timezone-naive"):
        grid(naive, 2, step=H)
    with pytest.raises(SignalError, match="RangeIndex"):
        grid(pd.Series([1.0, 2.0]), 2, step=H)


def test_single_point_and_infinite_values() -> None:
    with pytest.raises(SignalError, match="at least two"):
        grid(hourly([1.0]), 1)
    with pytest.raises(SignalError, match="infinite value at 2023-01-01T01:00Z"):
        grid(hourly([1.0, np.inf, 2.0]), 1)


def test_bad_arguments_are_value_errors() -> None:
    series = hourly([1.0, 2.0])
    with pytest.raises(ValueError, match="how"):
        grid(series, 1, how="nearest")
    with pytest.raises(ValueError, match="timezone-aware"):
        grid(series, 1, start=pd.Timestamp("2023-01-01"))
    with pytest.raises(ValueError, match="step"):
        grid(series, 1, step=pd.Timedelta(0))
    with pytest.raises(ValueError, match="n_steps"):
        grid(series, 0)


# ----------------------------------------------------------------------- property, speed


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=60
    ),
    data=st.data(),
)
def test_hold_property_value_of_the_hour(values: list[float], data: st.DataObject) -> None:
    series = hourly(values)
    n_total = 12 * len(values)  # 5-minute instants inside the coverage
    first = data.draw(st.integers(0, n_total - 1), label="first step")
    n_steps = data.draw(st.integers(1, n_total - first), label="n_steps")
    out, gaps = grid(series, n_steps, how="hold", start=T0 + first * M5, max_gap=pd.Timedelta(0))
    assert gaps == []
    assert out.shape == (n_steps,)
    assert set(out.tolist()) <= set(values)
    hours = (first + np.arange(n_steps)) // 12
    np.testing.assert_array_equal(out, np.asarray(values)[hours])


def test_a_year_at_5min_with_scattered_nans_is_filled_completely() -> None:
    index = pd.date_range("2023-01-01T00:00Z", periods=8760, freq="h")
    rng = np.random.default_rng(0)
    series = pd.Series(rng.normal(100.0, 30.0, 8760), index=index)
    missing = rng.choice(np.arange(1, 8759), 50, replace=False)  # not at the ends
    series.iloc[missing] = np.nan
    for how in ("hold", "interpolate"):
        values, gaps = to_grid(series, index[0], M5, 105_120, how=how, max_gap=H * 3, source="year")
        assert values.shape == (105_120,)
        assert not np.isnan(values).any()
        assert gaps
