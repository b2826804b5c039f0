"""``wattroute demo``: the control plane driving Ray on three emulated sites, narrated.

It starts a local Ray cluster with one node per site, the service (API, controller, SQLite
store) on a replay of real signals, submits training jobs and an inference service through the
API, sends inference requests through the gateway, reports a sudden drop of a site's solar and
wind through its meter readings, declares a grid event, blacks out a site and brings it
back — printing what moves where and why — then prints a summary and stops
everything it started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from wattroute.errors import InputError
from wattroute.service.config import load_service_config
from wattroute.service.server import serve_in_thread

TRAIN = "train-logistic-regression"  # registered in examples/demo_ray.yaml
DEFAULT_CONFIG = Path("examples/demo_ray.yaml")


MARKER = ".wattroute-demo"
"""The file that marks a folder as a previous demo's, which the next demo may empty."""


def _fresh(out: Path) -> None:
    """Make ``out`` an empty folder for this run: create it, or empty a previous demo's.

    Raises
    ------
    InputError
        If ``out`` holds anything that is not a previous demo's (it is never emptied).
    """
    if out.exists():
        if (out / MARKER).is_file():
            shutil.rmtree(out)
        elif not out.is_dir() or any(out.iterdir()):
            raise InputError(
                "--out",
                f"{out} exists and is not a previous demo's folder.",
                "name a new or empty folder, or leave --out out to use the state directory.",
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()


@dataclasses.dataclass
class _Story:
    """What happened, for the narration and the summary."""

    console: Console
    started: float = dataclasses.field(default_factory=time.monotonic)
    reason: str = ""
    reason_at: float = -1e9
    sites_run: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    latencies: list[tuple[str, float, bool]] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def say(self, fleet_time: pd.Timestamp | None, text: str) -> None:
        stamp = "" if fleet_time is None else f" {fleet_time:%a %H:%M}"
        self.console.print(
            f"[dim]+{time.monotonic() - self.started:5.1f}s{stamp}[/dim]  {text}", highlight=False
        )


class _WithoutRayNoise(io.TextIOBase):
    """Standard output without what Ray's driver prints when a node dies (the raylet's last
    log lines and state dump): the narration says it in one line."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if not _is_ray_noise(line):
                self.inner.write(line + "\n")
        self.inner.flush()
        return len(text)

    def flush(self) -> None:
        self.inner.flush()


def _is_ray_noise(line: str) -> bool:
    stripped = line.strip()
    return (
        "(raylet)" in line
        or "[state-dump]" in line
        or stripped.startswith("[20")
        or "worker.py:" in line
        or line.startswith("\t(")
    )


def _conditions(controller: Any, site: str) -> str:
    """Price, carbon and renewables at ``site`` now, as the controller received them."""
    k = max(controller.next_step - 1, 0)
    i = controller.fleet.names.index(site)
    r = controller.received
    parts = [
        f"{r['price_usd_per_mwh'][k][i]:.0f} $/MWh",
        f"{r['carbon_g_per_kwh'][k][i]:.0f} g/kWh",
    ]
    renewables = r["solar_kw"][k][i] + r["wind_kw"][k][i]
    if renewables > 0.05:
        parts.append(f"{renewables:.1f} kW on-site renewables")
    return ", ".join(parts)


def run_demo(console: Console, config_path: Path | None, out: Path) -> int:
    """Run the narrated demo, its database and checkpoints in ``out`` (emptied first); 0 when
    every job finished and the fleet stopped cleanly."""
    with (
        contextlib.redirect_stdout(_WithoutRayNoise(sys.stdout)),
        contextlib.redirect_stderr(_WithoutRayNoise(sys.stderr)),
    ):
        return _run(console, config_path, out)


def _run(console: Console, config_path: Path | None, out: Path) -> int:
    path = config_path or DEFAULT_CONFIG
    _fresh(out)
    database = f"sqlite:///{(out / 'demo.db').resolve()}"
    if config_path is None and not path.is_file():
        console.print(
            f"[yellow]{path} is not here (the demo is not run from a checkout of wattroute): "
            "it runs the built-in synthetic fleet instead.[/yellow]"
        )
        config = load_service_config(None, database)
        spec = config.spec.model_copy(
            update={
                "executor": "ray",
                "policy": "mpc",
                "clock": config.spec.clock.model_copy(update={"speedup": 600.0}),
            }
        )
        config = dataclasses.replace(config, spec=spec)
    else:
        config = load_service_config(path, database)
    ray_settings = config.spec.ray.model_copy(
        update={"checkpoint_dir": str((out / "checkpoints").resolve())}
    )
    config = dataclasses.replace(config, spec=config.spec.model_copy(update={"ray": ray_settings}))
    story = _Story(console)
    sites = [s.name for s in config.scenario.sites]
    console.print(
        f"[bold]wattroute demo[/bold]: {len(sites)} sites emulated as Ray nodes "
        f"({', '.join(sites)}), signals replayed at {config.spec.clock.speedup:g}x from "
        f"{config.scenario.start:%Y-%m-%d %H:%M} UTC, policy {config.spec.policy}. Starting..."
    )
    with serve_in_thread(config, log_level="error") as (url, state):
        controller = state.controller
        assert controller is not None
        executor: Any = controller.executor  # a RayExecutor
        story.say(None, f"API at {url} (docs: {url}/docs); Ray cluster up")

        def on_notice(kind: str, fields: dict[str, Any]) -> None:
            if kind == "correction":
                with story.lock:
                    story.reason, story.reason_at = str(fields["reason"]), time.monotonic()
                story.say(state.clock.now(), f"[yellow]re-plan now[/yellow]: {fields['reason']}")
            elif kind == "compliance" and fields.get("cause") == "power drop":
                story.say(
                    state.clock.now(),
                    f"[green]{fields['site']} within the power it has left "
                    f"{fields['seconds']:.2f} s after its meters reported the drop[/green]",
                )
            elif kind == "compliance":
                story.say(
                    state.clock.now(),
                    f"[green]{fields['site']} within its grid-event cap "
                    f"{fields['seconds']:.2f} s after the event took effect[/green]",
                )

        def on_transition(t: Any) -> None:
            now = state.clock.now()
            with story.lock:
                recent = story.reason if time.monotonic() - story.reason_at < 3 else ""
            if t.what == "started":
                story.sites_run.setdefault(t.job_id, []).append(t.site)
                story.say(
                    now,
                    f"{_short(t.job_id)} runs at [bold]{t.site}[/bold] on {t.accelerators} "
                    f"accelerators ({t.detail}); there: {_conditions(controller, t.site)}",
                )
            elif t.what == "stopping":
                if recent and t.site in recent:  # a correction about this site
                    why = recent
                elif t.detail.startswith("to restart on "):
                    why = f"the plan gives it {t.detail.rsplit(' ', 1)[1]} accelerators now"
                elif t.detail.startswith("to "):
                    target = t.detail[3:]
                    why = f"the plan prefers {target} ({_conditions(controller, target)})"
                else:
                    why = "the plan pauses it"
                story.say(now, f"{_short(t.job_id)} checkpoints and leaves {t.site}: {why}")
            elif t.what == "lost":
                story.say(now, f"[red]{_short(t.job_id)} lost with {t.site}[/red]")
            elif t.what == "completed":
                story.say(now, f"[green]{_short(t.job_id)} completed at {t.site}[/green]")
            elif t.what == "failed":
                story.say(now, f"[red]{_short(t.job_id)} failed: {t.detail}[/red]")

        controller.notices.append(on_notice)
        executor.listeners.append(on_transition)
        with httpx.Client(base_url=url, timeout=30) as client:
            code = _script(client, state, story, sites)
    console.print("Stopped the API, the controller, every Ray actor and the Ray nodes.")
    return code


def _short(job_id: str) -> str:
    return f"job {job_id[:6]}"


def _script(client: httpx.Client, state: Any, story: _Story, sites: list[str]) -> int:
    controller = state.controller
    say = story.say
    jobs = []
    for i, (epochs, slack) in enumerate([(160, 6.0), (200, 10.0), (120, 4.0), (240, 14.0)]):
        body = {
            "name": f"train-{i}",
            "work_accelerator_hours": 2.0 * epochs / 60,
            "max_accelerators": 2,
            "slack_h": slack,
            "function": TRAIN,
            "args": {"epochs": epochs, "seconds_per_epoch": 0.12, "checkpoint_every": 5},
        }
        r = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": f"demo-{i}"})
        r.raise_for_status()
        jobs.append(r.json()["id"])
        say(state.clock.now(), f"submitted {_short(jobs[-1])}: {epochs} epochs, slack {slack} h")
    points = [p.name for p in state.scenario.demand_points]
    service = {
        "name": "assist",
        "latency_slo_ms": 60.0,
        "service_time_ms": 10.0,
        "replica_throughput_rps": 20.0,
        "demand_rps": dict.fromkeys(points, 25.0),
        "handler": "mlp",
    }
    client.post("/v1/services", json=service).raise_for_status()
    say(state.clock.now(), f"created inference service 'assist' for {', '.join(points)}")

    def requests(n: int) -> None:
        for j in range(n):
            point = points[j % len(points)]
            r = client.post("/v1/infer/assist", json={"point": point, "input": [0.1 * j, 1.0]})
            if r.status_code == 200:
                b = r.json()
                story.latencies.append((b["site"], b["latency_ms"], b["within_slo"]))
                if j < len(points):
                    say(
                        state.clock.now(),
                        f"request from {point} answered at {b['site']}: {b['latency_ms']:.1f} ms "
                        f"({b['emulated_network_ms']:.1f} ms emulated network, SLO 60 ms)",
                    )

    _wait(lambda: len(story.sites_run) >= 2, 30)
    time.sleep(4)
    requests(20)

    # A sudden drop of on-site power: the meters of the site with the most solar and wind
    # output now read none, every 0.4 s for 5 s (a reading stands for one step).
    k = controller.next_step - 1
    output = controller.received["solar_kw"][k] + controller.received["wind_kw"][k]
    if output.max() > 0.5:  # kW: a drop worth showing
        i = int(np.argmax(output))
        spec = state.scenario.sites[i]
        reading = {f"{kind}_kw": 0.0 for kind in ("solar", "wind") if getattr(spec, kind)}
        say(
            state.clock.now(),
            f"[yellow]power drop[/yellow]: {sites[i]}'s meters read no "
            f"{' or '.join(r.removesuffix('_kw') for r in reading)} (was {output[i]:.1f} kW)",
        )
        until = time.monotonic() + 5
        while time.monotonic() < until:
            client.post(f"/v1/sites/{sites[i]}/readings", json=reading).raise_for_status()
            time.sleep(0.4)
        say(state.clock.now(), f"{sites[i]}'s meters stop reporting: the signals count again")
        requests(10)

    # A grid event: the busiest site to half its load, for three hours.
    load = controller.executor.load_kw_now(np.ones(len(sites)))
    busiest = sites[int(np.argmax(load))]
    now = state.clock.now()
    cap = float(load.max()) / 2
    say(now, f"[yellow]grid event[/yellow]: {busiest} to at most {cap:.2f} kW for 3 h (-50 %)")
    client.post(
        "/v1/grid-events",
        json={
            "site": busiest,
            "max_kw": cap,
            "start": now.isoformat(),
            "end": (now + pd.Timedelta(hours=3)).isoformat(),
            "reason": "demand response (demo)",
        },
    ).raise_for_status()
    time.sleep(8)
    requests(20)

    # A blackout: the site running the most work (batch, then replicas) loses its node.
    batch, inference = controller.executor._busy_now()
    victim = sites[int(np.argmax(batch * 1000 + inference))]
    say(state.clock.now(), f"[red]blackout[/red]: {victim}'s Ray node goes away")
    state.cluster.black_out(victim)
    time.sleep(10)
    requests(20)
    say(state.clock.now(), f"{victim} is back: a fresh node joins")
    state.cluster.restore(victim)

    finished = _wait(
        lambda: all(
            client.get(f"/v1/jobs/{j}").json()["state"] in ("completed", "failed") for j in jobs
        ),
        150,
    )
    _summary(client, story, jobs, state)
    return 0 if finished else 1


def _wait(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def _summary(client: httpx.Client, story: _Story, jobs: list[str], state: Any) -> None:
    console = story.console
    store = state.controller.executor.checkpoints
    table = Table(title="Jobs")
    for column in ("job", "state", "ran at", "attempts", "log-loss"):
        table.add_column(column)
    for job_id in jobs:
        job = client.get(f"/v1/jobs/{job_id}").json()
        result = store.result(job_id) or {}
        meta = store.meta(job_id)
        table.add_row(
            _short(job_id),
            job["state"],
            " -> ".join(story.sites_run.get(job_id, [])) or "-",
            str(meta.attempt if meta else 0),
            f"{result['log_loss']:.4f}" if "log_loss" in result else "-",
        )
    console.print(table)
    if story.latencies:
        ms = np.array([x[1] for x in story.latencies])
        within = sum(x[2] for x in story.latencies)
        where = {
            s: sum(1 for x in story.latencies if x[0] == s) for s in {x[0] for x in story.latencies}
        }
        console.print(
            f"Inference: {len(ms)} requests through the gateway, p50 {np.percentile(ms, 50):.1f} "
            f"ms, p99 {np.percentile(ms, 99):.1f} ms, {within} within the 60 ms SLO; served at "
            + ", ".join(f"{s} {n}" for s, n in sorted(where.items()))
        )
    for event in client.get("/v1/grid-events").json()["grid_events"]:
        seconds = event["compliance_s"]
        console.print(
            f"Grid event at {event['site']} (max {event['max_kw']:.2f} kW): complied "
            + ("not yet" if seconds is None else f"{seconds:.2f} s after it took effect")
        )
    summary = client.get("/v1/summary").json()["fleet"]
    energy = summary["energy_kwh"]
    console.print(
        f"So far: cost ${summary['cost_usd']:.3f}, emissions {summary['emissions_kg']:.2f} kg; "
        f"energy {energy.get('load', 0):.2f} kWh, of which grid {energy.get('grid', 0):.2f}, "
        f"solar {energy.get('solar', 0):.2f}, wind {energy.get('wind', 0):.2f}, battery "
        f"{energy.get('battery_discharge', 0):.2f} kWh."
    )
