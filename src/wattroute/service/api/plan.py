"""The plan in force, the signals it plans on, and the running summary."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from wattroute.model.summary import RunningTotals, violation_fraction
from wattroute.service.api.deps import Reader, State, workload_scope
from wattroute.service.api.problems import READ
from wattroute.service.schemas import FleetTotals, JobCounts, PlanOut, SummaryOut

router = APIRouter(tags=["plan"])


@router.get("/v1/plan", response_model=PlanOut, responses=READ)
def plan(state: State, who: Reader) -> PlanOut:
    """The decision in force: your jobs' allocations and your services' routing (an admin's:
    every tenant's), and the sites' battery and genset set-points (fleet-wide)."""
    scope = workload_scope(who)
    last = state.store.last_tick()
    if last is None:
        return PlanOut(
            time=None,
            step=None,
            degraded=False,
            workloads_scope=scope,
            jobs={},
            routing={},
            setpoints={},
        )
    jobs: dict[str, dict[str, Any]] = last.plan.get("jobs", {})
    routing: dict[str, Any] = last.plan.get("routing", {})
    if not who.admin:
        jobs = {k: v for k, v in jobs.items() if v.get("tenant") == who.tenant}
        routing = {k: v for k, v in routing.items() if k.startswith(who.tenant + "/")}
    return PlanOut(
        time=last.time.to_pydatetime(),
        step=last.step,
        degraded=last.degraded,
        workloads_scope=scope,
        jobs=jobs,
        routing=routing,
        setpoints=last.plan.get("setpoints", {}),
        correction=last.plan.get("correction"),
    )


@router.get("/v1/signals", responses=READ)
def signals(
    state: State, _: Reader, horizon_h: Annotated[float, Query(gt=0, le=24)] = 24.0
) -> dict[str, Any]:
    """Latest received value and the controller's forecast of each signal, per site, as
    of its last tick (forecasts reach 24 h ahead), with where each value came from: source,
    kind (average or marginal carbon, lifecycle or direct; day-ahead or real-time prices),
    the time it is for, when it was fetched and its age in seconds."""
    beat = state.store.last_heartbeat()
    if beat is None or not beat.signals:
        return {"time": None, "sites": {}}
    snapshot = beat.signals
    steps = max(1, round(horizon_h * 60 / snapshot["step_minutes"]))
    return {
        "time": snapshot["time"],
        "step_minutes": snapshot["step_minutes"],
        "degraded": beat.degraded,
        "kinds": snapshot.get("kinds", {}),
        "sites": {
            site: {name: {**v, "forecast": v["forecast"][:steps]} for name, v in values.items()}
            for site, values in snapshot["sites"].items()
        },
    }


@router.get("/v1/summary", response_model=SummaryOut, responses=READ)
def summary(state: State, who: Reader) -> SummaryOut:
    """The objective so far — cost, emissions, energy by source, inference requests — for the
    whole fleet, and your jobs by state (an admin's: every tenant's)."""
    last = state.store.last_tick()
    totals = RunningTotals.from_json(last.state.get("totals", {}) if last else {})
    carbon_price = state.scenario.carbon_price_usd_per_tonne
    requests = totals.requests
    return SummaryOut(
        time=None if last is None else last.time.to_pydatetime(),
        fleet=FleetTotals(
            objective_usd_before_penalties=totals.objective_usd_before_penalties(carbon_price),
            cost_usd=totals.cost_usd,
            emissions_kg=totals.emissions_kg,
            carbon_price_usd_per_tonne=carbon_price,
            energy_kwh=dict(totals.energy_kwh),
            signal_kinds=last.state.get("signal_kinds", {}) if last else {},
            inference={
                **requests,
                "slo_violation_fraction": violation_fraction(
                    requests["requests"], requests["served_within_slo"]
                ),
            },
        ),
        jobs=JobCounts(
            scope=workload_scope(who),
            tenant=None if who.admin else who.tenant,
            by_state=state.store.job_counts(None if who.admin else who.tenant),
        ),
    )
