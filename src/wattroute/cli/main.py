"""The ``wattroute`` command: thin — parse, call the layers, print.

Exit codes: 0 success, 2 bad input (the message names the field and the fix), 1 an internal
error (a bug: please report it), 130 interrupted. The API client's commands (``jobs``,
``services``, ``events``, ``place``) add 3 server unreachable, 4 token refused and 5 a watched
job ended other than completed on time (:mod:`wattroute.cli.client`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wattroute import __version__
from wattroute.errors import InputError, OptimisationError, SimulationError
from wattroute.signals.forecast import FORECASTERS, get_forecaster

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from wattroute.model import Scenario
    from wattroute.model.summary import Summary
    from wattroute.sim import SimulationOptions

EXIT_INPUT = 2
EXIT_BUG = 1
PROGRESS_MIN_STEPS = 20_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wattroute",
        description="Decide where and when AI workloads run across sites with variable power.",
    )
    parser.add_argument("--version", action="version", version=f"wattroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="simulate a policy on a scenario and write its summary")
    sim.add_argument(
        "scenario", nargs="?", help="scenario YAML file (default: the built-in default)"
    )
    sim.add_argument("--policy", default="agnostic", help="policy name (see `wattroute policies`)")
    sim.add_argument("--out", help="output folder (default: out/<scenario>/<policy>)")
    sim.add_argument("--data-dir", help="folder that relative data paths resolve against")
    sim.add_argument(
        "--forecaster",
        default="blend",
        choices=[*sorted(FORECASTERS), "perfect"],
        help="forecaster policies use ('perfect' reads the future: for evaluation only)",
    )
    sim.add_argument(
        "--oracle",
        metavar="SUMMARY",
        help="an oracle's summary.json: add capture_ratio against it (and the agnostic baseline)",
    )
    sim.add_argument(
        "--format", default="parquet", choices=["parquet", "csv"], help="time series format"
    )
    sim.add_argument(
        "--check-balance",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="verify energy balance at every site and step (on; switch off only to time runs)",
    )
    sim.add_argument("--quiet", action="store_true", help="print nothing but errors")

    val = sub.add_parser("validate", help="check a scenario file and its data without running it")
    val.add_argument("scenario", help="scenario YAML file")
    val.add_argument("--data-dir", help="folder that relative data paths resolve against")

    bench = sub.add_parser("bench", help="run policies side by side against the oracle")
    bench.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML files")
    bench.add_argument(
        "--policies", default="agnostic,greedy,mpc,oracle", help="comma-separated policy names"
    )
    bench.add_argument("--out", default="out/bench", help="output folder")
    bench.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run each policy on each scenario as a Ray task on the cluster at ADDRESS "
        "(auto: start one on this machine for the bench); the results are the local run's",
    )
    bench.add_argument("--data-dir", help="folder that relative data paths resolve against")
    bench.add_argument(
        "--forecaster",
        default="blend",
        choices=[*sorted(FORECASTERS), "perfect"],
        help="forecaster policies use",
    )
    bench.add_argument(
        "--oracle-step", type=float, default=1.0, help="the oracle's planning period, hours"
    )

    srv = sub.add_parser("serve", help="run the control plane: API, controller, store")
    srv.add_argument("--config", help="service config YAML (default: the built-in demo fleet)")
    srv.add_argument("--database", help="database URL (overrides the config's)")
    srv.add_argument("--host", help="address to listen on (overrides the config's)")
    srv.add_argument("--port", type=int, help="port to listen on (overrides the config's)")

    sig = sub.add_parser("signals", help="check a live configuration's signal sources")
    sig_sub = sig.add_subparsers(dest="signals_command", required=True, metavar="ACTION")
    sig_check = sig_sub.add_parser(
        "check", help="ask every source once: which answered, latest value, age, kind"
    )
    sig_check.add_argument("--config", required=True, help="service config YAML (live signals)")

    tok = sub.add_parser("token", help="manage API tokens: create, list, revoke")
    tok_sub = tok.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = tok_sub.add_parser("create", help="create a token (printed once)")
    create.add_argument("--tenant", required=True, help="the tenant the token acts for")
    create.add_argument(
        "--scope", required=True, help="read, submit, metrics or admin (comma-separated)"
    )
    create.add_argument("--label", default="", help="a note to recognise the token by")
    create.add_argument(
        "--expires", help="when it stops working: a duration (90d, 12h) or an ISO 8601 time"
    )
    listing = tok_sub.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("--tenant", help="only this tenant's")
    revoke = tok_sub.add_parser("revoke", help="revoke tokens at once, by id (see `token list`)")
    revoke.add_argument("ids", nargs="+", type=int, metavar="ID", help="token ids")
    for action in (create, listing, revoke):
        action.add_argument("--config", help="service config YAML, for its database")
        action.add_argument("--database", help="database URL (overrides the config's)")

    demo = sub.add_parser(
        "demo", help="the control plane driving Ray on three emulated sites, narrated"
    )
    demo.add_argument("--config", help="service config (default: examples/demo_ray.yaml)")
    demo.add_argument(
        "--out",
        help="folder for its database and checkpoints, emptied first (default: demo/ in the "
        "state directory, $WATTROUTE_STATE_DIR or ~/.local/state/wattroute)",
    )

    sub.add_parser("policies", help="list the policies")

    from wattroute.cli.client import add_commands

    add_commands(sub)  # jobs, services, events, place: clients of a running server
    return parser


def _load(path: str | None, data_dir: str | None) -> Scenario:
    from wattroute.scenario import default_scenario_path, load_scenario

    return load_scenario(path if path is not None else default_scenario_path(), data_dir)


def _simulate(args: argparse.Namespace, console: Console) -> int:
    from wattroute.cli.report import print_summary
    from wattroute.iotools.results import write_jobs, write_summary, write_timeseries
    from wattroute.policies import get_policy
    from wattroute.sim import SimulationOptions, job_frame, simulate, summarize

    policy = get_policy(args.policy)
    scenario = _load(args.scenario, args.data_dir)
    out = Path(args.out) if args.out else Path("out") / scenario.name / policy.name
    options = SimulationOptions(
        forecaster=get_forecaster(args.forecaster), check_energy_balance=args.check_balance
    )
    show_progress = (
        not args.quiet and sys.stderr.isatty() and scenario.n_steps >= PROGRESS_MIN_STEPS
    )
    if show_progress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("sim", total=scenario.n_steps)
            options.progress = lambda done, total: bar.update(task, completed=done)
            record = simulate(scenario, policy, options)
    else:
        record = simulate(scenario, policy, options)
    summary = summarize(record)
    if args.oracle:
        _add_capture_ratio(summary, scenario, args.oracle, options)
    summary_path = write_summary(summary, out / "summary.json")
    series_path = write_timeseries(record.sites.to_frame(scenario.times), out, args.format)
    jobs_path = write_jobs(job_frame(record), out, args.format)
    if not args.quiet:
        print_summary(summary, console)
        written = ", ".join(p.name for p in (summary_path, series_path, jobs_path))
        console.print(f"wrote {written} to {out}", highlight=False, markup=False)
    return 0


def _add_capture_ratio(
    summary: Summary, scenario: Scenario, oracle_path: str, options: SimulationOptions
) -> None:
    from wattroute.bench import add_capture_ratios
    from wattroute.iotools.results import read_summary
    from wattroute.policies import get_policy
    from wattroute.sim import simulate, summarize

    oracle = read_summary(oracle_path)
    if oracle.get("scenario") != scenario.name or not oracle.get("bound"):
        raise InputError(
            "--oracle",
            f"{oracle_path} is not an oracle result for scenario {scenario.name!r}.",
            "give the summary.json that `wattroute bench ... --policies oracle` wrote for it.",
        )
    summaries: dict[str, Summary] = {"oracle": oracle, summary["policy"]: summary}
    if "agnostic" not in summaries:
        baseline = simulate(scenario, get_policy("agnostic"), options)
        summaries["agnostic"] = summarize(baseline)
    add_capture_ratios(summaries)


def _bench(args: argparse.Namespace, console: Console) -> int:
    from rich.console import Console

    from wattroute.bench import bench_scenario, markdown_table, parse_policies, table_rows
    from wattroute.bench.report import write_report
    from wattroute.cli.progress import BarProgress, LineProgress
    from wattroute.cli.report import bench_tables
    from wattroute.iotools.results import write_summary

    policies = parse_policies(args.policies)
    out = Path(args.out)
    scenarios = [_load(path, args.data_dir) for path in args.scenarios]
    runs = [(s.name, name, s.n_steps) for s in scenarios for name in policies]
    errors = Console(stderr=True)
    tracker = BarProgress(runs, errors) if errors.is_terminal else LineProgress(runs, sys.stderr)
    results = []
    try:
        if args.ray:
            from wattroute.bench import write_results
            from wattroute.bench.sweep import run_on_ray

            get_forecaster(args.forecaster)  # an unknown name is an error here, not remotely
            results = run_on_ray(
                scenarios, policies, args.forecaster, args.oracle_step, args.ray, tracker
            )
            for result in results:
                write_results(result, out)
        else:
            for scenario in scenarios:
                results.append(
                    bench_scenario(
                        scenario,
                        policies,
                        out,
                        get_forecaster(args.forecaster),
                        args.oracle_step,
                        tracker=tracker,
                    )
                )
    finally:
        tracker.close()
    rows = [row for result in results for row in table_rows(result)]
    (out / "bench.md").write_text(markdown_table(rows) + "\n", encoding="utf-8")
    write_summary({"rows": rows}, out / "bench.json")
    report = write_report(results, out / "report.html")
    for table in bench_tables(rows, console.width):
        console.print(table)
    console.print(f"wrote {out / 'bench.md'}, {out / 'bench.json'} and {report}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from wattroute.service.config import load_service_config
    from wattroute.service.workers import prepare_workers

    config = load_service_config(args.config, args.database)
    prepare_workers(config.spec.api.workers)  # before the server imports prometheus_client
    from wattroute.service.server import serve

    serve(config, args.host, args.port, config_path=args.config)
    return 0


def _token(args: argparse.Namespace, console: Console) -> int:
    import pandas as pd
    from rich.console import Console

    from wattroute.service.auth import (
        check_tenant,
        new_token,
        parse_expiry,
        parse_scopes,
        token_hash,
    )
    from wattroute.service.config import load_service_config
    from wattroute.service.server import open_store

    now = pd.Timestamp.now(tz="UTC")
    if args.token_command == "create":
        scopes = parse_scopes(args.scope)
        tenant = check_tenant(args.tenant)
        expires = None if args.expires is None else parse_expiry(args.expires, now)
    store = open_store(args.database or load_service_config(args.config).database_url)
    errors = Console(stderr=True)
    if args.token_command == "create":
        token = new_token()
        number = store.add_token(
            tenant, ",".join(sorted(scopes)), token_hash(token), args.label, expires
        )
        print(token)
        until = "" if expires is None else f", until {expires:%Y-%m-%dT%H:%MZ}"
        errors.print(f"token {number} for {tenant} ({','.join(sorted(scopes))}{until})")
        return 0
    if args.token_command == "list":
        console.print(_token_table(store.tokens(args.tenant), now))
        return 0
    unknown = [n for n in args.ids if not store.revoke_token(n)]
    for n in args.ids:
        if n not in unknown:
            errors.print(f"revoked token {n}")
    if unknown:
        raise InputError(
            "ID",
            f"no active token with id {', '.join(map(str, unknown))}.",
            "see `wattroute token list`.",
        )
    return 0


def _token_table(tokens: Sequence[Any], now: Any) -> Table:
    from rich.table import Table

    table = Table("id", "tenant", "scopes", "label", "created", "expires", "status")
    for t in tokens:
        table.add_row(
            str(t.id),
            t.tenant,
            t.scopes,
            t.label,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            "" if t.expires_at is None else f"{t.expires_at:%Y-%m-%d %H:%M}",
            t.status(now),
        )
    return table


def _validate(args: argparse.Namespace, console: Console) -> int:
    scenario = _load(args.scenario, args.data_dir)
    step_min = scenario.step.total_seconds() / 60
    console.print(
        f"{args.scenario}: valid. {scenario.name}: {scenario.start:%Y-%m-%dT%H:%MZ} .. "
        f"{scenario.end:%Y-%m-%dT%H:%MZ} in {scenario.n_steps} steps of {step_min:g} min; "
        f"{len(scenario.sites)} sites, {len(scenario.services)} inference services, "
        f"{len(scenario.jobs)} batch jobs.",
        soft_wrap=True,
    )
    for note in scenario.notes:
        console.print(f"note: {note}", soft_wrap=True, highlight=False)
    return 0


def _policies(console: Console) -> int:
    from wattroute.policies import describe_policies

    for name, text in describe_policies().items():
        console.print(f"{name:<10} {text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    errors = Console(stderr=True)
    try:
        if args.command == "simulate":
            return _simulate(args, console)
        if args.command == "validate":
            return _validate(args, console)
        if args.command == "bench":
            return _bench(args, console)
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token(args, console)
        if args.command == "signals":
            from wattroute.cli.signals import check

            return check(args, console)
        if args.command == "demo":
            from wattroute.cli.demo import run_demo
            from wattroute.service.config import state_directory

            out = Path(args.out) if args.out else state_directory() / "demo"
            return run_demo(console, Path(args.config) if args.config else None, out)
        if args.command in ("jobs", "services", "events", "place"):
            from wattroute.cli.client import run

            return run(args, console)
        return _policies(console)
    except InputError as exc:
        errors.print(
            f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        return EXIT_INPUT
    except OptimisationError as exc:
        errors.print(f"error: the optimiser failed: {exc}", markup=False)
        return EXIT_BUG
    except SimulationError as exc:
        errors.print(f"internal error (a bug in wattroute, please report it): {exc}", markup=False)
        return EXIT_BUG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
