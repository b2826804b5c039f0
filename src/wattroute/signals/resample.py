"""Put a measured time series onto the simulation's step grid.

:func:`to_grid` turns a ``pandas.Series`` with a timezone-aware DatetimeIndex (as the
``wattroute.iotools`` readers return) into one float64 value per simulation step, for the
grid instants ``start + i * step``, ``i = 0 .. n_steps - 1``.

Semantics
---------
**Checks.** The index must be a timezone-aware DatetimeIndex, sorted and without duplicates
(else :class:`~wattroute.errors.SignalError` naming the first offending timestamp). Values
must be numbers; ``±inf`` is an error.

**Native resolution** is the median spacing of the index.

**Missing data** is a NaN value or a missing timestamp. A *gap* is a run of missing native
instants between two valid values ``a`` and ``b``: it starts at ``a + resolution``, holds
``round((b - a) / resolution) - 1`` missing instants (so a spacing below 1.5 resolutions, e.g.
clock jitter, is not a gap) and its length is that count times the resolution. Only gaps that
change at least one grid value are checked and reported (a gap in December does not matter to
a January scenario; with ``how="hold"`` neither does a gap that no grid instant falls into):

- length <= ``max_gap``: filled (``hold``: the previous valid value is carried forward;
  ``interpolate``: linear in time between the valid neighbours) and reported as a
  :class:`FilledGap`;
- length > ``max_gap``: :class:`~wattroute.errors.SignalError` naming the source, the time
  range and length, and the fix (fill the gap in the file or raise ``max_gap``).

Leading and trailing NaNs are not gaps: they shorten the coverage.

**Coverage.** Valid data covers ``[first valid instant, last valid instant + resolution)``: each
value stands for one native interval. The grid period ``[start, start + n_steps * step)`` must
lie inside it, else a SignalError "<source> covers A .. B but the scenario needs C .. D".

**Values.** ``how="hold"`` (prices, carbon intensity: a value holds over its interval): the value
at a grid instant is that of the latest valid source instant at or before it.
``how="interpolate"`` (weather: instantaneous readings): linear in time between the valid
source instants on either side (``numpy.interp`` on seconds), holding the last value after the
last valid instant (still inside the coverage). Neither averages over the step: resampling to a
coarser step samples the series at the grid instants.

The result is a float64 array of length ``n_steps`` that contains no NaN. Everything is
vectorised: a year at 5-minute steps (105,120 values) takes about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from wattroute.errors import SignalError

__all__ = ["FilledGap", "to_grid"]


def _format_time(t: pd.Timestamp) -> str:
    """``2023-01-02T05:00Z`` (seconds and fractions only when present)."""
    t = t.tz_convert("UTC") if t.tzinfo is not None else t
    if t.second == 0 and t.microsecond == 0 and t.nanosecond == 0:
        return t.strftime("%Y-%m-%dT%H:%MZ")
    if t.microsecond == 0 and t.nanosecond == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.tz_localize(None).isoformat() + "Z"


def _format_duration(d: pd.Timedelta) -> str:
    """``3 h``, ``15 min``, ``90 s`` (the largest unit that divides it)."""
    ns = int(d.value)
    for unit_ns, unit in ((3_600_000_000_000, "h"), (60_000_000_000, "min")):
        if ns % unit_ns == 0:
            return f"{ns // unit_ns} {unit}"
    return f"{ns / 1e9:g} s"


@dataclass(frozen=True)
class FilledGap:
    """A gap in a source series that :func:`to_grid` filled.

    Attributes
    ----------
    source
        The file (and column) it came from, e.g. ``"grid/GB_2023.csv:carbon_intensity_g_per_kwh"``.
    start
        First missing native instant (UTC).
    end
        Last missing native instant (UTC).
    length
        ``end - start + native resolution``: the time the gap spans.
    """

    source: str
    start: pd.Timestamp
    end: pd.Timestamp
    length: pd.Timedelta

    def describe(self) -> str:
        """One line for logs, e.g. ``"grid/X.csv:price_usd_per_mwh: filled 3 h gap
        2023-01-02T05:00Z..2023-01-02T07:00Z"``."""
        return (
            f"{self.source}: filled {_format_duration(self.length)} gap "
            f"{_format_time(self.start)}..{_format_time(self.end)}"
        )


def _index_ns(series: pd.Series, source: str) -> np.ndarray:
    """The index as int64 ns since the epoch, after checking it is tz-aware, sorted, unique."""
    index = series.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        kind = (
            "a timezone-naive DatetimeIndex"
            if isinstance(index, pd.DatetimeIndex)
            else f"a {type(index).__name__}"
        )
        raise SignalError(
            source,
            f"is indexed by {kind}, not by timezone-aware timestamps.",
            "read the file with a wattroute.iotools reader, or index the series with "
            "tz-aware UTC timestamps (e.g. series.tz_localize('UTC')).",
        )
    if index.hasnans:
        raise SignalError(source, "has a missing (NaT) timestamp.", "fill in or drop that row.")
    times_ns = np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
    if times_ns.size >= 2:
        step_ns = np.diff(times_ns)
        bad = np.flatnonzero(step_ns <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            at = _format_time(pd.Timestamp(times_ns[i], tz="UTC"))
            if step_ns[i - 1] == 0:
                problem = f"has the timestamp {at} more than once."
            else:
                before = _format_time(pd.Timestamp(times_ns[i - 1], tz="UTC"))
                problem = f"is not sorted by time: {at} comes after {before}."
            raise SignalError(source, problem, "sort the file by time and remove duplicate rows.")
    return times_ns


def _values(series: pd.Series, times_ns: np.ndarray, source: str) -> np.ndarray:
    try:
        values = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError):
        raise SignalError(
            source, "has values that are not numbers.", "use a numeric column."
        ) from None
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        at = _format_time(pd.Timestamp(times_ns[infinite[0]], tz="UTC"))
        raise SignalError(
            source, f"has an infinite value at {at}.", "correct the value in the file."
        )
    return values


def to_grid(
    series: pd.Series,
    start: pd.Timestamp,
    step: pd.Timedelta,
    n_steps: int,
    *,
    how: Literal["hold", "interpolate"],
    max_gap: pd.Timedelta,
    source: str,
) -> tuple[np.ndarray, list[FilledGap]]:
    """Sample ``series`` at ``start + i * step`` for ``i < n_steps``, filling short gaps.

    See the module docstring for the exact semantics of gaps, coverage, ``hold`` and
    ``interpolate``.

    Parameters
    ----------
    series
        Values (any unit, kept as is) indexed by a tz-aware DatetimeIndex, sorted, unique.
    start
        Tz-aware first grid instant.
    step
        Grid spacing (positive).
    n_steps
        Number of grid instants (>= 1).
    how
        ``"hold"`` (prices, carbon) or ``"interpolate"`` (weather).
    max_gap
        Longest gap that may be filled; ``pd.Timedelta(0)`` fills none.
    source
        What the series is, for messages: ``"<file>:<column>"``.

    Returns
    -------
    (numpy.ndarray, list[FilledGap])
        ``n_steps`` float64 values without NaN, and the gaps that were filled, in time order.

    Raises
    ------
    SignalError
        Bad index, no valid value, a gap longer than ``max_gap``, or a grid period outside
        the data's coverage.
    ValueError
        ``start`` is naive, ``step`` is not positive, ``n_steps < 1``, ``max_gap < 0`` or
        ``how`` is unknown (programming errors, not bad data).
    """
    if how not in ("hold", "interpolate"):
        raise ValueError(f"how must be 'hold' or 'interpolate', not {how!r}")
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is None:
        raise ValueError(f"start must be timezone-aware, got {start_ts}")
    step_td, max_gap_td = pd.Timedelta(step), pd.Timedelta(max_gap)
    if step_td <= pd.Timedelta(0):
        raise ValueError(f"step must be positive, got {step_td}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be at least 1, got {n_steps}")
    if max_gap_td < pd.Timedelta(0):
        raise ValueError(f"max_gap must not be negative, got {max_gap_td}")

    times_ns = _index_ns(series, source)
    values = _values(series, times_ns, source)
    if times_ns.size < 2:
        raise SignalError(
            source,
            f"has {times_ns.size} timestamp(s); at least two are needed to know its resolution.",
            "supply a series that covers the scenario period.",
        )
    resolution_ns = int(np.median(np.diff(times_ns)))
    valid = ~np.isnan(values)
    valid_ns, valid_values = times_ns[valid], values[valid]

    start_ns = int(start_ts.as_unit("ns").value)
    step_ns = int(step_td.as_unit("ns").value)
    grid_ns = start_ns + np.arange(n_steps, dtype=np.int64) * step_ns
    end_ns = start_ns + n_steps * step_ns  # exclusive end of the period

    _check_coverage(source, times_ns, valid, resolution_ns, start_ns, end_ns)
    filled = _check_gaps(source, valid_ns, resolution_ns, grid_ns, how, int(max_gap_td.value))

    if how == "hold":
        idx = np.searchsorted(valid_ns, grid_ns, side="right") - 1
        out = valid_values[idx]
    else:
        out = np.interp((grid_ns - start_ns) / 1e9, (valid_ns - start_ns) / 1e9, valid_values)
    return np.ascontiguousarray(out, dtype=np.float64), filled


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


def _check_coverage(
    source: str,
    times_ns: np.ndarray,
    valid: np.ndarray,
    resolution_ns: int,
    start_ns: int,
    end_ns: int,
) -> None:
    needs = f"{_format_time(_ts(start_ns))} .. {_format_time(_ts(end_ns))}"
    fix = f"choose a scenario period within the data, or supply a file that covers {needs}."
    if not valid.any():
        raise SignalError(
            source,
            f"has no valid value (all {valid.size} are NaN), but the scenario needs {needs}.",
            fix,
        )
    first, last = np.flatnonzero(valid)[[0, -1]]
    cover_start, cover_end = int(times_ns[first]), int(times_ns[last]) + resolution_ns
    if start_ns < cover_start or end_ns > cover_end:
        trimmed = []
        if first > 0:
            trimmed.append(f"{first} leading")
        if last < valid.size - 1:
            trimmed.append(f"{valid.size - 1 - last} trailing")
        note = f" (after {' and '.join(trimmed)} NaN values)" if trimmed else ""
        raise SignalError(
            source,
            f"covers {_format_time(_ts(cover_start))} .. {_format_time(_ts(cover_end))}{note} "
            f"but the scenario needs {needs}.",
            fix,
        )


def _check_gaps(
    source: str,
    valid_ns: np.ndarray,
    resolution_ns: int,
    grid_ns: np.ndarray,
    how: str,
    max_gap_ns: int,
) -> list[FilledGap]:
    """Find the gaps that change a grid value; raise for long ones, describe short ones."""
    if valid_ns.size < 2:
        return []
    spacing = np.diff(valid_ns)
    n_missing = np.rint(spacing / resolution_ns).astype(np.int64) - 1
    candidates = np.flatnonzero(n_missing >= 1)
    if candidates.size == 0:
        return []
    before, after = valid_ns[candidates], valid_ns[candidates + 1]
    # Grid instants whose value the gap changes: hold -> those at or after the first missing
    # instant and before the next valid value; interpolate -> all strictly between the two.
    low = before + resolution_ns if how == "hold" else before + 1
    hits = np.searchsorted(grid_ns, after, side="left") - np.searchsorted(grid_ns, low, "left")
    relevant = hits > 0
    gap_start = (before + resolution_ns)[relevant]
    gap_len = (n_missing[candidates] * resolution_ns)[relevant]
    gap_before, gap_after = before[relevant], after[relevant]

    too_long = np.flatnonzero(gap_len > max_gap_ns)
    if too_long.size:
        k = int(too_long[0])
        first_missing, length = _ts(int(gap_start[k])), pd.Timedelta(int(gap_len[k]))
        last_missing = _ts(int(gap_start[k] + gap_len[k] - resolution_ns))
        more = (
            f" {too_long.size - 1} more gap(s) longer than max_gap follow."
            if too_long.size > 1
            else ""
        )
        raise SignalError(
            source,
            f"has a {_format_duration(length)} gap with no valid value from "
            f"{_format_time(first_missing)} to {_format_time(last_missing)} (between the "
            f"values at {_format_time(_ts(int(gap_before[k])))} and "
            f"{_format_time(_ts(int(gap_after[k])))}), longer than max_gap = "
            f"{_format_duration(pd.Timedelta(max_gap_ns))}.{more}",
            f"fill the gap in the file or raise max_gap (to at least {_format_duration(length)}).",
        )
    return [
        FilledGap(
            source=source,
            start=_ts(int(s)),
            end=_ts(int(s + n - resolution_ns)),
            length=pd.Timedelta(int(n)),
        )
        for s, n in zip(gap_start, gap_len, strict=True)
    ]
