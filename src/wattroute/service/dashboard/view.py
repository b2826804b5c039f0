"""What the dashboard shows, assembled from the store: the fleet now, the last 24 h of fleet
time, jobs, inference, grid events and the objective against the carbon-agnostic baseline.

The last 24 h are read from the ticks the controller commits anyway (one row per step, kept
for good in the database): nothing more is written for the dashboard. Each API process keeps
a compact copy of the steps it has read (:class:`History`), so that a refresh reads only the
steps committed since, plus the step in force (a correction between ticks rewrites its plan).

Units: power kW, energy kWh, battery state of charge kWh, prices USD/MWh, carbon intensity
gCO2/kWh, money USD, emissions kg, latency ms, times ISO 8601 UTC.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wattroute.model.scenario import Scenario
from wattroute.model.summary import RunningTotals
from wattroute.runtime.records import GridEventRecord, JobRecord, ServiceRecord, TickRecord
from wattroute.service.auth import Principal
from wattroute.service.store import SqlStore

WINDOW = pd.Timedelta(hours=24)
"""How far back the charts reach, fleet time."""

FLOWS = (
    "grid_import_kw",
    "solar_kw",
    "wind_kw",
    "battery_discharge_kw",
    "genset_kw",
    "battery_charge_kw",
    "export_kw",
    "curtailed_kw",
    "load_kw",
)
"""The power flows of a site shown, kW (sources, then where power went, then the load)."""

MAX_JOBS = 50
"""The most jobs listed (newest first)."""

MAX_EVENTS = 50
"""The most grid events listed (latest start first)."""


@dataclass(frozen=True)
class StepView:
    """One committed step, reduced to what the dashboard shows."""

    step: int
    time: pd.Timestamp
    sites: dict[str, dict[str, float]]  # site -> flows (kW), soc_kwh, price, carbon
    jobs: dict[str, tuple[str, str]]  # job id -> (site, tenant)
    correction: str | None
    objective_usd: float
    baseline_usd: float | None
    degraded: bool


def step_view(tick: TickRecord, carbon_price: float) -> StepView:
    """The dashboard's view of ``tick``; ``carbon_price`` in USD per tonne."""
    totals = RunningTotals.from_json(tick.state.get("totals", {}))
    saved = tick.state.get("baseline")
    baseline = (
        None
        if saved is None
        else RunningTotals.from_json(saved["totals"]).objective_usd_before_penalties(carbon_price)
    )
    sites = {
        name: {
            key: float(values.get(key, 0.0))
            for key in (*FLOWS, "soc_kwh", "price_usd_per_mwh", "carbon_g_per_kwh")
        }
        for name, values in tick.outcome.get("sites", {}).items()
    }
    correction = tick.plan.get("correction")
    return StepView(
        step=tick.step,
        time=tick.time,
        sites=sites,
        jobs={
            job_id: (str(a["site"]), str(a.get("tenant", "")))
            for job_id, a in tick.plan.get("jobs", {}).items()
        },
        correction=None if correction is None else str(correction.get("reason", "")),
        objective_usd=totals.objective_usd_before_penalties(carbon_price),
        baseline_usd=baseline,
        degraded=tick.degraded,
    )


@dataclass
class History:
    """The steps of the last 24 h of fleet time that this process has read, by step."""

    steps: dict[int, StepView] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, store: SqlStore, carbon_price: float) -> list[StepView]:
        """Read the steps committed since the last refresh (and the last one again), drop
        those older than 24 h before the newest; the steps, oldest first."""
        with self.lock:
            if self.steps:
                last = max(self.steps)
                ticks = store.ticks_since(self.steps[last].time - WINDOW, last)
            else:  # the first read: only the window before the newest tick
                latest = store.last_tick()
                ticks = [] if latest is None else store.ticks_since(latest.time - WINDOW)
            for tick in ticks:
                self.steps[tick.step] = step_view(tick, carbon_price)
            if self.steps:
                newest = self.steps[max(self.steps)].time
                for k in [k for k, v in self.steps.items() if v.time < newest - WINDOW]:
                    del self.steps[k]
            return [self.steps[k] for k in sorted(self.steps)]


def _iso(t: pd.Timestamp | None) -> str | None:
    return None if t is None else t.isoformat()


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _unit_cost(site: dict[str, float], carbon_price: float) -> float:
    """USD per MWh of grid power at a site: price plus the carbon price on its intensity."""
    return site["price_usd_per_mwh"] + carbon_price * site["carbon_g_per_kwh"] / 1000.0


def why_moved(
    before: StepView,
    at: StepView,
    origin: str,
    target: str,
    events: list[GridEventRecord],
    carbon_price: float,
) -> str:
    """In words, why a job went from ``origin`` to ``target`` at step ``at``: the correction
    that moved it, a grid event at ``origin``, or what a MWh cost at each site."""
    if at.correction:
        return f"re-decided between ticks: {at.correction}"
    for e in events:
        if e.site == origin and e.start <= at.time < e.end:
            return f"grid event at {origin}: at most {e.max_kw:g} kW"
    a, b = at.sites.get(origin), at.sites.get(target)
    if a is None or b is None:
        return "re-planned"
    ca, cb = _unit_cost(a, carbon_price), _unit_cost(b, carbon_price)
    curtailed = before.sites.get(target, {}).get("curtailed_kw", 0.0)
    if curtailed >= 0.5:
        return f"power to spare at {target}: {curtailed:.0f} kW curtailed the step before"
    if cb < ca:
        return (
            f"cheaper, cleaner grid power at {target}: {cb:.0f} against {ca:.0f} USD/MWh "
            "(price plus carbon)"
        )
    return "re-planned: room or deadlines"


def job_tracks(
    steps: list[StepView],
    visible: set[str],
    events: list[GridEventRecord],
    carbon_price: float,
) -> dict[str, dict[str, Any]]:
    """Where each job in ``visible`` ran over the window: segments of consecutive steps at one
    site (``{site, start, end}``), and its moves (``{time, from, to, why}``)."""
    out: dict[str, dict[str, Any]] = {}
    step_td: pd.Timedelta | None = None
    if len(steps) > 1:
        step_td = steps[1].time - steps[0].time
    last_site: dict[str, str] = {}
    prev: StepView | None = None
    for view in steps:
        for job_id, (site, _) in view.jobs.items():
            if job_id not in visible:
                continue
            track = out.setdefault(job_id, {"segments": [], "moves": []})
            end = view.time + (step_td if step_td is not None else pd.Timedelta(0))
            segments = track["segments"]
            if (
                segments
                and segments[-1]["site"] == site
                and prev is not None
                and prev.jobs.get(job_id, ("",))[0] == site
            ):
                segments[-1]["end"] = end.isoformat()
            else:
                segments.append(
                    {"site": site, "start": view.time.isoformat(), "end": end.isoformat()}
                )
            origin = last_site.get(job_id)
            if origin is not None and origin != site and prev is not None:
                track["moves"].append(
                    {
                        "time": view.time.isoformat(),
                        "from": origin,
                        "to": site,
                        "why": why_moved(prev, view, origin, site, events, carbon_price),
                    }
                )
            last_site[job_id] = site
        prev = view
    return out


def _rtt_ms(scenario: Scenario) -> np.ndarray:
    """Round trip from each demand point to each site, ms, ``(P, S)``."""
    points = [(p.latitude, p.longitude, p.zone) for p in scenario.demand_points]
    sites = [(s.latitude, s.longitude, s.zone) for s in scenario.sites]
    return np.asarray(scenario.network.rtt_matrix_ms(points, sites))


def _latency(
    scenario: Scenario,
    rtt: np.ndarray,
    service: ServiceRecord,
    routing: dict[str, dict[str, float]],
) -> dict[str, dict[str, Any]]:
    """Per demand point: the shares routed to each site and the expected latency (the
    share-weighted round trip ``rtt``, ms, plus the service time)."""
    names = [s.name for s in scenario.sites]
    out = {}
    for i, p in enumerate(scenario.demand_points):
        shares = routing.get(p.name, {})
        total = sum(shares.values())
        latency = None
        if total > 0:
            latency = service.service_time_ms + float(
                sum(share * rtt[i, names.index(site)] for site, share in shares.items()) / total
            )
        out[p.name] = {
            "shares": {site: round(share, 4) for site, share in shares.items() if share > 0},
            "demand_rps": service.demand_rps.get(p.name, 0.0),
            "latency_ms": None if latency is None else round(latency, 2),
        }
    return out


def _job(job: JobRecord, track: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "tenant": job.tenant,
        "state": job.state,
        "site": job.site,
        "accelerators": job.accelerators,
        "progress": min(job.done_accelerator_hours / job.work_accelerator_hours, 1.0)
        if job.work_accelerator_hours > 0
        else 1.0,
        "deadline": _iso(job.deadline),
        "submitted_at": _iso(job.submitted_at),
        "moves": job.moves,
        "segments": [] if track is None else track["segments"],
        "moved": [] if track is None else track["moves"],
    }


def _event(e: GridEventRecord, now: pd.Timestamp) -> dict[str, Any]:
    return {
        "id": e.id,
        "site": e.site,
        "max_kw": e.max_kw,
        "start": _iso(e.start),
        "end": _iso(e.end),
        "reason": e.reason,
        "status": "upcoming" if now < e.start else "active" if now < e.end else "past",
        "peak_kw": e.peak_kw,
        "complied": e.complied,
        "compliance_s": e.compliance_s,
    }


def dashboard(
    scenario: Scenario,
    store: SqlStore,
    history: History,
    now: pd.Timestamp,
    who: Principal,
) -> dict[str, Any]:
    """Everything the page shows, as JSON values; workloads (jobs, routing, services) are
    ``who``'s own unless ``who`` is an admin; the fleet's power and totals are fleet-wide."""
    carbon_price = scenario.carbon_price_usd_per_tonne
    steps = history.refresh(store, carbon_price)
    beat = store.last_heartbeat()
    last_tick = store.last_tick()
    last = steps[-1] if steps else None
    overrides = store.site_overrides()
    _, n_events = store.grid_events_page(None, 1, 0)
    events, _ = store.grid_events_page(None, MAX_EVENTS, max(n_events - MAX_EVENTS, 0))
    events.reverse()  # the latest first
    events_now = [e for e in events if e.start <= now < e.end]
    snapshot = beat.signals if beat is not None else {}
    signal_sites: dict[str, dict[str, Any]] = snapshot.get("sites", {})
    kinds: dict[str, str] = snapshot.get("kinds", {})
    snapshot_time = snapshot.get("time")
    sites = []
    for i, s in enumerate(scenario.sites):
        o = overrides.get(s.name)
        limit = None if s.grid is None else s.grid.import_limit_kw
        if o is not None and o.import_limit_kw is not None:
            limit = o.import_limit_kw if limit is None else min(limit, o.import_limit_kw)
        caps = [e.max_kw for e in events_now if e.site == s.name]
        signals = {}
        for name, v in signal_sites.get(s.name, {}).items():
            age = v.get("age_s")
            if age is None and snapshot_time is not None:
                age = (now - pd.Timestamp(snapshot_time)).total_seconds()
            signals[name] = {
                "latest": _finite(v.get("latest")),
                "kind": v.get("kind") or kinds.get(name, "recorded"),
                "source": v.get("source", "replay"),
                "age_s": age,
            }
        sites.append(
            {
                "name": s.name,
                "zone": s.zone,
                "accelerators": s.accelerators.count,
                "import_limit_kw": _finite(limit),
                "grid_event_kw": min(caps) if caps else None,
                "offline": bool(o is not None and o.offline),
                "battery_kwh": s.battery.capacity_kwh if s.battery else 0.0,
                "now": None if last is None else last.sites.get(s.name),
                "signals": signals,
                "index": i,
            }
        )
    jobs, total = store.jobs(None if who.admin else who.tenant, limit=MAX_JOBS)
    tracks = job_tracks(steps, {j.id for j in jobs}, events, carbon_price)
    services = [s for s in store.services() if who.admin or s.tenant == who.tenant]
    rtt = _rtt_ms(scenario) if services else np.zeros((0, 0))
    routing: dict[str, Any] = {} if last_tick is None else last_tick.plan.get("routing", {})
    totals = RunningTotals.from_json(last_tick.state.get("totals", {}) if last_tick else {})
    saved = None if last_tick is None else last_tick.state.get("baseline")
    baseline = None if saved is None else RunningTotals.from_json(saved["totals"])
    return {
        "fleet": scenario.name,
        "time": None if last is None else last.time.isoformat(),
        "now": now.isoformat(),
        "step_minutes": scenario.step.total_seconds() / 60,
        "scope": "all" if who.admin else "tenant",
        "tenant": None if who.admin else who.tenant,
        "degraded": bool(beat.degraded) if beat is not None else False,
        "reasons": list(beat.reasons) if beat is not None else [],
        "sites": sites,
        "history": {
            "time": [v.time.isoformat() for v in steps],
            "sites": {
                s.name: {
                    key: [round(v.sites.get(s.name, {}).get(key, 0.0), 3) for v in steps]
                    for key in (*FLOWS, "soc_kwh")
                }
                for s in scenario.sites
            },
            "objective_usd": [round(v.objective_usd, 4) for v in steps],
            "baseline_usd": [
                None if v.baseline_usd is None else round(v.baseline_usd, 4) for v in steps
            ],
        },
        "jobs": {
            "total": total,
            "items": [_job(j, tracks.get(j.id)) for j in jobs],
        },
        "inference": {
            "services": [
                {
                    "service": s.key if who.admin else s.name,
                    "latency_slo_ms": s.latency_slo_ms,
                    "points": _latency(scenario, rtt, s, routing.get(s.key, {})),
                }
                for s in services
            ],
            "requests": totals.requests,
        },
        "grid_events": [_event(e, now) for e in events],
        "objective": {
            "carbon_price_usd_per_tonne": carbon_price,
            "usd": totals.objective_usd_before_penalties(carbon_price),
            "cost_usd": totals.cost_usd,
            "emissions_kg": totals.emissions_kg,
            "baseline_usd": None
            if baseline is None
            else baseline.objective_usd_before_penalties(carbon_price),
            "baseline_cost_usd": None if baseline is None else baseline.cost_usd,
            "baseline_emissions_kg": None if baseline is None else baseline.emissions_kg,
        },
    }
