"""Where tests and benchmarks find the real data: ``../shared/data`` beside the repository, or
the folder named by the ``WATTROUTE_DATA_DIR`` environment variable (for a checkout or git
worktree that has no ``shared`` folder beside it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DATA_DIR_VARIABLE = "WATTROUTE_DATA_DIR"
"""Environment variable that overrides where the real data is."""


def shared_data_dir() -> Path:
    """The real data folder: ``$WATTROUTE_DATA_DIR`` if set and not empty, else
    ``../shared/data`` beside the repository."""
    given = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    return Path(given).expanduser().resolve() if given else ROOT.parent / "shared" / "data"


SHARED_DATA = shared_data_dir()


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Give a benchmark's command line ``--data-dir`` (default: :data:`SHARED_DATA`)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=SHARED_DATA,
        help=f"data folder (default: ../shared/data, or ${DATA_DIR_VARIABLE})",
    )
