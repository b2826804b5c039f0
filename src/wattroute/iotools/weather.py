"""Read hourly weather at a site: ``weather/ZONE_YEAR.csv``."""

from __future__ import annotations

import math
import os

import pandas as pd

from wattroute.errors import DataFileError
from wattroute.iotools.timeseries import _field, _read_timeseries_with_comments

__all__ = ["WEATHER_COLUMNS", "read_weather"]

#: The numeric columns of a weather file, in order, with their units in their names.
WEATHER_COLUMNS: tuple[str, ...] = (
    "temperature_c",
    "relative_humidity_pct",
    "cloud_cover_pct",
    "wind_speed_10m_m_per_s",
)

_RANGES: dict[str, tuple[float, float]] = {
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
    "elevation_m": (-500.0, 9000.0),
}


def _parse_metadata(field: str, comments: list[str]) -> dict[str, float]:
    """``key=value`` pairs of the comment lines, as floats."""
    metadata: dict[str, float] = {}
    for line in comments:
        for token in line.replace(",", " ").split():
            if "=" not in token:
                continue
            key, _, text = token.partition("=")
            try:
                value = float(text)
            except ValueError:
                raise DataFileError(
                    field,
                    f"the comment line '# {line}' gives {key} = {text!r}, which is not a number.",
                    "write it like '# latitude=51.4938 longitude=-0.1630 elevation_m=29.0'.",
                ) from None
            low, high = _RANGES.get(key, (-math.inf, math.inf))
            if not low <= value <= high:
                raise DataFileError(
                    field,
                    f"the comment line gives {key} = {value}, outside {low} .. {high}.",
                    "correct the coordinates in the first line of the file.",
                )
            metadata[key] = value
    return metadata


def read_weather(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Read a weather file and the location it was measured at.

    The first line is a comment ``# latitude=.. longitude=.. elevation_m=..`` (degrees north,
    degrees east, metres above sea level); then the columns ``timestamp`` (UTC),
    ``temperature_c`` (deg C), ``relative_humidity_pct`` (%), ``cloud_cover_pct`` (%) and
    ``wind_speed_10m_m_per_s`` (m/s at 10 m). Extra columns are ignored.

    Returns
    -------
    (pandas.DataFrame, dict)
        The four columns as float64, indexed by a timezone-aware UTC DatetimeIndex named
        ``"timestamp"``; and the metadata, ``{"latitude": .., "longitude": .., "elevation_m": ..}``
        (every ``key=value`` of the comment lines; an empty dict if there is no comment).

    Raises
    ------
    DataFileError
        Missing or malformed file, a missing column, an unparsable timestamp or value, or a
        metadata value that is not a number or out of range.
    """
    frame, comments = _read_timeseries_with_comments(
        path,
        time_column="timestamp",
        columns={name: name for name in WEATHER_COLUMNS},
        time_unit=None,
        origin=None,
        timezone="UTC",
        fix_missing="a weather file needs the columns timestamp, "
        + ", ".join(WEATHER_COLUMNS)
        + ".",
    )
    return frame, _parse_metadata(_field(path), comments)
