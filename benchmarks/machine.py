"""Shared helpers for benchmarks: describe the machine, update a section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import re
from pathlib import Path

import numpy as np


def describe_machine() -> str:
    """One line: CPU model, cores, memory, OS, Python and numpy versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores{memory}, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}."
    )


def replace_section(path: Path, title: str, body: str) -> None:
    """Replace the ``## title`` section of a markdown file (or append it) with ``body``,
    and say so."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    heading = f"## {title}"
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"updated {path}")


def database_names(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """``--databases``: a comma-separated list of sqlite and postgresql."""
    names = text.split(",")
    for name in names:
        if name not in ("sqlite", "postgresql"):
            parser.error(f"--databases: unknown {name!r}; use sqlite and/or postgresql")
    return names
