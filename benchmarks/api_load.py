"""API load: concurrent clients on loopback submitting and reading jobs, SQLite against PostgreSQL.

A real server (``wattroute serve``, one uvicorn process, its controller ticking on the replay
clock over the built-in fleet) is started per database; ``--clients`` asyncio clients, each on its
own keep-alive connection, submit jobs with idempotency keys as fast as answers come back and
read one back every ``--read-every`` submissions, until ``--submissions`` are accepted or
``--seconds`` pass. Reported: sustained submissions/s over the measured window (after a warm-up),
p50/p99/max latency of submissions and of reads, and a check that the database holds exactly
the accepted jobs. Clients and server share this machine's cores, so the numbers are a floor.

    python -m benchmarks.api_load [--clients 16] [--submissions 5000] [--seconds 40]
                                  [--databases sqlite,postgresql] [--workers 1,2] [--trials 3]
                                  [--policies greedy,agnostic] [--write docs/benchmarks.md]

The controller's policy decides every tick over every job accepted so far (thousands by the
end of a run), on the same cores as the API: ``--policies`` runs each configuration under each
policy, to tell the API's own capacity from what the controller's decisions take of the
machine.

PostgreSQL is started from the server binaries on the machine on 127.0.0.1 for the run (the
same helper the store tests use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import yaml

from benchmarks.machine import database_names, describe_machine, replace_section
from tests.service.postgres import running_postgres
from tests.service.processes import free_port, start_server, stop_group
from wattroute.scenario import default_scenario_path
from wattroute.service.auth import new_token, token_hash
from wattroute.service.server import open_store

TARGET_RATE = 1000.0  # submissions/s on PostgreSQL
TARGET_P99_MS = 50.0


@dataclass
class LoadResult:
    trial: int
    policy: str
    database: str
    workers: int
    clients: int
    submissions: int
    reads: int
    errors: int
    seconds: float
    submit_ms: np.ndarray
    read_ms: np.ndarray
    jobs_in_database: int
    cpu_ms: dict[str, float]  # CPU ms per accepted submission: server, postgresql, clients

    def cpu_cells(self) -> str:
        return " | ".join(f"{self.cpu_ms.get(k, float('nan')):.2f}" for k in CPU_PARTS)

    @property
    def rate(self) -> float:
        return self.submissions / self.seconds

    def row(self) -> str:
        s, r = self.submit_ms, self.read_ms
        return (
            f"| {self.trial} | {self.policy} | {self.database} | {self.workers} | {self.clients} "
            f"| {self.submissions} "
            f"| {self.rate:.0f} "
            f"| {np.percentile(s, 50):.1f} | {np.percentile(s, 99):.1f} | {s.max():.1f} "
            f"| {np.percentile(r, 50):.1f} | {np.percentile(r, 99):.1f} "
            f"| {self.errors} | {self.jobs_in_database} | {self.cpu_cells()} |"
        )


CPU_PARTS = ("server", "postgresql", "clients")
"""Where the machine's CPU goes during a run, per accepted submission (warm-up included): the
server's process group (API workers, controller), every PostgreSQL process on the machine
(only the benchmark's own runs during it), and this process (the clients)."""


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used (those still there)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def _pids(server_group: int) -> dict[str, list[int]]:
    """The processes of each part of :data:`CPU_PARTS` but the clients."""
    parts: dict[str, list[int]] = {"server": [], "postgresql": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text()
            name = fields[fields.index("(") + 1 : fields.rindex(")")]
            group = int(fields.rpartition(")")[2].split()[2])
            if group == server_group:
                parts["server"].append(int(entry.name))
            elif name.startswith("postgres"):
                parts["postgresql"].append(int(entry.name))
    return parts


class CpuMeter:
    """CPU seconds of each part of :data:`CPU_PARTS` between :meth:`start` and :meth:`stop`
    (processes that ended in between are not counted: none of these do)."""

    def __init__(self, server_group: int) -> None:
        self.group = server_group
        self.begun: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        used = {part: _cpu_s(pids) for part, pids in _pids(self.group).items()}
        return {**used, "clients": time.process_time()}

    def start(self) -> None:
        self.begun = self._now()

    def stop(self) -> dict[str, float]:
        return {k: v - self.begun.get(k, 0.0) for k, v in self._now().items()}


@contextlib.contextmanager
def _server(
    url: str, folder: Path, workers: int, speedup: float, policy: str
) -> Iterator[tuple[str, str, int]]:
    """A running server on ``url``'s database; yields its base URL, a submit token and its
    process group."""
    store = open_store(url)
    token = new_token()
    store.add_token("bench", "submit", token_hash(token), "api_load")
    store.engine.dispose()
    config = folder / "service.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "api-load",
                "fleet": {"scenario": str(default_scenario_path())},
                "policy": policy,
                "database": url,
                "clock": {"kind": "replay", "speedup": speedup},
                "api": {"workers": workers},
            }
        )
    )
    process = start_server(config, port := free_port())
    try:
        yield f"http://127.0.0.1:{port}", token, process.pid
    finally:
        stop_group(process)


async def _load(
    base: str, token: str, clients: int, submissions: int, seconds: float, read_every: int
) -> tuple[list[float], list[float], int, float, int]:
    """Drive the server; latencies of submissions and reads (ms) after the warm-up, errors,
    the measured window (s) and how many submissions were accepted in all."""
    headers = {"Authorization": f"Bearer {token}"}
    warmup = min(200, submissions // 10)
    submit_ms: list[float] = []
    read_ms: list[float] = []
    errors = 0
    accepted = 0
    issued = 0
    window_start = 0.0
    stop_at = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors, accepted, issued, window_start
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
            done = 0
            while issued < submissions + warmup and time.perf_counter() < stop_at:
                issued += 1
                body = {
                    "name": f"load-{n}-{done}",
                    "work_accelerator_hours": 1.0 + (done % 7),
                    "max_accelerators": 2,
                    "slack_h": 12.0,
                }
                t0 = time.perf_counter()
                async with http.post(
                    "/v1/jobs", json=body, headers={"Idempotency-Key": f"{n}-{done}"}
                ) as r:
                    answer = await r.json()
                    status = r.status
                elapsed = (time.perf_counter() - t0) * 1000
                if status != 201:
                    errors += 1
                    if errors == 1:
                        print(f"first error: {status} {answer}", file=sys.stderr)
                    continue
                accepted += 1
                if accepted == warmup:
                    window_start = time.perf_counter()
                if accepted > warmup:
                    submit_ms.append(elapsed)
                done += 1
                if done % read_every == 0:
                    t0 = time.perf_counter()
                    async with http.get(f"/v1/jobs/{answer['id']}") as r:
                        await r.read()
                        status = r.status
                    if status != 200:
                        errors += 1
                    elif accepted > warmup:
                        read_ms.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return submit_ms, read_ms, errors, time.perf_counter() - window_start, accepted


def run_one(
    trial: int,
    policy: str,
    database: str,
    url: str,
    folder: Path,
    workers: int,
    args: argparse.Namespace,
) -> LoadResult:
    with _server(url, folder, workers, args.speedup, policy) as (base, token, group):
        meter = CpuMeter(group)
        meter.start()
        submit_ms, read_ms, errors, window, accepted = asyncio.run(
            _load(base, token, args.clients, args.submissions, args.seconds, args.read_every)
        )
        cpu = meter.stop()
    store = open_store(url)
    in_database = store.jobs(None, limit=1)[1]
    store.engine.dispose()
    if in_database != accepted:
        raise SystemExit(f"{database}: {accepted} jobs accepted but {in_database} stored")
    return LoadResult(
        trial,
        policy,
        database,
        workers,
        args.clients,
        len(submit_ms),
        len(read_ms),
        errors,
        window,
        np.array(submit_ms),
        np.array(read_ms),
        in_database,
        {part: 1000 * seconds / max(accepted, 1) for part, seconds in cpu.items()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--submissions", type=int, default=5000, help="per run")
    parser.add_argument("--seconds", type=float, default=40.0, help="time limit per run")
    parser.add_argument("--read-every", type=int, default=4)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2", help="API worker processes to try")
    parser.add_argument(
        "--speedup", type=float, default=60.0, help="replay clock speed-up (60: a tick every 5 s)"
    )
    parser.add_argument("--trials", type=int, default=3, help="runs of each configuration")
    parser.add_argument("--policies", default="greedy,agnostic", help="the controller's policy")
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)

    databases = database_names(parser, args.databases)
    configs = [
        (p, d, int(w))
        for p in args.policies.split(",")
        for d in databases
        for w in args.workers.split(",")
    ]
    results: list[LoadResult] = []
    # Trials outermost: each configuration meets the machine's noise at several moments.
    for trial in range(1, args.trials + 1):
        for policy, database, workers in configs:
            with tempfile.TemporaryDirectory(prefix="wattroute-load-") as tmp:
                folder = Path(tmp)
                if database == "sqlite":
                    url = f"sqlite:///{folder / 'load.db'}"
                    results.append(run_one(trial, policy, database, url, folder, workers, args))
                else:
                    with running_postgres() as url:
                        results.append(run_one(trial, policy, database, url, folder, workers, args))
            print(results[-1].row(), flush=True)

    header = (
        "| trial | policy | database | API workers | clients | submissions | submissions/s "
        "| submit p50 ms | submit p99 ms | submit max ms | read p50 ms | read p99 ms | errors "
        "| jobs stored | CPU ms per submission: server | PostgreSQL | clients |\n|" + "---|" * 17
    )
    medians = []
    for policy, database, workers in configs:
        runs = [
            r for r in results if (r.policy, r.database, r.workers) == (policy, database, workers)
        ]
        rate = float(np.median([r.rate for r in runs]))
        p99 = float(np.median([np.percentile(r.submit_ms, 99) for r in runs]))
        cpu = {k: float(np.median([r.cpu_ms[k] for r in runs])) for k in CPU_PARTS}
        medians.append((policy, database, workers, rate, p99, cpu))
    summary = (
        "| policy | database | API workers | submissions/s (median) | submit p99 ms (median) "
        "| CPU ms per submission: server / PostgreSQL / clients (median) |\n"
        "|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {p} | {d} | {w} | {rate:.0f} | {p99:.1f} | "
            + " / ".join(f"{cpu[k]:.2f}" for k in CPU_PARTS)
            + " |"
            for p, d, w, rate, p99, cpu in medians
        )
    )
    verdicts = []
    for policy in args.policies.split(","):
        pgs = [m for m in medians if m[1] == "postgresql" and m[0] == policy]
        if not pgs:
            continue
        _, _, workers, rate, p99, cpu = max(pgs, key=lambda m: m[3])
        met = rate >= TARGET_RATE and p99 < TARGET_P99_MS
        per_submission = sum(cpu.values())
        cores = os.cpu_count() or 1
        verdicts.append(
            f"- controller on `{policy}`: **{'met' if met else 'missed'}** with {workers} API "
            f"worker(s): a median of {rate:.0f}/s ({rate / TARGET_RATE:.2f} times the "
            f"target) over {args.trials} trials, p99 {p99:.1f} ms "
            f"({p99 / TARGET_P99_MS:.2f} times the bound). Each submission took "
            f"{per_submission:.2f} ms of CPU in all ({cpu['server']:.2f} in the server, "
            f"{cpu['postgresql']:.2f} in PostgreSQL, {cpu['clients']:.2f} in the clients): "
            f"{cores} cores fully busy would carry at most "
            f"{1000 * cores / per_submission:.0f}/s at that cost."
        )
    verdict = (
        f"Target (PostgreSQL: ≥ {TARGET_RATE:.0f} submissions/s with p99 < "
        f"{TARGET_P99_MS:.0f} ms):\n\n" + "\n".join(verdicts)
        if verdicts
        else ""
    )
    command = " ".join(["python -m benchmarks.api_load", *(argv or sys.argv[1:])])
    text = "\n\n".join(
        [
            f"`{command}`, {time.strftime('%Y-%m-%d')}. {describe_machine()}",
            "`wattroute serve` over the built-in fleet, its controller ticking on "
            f"the replay clock at {args.speedup:g}x (a tick every "
            f"{300 / args.speedup:g} s of wall time; in production a tick comes every 5 min), "
            "with one API process (controller in a thread) or several (the controller in the "
            "parent); each client (aiohttp) an asyncio task with one keep-alive connection, "
            "submitting a job (with an idempotency key) as soon "
            "as the last answer came, and reading one back every "
            f"{args.read_every} submissions. The first {min(200, args.submissions // 10)} "
            "submissions warm up and are not counted. Every submission is committed before its "
            "answer, in a group with the submissions that arrived while the group before was "
            "committing (SQLite in WAL mode with `synchronous=NORMAL`; PostgreSQL with "
            "`fsync=on`); "
            "`jobs stored` checks the database holds exactly what was accepted. Clients and "
            "server share the machine's cores.",
            summary,
            verdict,
            "Every trial:",
            header + "\n" + "\n".join(r.row() for r in results),
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, "API load", text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
