"""A throwaway PostgreSQL server for tests: initdb and pg_ctl in a temporary folder, on
127.0.0.1 and a free port, run as the ``postgres`` user when the tests run as root."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.service.processes import free_port


def binaries() -> Path | None:
    """The folder of the newest PostgreSQL server binaries on the machine, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server; yield a SQLAlchemy URL to an empty database; stop and remove it."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="wattroute-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "wattroute", "--no-sync")
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "log"),
        "-w",
        "-t",
        "60",
        "-o",
        f"-p {port} -h 127.0.0.1 -k {sockets} -c fsync=on -c max_connections=200",
        "start",
    )
    try:
        run(
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "wattroute",
            "wattroute",
        )
        yield f"postgresql+psycopg://wattroute@127.0.0.1:{port}/wattroute"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
