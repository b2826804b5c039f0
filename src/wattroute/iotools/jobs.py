"""Read batch-job traces: ``workloads/alibaba_pai_jobs_*.csv``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from wattroute.errors import DataFileError
from wattroute.iotools.timeseries import (
    TIME_UNITS_S,
    _field,
    _float_column,
    _read_table,
    _require_columns,
)

__all__ = ["read_job_trace"]


def read_job_trace(
    path: str | os.PathLike[str],
    *,
    arrival_column: str = "arrival_time",
    duration_column: str = "length",
    accelerators_column: str = "cpus",
    time_unit: str = "h",
) -> pd.DataFrame:
    """Read a batch-job trace: one job per row, its arrival, duration and accelerators.

    Parameters
    ----------
    path
        The CSV file. The Alibaba PAI files use ``arrival_time`` and ``length`` in hours
        (``alibaba_pai_jobs_100k.csv``) or in seconds (``alibaba_pai_jobs_1k.csv``: pass
        ``time_unit="s"``), and ``cpus`` for the resource units requested.
    arrival_column, duration_column, accelerators_column
        Names of the columns holding the arrival time since the start of the trace, the run
        time, and the number of accelerators (resource units) of each job.
    time_unit
        Unit of the arrival and duration columns: ``"s"``, ``"min"`` or ``"h"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``arrival_h`` (hours since the start of the trace, >= 0), ``duration_h``
        (hours, > 0) and ``accelerators`` (> 0), all float64, in file order, with a
        RangeIndex.

    Raises
    ------
    DataFileError
        Missing or malformed file, a missing column, a bad ``time_unit``, or a job (named by
        its 1-based data row) with an empty, non-numeric or infinite value, a negative
        arrival, or a non-positive duration or accelerator count.
    """
    field = _field(path)
    if time_unit not in TIME_UNITS_S:
        raise DataFileError(
            field,
            f"time_unit {time_unit!r} is not one of {', '.join(repr(u) for u in TIME_UNITS_S)}.",
            "pass time_unit='s', 'min' or 'h' (the unit of the arrival and duration columns).",
        )
    frame, _ = _read_table(path)
    names = {
        "arrival_h": arrival_column,
        "duration_h": duration_column,
        "accelerators": accelerators_column,
    }
    _require_columns(
        field,
        frame,
        list(names.values()),
        "rename the column in the file, or pass arrival_column=, duration_column= or "
        "accelerators_column= to name it.",
    )
    hours_per_unit = TIME_UNITS_S[time_unit] / 3600.0
    out: dict[str, np.ndarray] = {}
    for name, column in names.items():
        values = _float_column(field, frame, column)
        bad = ~np.isfinite(values)
        if name == "arrival_h":
            problem, bad = "a negative arrival time", bad | (values < 0.0)
        else:
            problem, bad = "a value that is not positive", bad | (values <= 0.0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "no value" if np.isnan(values[row]) else f"{problem} ({values[row]:g})"
            raise DataFileError(
                field,
                f"data row {row + 1} has {what} in column {column!r}.",
                "fix or delete that job; every job needs an arrival time >= 0, a duration > 0 "
                "and at least some accelerators.",
            )
        out[name] = values * hours_per_unit if name != "accelerators" else values
    return pd.DataFrame(out, columns=list(names))
