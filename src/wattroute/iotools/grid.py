"""Read hourly grid signals: ``grid/ZONE_YEAR.csv``."""

from __future__ import annotations

import os

import pandas as pd

from wattroute.iotools.timeseries import _read_timeseries_with_comments

__all__ = ["GRID_COLUMNS", "read_grid"]

#: The numeric columns of a grid file, in order, with their units in their names.
GRID_COLUMNS: tuple[str, ...] = (
    "carbon_intensity_g_per_kwh",
    "carbon_intensity_lca_g_per_kwh",
    "low_carbon_pct",
    "renewable_pct",
    "price_usd_per_mwh",
)


def read_grid(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a grid-signal file (hourly carbon intensity, grid mix and price of one zone).

    The file has a ``timestamp`` column (UTC, start of the hour) and the columns
    ``carbon_intensity_g_per_kwh`` (gCO2eq/kWh, average, direct emissions),
    ``carbon_intensity_lca_g_per_kwh`` (gCO2eq/kWh, life-cycle), ``low_carbon_pct`` and
    ``renewable_pct`` (% of the grid mix) and ``price_usd_per_mwh`` (USD/MWh, may be negative).
    Extra columns are ignored.

    Empty cells are kept as NaN and do not fail here: a zone without a market price (GB, IN-WE)
    has an all-NaN ``price_usd_per_mwh`` column. Whether NaNs matter is decided when a column is
    put on the simulation grid (:func:`wattroute.signals.resample.to_grid`).

    Returns
    -------
    pandas.DataFrame
        The five columns above as float64, indexed by a timezone-aware UTC DatetimeIndex named
        ``"timestamp"``, rows in file order.

    Raises
    ------
    DataFileError
        Missing or malformed file, a missing column, an unparsable timestamp or value.
    """
    frame, _ = _read_timeseries_with_comments(
        path,
        time_column="timestamp",
        columns={name: name for name in GRID_COLUMNS},
        time_unit=None,
        origin=None,
        timezone="UTC",
        fix_missing="a grid file needs the columns timestamp, "
        + ", ".join(GRID_COLUMNS)
        + " (leave price_usd_per_mwh empty if the zone has no price).",
    )
    return frame
