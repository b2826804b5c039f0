"""Read a measured round-trip latency matrix: ``network/latency_ms_between_zones.csv``."""

from __future__ import annotations

import csv
import io
import math
import os

from wattroute.errors import DataFileError
from wattroute.iotools.timeseries import _field, _read_text, _split_comments

__all__ = ["read_latency_matrix"]


def read_latency_matrix(path: str | os.PathLike[str]) -> dict[tuple[str, str], float]:
    """Read a round-trip latency matrix in ms between zones (or sites).

    The first column, ``origin``, names the row's zone; the other header cells name the
    destination zones; each cell is the measured round-trip latency in ms from origin to
    destination. Measurements need not be symmetric: ``(a, b)`` and ``(b, a)`` are kept
    as given.

    A zone may appear more than once, as a row and as a column (in the shared file
    ``US-MIDA-PJM`` stands for two cloud regions in the same grid zone). For a duplicated
    ``(origin, destination)`` pair the **minimum** latency is kept: a workload in that zone
    can use the nearer region. So the diagonal entry of a duplicated zone is its smallest
    self-latency, not the latency between its two regions.

    Returns
    -------
    dict[tuple[str, str], float]
        ``{(origin, destination): latency_ms}`` for every cell.

    Raises
    ------
    DataFileError
        Missing or malformed file, a first header cell other than ``origin``, a row with the
        wrong number of cells, or a cell that is empty, not a number or negative.
    """
    field = _field(path)
    _, body = _split_comments(_read_text(path))
    rows = [row for row in csv.reader(io.StringIO(body)) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataFileError(
            field,
            "is empty: it has no header row and no data.",
            "supply a matrix with a header 'origin,<zone>,<zone>,...' and one row per origin.",
        )
    header = [cell.strip() for cell in rows[0]]
    if header[0] != "origin" or len(header) < 2:
        raise DataFileError(
            field,
            f"has no column 'origin' first; the header is: {', '.join(repr(c) for c in header)}.",
            "make the first header cell 'origin' and the others the destination zones.",
        )
    if len(rows) == 1:
        raise DataFileError(field, "has a header but no data rows.", "add one row per origin zone.")
    destinations = header[1:]
    latency_ms: dict[tuple[str, str], float] = {}
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise DataFileError(
                field,
                f"data row {number} has {len(row)} cells but the header has {len(header)}.",
                "give every row one latency per destination column.",
            )
        origin = row[0].strip()
        for destination, cell in zip(destinations, row[1:], strict=True):
            text = cell.strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0.0:
                raise DataFileError(
                    field,
                    f"data row {number} (origin {origin!r}), column {destination!r}: "
                    f"{text!r} is not a non-negative latency in ms.",
                    "write the measured round-trip latency in ms in every cell.",
                )
            key = (origin, destination)
            latency_ms[key] = min(value, latency_ms.get(key, math.inf))
    return latency_ms
