"""Forecasts: what they predict, and that they never look ahead."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattroute.signals.forecast import (
    FORECASTERS,
    Blend,
    History,
    KnownShape,
    PerfectFor,
    Persistence,
    SeasonalNaive,
)

DAY = 24  # hourly steps


def _history(values: np.ndarray, step: int) -> History:
    return History({"x": values}, step)


def test_persistence_repeats_the_value_now():
    values = np.arange(50, dtype=float)[:, None]
    out = _history(values, 30).forecast("x", 5, Persistence(), DAY)
    np.testing.assert_array_equal(out[:, 0], [30.0] * 5)


def test_seasonal_naive_repeats_the_same_hour_of_the_latest_observed_day():
    hours = np.arange(24 * 4)
    values = (hours % 24).astype(float)[:, None] + 100 * (hours // 24)[:, None]
    now = 24 * 2 + 10  # day 2, 10:00
    out = _history(values, now).forecast("x", 30, SeasonalNaive(), DAY)
    # lead 1 (11:00 on day 2) -> 11:00 on day 1; lead 14 (00:00 on day 3) -> 00:00 on day 2
    assert out[0, 0] == 100 + 11
    assert out[13, 0] == 200 + 0
    # lead 30 (16:00 on day 3) is more than a day ahead of 10:00 on day 2: 16:00 on day 1
    assert out[29, 0] == 100 + 16


def test_seasonal_naive_falls_back_to_persistence_without_a_day_of_history():
    values = np.arange(5, dtype=float)[:, None]
    out = _history(values, 4).forecast("x", 3, SeasonalNaive(), DAY)
    np.testing.assert_array_equal(out[:, 0], [4.0, 4.0, 4.0])


def test_blend_starts_near_persistence_and_ends_near_seasonal():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(24 * 5, 2))
    h = _history(values, 24 * 3)
    blend = h.forecast("x", 24, Blend(tau_h=2.0), DAY)
    pers = h.forecast("x", 24, Persistence(), DAY)
    seas = h.forecast("x", 24, SeasonalNaive(), DAY)
    assert np.abs(blend[0] - pers[0]).max() < np.abs(blend[0] - seas[0]).max()
    np.testing.assert_allclose(blend[-1], seas[-1], atol=1e-4 * (1 + np.abs(seas[-1]).max()))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, DAY * 3), horizon=st.integers(1, 2 * DAY), data=st.data())
def test_blend_is_its_weighted_sum_of_persistence_and_seasonal_naive_to_the_last_bit(
    n, horizon, data
):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    past = rng.normal(size=(n, 3))
    tau_h = data.draw(st.floats(0.5, 12.0))
    leads_h = np.arange(1, horizon + 1) * (24.0 / DAY)
    weight = np.exp(-leads_h / tau_h)[:, np.newaxis]
    expected = weight * Persistence().forecast(past, horizon, DAY) + (
        1.0 - weight
    ) * SeasonalNaive().forecast(past, horizon, DAY)
    out = Blend(tau_h).forecast(past, horizon, DAY)
    assert out.tobytes() == expected.tobytes()
    out[:] = np.nan  # what a caller does with its forecast is no business of the next one's
    assert Blend(tau_h).forecast(past, horizon, DAY).tobytes() == expected.tobytes()


def test_history_hands_out_copies_of_the_past_only():
    values = np.arange(10, dtype=float)[:, None]
    h = _history(values, 4)
    past = h.last("x", 100)
    assert past.shape == (5, 1)
    past[:] = -1
    assert values[0, 0] == 0.0  # a copy, not a view


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(FORECASTERS)),
    n=st.integers(2, 24 * 4),
    data=st.data(),
)
def test_no_look_ahead_changing_any_value_after_now_never_changes_the_forecast(name, n, data):
    forecaster = FORECASTERS[name]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(size=(n, 3))
    now = data.draw(st.integers(0, n - 2))
    horizon = data.draw(st.integers(1, 48))
    before = History({"x": values}, now).forecast("x", horizon, forecaster, DAY)
    changed = values.copy()
    after_now = data.draw(st.integers(now + 1, n - 1))
    changed[after_now:] = rng.normal(size=changed[after_now:].shape) * 1e6
    after = History({"x": changed}, now).forecast("x", horizon, forecaster, DAY)
    np.testing.assert_array_equal(before, after)
    # ... while changing the value now does change it (the test can fail).
    changed_now = values.copy()
    changed_now[now] += 1e6
    moved = History({"x": changed_now}, now).forecast("x", horizon, forecaster, DAY)
    assert not np.array_equal(before, moved) or name == "seasonal-naive"


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_forecast_shape(name):
    values = np.ones((100, 4))
    out = _history(values, 99).forecast("x", 36, FORECASTERS[name], DAY)
    assert out.shape == (36, 4)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(FORECASTERS)), data=st.data())
def test_published_rows_replace_the_forecast_and_nothing_unpublished_is_read(name, data):
    forecaster = FORECASTERS[name]
    n = 24 * 4
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(size=(n, 2))
    now = data.draw(st.integers(0, n - 2))
    horizon = data.draw(st.integers(1, 48))
    # column 0 published up to a later row, column 1 only up to now
    until = data.draw(st.integers(now + 1, n))
    published = np.tile(np.arange(1, n + 1)[:, None], (1, 2))
    published[now, 0] = until
    before = History({"x": values}, now, {"x": published}).forecast("x", horizon, forecaster, DAY)
    known = min(until - now - 1, horizon)  # leads whose rows are published
    np.testing.assert_array_equal(before[:known, 0], values[now + 1 : now + 1 + known, 0])
    # Changing any unpublished value changes nothing.
    changed = values.copy()
    changed[until:, 0] += 1e6
    changed[now + 1 :, 1] += 1e6
    after = History({"x": changed}, now, {"x": published}).forecast("x", horizon, forecaster, DAY)
    np.testing.assert_array_equal(before, after)


def _sun(n: int) -> np.ndarray:
    """A clear-sky shape: half-sine days of 12 hourly steps, nights of zero, kW."""
    hours = np.arange(n) % DAY
    return np.where((hours >= 6) & (hours < 18), np.sin(np.pi * (hours - 6) / 12), 0.0) * 100


def test_solar_forecast_made_at_night_expects_the_sun_at_the_clear_sky_index_seen():
    n = DAY * 4
    shape = _sun(n)[:, None]
    actual = 0.6 * shape
    now = DAY * 2  # midnight
    out = History({"s": actual}, now, shapes={"s": shape}).forecast("s", DAY, Blend(), DAY)
    np.testing.assert_allclose(out[:, 0], 0.6 * shape[now + 1 : now + 1 + DAY, 0])
    # The raw signal's forecast from midnight would be nearly dark in the morning.
    raw = History({"s": actual}, now).forecast("s", DAY, Blend(), DAY)
    assert raw[6, 0] < out[6, 0]


def test_a_shape_made_once_with_its_peak_forecasts_as_its_values_do():
    n = DAY * 4
    shape = np.column_stack([_sun(n), np.zeros(n), 0.5 * _sun(n)])
    actual = shape * np.array([0.6, 1.0, 0.9]) + np.array([0.0, 40.0, 0.0])
    known = KnownShape.of(shape)
    np.testing.assert_array_equal(known.peak, [100.0, 0.0, 50.0])
    for now in (DAY * 2, DAY * 2 + 9):
        a = History({"s": actual}, now, shapes={"s": known}).forecast("s", DAY, Blend(), DAY)
        b = History({"s": actual}, now, shapes={"s": shape}).forecast("s", DAY, Blend(), DAY)
        np.testing.assert_array_equal(a, b)


def test_a_cloudy_morning_scales_the_day_and_fades_back_towards_yesterday():
    n = DAY * 4
    shape = _sun(n)[:, None]
    actual = shape.copy()
    now = DAY * 2 + 9  # 09:00, cloudy since 07:00
    actual[DAY * 2 + 7 : now + 1] *= 0.3
    out = History({"s": actual}, now, shapes={"s": shape}).forecast("s", 8, Blend(), DAY)
    index = out[:, 0] / shape[now + 1 : now + 9, 0]
    assert index[0] == pytest.approx(0.3 + 0.7 * (1 - np.exp(-1 / 3)), rel=1e-6)
    assert np.all(np.diff(index) > 0)  # back towards yesterday's clear sky
    assert index[-1] < 1.0


def test_columns_without_a_shape_are_forecast_as_they_are():
    n = DAY * 3
    values = np.column_stack([_sun(n), np.linspace(0, 1, n)])
    shape = np.column_stack([_sun(n), np.zeros(n)])
    now = DAY * 2
    out = History({"s": values}, now, shapes={"s": shape}).forecast("s", 5, Persistence(), DAY)
    np.testing.assert_array_equal(out[:, 1], values[now, 1])


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_columns_with_and_without_a_shape_are_forecast_as_each_would_be_alone(name):
    """Sites with solar and sites without, side by side, get to the last bit the forecast
    each column gets in a fleet of its own kind."""
    forecaster = FORECASTERS[name]
    n = DAY * 4
    rng = np.random.default_rng(3)
    sun = _sun(n)[:, None] * rng.uniform(0.5, 2.0, size=(1, 3))
    shape = np.column_stack([sun[:, 0], np.zeros(n), sun[:, 1], np.zeros(n), sun[:, 2]])
    values = np.abs(shape + rng.normal(0.0, 5.0, size=shape.shape))
    for now in (DAY // 2, DAY * 2 + 3, DAY * 3 + 11):
        out = History({"s": values}, now, shapes={"s": shape}).forecast(
            "s", DAY + 5, forecaster, DAY
        )
        lit, dark = [0, 2, 4], [1, 3]
        alone_lit = History({"s": values[:, lit]}, now, shapes={"s": shape[:, lit]})
        alone_dark = History({"s": values[:, dark]}, now)
        assert out[:, lit].tobytes() == alone_lit.forecast("s", DAY + 5, forecaster, DAY).tobytes()
        assert (
            out[:, dark].tobytes() == alone_dark.forecast("s", DAY + 5, forecaster, DAY).tobytes()
        )


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(FORECASTERS)), data=st.data())
def test_no_look_ahead_with_a_shape_changing_the_future_output_never_changes_the_forecast(
    name, data
):
    forecaster = FORECASTERS[name]
    n = DAY * 4
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = _sun(n)[:, None] * rng.uniform(0.5, 2.0, size=(1, 2))
    values = shape * rng.uniform(0.0, 1.2, size=(n, 2))
    now = data.draw(st.integers(0, n - 2))
    horizon = data.draw(st.integers(1, 48))
    before = History({"s": values}, now, shapes={"s": shape}).forecast(
        "s", horizon, forecaster, DAY
    )
    changed = values.copy()
    changed[now + 1 :] = rng.uniform(0, 500, size=changed[now + 1 :].shape)
    after = History({"s": changed}, now, shapes={"s": shape}).forecast(
        "s", horizon, forecaster, DAY
    )
    np.testing.assert_array_equal(before, after)
    assert (before >= 0).all()


def test_a_provider_forecast_received_by_now_replaces_the_forecasters_guess():
    values = np.arange(60, dtype=float)[:, None]
    rows = np.full((60, 1), np.nan)
    received = np.full((60, 1), np.iinfo(np.int64).max)
    rows[31:34, 0] = [500.0, 501.0, 502.0]
    received[31:33, 0] = 30  # the weather forecast of steps 31-32 came at step 30
    received[33, 0] = 31  # that of step 33 only later: not known at step 30
    history = History({"x": values}, 30, forecasts={"x": (rows, received)})
    out = history.forecast("x", 5, Persistence(), DAY)[:, 0]
    np.testing.assert_array_equal(out, [500.0, 501.0, 30.0, 30.0, 30.0])


def test_perfect_for_reads_the_future_of_its_signals_only():
    """What one signal's forecast error costs is measured by forecasting that signal perfectly
    and the others as before: the named signal (and its keyed variants) gets the actual
    future; every other is the rest's forecast, published rows included, and reads nothing
    unpublished after now."""
    rng = np.random.default_rng(3)
    n, now, horizon = 4 * DAY, 2 * DAY + 5, 30
    signals = {name: rng.normal(size=(n, 2)) for name in ("wind_kw", "rate_rps:chat", "price")}
    published = np.tile(np.arange(1, n + 1)[:, None], (1, 2))
    published[now, 0] = now + 11  # ten rows of column 0 published ahead
    forecaster = PerfectFor(("wind_kw", "rate_rps"), rest=Blend())

    def history(values: dict[str, np.ndarray]) -> History:
        return History(values, now, {"price": published})

    for name in ("wind_kw", "rate_rps:chat"):
        got = history(signals).forecast(name, horizon, forecaster, DAY)
        np.testing.assert_array_equal(got, signals[name][now + 1 : now + 1 + horizon])
    price = history(signals).forecast("price", horizon, forecaster, DAY)
    np.testing.assert_array_equal(price, history(signals).forecast("price", horizon, Blend(), DAY))
    np.testing.assert_array_equal(price[:10, 0], signals["price"][now + 1 : now + 11, 0])
    changed = dict(signals, price=signals["price"].copy())
    changed["price"][now + 11 :, 0] += 1e6
    changed["price"][now + 1 :, 1] += 1e6
    np.testing.assert_array_equal(
        history(changed).forecast("price", horizon, forecaster, DAY), price
    )
    assert forecaster.name == "perfect wind_kw+rate_rps, else blend"
