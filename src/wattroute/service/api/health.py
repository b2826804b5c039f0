"""Health, readiness and metrics."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from wattroute.runtime.records import Heartbeat
from wattroute.service.api.deps import Scraper, State
from wattroute.service.api.problems import error_responses
from wattroute.service.api.state import AppState
from wattroute.service.readiness import Readiness, assess
from wattroute.service.schemas import Health

router = APIRouter(tags=["health"])


def readiness_of(state: AppState) -> tuple[Readiness, Heartbeat | None]:
    """Readiness now, and the heartbeat it read (and set the readiness metrics to it)."""
    assert state.readiness is not None
    try:
        beat = state.store.last_heartbeat()
        ok = True
    except Exception:
        beat, ok = None, False
    verdict = assess(beat, state.clock.now(), pd.Timestamp.now(tz="UTC"), state.readiness, ok)
    state.metrics.set_readiness(verdict)
    return verdict, beat


@router.get("/healthz", response_model=Health, responses=error_responses(422))
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Health, responses={503: {"model": Health}, **error_responses(422)}
)
def readyz(state: State, response: Response) -> Health:
    """Ready (200): the database answers, the controller has reported recently, plans the step
    the clock is at — it neither trails the clock by more than a few steps nor waits for its
    period to begin nor has run past the end of its signals — and plans on fresh signals.
    Otherwise 503 with the reasons."""
    verdict, beat = readiness_of(state)
    if not verdict.ready:
        response.status_code = 503
    return Health(
        status="ready" if verdict.ready else "not ready",
        time=None if beat is None or beat.time is None else beat.time.to_pydatetime(),
        step=None if beat is None else beat.step,
        lag_s=verdict.lag_s,
        reasons=list(verdict.reasons),
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **error_responses(401, 403, 422),
    },
)
def metrics(state: State, who: Scraper) -> Response:
    """Prometheus metrics (``metrics`` scope: they name every tenant's services)."""
    state.metrics.set_jobs(state.store.job_counts())
    verdict, _ = readiness_of(state)
    if verdict.lag_s is not None:
        state.metrics.lag.set(verdict.lag_s)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
