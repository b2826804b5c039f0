"""``wattroute jobs|services|events|place``: the control plane's API from the command line.

Every command talks to a running ``wattroute serve`` at ``--url`` (or ``WATTROUTE_URL``;
default http://127.0.0.1:8080) with the bearer token ``--token`` (or ``WATTROUTE_TOKEN``),
which is sent only in the ``Authorization`` header and never printed. Output is a compact
table, or the API's JSON with ``--json``.

Exit codes: 0 success; 2 bad input (a flag, or a 4xx the API answered: each field is printed
as ``field: problem. Fix: ...``); 3 the server could not be reached or could not answer (a
connection error, a timeout, a 5xx); 4 the token was refused (401, 403); 5 ``jobs watch``
saw the job end other than completed on time; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wattroute.errors import InputError

if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_JOB_ENDED = 5
EXIT_INTERRUPTED = 130

ENDED = frozenset({"completed", "cancelled", "failed"})
JOB_STATES = ("queued", "running", "paused", "completed", "cancelled", "failed")


class ClientError(Exception):
    """A request that did not succeed: the lines to print and the exit code."""

    def __init__(self, code: int, lines: Sequence[str]) -> None:
        super().__init__("; ".join(lines))
        self.code = code
        self.lines = list(lines)


def _sentence(field: str | None, problem: str, fix: str) -> str:
    text = f"{field}: {problem.rstrip('.')}." if field else f"{problem.rstrip('.')}."
    return f"{text} Fix: {fix.rstrip('.')}." if fix else text


def open_http(url: str, timeout_s: float) -> httpx.Client:
    """The HTTP client for ``url`` (tests replace this with one bound to an in-process app)."""
    import httpx

    return httpx.Client(base_url=url, timeout=timeout_s, follow_redirects=False)


class ApiClient:
    """The API at ``url`` as ``token``'s holder. ``fields`` maps the API's field names
    (``body.work_accelerator_hours``) to the flags that set them (``--work``), for errors."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout_s: float = 10.0,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.fields = {
            "header.Authorization": "--token",
            "header.Idempotency-Key": "--idempotency-key",
            **(fields or {}),
        }
        if not self.url.startswith(("http://", "https://")):
            raise ClientError(
                EXIT_INPUT,
                [_sentence("--url", f"{url!r} is not an http(s) URL", f"give e.g. {DEFAULT_URL}")],
            )
        self._http = open_http(self.url, timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; the status and the decoded JSON answer (``None`` when empty).
        Raises :class:`ClientError` for a transport failure or an error answer."""
        import httpx

        sent = dict(headers or {})
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = self._http.request(method, path, json=body, params=query, headers=sent)
        except httpx.TimeoutException:
            raise ClientError(
                EXIT_UNREACHABLE,
                [
                    _sentence(
                        "--url",
                        f"{self.url} did not answer in time",
                        "check the server is up and not overloaded, or raise --timeout",
                    )
                ],
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ClientError(
                EXIT_INPUT, [_sentence("--url", f"{exc}", f"give e.g. {DEFAULT_URL}")]
            ) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ClientError(
                EXIT_UNREACHABLE,
                [
                    _sentence(
                        "--url",
                        f"cannot reach {self.url} ({reason})",
                        "start the server (`wattroute serve`) or give its address with "
                        "--url or WATTROUTE_URL",
                    )
                ],
            ) from None
        if answer.status_code >= 400:
            raise self._refusal(answer)
        if answer.status_code == 204 or not answer.content:
            return answer.status_code, None
        try:
            return answer.status_code, answer.json()
        except ValueError:
            raise ClientError(
                EXIT_UNREACHABLE,
                [f"{self.url} answered {answer.status_code} with something other than JSON."],
            ) from None

    def _flag(self, field: object) -> str | None:
        """The flag that sets the API's ``field`` (``body.args.lr`` -> ``--args.lr``), or the
        field as the API names it."""
        if field is None:
            return None
        name = str(field)
        for known in sorted(self.fields, key=len, reverse=True):
            if name == known or name.startswith((known + ".", known + "[")):
                return self.fields[known] + name[len(known) :]
        return name

    def _refusal(self, answer: httpx.Response) -> ClientError:
        """The error answer as lines of ``field: problem. Fix: ...`` and the exit code."""
        status = answer.status_code
        code = (
            EXIT_AUTH if status in (401, 403) else EXIT_UNREACHABLE if status >= 500 else EXIT_INPUT
        )
        try:
            problem = answer.json()
            errors = problem.get("errors") or []
            lines = [
                _sentence(
                    self._flag(e.get("field")),
                    str(e.get("problem", "")),
                    str(e.get("fix", "")),
                )
                for e in errors
                if isinstance(e, dict)
            ] or [f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip()]
        except (ValueError, AttributeError):
            lines = [f"the server answered {status} {answer.reason_phrase}."]
        retry = answer.headers.get("retry-after")
        if status >= 500 and retry:
            lines.append(f"(the server asks to retry after {retry} s)")
        return ClientError(code, lines)


# -- the commands --------------------------------------------------------------------------------


def finite(text: str) -> float:
    """A flag's number: finite (JSON has no NaN or Infinity)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _connection() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server")
    group.add_argument(
        "--url", help=f"the server's address (default: $WATTROUTE_URL or {DEFAULT_URL})"
    )
    group.add_argument("--token", help="bearer token (default: $WATTROUTE_TOKEN); never printed")
    group.add_argument(
        "--timeout", type=finite, default=10.0, help="seconds to wait for an answer (10)"
    )
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return common


def _when(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--deadline", help="finish by this time (ISO 8601 with offset, e.g. ...Z)")
    group.add_argument(
        "--slack", type=finite, metavar="H", help="hours it may take beyond its shortest run"
    )


def add_commands(sub: Any) -> None:
    """Register ``jobs``, ``services``, ``events`` and ``place`` on ``sub`` (the top-level
    subparsers of ``wattroute``)."""
    common = _connection()

    jobs = sub.add_parser("jobs", help="submit, list, read, cancel and watch batch jobs")
    jobs_sub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = jobs_sub.add_parser("submit", parents=[common], help="submit a batch job")
    submit.add_argument("--name", required=True, help="a name for the job")
    submit.add_argument(
        "--work", type=finite, required=True, metavar="H", help="work, accelerator-hours"
    )
    submit.add_argument(
        "--accelerators", type=int, default=1, metavar="N", help="at most N accelerators (1)"
    )
    submit.add_argument(
        "--min-accelerators", type=int, default=1, metavar="N", help="at least N when it runs (1)"
    )
    _when(submit)
    submit.add_argument(
        "--site", action="append", metavar="SITE", help="a site it may run at (repeat; any)"
    )
    submit.add_argument("--function", help="a registered job function (`GET /v1/code`)")
    submit.add_argument("--args", metavar="JSON", help="the function's arguments, a JSON object")
    submit.add_argument(
        "--checkpoint-overhead", type=finite, default=0.0, metavar="H", help="hours per stop (0)"
    )
    submit.add_argument(
        "--migration-overhead", type=finite, default=0.0, metavar="H", help="hours per move (0)"
    )
    submit.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="makes a retry safe: the same key and job are one job (default: a new one, "
        "printed to reuse)",
    )
    listing = jobs_sub.add_parser("list", parents=[common], help="list your jobs, newest first")
    listing.add_argument("--state", choices=JOB_STATES, help="only jobs in this state")
    listing.add_argument("--site", help="only jobs at this site")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many (0)")
    for action, text in (("get", "one job with its progress"), ("cancel", "cancel a job")):
        one = jobs_sub.add_parser(action, parents=[common], help=text)
        one.add_argument("job_id", metavar="ID", help="the job's id")
    watch = jobs_sub.add_parser(
        "watch",
        parents=[common],
        help="follow a job until it ends: exit 0 if it completed on time, 5 if not",
    )
    watch.add_argument("job_id", metavar="ID", help="the job's id")
    watch.add_argument(
        "--interval", type=finite, default=2.0, metavar="S", help="seconds between polls (2)"
    )

    services = sub.add_parser("services", help="create, list, read, change and delete services")
    svc_sub = services.add_subparsers(dest="action", required=True, metavar="ACTION")
    svc_list = svc_sub.add_parser("list", parents=[common], help="list your inference services")
    svc_list.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    svc_list.add_argument("--offset", type=int, default=0, help="skip this many (0)")
    create = svc_sub.add_parser("create", parents=[common], help="create an inference service")
    create.add_argument("--name", required=True, help="its name (yours: names are per tenant)")
    create.add_argument(
        "--slo-ms", type=finite, required=True, help="end-to-end latency objective, ms"
    )
    create.add_argument(
        "--service-time-ms", type=finite, required=True, help="time to serve a request, ms"
    )
    create.add_argument(
        "--throughput-rps", type=finite, required=True, help="requests/s one replica serves"
    )
    create.add_argument("--accelerators-per-replica", type=int, default=1, metavar="N", help="(1)")
    create.add_argument(
        "--demand", action="append", metavar="POINT=RPS", help="demand from a point (repeat)"
    )
    create.add_argument("--handler", help="a registered inference handler (default: built-in)")
    for action, text in (("get", "one service"), ("delete", "delete a service")):
        one = svc_sub.add_parser(action, parents=[common], help=text)
        one.add_argument("name", help="the service's name")
        one.add_argument("--tenant", help="admins: another tenant's service")
    demand = svc_sub.add_parser(
        "demand", parents=[common], help="replace a service's demand, requests/s by point"
    )
    demand.add_argument("name", help="the service's name")
    demand.add_argument("demand", nargs="*", metavar="POINT=RPS", help="none: no demand")
    demand.add_argument("--tenant", help="admins: another tenant's service")

    events = sub.add_parser("events", help="declare and list grid events (demand response)")
    ev_sub = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    declare = ev_sub.add_parser(
        "declare", parents=[common], help="a site draws at most MAX kW from START to END (admin)"
    )
    declare.add_argument("--site", required=True, help="the site")
    declare.add_argument("--max-kw", type=finite, required=True, help="the most it may draw, kW")
    declare.add_argument("--start", required=True, help="when it starts (ISO 8601 with offset)")
    declare.add_argument("--end", required=True, help="when it ends (ISO 8601 with offset)")
    declare.add_argument("--reason", default="", help="a note")
    ev_list = ev_sub.add_parser("list", parents=[common], help="grid events by start")
    ev_list.add_argument("--site", help="only this site's")
    ev_list.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    ev_list.add_argument("--offset", type=int, default=0, help="skip this many (0)")

    placement = sub.add_parser(
        "place",
        parents=[common],
        help="where and when would a job run best? (against running it now; submits nothing)",
    )
    placement.add_argument(
        "--work", type=finite, required=True, metavar="H", help="work, accelerator-hours"
    )
    placement.add_argument(
        "--accelerators", type=int, default=1, metavar="N", help="it runs on N accelerators (1)"
    )
    _when(placement)
    placement.add_argument("--site", action="append", metavar="SITE", help="allow (repeat; any)")
    placement.add_argument(
        "--minimise",
        choices=["objective", "cost", "emissions"],
        default="objective",
        help="what best means: cost plus the carbon price on emissions (objective), cost, "
        "or emissions",
    )


JOB_FIELDS = {
    "body.name": "--name",
    "body.work_accelerator_hours": "--work",
    "body.max_accelerators": "--accelerators",
    "body.min_accelerators": "--min-accelerators",
    "body.deadline": "--deadline",
    "body.slack_h": "--slack",
    "body.allowed_sites": "--site",
    "body.function": "--function",
    "body.args": "--args",
    "body.checkpoint_overhead_h": "--checkpoint-overhead",
    "body.migration_overhead_h": "--migration-overhead",
    "path.job_id": "ID",
    "query.state": "--state",
    "query.site": "--site",
    "query.limit": "--limit",
    "query.offset": "--offset",
}
SERVICE_FIELDS = {
    "body.name": "--name",
    "body.latency_slo_ms": "--slo-ms",
    "body.service_time_ms": "--service-time-ms",
    "body.replica_throughput_rps": "--throughput-rps",
    "body.accelerators_per_replica": "--accelerators-per-replica",
    "body.demand_rps": "--demand",
    "body.handler": "--handler",
    "path.name": "NAME",
    "query.tenant": "--tenant",
    "query.limit": "--limit",
    "query.offset": "--offset",
}
EVENT_FIELDS = {
    "body.site": "--site",
    "body.max_kw": "--max-kw",
    "body.start": "--start",
    "body.end": "--end",
    "body.reason": "--reason",
    "query.site": "--site",
    "query.limit": "--limit",
    "query.offset": "--offset",
}
PLACE_FIELDS = {
    "body.work_accelerator_hours": "--work",
    "body.accelerators": "--accelerators",
    "body.deadline": "--deadline",
    "body.slack_h": "--slack",
    "body.allowed_sites": "--site",
    "body.minimise": "--minimise",
}


def run(args: argparse.Namespace, console: Console) -> int:
    """Run a client command; returns the exit code (errors go to standard error)."""
    from rich.console import Console

    errors = Console(stderr=True)
    fields = {
        "jobs": JOB_FIELDS,
        "services": SERVICE_FIELDS,
        "events": EVENT_FIELDS,
        "place": PLACE_FIELDS,
    }[args.command]
    handler = HANDLERS[(args.command, getattr(args, "action", None))]
    url = args.url or os.environ.get("WATTROUTE_URL") or DEFAULT_URL
    token = args.token or os.environ.get("WATTROUTE_TOKEN") or None
    try:
        if not args.timeout > 0:
            raise InputError("--timeout", f"{args.timeout:g} is not positive.", "give seconds > 0.")
        with ApiClient(url, token, args.timeout, fields) as api:
            return handler(api, args, console, errors)
    except ClientError as exc:
        for line in exc.lines:
            errors.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        return exc.code


Handler = Callable[[ApiClient, argparse.Namespace, "Console", "Console"], int]


def _emit(console: Console, args: argparse.Namespace, data: Any, table: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    elif table is not None:
        console.print(table)


def _table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], flexible: int, width: int
) -> Table:
    """A compact table of ``rows`` within ``width`` characters: every column as wide as its
    widest cell but column ``flexible``, which gets what is left (at least 4) and ends what
    does not fit with an ellipsis."""
    from rich import box
    from rich.table import Table

    table = Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    natural = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    gaps = 3 * (len(columns) - 1)  # a space either side of a one-character divider
    rest = width - sum(w for i, w in enumerate(natural) if i != flexible) - gaps
    for i, column in enumerate(table.columns):
        column.no_wrap = True
        column.overflow = "ellipsis"
        if i == flexible:
            column.max_width = max(4, rest)
    for row in rows:
        table.add_row(*row)
    return table


def _time(value: str | None) -> str:
    """An API time as ``YYYY-MM-DD HH:MM`` (UTC)."""
    return "" if not value else value.replace("T", " ")[:16]


def _progress(job: Mapping[str, Any]) -> str:
    work = float(job["work_accelerator_hours"]) or 1.0
    return f"{100 * float(job['done_accelerator_hours']) / work:.0f}%"


def _job_table(jobs: Sequence[Mapping[str, Any]], width: int) -> Table:
    rows = []
    for job in jobs:
        state = job["state"] + ("!" if job.get("deadline_missed") else "")
        if job["state"] not in ENDED:
            state += f" {_progress(job)}"
        deadline = _time(job["deadline"])[5:]
        rows.append((job["id"], state, job.get("site") or "-", deadline, job["name"]))
    return _table(("id", "state", "site", "deadline", "name"), rows, 4, width)


def _fields_table(values: Sequence[tuple[str, Any]]) -> Table:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in values:
        table.add_row(name, "-" if value is None or value == "" else str(value))
    return table


def _job_details(job: Mapping[str, Any]) -> Table:
    acc = f"{job['min_accelerators']}..{job['max_accelerators']}"
    return _fields_table(
        [
            ("id", job["id"]),
            ("name", job["name"]),
            ("tenant", job["tenant"]),
            ("state", job["state"] + (" (deadline missed)" if job["deadline_missed"] else "")),
            (
                "progress",
                f"{job['done_accelerator_hours']:.2f} of {job['work_accelerator_hours']:g} "
                f"accelerator-hours ({_progress(job)})",
            ),
            ("site", f"{job['site']} on {job['accelerators']}" if job.get("site") else None),
            ("accelerators", acc),
            ("allowed sites", ", ".join(job["allowed_sites"] or []) or "any"),
            ("function", job.get("function")),
            ("submitted", _time(job["submitted_at"])),
            ("deadline", _time(job["deadline"])),
            ("completed", _time(job.get("completed_at"))),
            ("moves, stops", f"{job['moves']}, {job['stops']}"),
            ("error", job.get("error")),
        ]
    )


def _job_submit(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    fn_args: Any = {}
    if args.args is not None:
        try:
            fn_args = json.loads(args.args, parse_constant=_not_json)
        except ValueError as exc:
            raise InputError(
                "--args", f"is not JSON ({exc}).", 'give an object: {"lr": 0.01}.'
            ) from None
        if not isinstance(fn_args, dict):
            raise InputError("--args", "is not a JSON object.", 'give an object: {"lr": 0.01}.')
    body: dict[str, Any] = {
        "name": args.name,
        "work_accelerator_hours": args.work,
        "max_accelerators": args.accelerators,
        "min_accelerators": args.min_accelerators,
        "checkpoint_overhead_h": args.checkpoint_overhead,
        "migration_overhead_h": args.migration_overhead,
        "args": fn_args,
    }
    if args.deadline is not None:
        body["deadline"] = args.deadline
    else:
        body["slack_h"] = args.slack
    if args.site:
        body["allowed_sites"] = args.site
    if args.function:
        body["function"] = args.function
    key = args.idempotency_key or str(uuid.uuid4())
    try:
        status, job = api.call("POST", "/v1/jobs", body, headers={"Idempotency-Key": key})
    except ClientError as exc:
        if exc.code == EXIT_UNREACHABLE:  # it may have been accepted: say how to retry safely
            exc.lines.append(f"retry with --idempotency-key {key}: it will not run twice.")
        raise
    if args.json:
        _emit(console, args, job, None)
        return 0
    again = " (submitted before with this key: the same job)" if status == 200 else ""
    console.print(
        f"job {job['id']} {job['state']}{again}, deadline {_time(job['deadline'])} UTC",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"idempotency key: {key}", markup=False, highlight=False, soft_wrap=True)
    return 0


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def _job_list(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    params = {"state": args.state, "site": args.site, "limit": args.limit, "offset": args.offset}
    _, page = api.call("GET", "/v1/jobs", params=params)
    if args.json:
        _emit(console, args, page, None)
        return 0
    console.print(_job_table(page["jobs"], console.width))
    console.print(_page_note(page, len(page["jobs"]), "job"), markup=False, highlight=False)
    return 0


def _page_note(page: Mapping[str, Any], shown: int, what: str) -> str:
    total = int(page["total"])
    note = f"{total} {what}{'' if total == 1 else 's'}"
    if shown < total:
        first = int(page["offset"]) + 1
        note += f"; showing {first}..{first + shown - 1} (--offset, --limit for more)"
    return note


def _job_get(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    _, job = api.call("GET", f"/v1/jobs/{_segment(args.job_id, 'ID')}")
    _emit(console, args, job, _job_details(job))
    return 0


def _job_cancel(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    _, job = api.call("POST", f"/v1/jobs/{_segment(args.job_id, 'ID')}/cancel")
    if args.json:
        _emit(console, args, job, None)
    elif job["state"] == "cancelled":
        console.print(f"job {job['id']} cancelled", markup=False, highlight=False)
    else:
        console.print(
            f"job {job['id']} had ended already: {job['state']}", markup=False, highlight=False
        )
    return 0


def _job_line(job: Mapping[str, Any]) -> str:
    where = f" at {job['site']} on {job['accelerators']}" if job.get("site") else ""
    missed = ", deadline missed" if job.get("deadline_missed") else ""
    return f"{job['state']}{where}, {_progress(job)} done{missed}"


def _job_watch(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    if not args.interval > 0:
        raise InputError("--interval", f"{args.interval:g} is not positive.", "give seconds > 0.")
    path = f"/v1/jobs/{_segment(args.job_id, 'ID')}"
    seen = ""
    try:
        while True:
            _, job = api.call("GET", path)
            line = _job_line(job)
            if line != seen and not args.json:
                stamp = time.strftime("%H:%M:%S")
                console.print(f"{stamp} {job['id']} {line}", markup=False, highlight=False)
            seen = line
            if job["state"] in ENDED:
                break
            sleep(args.interval)
    except KeyboardInterrupt:
        errors.print("stopped watching (the job goes on)", markup=False)
        return EXIT_INTERRUPTED
    if args.json:
        _emit(console, args, job, None)
    return 0 if job["state"] == "completed" and not job["deadline_missed"] else EXIT_JOB_ENDED


def sleep(seconds: float) -> None:
    """Wait between polls (tests replace it)."""
    time.sleep(seconds)


def _segment(value: str, flag: str) -> str:
    """``value`` as one path segment: refused if it could leave it."""
    from urllib.parse import quote

    if not value or value in (".", ".."):
        raise InputError(flag, f"{value!r} is not an id.", "give the id `jobs list` shows.")
    return quote(value, safe="")


def _service_table(services: Sequence[Mapping[str, Any]], width: int) -> Table:
    rows = [
        (
            s["key"],
            f"{s['latency_slo_ms']:g}",
            f"{s['replica_throughput_rps']:g}",
            str(s["accelerators_per_replica"]),
            ", ".join(f"{p} {r:g}" for p, r in s["demand_rps"].items()) or "-",
        )
        for s in services
    ]
    columns = ("service", "slo ms", "replica rps", "acc", "demand rps")
    return _table(columns, rows, 4, width)


def _demand(pairs: Sequence[str] | None, flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs or ():
        point, sep, rate = pair.rpartition("=")
        try:
            value = float(rate)
        except ValueError:
            value = math.nan
        if not sep or not point or not math.isfinite(value):
            raise InputError(flag, f"{pair!r} is not POINT=RPS.", "give e.g. us-east=12.5.")
        out[point] = value
    return out


def _service_list(
    api: ApiClient, args: argparse.Namespace, console: Console, errors: Console
) -> int:
    _, page = api.call("GET", "/v1/services", params={"limit": args.limit, "offset": args.offset})
    if args.json:
        _emit(console, args, page, None)
        return 0
    console.print(_service_table(page["services"], console.width))
    console.print(_page_note(page, len(page["services"]), "service"), markup=False, highlight=False)
    return 0


def _show_service(console: Console, args: argparse.Namespace, service: dict[str, Any]) -> int:
    """Print the service an API call answered with (as JSON with ``--json``); exit code 0."""
    _emit(console, args, service, _service_table([service], console.width))
    return 0


def _service_create(
    api: ApiClient, args: argparse.Namespace, console: Console, errors: Console
) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "latency_slo_ms": args.slo_ms,
        "service_time_ms": args.service_time_ms,
        "replica_throughput_rps": args.throughput_rps,
        "accelerators_per_replica": args.accelerators_per_replica,
        "demand_rps": _demand(args.demand, "--demand"),
    }
    if args.handler:
        body["handler"] = args.handler
    _, service = api.call("POST", "/v1/services", body)
    return _show_service(console, args, service)


def _service_get(
    api: ApiClient, args: argparse.Namespace, console: Console, errors: Console
) -> int:
    path = f"/v1/services/{_segment(args.name, 'NAME')}"
    _, service = api.call("GET", path, params={"tenant": args.tenant})
    return _show_service(console, args, service)


def _service_demand(
    api: ApiClient, args: argparse.Namespace, console: Console, errors: Console
) -> int:
    path = f"/v1/services/{_segment(args.name, 'NAME')}"
    body = {"demand_rps": _demand(args.demand, "POINT=RPS")}
    _, service = api.call("PATCH", path, body, params={"tenant": args.tenant})
    return _show_service(console, args, service)


def _service_delete(
    api: ApiClient, args: argparse.Namespace, console: Console, errors: Console
) -> int:
    path = f"/v1/services/{_segment(args.name, 'NAME')}"
    api.call("DELETE", path, params={"tenant": args.tenant})
    if args.json:
        print(json.dumps({"deleted": args.name}))
    else:
        console.print(f"service {args.name} deleted", markup=False, highlight=False)
    return 0


def _event_table(events: Sequence[Mapping[str, Any]], width: int) -> Table:
    rows = []
    for e in events:
        complied = {True: " ok", False: " over", None: ""}[e.get("complied")]
        rows.append(
            (
                e["site"],
                f"{e['max_kw']:g}",
                _time(e["start"]),
                _time(e["end"])[5:],
                e["status"] + complied,
                f"{e['peak_kw']:.1f}",
                e["reason"] or "-",
            )
        )
    columns = ("site", "max kW", "start (UTC)", "end", "status", "peak kW", "reason")
    return _table(columns, rows, 6, width)


def _event_declare(
    api: ApiClient, args: argparse.Namespace, console: Console, errors: Console
) -> int:
    body = {
        "site": args.site,
        "max_kw": args.max_kw,
        "start": args.start,
        "end": args.end,
        "reason": args.reason,
    }
    _, event = api.call("POST", "/v1/grid-events", body)
    _emit(console, args, event, _event_table([event], console.width))
    return 0


def _event_list(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    params = {"site": args.site, "limit": args.limit, "offset": args.offset}
    _, page = api.call("GET", "/v1/grid-events", params=params)
    if args.json:
        _emit(console, args, page, None)
        return 0
    console.print(_event_table(page["grid_events"], console.width))
    console.print(
        _page_note(page, len(page["grid_events"]), "grid event"), markup=False, highlight=False
    )
    return 0


def _place(api: ApiClient, args: argparse.Namespace, console: Console, errors: Console) -> int:
    body: dict[str, Any] = {
        "work_accelerator_hours": args.work,
        "accelerators": args.accelerators,
        "minimise": args.minimise,
    }
    if args.deadline is not None:
        body["deadline"] = args.deadline
    else:
        body["slack_h"] = args.slack
    if args.site:
        body["allowed_sites"] = args.site
    _, answer = api.call("POST", "/v1/placements", body)
    if args.json:
        _emit(console, args, answer, None)
        return 0
    rows: list[tuple[str, ...]] = []
    for label in ("best", "now"):
        option = answer[label]
        if option is None:
            rows.append((label, "-", "no site has the power now", "", "", ""))
            continue
        rows.append(
            (
                label,
                option["site"],
                _time(option["start"]),
                f"{option['cost_usd']:.4g}",
                f"{option['emissions_kg']:.4g}",
                f"{option['objective_usd']:.4g}",
            )
        )
    saved = answer.get("savings")
    if saved is not None:
        rows.append(
            (
                "saves",
                "",
                "",
                f"{saved['cost_usd']:.4g}",
                f"{saved['emissions_kg']:.4g}",
                f"{saved['objective_usd']:.4g}",
            )
        )
    columns = ("", "site", "start (UTC)", "cost USD", "kg CO2e", "objective USD")
    table = _table(columns, rows, 1, console.width)
    console.print(table)
    note = (
        f"{answer['runtime_h']:g} h on {args.accelerators} accelerator"
        f"{'' if args.accelerators == 1 else 's'}; best by {answer['minimise']} over "
        f"{answer['starts']} starts per site from {_time(answer['time'])} UTC"
    )
    if answer.get("degraded"):
        note += " (signals are stale: the controller plans on its last good values)"
    console.print(note, markup=False, highlight=False)
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("jobs", "submit"): _job_submit,
    ("jobs", "list"): _job_list,
    ("jobs", "get"): _job_get,
    ("jobs", "cancel"): _job_cancel,
    ("jobs", "watch"): _job_watch,
    ("services", "list"): _service_list,
    ("services", "create"): _service_create,
    ("services", "get"): _service_get,
    ("services", "demand"): _service_demand,
    ("services", "delete"): _service_delete,
    ("events", "declare"): _event_declare,
    ("events", "list"): _event_list,
    ("place", None): _place,
}
