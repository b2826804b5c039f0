"""Forecasts that use only data known at or before now.

A forecaster maps the past of a signal to its next ``horizon`` steps. It never receives the
future: policies see signals through :class:`History`, which hands out copies of the rows up to
and including the current step, so a forecast made at step ``k`` cannot depend on a value after
``k``, whatever the forecaster does. The one kind of future value a planner may read is one
already published: a day-ahead market's prices (:mod:`wattroute.signals.publication`);
:meth:`History.forecast` puts those in place of the forecaster's guess.

A signal may also follow a *shape* known ahead: solar output follows the sun, and its output
under a cloudless sky is computable for any time. For such a signal the forecaster predicts
the clear-sky index (output / clear-sky output) from its past, and the forecast is that index
times the clear-sky output to come — so a forecast made at night still expects the sun to
rise, and a cloudy morning scales the day rather than flattening it.

* :class:`Persistence`: tomorrow is like now.
* :class:`SeasonalNaive`: each future step repeats the same time of day on the most recent
  day whose value is known.
* :class:`Blend`: persistence for the next few hours fading into seasonal-naive, with weight
  ``exp(-h / tau)`` on persistence at lead ``h`` steps.

:class:`Clairvoyant` is the deliberate exception, for evaluation only: it hands a planner the
actual future (perfect forecasts) or the future with noise of a chosen size. :class:`PerfectFor`
hands it the actual future of some signals only, to measure what each signal's forecast error
costs.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

import numpy as np

from wattroute.errors import InputError


class Forecaster(Protocol):
    """Predicts the next ``horizon`` steps of a signal from its past."""

    @property
    def name(self) -> str:
        """Short name, e.g. ``"blend"``."""
        ...

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        """How many past rows (including now) the forecaster reads."""
        ...

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        """Forecast steps ``now+1 .. now+horizon``.

        Parameters
        ----------
        past
            Values up to and including now, shape ``(n, S)``, oldest first; ``n >= 1``.
        horizon
            Number of future steps.
        steps_per_day
            Steps in a day, for daily seasonality.

        Returns
        -------
        numpy.ndarray
            Shape ``(horizon, S)``.
        """
        ...


@runtime_checkable
class ReadsAhead(Protocol):
    """A forecaster that reads the actual future — for evaluation only (:class:`Clairvoyant`).

    :meth:`History.forecast` hands such a forecaster the whole series instead of its past.
    """

    def forecast_ahead(
        self, values: np.ndarray, step: int, horizon: int, steps_per_day: int, key: str
    ) -> np.ndarray:
        """The next ``horizon`` rows after ``step`` of the full series ``values`` (of the
        signal named ``key``), shape ``(horizon, S)``."""
        ...


@functools.cache
def _reads_ahead(kind: type) -> bool:
    """Whether forecasters of class ``kind`` are :class:`ReadsAhead`: decided once per class,
    since a protocol ``isinstance`` check inspects the attributes on every call and policies
    forecast several signals at every decision."""
    return callable(getattr(kind, "forecast_ahead", None))


@dataclass(frozen=True)
class Persistence:
    """The last known value, held over the horizon."""

    name: str = "persistence"

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        return 1

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        return np.repeat(past[-1:], horizon, axis=0)


@dataclass(frozen=True)
class SeasonalNaive:
    """The value at the same time of day on the latest day already observed.

    For lead ``h`` (1-based) the forecast is the value ``m * steps_per_day`` steps before the
    target, with ``m`` the smallest whole number of days that reaches back to now or earlier.
    Leads with no such value (too little history) fall back to persistence.
    """

    name: str = "seasonal-naive"

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        days_back = -(-horizon // steps_per_day)  # ceil
        return days_back * steps_per_day + 1

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        rows = _seasonal_rows(past.shape[0], horizon, steps_per_day)
        # A forecast is the caller's to change: a slice of the past is copied out of it.
        return past[rows].copy() if isinstance(rows, slice) else past[rows]


@functools.cache
def _seasonal_rows(n: int, horizon: int, steps_per_day: int) -> slice | np.ndarray:
    """The row of ``n`` past rows that :class:`SeasonalNaive` repeats at each lead
    ``1 .. horizon``: a slice where they follow one another (a day of history for at most a
    day ahead: the usual case, read without a gather), else an index array ``(horizon,)``
    (read-only, being shared). Made once per shape, since policies forecast every signal at
    every step with the same ``n`` and ``horizon``."""
    leads = np.arange(1, horizon + 1)
    days_back = -(-leads // steps_per_day)
    index = n - 1 + leads - days_back * steps_per_day
    index = np.where(index >= 0, index, n - 1)
    if index.size and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    index.flags.writeable = False
    return index


@dataclass(frozen=True)
class SeasonalMean:
    """The mean of the same time of day over the last ``days`` observed days.

    Less noisy than :class:`SeasonalNaive` (one day's accident does not repeat); leads with no
    observed day fall back to persistence.
    """

    days: int = 3
    name: str = "seasonal-mean"

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        return (
            SeasonalNaive().history_needed(horizon, steps_per_day) + (self.days - 1) * steps_per_day
        )

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        n = past.shape[0]
        leads = np.arange(1, horizon + 1)
        first_back = -(-leads // steps_per_day)  # whole days back to reach the past
        total = np.zeros((horizon, *past.shape[1:]))
        count = np.zeros(horizon)
        for extra in range(self.days):
            index = n - 1 + leads - (first_back + extra) * steps_per_day
            ok = index >= 0
            total[ok] += past[index[ok]]
            count += ok
        held = np.repeat(past[-1:], horizon, axis=0)
        seen = count > 0
        total[seen] /= count[seen][:, np.newaxis] if total.ndim > 1 else count[seen]
        total[~seen] = held[~seen]
        return total


@dataclass(frozen=True)
class Blend:
    """Persistence at short leads fading into seasonal-naive.

    Parameters
    ----------
    tau_h
        Lead, hours, at which persistence's weight has fallen to ``1/e``.
    """

    tau_h: float = 3.0
    name: str = "blend"

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        return SeasonalNaive().history_needed(horizon, steps_per_day)

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        # weight x persistence + (1 - weight) x seasonal-naive, the same operations on the
        # same values as forming each forecast in full, with the weights made once, the last
        # row broadcast rather than repeated and the seasonal rows read in place (a tenth of
        # greedy's decision went here).
        weight, rest = _blend_weights(horizon, steps_per_day, self.tau_h)
        blended = weight * past[-1]
        blended += rest * past[_seasonal_rows(past.shape[0], horizon, steps_per_day)]
        return blended


@functools.cache
def _blend_weights(horizon: int, steps_per_day: int, tau_h: float) -> tuple[np.ndarray, np.ndarray]:
    """:class:`Blend`'s weight on persistence at leads ``1 .. horizon`` and the rest, one
    minus it, ``(horizon, 1)`` each (read-only, being shared)."""
    step_h = 24.0 / steps_per_day
    leads_h = np.arange(1, horizon + 1) * step_h
    weight = np.exp(-leads_h / tau_h)[:, np.newaxis]
    rest = 1.0 - weight
    weight.flags.writeable = False
    rest.flags.writeable = False
    return weight, rest


@dataclass(frozen=True)
class Clairvoyant:
    """The actual future, optionally with relative noise: **for evaluation only**.

    It is the one forecaster that reads values after now — on purpose, to give a planner
    perfect forecasts (``error=0``) or forecasts of known quality (the forecast-error sweep).
    The noise at lead ``h`` steps is Gaussian with standard deviation
    ``error x sqrt(h / steps_per_day)`` relative to the true value (so ``error`` is the
    relative error one day ahead), drawn from a generator seeded by the signal name, the
    current step and ``seed``, so that runs are reproducible.
    """

    error: float = 0.0
    seed: int = 0

    @property
    def name(self) -> str:
        return "perfect" if self.error == 0 else f"noisy-{self.error:g}"

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        return 1

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        """Without the future it can only hold the present (used when none is given)."""
        return Persistence().forecast(past, horizon, steps_per_day)

    def forecast_ahead(
        self, values: np.ndarray, step: int, horizon: int, steps_per_day: int, key: str
    ) -> np.ndarray:
        """The next ``horizon`` rows after ``step`` of the full series ``values``."""
        future = _rows_ahead(values, step, horizon)
        if self.error == 0:
            return future
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode()), step])
        lead = np.sqrt(np.arange(1, horizon + 1) / steps_per_day)[:, np.newaxis]
        noise = rng.normal(0.0, 1.0, size=future.shape) * self.error * lead
        return future * (1.0 + noise)


@dataclass(frozen=True)
class PerfectFor:
    """The actual future of the named signals, and ``rest``'s forecasts of the others: **for
    evaluation only** (what each signal's forecast error costs a planner).

    Parameters
    ----------
    signals
        Signal names, e.g. ``("wind_kw",)``; a name also covers its keyed variants (``rate_rps``
        covers ``rate_rps:chat``).
    rest
        The forecaster of every other signal, with the published rows and known shapes
        :meth:`History.forecast` adds to it.
    """

    signals: tuple[str, ...]
    rest: Forecaster = Blend()

    @property
    def name(self) -> str:
        return f"perfect {'+'.join(self.signals)}, else {self.rest.name}"

    def covers(self, key: str) -> bool:
        """Whether the signal named ``key`` is forecast perfectly."""
        return key.split(":", 1)[0] in self.signals

    def history_needed(self, horizon: int, steps_per_day: int) -> int:
        return self.rest.history_needed(horizon, steps_per_day)

    def forecast(self, past: np.ndarray, horizon: int, steps_per_day: int) -> np.ndarray:
        return self.rest.forecast(past, horizon, steps_per_day)


FORECASTERS: Mapping[str, Forecaster] = {
    f.name: f for f in (Persistence(), SeasonalNaive(), Blend())
}


def get_forecaster(name: str, field: str = "--forecaster") -> Forecaster:
    """A forecaster by name: one of :data:`FORECASTERS`, or ``"perfect"`` (:class:`Clairvoyant`,
    the actual future: for evaluation only); any other name is an :class:`InputError` on
    ``field``."""
    if name == "perfect":
        return Clairvoyant()
    if name not in FORECASTERS:
        raise InputError(
            field,
            f"unknown forecaster {name!r}.",
            f"use one of: {', '.join([*FORECASTERS, 'perfect'])}.",
        )
    return FORECASTERS[name]


@dataclass(frozen=True, eq=False)
class KnownShape:
    """A shape known ahead that a signal follows (solar under a cloudless sky): ``values``
    ``(N, S)`` in the signal's unit, and ``peak`` ``(S,)``, each column's largest value (0: the
    column has no shape). Made once per scenario (:meth:`of`): a forecast reads the peak, and
    finding it anew over a year of steps at every decision cost more than the forecast."""

    values: np.ndarray
    peak: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> KnownShape:
        return cls(values, values.max(axis=0))


class History:
    """Read-only access to signals as known at the current step.

    Parameters
    ----------
    signals
        Full arrays of shape ``(N, S)`` by name. Only rows ``<= step`` are ever handed out,
        except those a publication rule says are already known.
    step
        The current step.
    published
        For signals published ahead (day-ahead prices,
        :mod:`wattroute.signals.publication`), per name an ``(N, S)`` integer array: at step
        ``k`` the rows before ``published[name][k, s]`` of column ``s`` are known.
    shapes
        For signals that follow a shape known ahead (solar under a clear sky), per name the
        shape (:class:`KnownShape`, or its values ``(N, S)`` in the signal's unit); columns
        that are all zero have none.
    forecasts
        Forecasts a provider gave (a numerical weather forecast turned into solar output), per
        name the rows ``(N, S)`` (NaN: none) and the step each row was received at ``(N, S)``:
        a row received by now takes the forecaster's place; one received later is never read.
    """

    __slots__ = ("_forecasts", "_published", "_shapes", "_signals", "_step")

    def __init__(
        self,
        signals: Mapping[str, np.ndarray],
        step: int,
        published: Mapping[str, np.ndarray] | None = None,
        shapes: Mapping[str, KnownShape | np.ndarray] | None = None,
        forecasts: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self._signals = signals
        self._step = step
        self._published = published or {}
        self._shapes = shapes or {}
        self._forecasts = forecasts or {}

    @property
    def step(self) -> int:
        return self._step

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._signals)

    def last(self, name: str, n: int) -> np.ndarray:
        """A copy of the last ``n`` rows up to and including now, oldest first, ``(<=n, S)``."""
        values = self._signals[name]
        first = max(0, self._step + 1 - n)
        return np.array(values[first : self._step + 1])

    def now(self, name: str) -> np.ndarray:
        """A copy of the current row, shape ``(S,)``."""
        return np.array(self._signals[name][self._step])

    def forecast(
        self, name: str, horizon: int, forecaster: Forecaster, steps_per_day: int
    ) -> np.ndarray:
        """Forecast of ``name`` for the next ``horizon`` steps, shape ``(horizon, S)``: the
        forecaster's (of the clear-sky index, for a signal with a shape known ahead), a
        provider's forecast where one was received by now, and the rows already published in
        their place."""
        if _reads_ahead(type(forecaster)):
            return cast(ReadsAhead, forecaster).forecast_ahead(
                self._signals[name], self._step, horizon, steps_per_day, name
            )
        if isinstance(forecaster, PerfectFor):
            if forecaster.covers(name):
                return _rows_ahead(self._signals[name], self._step, horizon)
            forecaster = forecaster.rest
        shape = self._shapes.get(name)
        if shape is not None:
            if not isinstance(shape, KnownShape):
                shape = KnownShape.of(shape)
            predicted = self._forecast_by_shape(name, shape, horizon, forecaster, steps_per_day)
        else:
            past = self.last(name, forecaster.history_needed(horizon, steps_per_day))
            predicted = forecaster.forecast(past, horizon, steps_per_day)
        given = self._forecasts.get(name)
        if given is not None:
            rows, received = (a[self._step + 1 : self._step + 1 + horizon] for a in given)
            usable = np.isfinite(rows) & (received <= self._step)
            predicted[: rows.shape[0]][usable] = rows[usable]
        published = self._published.get(name)
        if published is None:
            return predicted
        ahead = self._signals[name][self._step + 1 : self._step + 1 + horizon]
        rows = self._step + 1 + np.arange(ahead.shape[0])
        known = rows[:, np.newaxis] < published[self._step]  # (lead, S)
        predicted[: ahead.shape[0]][known] = ahead[known]
        return predicted

    def _forecast_by_shape(
        self,
        name: str,
        known: KnownShape,
        horizon: int,
        forecaster: Forecaster,
        steps_per_day: int,
    ) -> np.ndarray:
        """The forecaster's prediction of ``name`` / ``shape`` (the clear-sky index) times the
        shape to come. The index is read where the shape is at least
        :data:`SHAPE_FLOOR_SHARE` of its peak (dawn and dusk make it noise); in between it
        holds its last value, and before any it is 1. Columns without a shape are forecast
        as they are.

        The two kinds of column are forecast apart, each kind only once: every forecaster
        predicts a column from that column's past alone, so this is what forecasting all
        columns both ways and keeping each column's own gives, to the last bit, at half the
        work where half the sites have no solar."""
        past = self.last(name, forecaster.history_needed(horizon, steps_per_day) + steps_per_day)
        first = self._step + 1 - past.shape[0]
        shape, peak = known.values, known.peak
        has = peak > 0
        # Plain slices where every column has a shape: no copies.
        lit_columns: slice | np.ndarray = slice(None) if has.all() else has
        predicted = np.empty((horizon, past.shape[1]))
        if has.any():
            seen = shape[first : self._step + 1][:, lit_columns]
            lit = seen >= SHAPE_FLOOR_SHARE * peak[lit_columns]
            index = np.full(seen.shape, np.nan)
            np.divide(past[:, lit_columns], seen, out=index, where=lit)
            index = _hold_forward(index, fill=1.0)
            ratio = np.clip(forecaster.forecast(index, horizon, steps_per_day), 0.0, MAX_INDEX)
            predicted[:, lit_columns] = (
                ratio * _rows_ahead(shape, self._step, horizon)[:, lit_columns]
            )
        if not has.all():
            predicted[:, ~has] = forecaster.forecast(past[:, ~has], horizon, steps_per_day)
        return predicted


SHAPE_FLOOR_SHARE = 0.1
"""Share of a shape's peak below which the clear-sky index is not read (low sun: noise)."""

MAX_INDEX = 1.5
"""Cap on a forecast clear-sky index (cloud-edge enhancement seldom exceeds it)."""


def _hold_forward(values: np.ndarray, fill: float) -> np.ndarray:
    """Replace NaNs by the last value before them in each column (``fill`` if none)."""
    n_rows, n_columns = values.shape
    rows = np.where(np.isnan(values), 0, np.arange(n_rows)[:, np.newaxis])
    np.maximum.accumulate(rows, axis=0, out=rows)
    # One gather from the flat array by position (row x columns + column): the same entries
    # as indexing by (row, column) pairs, with a quarter less work.
    held = values.ravel()[rows * n_columns + np.arange(n_columns)]
    return np.where(np.isnan(held), fill, held)


def _rows_ahead(values: np.ndarray, step: int, horizon: int) -> np.ndarray:
    """Rows ``step + 1 .. step + horizon`` of a series known ahead, the last row held past
    its end."""
    ahead = values[step + 1 : step + 1 + horizon]
    if ahead.shape[0] < horizon:
        tail = np.repeat(values[-1:], horizon - ahead.shape[0], axis=0)
        ahead = np.concatenate([ahead, tail]) if ahead.size else tail
    return np.array(ahead, dtype=np.float64)
