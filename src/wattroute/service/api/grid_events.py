"""Demand response: grid events capping a site's power for a while."""

from __future__ import annotations

import logging
from typing import Literal

import pandas as pd
from fastapi import APIRouter

from wattroute.runtime.records import GridEventRecord
from wattroute.service.api.deps import Admin, Limit, Offset, Reader, SiteFilter, State
from wattroute.service.api.problems import error_responses, unprocessable
from wattroute.service.api.state import AppState
from wattroute.service.schemas import GridEventIn, GridEventList, GridEventOut

log = logging.getLogger("wattroute.api")
router = APIRouter(tags=["grid events"])


def event_out(state: AppState, e: GridEventRecord) -> GridEventOut:
    now = state.clock.now()
    status: Literal["upcoming", "active", "past"] = (
        "upcoming" if now < e.start else "active" if now < e.end else "past"
    )
    return GridEventOut(
        id=e.id,
        site=e.site,
        max_kw=e.max_kw,
        start=e.start.to_pydatetime(),
        end=e.end.to_pydatetime(),
        reason=e.reason,
        status=status,
        peak_kw=e.peak_kw,
        complied=e.complied,
        compliance_s=e.compliance_s,
    )


@router.post(
    "/v1/grid-events",
    response_model=GridEventOut,
    status_code=201,
    responses=error_responses(400, 401, 403, 413, 422, 503),
)
def add_grid_event(body: GridEventIn, state: State, _: Admin) -> GridEventOut:
    """Demand response: the site draws at most ``max_kw`` from ``start`` to ``end`` (admin)."""
    if body.site not in state.site_names:
        raise unprocessable(
            "body.site",
            f"unknown site {body.site!r}",
            f"use one of: {', '.join(state.site_names)}",
        )
    event = state.store.add_grid_event(
        body.site,
        body.max_kw,
        pd.Timestamp(body.start).tz_convert("UTC"),
        pd.Timestamp(body.end).tz_convert("UTC"),
        body.reason,
    )
    log.info(
        "grid event accepted",
        extra={
            "fields": {
                "site": body.site,
                "max_kw": body.max_kw,
                "start": str(body.start),
                "end": str(body.end),
            }
        },
    )
    return event_out(state, event)


@router.get(
    "/v1/grid-events",
    response_model=GridEventList,
    responses=error_responses(401, 403, 422, 503),
)
def list_grid_events(
    state: State, _: Reader, site: SiteFilter = None, limit: Limit = 100, offset: Offset = 0
) -> GridEventList:
    """Grid events (at ``site``, or every site) by start, a page at a time."""
    events, total = state.store.grid_events_page(site, limit, offset)
    return GridEventList(
        grid_events=[event_out(state, e) for e in events],
        total=total,
        limit=limit,
        offset=offset,
    )
