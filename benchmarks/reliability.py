"""Reliability: the whole API fuzzed against a real server (no answer may be a 5xx), and
``kill -9`` under load (nothing accepted may be lost or duplicated), on SQLite and PostgreSQL.

**Fuzzing.** ``wattroute serve`` over the built-in fleet (authentication on, its controller
ticking on the replay clock) and schemathesis's command line against its published OpenAPI
schema with an admin token: every phase (examples, coverage, fuzzing with valid and invalid
data, stateful sequences along the schema's links: create a job or service, read, change,
cancel or delete it), every check but ``positive_data_acceptance`` (rules across fields and
the clock — a deadline the work cannot meet — cannot be said in JSON Schema; they are 422s
naming the field). Every request and answer is counted from schemathesis's HAR report.

**kill -9.** The server with ``--workers`` API processes; clients submit jobs with
idempotency keys as fast as answers come; at a random moment the server's main process gets
SIGKILL (its API workers must follow it by themselves), a new one is started at once on the
same port, the clients retry what they do not know the fate of with the same keys, and every
job accepted before is checked: present once, progress never behind what was committed, ticks
neither repeated nor skipped.

    python -m benchmarks.reliability [--databases sqlite,postgresql] [--max-examples 150]
                                     [--kills 40] [--workers 2] [--write docs/benchmarks.md]

PostgreSQL is started from the server binaries on the machine on 127.0.0.1 for the run.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks.machine import database_names, describe_machine, replace_section
from tests.service.postgres import running_postgres
from tests.service.processes import (
    free_port,
    launch_server,
    stop_group,
    wait_gone,
    wait_healthy,
)
from wattroute.scenario import default_scenario_path
from wattroute.service.auth import new_token, token_hash
from wattroute.service.server import open_store

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TARGET_CASES = 5000
# Invalid data is rejected with any 4xx that says why: schemathesis's list lacks 413 (a body
# over the size limit) and 431 (headers over theirs).
CHECKS = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "431", "5xx"]
"""


def _config(folder: Path, database: str, workers: int, auth: bool, speedup: float) -> Path:
    path = folder / "service.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: reliability
            fleet: {{scenario: {default_scenario_path()}}}
            policy: greedy
            database: {database}
            clock: {{kind: replay, speedup: {speedup}}}
            api: {{workers: {workers}}}
            auth: {{required: {str(auth).lower()}}}
            """
        )
    )
    return path


@contextlib.contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'state.db'}"
    else:
        with running_postgres() as url:
            yield url


# -- fuzzing -----------------------------------------------------------------------------------


@dataclass
class FuzzResult:
    database: str
    cases: int
    requests: int
    statuses: collections.Counter[int]
    failures: dict[str, int]
    seconds: float
    exit_code: int

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def row(self) -> str:
        by_class = collections.Counter(f"{s // 100}xx" for s in self.statuses.elements())
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        return (
            f"| {self.database} | {self.cases} | {self.requests} | {by_class['2xx']} "
            f"| {by_class['4xx']} "
            f"| **{self.server_errors}** | {failed} | {self.seconds:.0f} |"
        )


def fuzz(database: str, folder: Path, max_examples: int, seed: int) -> FuzzResult:
    with _database(database, folder) as url:
        config = _config(folder, url, workers=1, auth=True, speedup=60.0)
        token = new_token()
        store = open_store(url)
        store.add_token("ops", "admin,metrics,read,submit", token_hash(token), "reliability")
        store.engine.dispose()
        port = free_port()
        log = folder / "server.log"
        process = launch_server(config, port, log)
        wait_healthy(process, port, log=log)
        har, report = folder / "run.har", folder / "run.json"
        started = time.monotonic()
        settings = folder / "schemathesis.toml"
        settings.write_text(CHECKS)
        try:
            run = subprocess.run(
                [
                    str(SCHEMATHESIS),
                    "--config-file",
                    str(settings),
                    "run",
                    f"http://127.0.0.1:{port}/openapi.json",
                    "--header",
                    f"Authorization: Bearer {token}",
                    "--phases",
                    "examples,coverage,fuzzing,stateful",
                    "--mode",
                    "all",
                    "--max-examples",
                    str(max_examples),
                    "--checks",
                    "all",
                    "--exclude-checks",
                    "positive_data_acceptance",
                    "--seed",
                    str(seed),
                    "--workers",
                    "2",
                    "--suppress-health-check",
                    "all",
                    "--request-timeout",
                    "60",
                    "--continue-on-failure",
                    "--report",
                    "har,json",
                    "--report-har-path",
                    str(har),
                    "--report-json-path",
                    str(report),
                ],
                capture_output=True,
                text=True,
                check=False,
                cwd=folder,  # its cache of crashes goes to the run's folder, not the checkout
            )
        finally:
            stop_group(process, signal.SIGTERM)
        seconds = time.monotonic() - started
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = collections.Counter(int(e["response"]["status"]) for e in entries)
    failures = _failures(report)
    if run.returncode not in (0, 1):
        print(run.stdout[-4000:], run.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"schemathesis failed to run ({run.returncode})")
    if failures:  # what failed, each line cut short (generated bodies run to kilobytes)
        section = run.stdout.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0]
        print("\n".join(line[:300] for line in section.splitlines()), file=sys.stderr)
    return FuzzResult(
        database, _cases(report), len(entries), statuses, failures, seconds, run.returncode
    )


def _failures(report: Path) -> dict[str, int]:
    """Failed checks by title (with how many cases failed each), from the JSON run report."""
    data = json.loads(report.read_text())
    return {str(f["title"]): int(f.get("count", 1)) for f in data.get("failures", [])}


def _cases(report: Path) -> int:
    """Test cases schemathesis generated (a stateful sequence counts its steps)."""
    return int(json.loads(report.read_text())["test_cases"]["generated"])


# -- kill -9 -------------------------------------------------------------------------------------


@dataclass
class KillResult:
    database: str
    workers: int
    kills: int = 0
    accepted: int = 0
    retried: int = 0
    lost: int = 0
    duplicated: int = 0
    regressed: int = 0
    tick_faults: int = 0
    restart_s: list[float] = field(default_factory=list)

    def row(self) -> str:
        restart = sorted(self.restart_s)
        median = restart[len(restart) // 2] if restart else float("nan")
        return (
            f"| {self.database} | {self.workers} | {self.kills} | {self.accepted} "
            f"| {self.retried} | **{self.lost}** | **{self.duplicated}** | {self.regressed} "
            f"| {self.tick_faults} | {median:.1f} / {max(restart, default=float('nan')):.1f} |"
        )


def _job(key: str) -> dict[str, object]:
    return {"name": key, "work_accelerator_hours": 2.0, "max_accelerators": 2, "slack_h": 12}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def kill_under_load(
    database: str, folder: Path, kills: int, workers: int, clients: int, seed: int
) -> KillResult:
    rng = random.Random(seed)
    result = KillResult(database, workers)
    accepted: dict[str, str] = {}  # key -> job id, answered 2xx
    attempted: set[str] = set()
    lock = threading.Lock()
    with _database(database, folder) as url:
        config = _config(folder, url, workers=workers, auth=False, speedup=600.0)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = folder / "server.log"
        process = launch_server(config, port, log)
        wait_healthy(process, port, log=log)
        try:
            for round_ in range(kills):
                stop = threading.Event()

                def submit(n: int, stop: threading.Event = stop, round_: int = round_) -> None:
                    i = 0
                    with httpx.Client(base_url=base, timeout=5) as client:
                        while not stop.is_set():
                            key = f"r{round_}-c{n}-{i}"
                            with lock:
                                attempted.add(key)
                            try:
                                r = client.post(
                                    "/v1/jobs", json=_job(key), headers={"Idempotency-Key": key}
                                )
                            except httpx.HTTPError:
                                return  # died mid-request: its fate is unknown
                            if r.status_code in (200, 201):
                                with lock:
                                    accepted[key] = r.json()["id"]
                            i += 1

                threads = [threading.Thread(target=submit, args=(n,)) for n in range(clients)]
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(0.3, 1.5))
                workers_before = _children(process.pid)
                os.kill(process.pid, signal.SIGKILL)  # the main process only
                process.wait(timeout=30)
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                result.kills += 1
                committed = _committed(url)
                killed_at = time.monotonic()
                process = launch_server(config, port, log)
                # The old workers must leave by themselves; until they have, one of them could
                # answer for the new server.
                wait_gone(workers_before, 10)
                wait_healthy(process, port, log=log)
                result.restart_s.append(time.monotonic() - killed_at)
                result.retried += _retry_unknown(base, attempted, accepted)
                _check(base, url, accepted, committed, result)
        finally:
            stop_group(process, signal.SIGKILL)
    result.accepted = len(accepted)
    return result


def _committed(url: str) -> tuple[dict[str, float], int]:
    """What was committed when the server died: progress by job id, and the last step."""
    store = open_store(url)
    try:
        jobs, _ = store.jobs(None, limit=1_000_000)
        last = store.last_tick()
        return {j.id: j.done_accelerator_hours for j in jobs}, (-1 if last is None else last.step)
    finally:
        store.engine.dispose()


def _retry_unknown(base: str, attempted: set[str], accepted: dict[str, str]) -> int:
    """Clients retry, with the same key, every submission they got no answer to."""
    unknown = sorted(attempted - set(accepted))
    with httpx.Client(base_url=base, timeout=30) as client:
        for key in unknown:
            r = client.post("/v1/jobs", json=_job(key), headers={"Idempotency-Key": key})
            if r.status_code not in (200, 201):
                raise SystemExit(f"retry of {key} answered {r.status_code}: {r.text}")
            accepted[key] = r.json()["id"]
    return len(unknown)


def _check(
    base: str,
    url: str,
    accepted: dict[str, str],
    committed: tuple[dict[str, float], int],
    result: KillResult,
) -> None:
    progress_before, last_step = committed
    jobs: list[dict[str, object]] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        offset = 0
        while True:
            page = client.get("/v1/jobs", params={"limit": 1000, "offset": offset}).json()
            jobs.extend(page["jobs"])
            offset += 1000
            if offset >= page["total"]:
                break
    by_id = {str(j["id"]): j for j in jobs}
    # Cumulative: every job accepted so far is checked after every kill.
    result.lost = max(result.lost, sum(job_id not in by_id for job_id in accepted.values()))
    names = collections.Counter(str(j["name"]) for j in jobs)  # the name is the key
    result.duplicated = max(result.duplicated, sum(n - 1 for n in names.values()))
    result.regressed += sum(
        float(by_id[i]["done_accelerator_hours"]) < done - 1e-9  # type: ignore[arg-type]
        for i, done in progress_before.items()
        if i in by_id
    )
    time.sleep(0.3)  # a tick or two of the new controller
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            steps = [r[0] for r in c.exec_driver_sql("SELECT step FROM ticks ORDER BY step")]
    finally:
        engine.dispose()
    if steps != list(range(len(steps))) or (steps and steps[-1] < last_step):
        result.tick_faults += 1


# -- the report ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--max-examples", type=int, default=400, help="per operation and phase")
    parser.add_argument("--kills", type=int, default=40, help="kills per database")
    parser.add_argument("--workers", type=int, default=2, help="API processes while killing")
    parser.add_argument("--clients", type=int, default=4, help="submitting while killing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    args = parser.parse_args(argv)
    databases = database_names(parser, args.databases)

    fuzzed: list[FuzzResult] = []
    killed: list[KillResult] = []
    for database in databases:
        with tempfile.TemporaryDirectory(prefix="wattroute-fuzz-") as tmp:
            fuzzed.append(fuzz(database, Path(tmp), args.max_examples, args.seed))
        print(fuzzed[-1].row(), flush=True)
        with tempfile.TemporaryDirectory(prefix="wattroute-kill-") as tmp:
            killed.append(
                kill_under_load(
                    database, Path(tmp), args.kills, args.workers, args.clients, args.seed
                )
            )
        print(killed[-1].row(), flush=True)

    fuzz_ok = all(r.server_errors == 0 and r.cases >= TARGET_CASES for r in fuzzed)
    kill_ok = all(r.lost == 0 and r.duplicated == 0 and r.regressed == 0 for r in killed)
    command = " ".join(["python -m benchmarks.reliability", *(argv or sys.argv[1:])])
    text = "\n\n".join(
        [
            f"`{command}`, {time.strftime('%Y-%m-%d')}. {describe_machine()}",
            "**Fuzzing the API.** A real `wattroute serve` over the built-in fleet "
            "(authentication on, `greedy` ticking on the replay clock at 60x) and "
            "schemathesis's command line against its OpenAPI schema with an admin token: all "
            "four phases (examples, coverage, fuzzing with valid and invalid data, stateful "
            "sequences along the schema's links), up to "
            f"{args.max_examples} cases per operation and phase, every check but "
            "`positive_data_acceptance` (rules across fields and the clock cannot be said in "
            "JSON Schema; they are 422s naming the field). Every request is counted from "
            "schemathesis's HAR report.",
            "| database | cases | requests | 2xx | 4xx | ≥ 500 | failed checks | seconds |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(r.row() for r in fuzzed),
            f"Target (≥ {TARGET_CASES} cases on each database, no answer ≥ 500): "
            f"**{'met' if fuzz_ok else 'missed'}**.",
            f"**kill -9 under load.** The server with {args.workers} API processes; "
            f"{args.clients} clients submit jobs with idempotency keys as fast as answers come; "
            "at a random moment (0.3 to 1.5 s) the main process gets SIGKILL — its API workers "
            "must leave by themselves — and a new server is started at once on the same port "
            "(*restart*: from the kill until it answers, median / max seconds); clients retry "
            "what they got no answer to with the same key (*retried*), and every accepted job "
            "is checked: present (*lost*), once (*duplicated*), its progress not behind what "
            "was committed at the kill (*regressed*), ticks neither repeated nor skipped "
            "(*tick faults*).",
            "| database | API workers | kills | accepted | retried | lost | duplicated "
            "| regressed | tick faults | restart s |\n|---|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(r.row() for r in killed),
            f"Target (0 lost, 0 duplicated): **{'met' if kill_ok else 'missed'}**.",
        ]
    )
    print(text)
    if args.write:
        replace_section(args.write, "Reliability", text)
    return 0 if fuzz_ok and kill_ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
