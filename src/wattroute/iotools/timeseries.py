"""Read a generic time-series CSV file, and the helpers the other readers share.

A time-series CSV has one time column and any number of numeric columns. Lines whose first
non-blank character is ``#`` are comments and are ignored (:func:`read_weather` reads its
metadata from them). Data rows are numbered from 1, not counting the header, blank lines and
comments; every error names the file as given, the column, the data row and, where known, its
timestamp.

Every reader returns timestamps as a timezone-aware UTC :class:`pandas.DatetimeIndex` with
nanosecond resolution, named ``"timestamp"``. Rows are returned in file order; checking that
they are sorted, unique and gap-free is the job of :func:`wattroute.signals.resample.to_grid`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd

from wattroute.errors import DataFileError

__all__ = ["read_timeseries"]

#: Time units accepted for numeric time columns, and their length in seconds.
TIME_UNITS_S: dict[str, float] = {"s": 1.0, "min": 60.0, "h": 3600.0}

PathType = str | os.PathLike[str]
TimeUnit = Literal["s", "min", "h"]


def _field(path: PathType) -> str:
    """The file path exactly as the caller gave it, for error messages."""
    return os.fspath(path)


def _read_text(path: PathType) -> str:
    """Read a whole text file as UTF-8, turning every OS/decoding failure into DataFileError."""
    field = _field(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise DataFileError(
            field,
            f"file not found (looked for {Path(path).resolve()}).",
            "check the path; a relative path resolves against the scenario's data_dir (its "
            "folder by default) or --data-dir.",
        ) from None
    except IsADirectoryError:
        raise DataFileError(
            field, "is a directory, not a CSV file.", "name a .csv file inside it."
        ) from None
    except PermissionError:
        raise DataFileError(
            field, "cannot be read: permission denied.", "make the file readable."
        ) from None
    except UnicodeDecodeError as exc:
        raise DataFileError(
            field,
            f"is not UTF-8 text (undecodable byte at offset {exc.start}); "
            "it may be a binary or spreadsheet file.",
            "export it as a UTF-8 encoded CSV file.",
        ) from None
    except OSError as exc:
        raise DataFileError(field, f"cannot be read: {exc.strerror or exc}.", "") from None


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _split_comments(text: str) -> tuple[list[str], str]:
    """Split file text into its comment lines (without the ``#``) and the CSV body."""
    if "#" not in text:
        return [], text
    lines = text.splitlines(keepends=True)
    comments = [line.strip().lstrip("#").strip() for line in lines if _is_comment(line)]
    # Comment lines become blank lines (which the CSV parser skips) so that the line numbers
    # in parser messages still match the file.
    body = "".join("\n" if _is_comment(line) else line for line in lines)
    return comments, body


def _parse_csv(field: str, body: str) -> pd.DataFrame:
    """Parse CSV text (comments already removed) into a DataFrame with stripped column names."""
    if not body.strip():
        raise DataFileError(
            field,
            "is empty: it has no header row and no data.",
            "supply a CSV file with a header row and at least one data row.",
        )
    try:
        frame = pd.read_csv(io.StringIO(body), skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataFileError(
            field,
            "is empty: it has no header row and no data.",
            "supply a CSV file with a header row and at least one data row.",
        ) from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed CSV"
        detail = detail.replace("Error tokenizing data. C error: ", "")
        raise DataFileError(
            field,
            f"is not a well-formed CSV file ({detail}).",
            "make every row have as many comma-separated fields as the header row.",
        ) from None
    except (ValueError, UnicodeError, OverflowError) as exc:
        raise DataFileError(field, f"cannot be parsed as CSV ({exc}).", "check the file.") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas silently turns surplus leading fields into an index: refuse instead.
        raise DataFileError(
            field,
            f"is not a well-formed CSV file: its data rows have more fields than the "
            f"{len(frame.columns)} of the header row.",
            "make every row have as many comma-separated fields as the header row.",
        )
    frame.columns = pd.Index([str(name).strip() for name in frame.columns])
    if len(frame) == 0:
        raise DataFileError(
            field,
            f"has a header ({', '.join(frame.columns)}) but no data rows.",
            "supply a file with at least one data row.",
        )
    return frame


def _read_table(path: PathType) -> tuple[pd.DataFrame, list[str]]:
    """Read a CSV file with ``#`` comment lines: returns (data frame, comment lines)."""
    comments, body = _split_comments(_read_text(path))
    return _parse_csv(_field(path), body), comments


def _require_columns(field: str, frame: pd.DataFrame, names: list[str], fix: str) -> None:
    """Raise DataFileError naming the missing columns and listing the available ones."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise DataFileError(
            field,
            f"has no column{plural} {', '.join(repr(m) for m in missing)}; "
            f"the available columns are: {', '.join(repr(str(c)) for c in frame.columns)}.",
            fix,
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_true(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_timezone(field: str, timezone: str) -> None:
    try:
        pd.Timestamp("2000-01-01").tz_localize(timezone)
    except (KeyError, ValueError, TypeError):
        raise DataFileError(
            field,
            f"cannot localise its naive timestamps: timezone {timezone!r} is not a known "
            "IANA time zone.",
            "pass timezone='UTC' or a name such as 'Europe/Berlin'.",
        ) from None


def _to_utc_ns(field: str, column: str, index: pd.DatetimeIndex, timezone: str) -> pd.DatetimeIndex:
    """Localise a naive index to ``timezone``; convert to UTC; use nanosecond resolution."""
    if index.tz is None:
        _check_timezone(field, timezone)
        try:
            index = index.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        except ValueError as exc:
            raise DataFileError(
                field,
                f"column {column!r} has local times that do not exist or are ambiguous in "
                f"{timezone} (daylight saving change): {exc}.",
                "write the timestamps in UTC or with their UTC offset, e.g. "
                "'2023-03-26T02:30+02:00'.",
            ) from None
    try:
        return index.tz_convert("UTC").as_unit("ns").rename("timestamp")
    except (ValueError, OverflowError):
        raise DataFileError(
            field,
            f"column {column!r} has timestamps outside the years 1677..2262.",
            "check the timestamps.",
        ) from None


def _parse_iso_times(field: str, raw: pd.Series, column: str, timezone: str) -> pd.DatetimeIndex:
    """Parse ISO 8601 strings; naive ones are in ``timezone``. Result: UTC, ns, named."""
    missing = raw.isna().to_numpy()
    if missing.any():
        row = _first_true(missing) + 1
        raise DataFileError(
            field,
            f"column {column!r} is empty in data row {row}.",
            "fill in the timestamp (ISO 8601, e.g. 2023-01-01T00:00:00Z) or delete the row.",
        )
    text = raw.astype(str).str.strip()
    try:
        parsed = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        coerced = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = coerced.isna().to_numpy()
        if bad.any():
            row = _first_true(bad)
            fix = "write ISO 8601 timestamps such as 2023-01-01T00:00:00Z (UTC) in every row"
            if _is_number(str(text.iloc[row])):
                fix += ", or, if the column holds numbers, pass time_unit= and origin="
            raise DataFileError(
                field,
                f"column {column!r} has a value that is not an ISO 8601 timestamp in data row "
                f"{row + 1}: {text.iloc[row]!r}.",
                fix + ".",
            ) from None
        # Every value parses, so the offsets differ (e.g. local time across a DST change) or
        # some values have an offset and others do not.
        naive = ~text.str.contains(r"(?:[zZ]|[+-]\d\d(?::?\d\d)?)$", regex=True).to_numpy()
        if naive.any() and timezone != "UTC":
            row = _first_true(naive)
            raise DataFileError(
                field,
                f"column {column!r} mixes timestamps with and without a UTC offset (data row "
                f"{row + 1}: {text.iloc[row]!r} has none).",
                "give every timestamp an offset (or none, and pass timezone=).",
            ) from None
        parsed = coerced
    return _to_utc_ns(field, column, pd.DatetimeIndex(parsed), timezone)


def _parse_numeric_times(
    field: str,
    raw: pd.Series,
    column: str,
    time_unit: str,
    origin: pd.Timestamp | None,
    timezone: str,
) -> pd.DatetimeIndex:
    """Turn numbers of ``time_unit`` since ``origin`` into a UTC, ns DatetimeIndex."""
    if time_unit not in TIME_UNITS_S:
        raise DataFileError(
            field,
            f"time_unit {time_unit!r} is not one of {', '.join(repr(u) for u in TIME_UNITS_S)}.",
            "pass time_unit='s', 'min' or 'h'.",
        )
    if origin is None:
        raise DataFileError(
            field,
            f"column {column!r} holds numbers of {time_unit!r} but no origin was given.",
            "pass origin=<timestamp>, the instant that time 0 stands for, e.g. "
            "origin=pd.Timestamp('2022-06-08T00:00Z').",
        )
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna().to_numpy() | ~np.isfinite(numbers.to_numpy(dtype=np.float64))
    if bad.any():
        row = _first_true(bad)
        raise DataFileError(
            field,
            f"column {column!r} must hold numbers of {time_unit!r} since {origin}, but data row "
            f"{row + 1} has {raw.iloc[row]!r}.",
            "fix or delete that row.",
        )
    origin_ts = pd.Timestamp(origin)
    if origin_ts.tzinfo is None:
        _check_timezone(field, timezone)
        origin_ts = origin_ts.tz_localize(timezone)
    try:
        offsets = pd.to_timedelta(numbers.to_numpy(), unit=cast(TimeUnit, time_unit))
        index = pd.DatetimeIndex(origin_ts + offsets)
    except (ValueError, OverflowError):
        raise DataFileError(
            field,
            f"column {column!r} has times too far from the origin {origin_ts}.",
            "check time_unit and origin.",
        ) from None
    return _to_utc_ns(field, column, index, timezone)


def _float_column(
    field: str, frame: pd.DataFrame, column: str, index: pd.DatetimeIndex | None = None
) -> np.ndarray:
    """A column as float64; empty cells become NaN; other non-numbers raise DataFileError."""
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = (numbers.isna() & raw.notna()).to_numpy()
    if bad.any():
        row = _first_true(bad)
        where = f" ({index[row].isoformat()})" if index is not None else ""
        raise DataFileError(
            field,
            f"column {column!r} has a value that is not a number in data row {row + 1}{where}: "
            f"{raw.iloc[row]!r}.",
            "correct the value, or leave the cell empty for missing data.",
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _read_timeseries_with_comments(
    path: PathType,
    *,
    time_column: str,
    columns: Mapping[str, str] | None,
    time_unit: str | None,
    origin: pd.Timestamp | None,
    timezone: str,
    fix_missing: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    field = _field(path)
    frame, comments = _read_table(path)
    mapping = (
        {str(c): str(c) for c in frame.columns if c != time_column}
        if columns is None
        else dict(columns)
    )
    fix = fix_missing or (
        "rename the column in the file, or pass time_column=/columns={'<name>': '<csv column>'} "
        "to say which column to use."
    )
    _require_columns(field, frame, [time_column, *mapping.values()], fix)
    if time_unit is None:
        index = _parse_iso_times(field, frame[time_column], time_column, timezone)
    else:
        index = _parse_numeric_times(
            field, frame[time_column], time_column, time_unit, origin, timezone
        )
    data = {name: _float_column(field, frame, col, index) for name, col in mapping.items()}
    return pd.DataFrame(data, index=index, columns=list(mapping)), comments


def read_timeseries(
    path: str | os.PathLike[str],
    *,
    time_column: str = "timestamp",
    columns: Mapping[str, str] | None = None,
    time_unit: str | None = None,
    origin: pd.Timestamp | None = None,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Read a CSV file of time-stamped numeric columns.

    Parameters
    ----------
    path
        The CSV file. Lines starting with ``#`` are comments.
    time_column
        Name of the column holding the time of each row.
    columns
        Output column name -> CSV column name. ``None`` keeps every column except the time
        column, under its own name.
    time_unit
        ``None``: the time column holds ISO 8601 timestamps; naive ones are local times in
        ``timezone``. ``"s"``, ``"min"`` or ``"h"``: it holds numbers of that unit since
        ``origin``.
    origin
        The instant that time 0 stands for; required when ``time_unit`` is given. A naive
        origin is taken to be in ``timezone``.
    timezone
        IANA time zone of naive timestamps (default UTC).

    Returns
    -------
    pandas.DataFrame
        Float64 columns (empty cells are NaN) in the order of ``columns``, indexed by a
        timezone-aware UTC DatetimeIndex named ``"timestamp"``, rows in file order.

    Raises
    ------
    DataFileError
        The file is missing, unreadable, empty or malformed; a column is missing (the message
        lists the available columns); a timestamp or value cannot be parsed (the message names
        the data row).
    """
    frame, _ = _read_timeseries_with_comments(
        path,
        time_column=time_column,
        columns=columns,
        time_unit=time_unit,
        origin=origin,
        timezone=timezone,
    )
    return frame
