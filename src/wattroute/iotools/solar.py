"""Read normalised solar traces: ``solar/solcast_normalized_5min_10_cities.csv``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from wattroute.errors import DataFileError
from wattroute.iotools.timeseries import _field, _read_timeseries_with_comments

__all__ = ["SOLCAST_START", "read_solcast"]

#: The instant that ``time = 0`` stands for in the Solcast example file shipped with Vessim.
SOLCAST_START = pd.Timestamp("2022-06-08T00:00Z")


def read_solcast(path: str | os.PathLike[str], start: pd.Timestamp = SOLCAST_START) -> pd.DataFrame:
    """Read a normalised solar-output trace (one column per city, 0..1 of peak output).

    The column ``time`` holds seconds since ``start``; every other column is a city (e.g.
    ``Berlin``, ``São Paulo``) whose values are the output as a fraction of peak, 0..1
    (multiply by the nameplate kW to get kW). A naive ``start`` is taken as UTC.

    Returns
    -------
    pandas.DataFrame
        One float64 column per city, indexed by a timezone-aware UTC DatetimeIndex named
        ``"timestamp"`` (5-minute steps in the Solcast file), rows in file order.

    Raises
    ------
    DataFileError
        Missing or malformed file, no ``time`` column, a non-numeric time or value, or a value
        outside 0..1.
    """
    frame, _ = _read_timeseries_with_comments(
        path,
        time_column="time",
        columns=None,
        time_unit="s",
        origin=start,
        timezone="UTC",
        fix_missing="the file needs a 'time' column of seconds since the start and one column "
        "per city.",
    )
    values = frame.to_numpy(dtype=np.float64)
    outside = (values < 0.0) | (values > 1.0)
    if outside.any():
        row, col = (int(i[0]) for i in np.nonzero(outside))
        raise DataFileError(
            _field(path),
            f"column {frame.columns[col]!r} has {values[row, col]} in data row {row + 1} "
            f"({frame.index[row].isoformat()}), but normalised output must be within 0..1.",
            "normalise the trace by its peak output (divide by the nameplate kW).",
        )
    return frame
