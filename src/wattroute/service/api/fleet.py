"""The fleet: sites with their limits and operator overrides, meter readings, what runs where."""

from __future__ import annotations

import logging
import math

import pandas as pd
from fastapi import APIRouter

from wattroute.runtime.records import SiteOverride, SiteReading
from wattroute.service.api.deps import Admin, Reader, SiteName, State, workload_scope
from wattroute.service.api.problems import READ, READ_ONE, WRITE_ONE, not_found, unprocessable
from wattroute.service.api.state import AppState
from wattroute.service.schemas import (
    AllocationOut,
    FleetOut,
    SiteOut,
    SitePatch,
    SiteReadingIn,
    SiteReadingOut,
)

log = logging.getLogger("wattroute.api")
router = APIRouter(tags=["fleet"])


def reading_out(r: SiteReading) -> SiteReadingOut:
    return SiteReadingOut(
        site=r.site,
        time=r.time.to_pydatetime(),
        received_at=r.received_at.to_pydatetime(),
        solar_kw=r.solar_kw,
        wind_kw=r.wind_kw,
        compliance_s=r.compliance_s,
    )


def site_index(state: AppState, name: str) -> int:
    """The index of site ``name`` (404 naming the sites if there is none)."""
    if name not in state.site_names:
        raise not_found("path.name", f"site {name!r}", f"use one of: {', '.join(state.site_names)}")
    return state.site_names.index(name)


def _site_out(
    state: AppState,
    i: int,
    overrides: dict[str, SiteOverride] | None = None,
    readings: dict[str, SiteReading] | None = None,
) -> SiteOut:
    """Site ``i`` with its override and latest reading (read from the store unless given)."""
    s = state.scenario.sites[i]
    overrides = state.store.site_overrides() if overrides is None else overrides
    readings = state.store.site_readings() if readings is None else readings
    o, r = overrides.get(s.name), readings.get(s.name)
    return SiteOut(
        name=s.name,
        latitude=s.latitude,
        longitude=s.longitude,
        zone=s.zone,
        accelerators=s.accelerators.count,
        busy_kw=s.accelerators.busy_kw,
        idle_kw=s.accelerators.idle_kw,
        import_limit_kw=None
        if s.grid is None or math.isinf(s.grid.import_limit_kw)
        else s.grid.import_limit_kw,
        export_limit_kw=0.0 if s.grid is None else s.grid.export_limit_kw,
        power_cap_kw=None if math.isinf(s.power_cap_kw) else s.power_cap_kw,
        solar_kw=s.solar.capacity_kw if s.solar else 0.0,
        wind_kw=s.wind.capacity_kw if s.wind else 0.0,
        battery_kwh=s.battery.capacity_kwh if s.battery else 0.0,
        genset_kw=s.genset.capacity_kw if s.genset else 0.0,
        override=None
        if o is None
        else {
            "import_limit_kw": o.import_limit_kw,
            "power_cap_kw": o.power_cap_kw,
            "offline": o.offline,
        },
        reading=None if r is None else reading_out(r),
    )


@router.get("/v1/fleet", response_model=FleetOut, responses=READ)
def fleet(state: State, _: Reader) -> FleetOut:
    """The fleet: sites (with operator overrides and latest meter readings) and demand
    points."""
    sc = state.scenario
    overrides, readings = state.store.site_overrides(), state.store.site_readings()
    return FleetOut(
        name=sc.name,
        step_minutes=sc.step.total_seconds() / 60,
        period_start=sc.start.to_pydatetime(),
        period_end=sc.end.to_pydatetime(),
        sites=[_site_out(state, i, overrides, readings) for i in range(len(sc.sites))],
        demand_points=[
            {"name": p.name, "latitude": p.latitude, "longitude": p.longitude, "zone": p.zone}
            for p in sc.demand_points
        ],
    )


@router.get("/v1/sites/{name}", response_model=SiteOut, responses=READ_ONE)
def get_site(name: SiteName, state: State, _: Reader) -> SiteOut:
    return _site_out(state, site_index(state, name))


@router.patch("/v1/sites/{name}", response_model=SiteOut, responses=WRITE_ONE)
def patch_site(name: SiteName, body: SitePatch, state: State, _: Admin) -> SiteOut:
    """Lower a site's import limit or power cap, or take it offline (admin)."""
    i = site_index(state, name)
    state.store.set_override(
        name, SiteOverride(body.import_limit_kw, body.power_cap_kw, body.offline)
    )
    log.info("site changed", extra={"fields": {"site": name, **body.model_dump()}})
    return _site_out(state, i)


@router.post(
    "/v1/sites/{name}/readings",
    response_model=SiteReadingOut,
    status_code=202,
    responses=WRITE_ONE,
)
def post_reading(name: SiteName, body: SiteReadingIn, state: State, _: Admin) -> SiteReadingOut:
    """A meter reading of the site's solar or wind output now (admin: the site's
    telemetry). It stands in for the signal provider's value for one step; if it lowers
    what the site can draw, the controller sheds work there within a second and times it
    (``compliance_s``)."""
    s = state.scenario.sites[site_index(state, name)]
    for field_name, source in (("solar_kw", s.solar), ("wind_kw", s.wind)):
        value = getattr(body, field_name)
        if value is None:
            continue
        kind = field_name.removesuffix("_kw")
        if source is None:
            raise unprocessable(
                f"body.{field_name}", f"site {name!r} has no {kind}", f"leave {field_name} out"
            )
        if value > 1.1 * source.capacity_kw:
            raise unprocessable(
                f"body.{field_name}",
                f"{value:g} kW is above the site's rated {kind} of {source.capacity_kw:g} kW",
                "give the AC output in kW",
            )
    reading = SiteReading(
        site=name,
        time=state.clock.now(),
        received_at=pd.Timestamp.now(tz="UTC"),
        solar_kw=body.solar_kw,
        wind_kw=body.wind_kw,
    )
    state.store.set_reading(reading)
    log.info("site reading", extra={"fields": {"site": name, **body.model_dump()}})
    return reading_out(reading)


@router.get("/v1/sites/{name}/allocation", response_model=AllocationOut, responses=READ_ONE)
def allocation(name: SiteName, state: State, who: Reader) -> AllocationOut:
    """What runs at the site now: your jobs (an admin's: every tenant's) with their
    accelerators, and the site's power by source over the last step (fleet-wide)."""
    site_index(state, name)
    last = state.store.last_tick()
    scope = workload_scope(who)
    if last is None:
        return AllocationOut(site=name, time=None, jobs_scope=scope, jobs={}, power_kw={})
    jobs = {
        j: int(a["accelerators"])
        for j, a in last.plan.get("jobs", {}).items()
        if a["site"] == name and (who.admin or a.get("tenant") == who.tenant)
    }
    return AllocationOut(
        site=name,
        time=last.time.to_pydatetime(),
        jobs_scope=scope,
        jobs=jobs,
        power_kw=last.outcome["sites"].get(name, {}),
    )
