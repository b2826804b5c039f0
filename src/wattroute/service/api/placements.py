"""Where and when would a job run best? The placement query on the controller's outlook."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter

from wattroute.errors import InputError
from wattroute.model.arrays import FleetSignals, FleetStatic
from wattroute.optimise.placement import (
    Placement,
    PlacementRequest,
    PowerOutlook,
    place,
)
from wattroute.optimise.placement import PlacementOption as Option
from wattroute.service.api.deps import Reader, State
from wattroute.service.api.problems import ProblemError, error_responses
from wattroute.service.api.state import AppState
from wattroute.service.schemas import (
    PlacementIn,
    PlacementOption,
    PlacementOut,
    PlacementSavings,
)

router = APIRouter(tags=["jobs"])


def outlook(state: AppState) -> tuple[PowerOutlook, bool]:
    """The controller's outlook as of its last tick, from the store (any API process can
    answer): each signal's latest value and forecast, and each site's facility load in the
    decision in force; and whether it plans on stale signals. 503 before the first tick."""
    beat = state.store.last_heartbeat()
    last = state.store.last_tick()
    snapshot: dict[str, Any] = {} if beat is None else (beat.signals or {})
    if not snapshot.get("sites") or last is None:
        raise ProblemError(
            503,
            None,
            "the controller has not planned a step yet, so there is no outlook to place on",
            "retry in a moment",
            {"Retry-After": "5"},
        )
    names = [s.name for s in state.scenario.sites]
    sites = snapshot["sites"]
    per_site = last.outcome.get("sites", {})

    def column(site: str, signal: str) -> list[float]:
        value = sites.get(site, {}).get(signal)
        if value is None:
            return [float("nan")]
        return [value["latest"], *value["forecast"]]

    arrays: dict[str, np.ndarray] = {}
    for signal in FleetSignals.NAMES:
        columns = [column(site, signal) for site in names]
        rows = min(len(c) for c in columns)
        arrays[signal] = np.array([c[:rows] for c in columns], dtype=float).T
    rows = min(a.shape[0] for a in arrays.values())
    return (
        PowerOutlook(
            start=pd.Timestamp(snapshot["time"]).tz_convert("UTC"),
            step_h=float(snapshot["step_minutes"]) / 60,
            load_kw=np.array([per_site.get(site, {}).get("load_kw", 0.0) for site in names]),
            **{name: values[:rows] for name, values in arrays.items()},
        ),
        bool(beat is not None and beat.degraded),
    )


def _out(o: Option) -> PlacementOption:
    return PlacementOption(
        site=o.site,
        start=o.start.to_pydatetime(),
        end=o.end.to_pydatetime(),
        energy_kwh=o.energy_kwh,
        renewable_kwh=o.renewable_kwh,
        bought_kwh=o.bought_kwh,
        cost_usd=o.cost_usd,
        emissions_kg=o.emissions_kg,
        objective_usd=o.objective_usd,
    )


def placement_out(
    result: Placement, view: PowerOutlook, degraded: bool, body: PlacementIn, carbon_price: float
) -> PlacementOut:
    now = result.now
    return PlacementOut(
        time=view.start.to_pydatetime(),
        degraded=degraded,
        minimise=body.minimise,
        carbon_price_usd_per_tonne=carbon_price,
        runtime_h=result.runtime_h,
        starts=result.starts,
        best=_out(result.best),
        now=None if now is None else _out(now),
        savings=None
        if now is None
        else PlacementSavings(
            cost_usd=now.cost_usd - result.best.cost_usd,
            emissions_kg=now.emissions_kg - result.best.emissions_kg,
            objective_usd=now.objective_usd - result.best.objective_usd,
        ),
        sites=[_out(o) for o in result.by_site],
    )


@router.post(
    "/v1/placements",
    response_model=PlacementOut,
    responses=error_responses(400, 401, 403, 413, 422, 503),
)
def placements(body: PlacementIn, state: State, _: Reader) -> PlacementOut:
    """Where and when would this job run best? For each allowed site and each start on the
    step grid that finishes by the deadline, the cost (USD) and emissions (kg CO2e) of the
    job's energy on the fleet's own marginal power — spare on-site renewables first, then the
    grid at its forecast price and carbon intensity, times the site's PUE — with the best
    option, the best way to run it now, and what waiting saves. Nothing is submitted or
    reserved."""
    view, degraded = outlook(state)
    deadline = (
        pd.Timestamp(body.deadline).tz_convert("UTC")
        if body.deadline is not None
        else view.start
        + pd.Timedelta(hours=body.work_accelerator_hours / body.accelerators + (body.slack_h or 0))
    )
    offline = frozenset(name for name, o in state.store.site_overrides().items() if o.offline)
    request = PlacementRequest(
        body.work_accelerator_hours,
        body.accelerators,
        deadline,
        None if body.allowed_sites is None else tuple(body.allowed_sites),
        body.minimise,
    )
    carbon_price = state.scenario.carbon_price_usd_per_tonne
    try:
        result = place(
            request,
            FleetStatic.from_scenario(state.scenario),
            view,
            carbon_price,
            state.scenario.end,
            offline,
        )
    except InputError as exc:
        raise ProblemError(
            422, f"body.{exc.field}", exc.problem.rstrip("."), exc.fix.rstrip(".")
        ) from None
    return placement_out(result, view, degraded, body, carbon_price)
