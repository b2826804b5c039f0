"""Read inference request logs: ``workloads/azure_llm_inference_conv_2023.csv``."""

from __future__ import annotations

import os

import pandas as pd

from wattroute.iotools.timeseries import _field, _parse_iso_times, _read_table, _require_columns

__all__ = ["read_request_log"]


def read_request_log(
    path: str | os.PathLike[str], *, timestamp_column: str = "TIMESTAMP", timezone: str = "UTC"
) -> pd.DatetimeIndex:
    """Read the arrival time of every request in a request log.

    The Azure LLM inference trace has ``TIMESTAMP`` values such as
    ``2023-11-16 18:15:46.6805900`` (naive, UTC, 100 ns precision); other columns (token
    counts) are ignored. Naive timestamps are taken to be local times in ``timezone``.

    Returns
    -------
    pandas.DatetimeIndex
        One entry per request, sorted, timezone-aware UTC, nanosecond resolution, named
        ``"timestamp"``. Requests at the same instant are kept.

    Raises
    ------
    DataFileError
        Missing or malformed file, a missing column, or an empty or unparsable timestamp
        (named by its data row).
    """
    field = _field(path)
    frame, _ = _read_table(path)
    _require_columns(
        field,
        frame,
        [timestamp_column],
        "rename the column in the file, or pass timestamp_column= to name it.",
    )
    times = _parse_iso_times(field, frame[timestamp_column], timestamp_column, timezone)
    return times.sort_values()
