"""Write a run's results: ``summary.json``, the per-step time series and the per-job result."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd

from wattroute.errors import DataFileError
from wattroute.model.summary import Summary


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_summary(summary: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``summary`` as indented JSON and return the path."""
    target = Path(path)
    _ensure_dir(target.parent)
    target.write_text(json.dumps(_finite(summary), indent=2) + "\n", encoding="utf-8")
    return target


def read_summary(path: str | os.PathLike[str]) -> Summary:
    """Read a ``summary.json`` written by :func:`write_summary`."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(str(path), "file not found.", "check the path.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(str(path), f"is not a readable summary ({exc}).") from None
    if not isinstance(data, dict) or "objective_usd" not in data:
        raise DataFileError(str(path), "is not a wattroute summary (no objective_usd).")
    return cast(Summary, data)


def write_timeseries(
    frame: pd.DataFrame, folder: str | os.PathLike[str], fmt: Literal["parquet", "csv"] = "parquet"
) -> Path:
    """Write the per-step, per-site table as ``timeseries.parquet`` (or ``.csv``)."""
    return _write_table(frame, Path(folder) / f"timeseries.{fmt}", fmt)


def write_jobs(
    frame: pd.DataFrame, folder: str | os.PathLike[str], fmt: Literal["parquet", "csv"] = "parquet"
) -> Path:
    """Write the per-job table as ``jobs.parquet`` (or ``.csv``)."""
    return _write_table(frame, Path(folder) / f"jobs.{fmt}", fmt)


def _write_table(frame: pd.DataFrame, target: Path, fmt: Literal["parquet", "csv"]) -> Path:
    _ensure_dir(target.parent)
    if fmt == "parquet":
        frame.to_parquet(target, index=False)
    else:
        frame.to_csv(target, index=False)
    return target


def _ensure_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(
            str(folder),
            f"cannot create the output folder ({exc.strerror}).",
            "choose another --out.",
        ) from None
