"""Typical-meteorological-year (TMY) weather from the files pvlib ships.

These let the built-in default scenario run with no data files at all. A TMY is a
representative year stitched from different calendar years; :func:`read_pvlib_tmy` lays it
over the requested calendar period (month, day and hour kept; 29 February repeats the 28th)
and places each hourly mean at the middle of its hour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from wattroute.errors import InputError

PVLIB_DATA = Path(pvlib.__file__).parent / "data"
TMY_FILES = {
    "723170TYA.CSV": "Greensboro NC, USA (TMY3)",
    "703165TY.csv": "Sand Point AK, USA (TMY3)",
    "12839.tm2": "Miami FL, USA (TMY2)",
}


def read_pvlib_tmy(
    name: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Hourly TMY weather covering ``[start, end]`` (UTC).

    Parameters
    ----------
    name
        File name in pvlib's data folder, one of :data:`TMY_FILES`.
    start, end
        Period to cover, tz-aware.

    Returns
    -------
    (pandas.DataFrame, dict)
        Columns ``ghi``, ``dni``, ``dhi`` (W/m^2), ``temperature_c`` (degrees Celsius),
        ``wind_speed_10m_m_per_s`` (m/s) and ``cloud_cover_pct`` (%), indexed by UTC time; and
        ``latitude``, ``longitude``, ``elevation_m``.
    """
    if name not in TMY_FILES:
        raise InputError(
            "pvlib_tmy",
            f"{name!r} is not a TMY file that pvlib ships.",
            "use one of: " + ", ".join(f"{k} ({v})" for k, v in TMY_FILES.items()) + ".",
        )
    path = PVLIB_DATA / name
    if name.endswith(".tm2"):
        raw, meta = pvlib.iotools.read_tmy2(str(path))
        frame = pd.DataFrame(
            {
                "ghi": raw["GHI"],
                "dni": raw["DNI"],
                "dhi": raw["DHI"],
                "temperature_c": raw["DryBulb"] / 10.0,
                "wind_speed_10m_m_per_s": raw["Wspd"] / 10.0,
                "cloud_cover_pct": raw["TotCld"] * 10.0,
            }
        )
        centre = pd.Timedelta(minutes=30)  # pvlib labels TMY2 hours by their start
    else:
        raw, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
        frame = pd.DataFrame(
            {
                "ghi": raw["ghi"],
                "dni": raw["dni"],
                "dhi": raw["dhi"],
                "temperature_c": raw["temp_air"],
                "wind_speed_10m_m_per_s": raw["wind_speed"],
                "cloud_cover_pct": raw["TotCld (tenths)"] * 10.0,
            }
        )
        centre = pd.Timedelta(minutes=-30)  # TMY3 labels hours by their end
    offset = pd.Timedelta(hours=float(meta["TZ"]))
    index = pd.DatetimeIndex(frame.index)
    local = index.tz_localize(None) if index.tz is not None else index
    month, day = np.asarray(local.month), np.asarray(local.day)
    minutes = np.asarray(local.hour) * 60 + np.asarray(local.minute)
    years = range(start.year - 1, end.year + 2)
    pieces = []
    for year in years:
        leap = pd.Timestamp(year=year, month=1, day=1).is_leap_year
        stamps = pd.to_datetime({"year": year, "month": month, "day": day}) + pd.to_timedelta(
            minutes, unit="min"
        )
        stamped = pd.DatetimeIndex(stamps)
        part = frame.set_axis(stamped)
        if leap:
            on_28th = (stamped.month == 2) & (stamped.day == 28)
            part = pd.concat(
                [part, frame[on_28th].set_axis(stamped[on_28th] + pd.Timedelta(days=1))]
            )
        pieces.append(part)
    out = pd.concat(pieces).sort_index()
    out = out[~out.index.duplicated(keep="first")]
    utc = (pd.DatetimeIndex(out.index) - offset + centre).tz_localize("UTC")
    out = out.set_axis(utc)
    out = out[
        (out.index >= start - pd.Timedelta(hours=2)) & (out.index <= end + pd.Timedelta(hours=2))
    ]
    info = {
        "latitude": float(meta["latitude"]),
        "longitude": float(meta["longitude"]),
        "elevation_m": float(meta.get("altitude", 0.0)),
    }
    return out.astype(np.float64), info
