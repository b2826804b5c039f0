"""The HTTP API (FastAPI), versioned under ``/v1``, documented at ``/docs`` and
``/openapi.json``.

Every route but ``/healthz``, ``/readyz`` and ``/metrics`` takes ``Authorization: Bearer
<token>``; missing or unknown tokens get 401, a token without the route's scope 403. Bad input
gets 422 naming the field; bodies over the limit 413. A tenant sees and cancels only its own
workloads (an admin sees all); another tenant's job is 404, not 403, so ids leak nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from wattroute.execution.errors import NoReplicaError
from wattroute.model import Scenario
from wattroute.runtime.clock import Clock
from wattroute.runtime.controller import Controller
from wattroute.runtime.records import JobRecord, ServiceRecord, SiteOverride, SiteReading
from wattroute.service.auth import Principal, TokenCache, token_hash
from wattroute.service.metrics import ServiceMetrics
from wattroute.service.schemas import (
    FleetOut,
    GridEventIn,
    GridEventOut,
    Health,
    InferIn,
    InferOut,
    JobList,
    JobOut,
    JobSubmission,
    ServiceIn,
    ServiceOut,
    ServicePatch,
    SiteOut,
    SitePatch,
    SiteReadingIn,
    SiteReadingOut,
    error_responses,
)
from wattroute.service.store import SqlStore

if TYPE_CHECKING:
    from wattroute.execution.gateway import Gateway

log = logging.getLogger("wattroute.api")
READ = error_responses(401, 403, 503)
READ_ONE = error_responses(401, 403, 404, 503)
WRITE = error_responses(400, 401, 403, 413, 503)
WRITE_ONE = error_responses(400, 401, 403, 404, 413, 503)
OPEN = Principal("public", frozenset({"read", "submit", "admin"}))


@dataclass
class AppState:
    """What the routes work with."""

    scenario: Scenario
    store: SqlStore
    clock: Clock
    controller: Controller | None = None
    auth_required: bool = True
    max_body_bytes: int = 64 * 1024
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    tokens: TokenCache = field(default_factory=TokenCache)
    run_controller: bool = True
    stale_after_s: float = 30.0
    # With an execution engine: the inference gateway, and jobs must name their code.
    gateway: Gateway | None = None
    jobs_need_code: bool = False
    on_close: list[Callable[[], None]] = field(default_factory=list)
    cluster: Any = None  # the emulated Ray cluster the service started, if any
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


def _unprocessable(field_path: list[str | int], message: str) -> HTTPException:
    return HTTPException(
        status_code=422, detail=[{"loc": field_path, "msg": message, "type": "value_error"}]
    )


def _json(body: BaseModel, status: int = 200) -> Response:
    """``body`` as JSON, without FastAPI validating it a second time against the route's
    response model (the hot routes: a submission and a read of one job)."""
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether announced or streamed."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = JSONResponse({"detail": f"request body over {self.limit} bytes"}, status_code=413)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_big(scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            await too_big(scope, receive, send)


class _TooLargeError(Exception):
    pass


class Timing:
    """Observe each request's latency by method, route template and status (a plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` costs more than a submission's commit)."""

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = scope.get("route")
            self.metrics.http.labels(
                scope["method"], getattr(route, "path", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)


def _authorize(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers whose token has ``scope``."""

    async def check(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        # Async so that a cached token costs no trip through the thread pool; a miss looks the
        # token up in a worker thread.
        state: AppState = request.app.state.wattroute
        if not state.auth_required:
            return OPEN
        if authorization is None or not authorization.startswith("Bearer "):
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        digest = token_hash(authorization[len("Bearer ") :].strip())
        known, who = state.tokens.get(digest)
        if not known:
            found = await run_in_threadpool(state.store.token, digest)
            who = None if found is None else Principal(found[0], _scopes(found[1]))
            state.tokens.put(digest, who)
        if who is None:
            raise HTTPException(
                401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        if not who.may(scope):
            raise HTTPException(403, f"this token lacks the {scope!r} scope")
        return who

    return check


Reader = Annotated[Principal, Depends(_authorize("read"))]
Submitter = Annotated[Principal, Depends(_authorize("submit"))]
Admin = Annotated[Principal, Depends(_authorize("admin"))]


def create_app(state: AppState) -> FastAPI:
    """The API over ``state``; its lifespan runs the controller in a thread."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.controller is not None:
            state.controller.listeners.append(state.metrics.on_tick)
            state.controller.notices.append(state.metrics.on_notice)
        if state.controller is not None and state.run_controller:
            state.thread = threading.Thread(
                target=state.controller.run, args=(state.stop,), name="controller", daemon=True
            )
            state.thread.start()
        yield
        state.stop.set()
        if state.thread is not None:
            state.thread.join(timeout=30)
        for close in reversed(state.on_close):
            close()

    app = FastAPI(
        title="wattroute",
        version="1",
        description="Where and when AI workloads run across sites with variable power.",
        lifespan=lifespan,
    )
    app.state.wattroute = state
    app.add_middleware(BodyLimit, limit=state.max_body_bytes)
    app.add_middleware(Timing, metrics=state.metrics)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # Lost connection, a locked SQLite file past its timeout: nothing was accepted, and a
        # retry (with the same Idempotency-Key) is safe.
        log.warning("database unavailable", extra={"fields": {"error": type(exc.orig).__name__}})
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"]) for e in errors)
        return JSONResponse({"detail": errors, "message": f"invalid: {fields}"}, status_code=422)

    sc = state.scenario
    site_names = [s.name for s in sc.sites]
    point_names = {p.name for p in sc.demand_points}

    # -- health ------------------------------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["health"], responses={503: {"model": Health}})
    def readyz(response: Response) -> Health:
        """Ready: the database answers, and the controller reports in on time and plans on
        fresh signals (read from its heartbeat, so every API process answers alike)."""
        reasons = []
        beat = None
        try:
            beat = state.store.last_heartbeat()
        except Exception:
            reasons.append("database unreachable")
        if beat is None:
            if not reasons:
                reasons.append("the controller has not reported yet")
        else:
            silent = (pd.Timestamp.now(tz="UTC") - beat.at).total_seconds()
            if silent > state.stale_after_s and not beat.finished:
                reasons.append(f"the controller has been silent for {silent:.0f} s")
            if beat.degraded:
                reasons.append("degraded: " + "; ".join(beat.reasons))
        if reasons:
            response.status_code = 503
        return Health(
            status="degraded" if reasons else "ready",
            time=None if beat is None or beat.time is None else beat.time.to_pydatetime(),
            step=None if beat is None else beat.step,
            reasons=reasons,
        )

    @app.get("/metrics", tags=["health"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics."""
        state.metrics.set_jobs(state.store.job_counts())
        beat = state.store.last_heartbeat()
        if beat is not None:
            state.metrics.lag.set(beat.lag_s)
            state.metrics.degraded.set(1.0 if beat.degraded else 0.0)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # -- fleet -------------------------------------------------------------------------------

    def reading_out(r: SiteReading) -> SiteReadingOut:
        return SiteReadingOut(
            site=r.site,
            time=r.time.to_pydatetime(),
            received_at=r.received_at.to_pydatetime(),
            solar_kw=r.solar_kw,
            wind_kw=r.wind_kw,
            compliance_s=r.compliance_s,
        )

    def site_out(
        i: int, overrides: dict[str, SiteOverride], readings: dict[str, SiteReading]
    ) -> SiteOut:
        s = sc.sites[i]
        o = overrides.get(s.name)
        r = readings.get(s.name)
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

    def site_index(name: str) -> int:
        if name not in site_names:
            raise HTTPException(404, f"no site {name!r}; sites are {', '.join(site_names)}")
        return site_names.index(name)

    @app.get("/v1/fleet", response_model=FleetOut, tags=["fleet"], responses=READ)
    def fleet(_: Reader) -> FleetOut:
        """The fleet: sites (with operator overrides) and demand points."""
        overrides, readings = state.store.site_overrides(), state.store.site_readings()
        return FleetOut(
            name=sc.name,
            step_minutes=sc.step.total_seconds() / 60,
            period_start=sc.start.to_pydatetime(),
            period_end=sc.end.to_pydatetime(),
            sites=[site_out(i, overrides, readings) for i in range(len(sc.sites))],
            demand_points=[
                {"name": p.name, "latitude": p.latitude, "longitude": p.longitude, "zone": p.zone}
                for p in sc.demand_points
            ],
        )

    @app.get("/v1/sites/{name}", response_model=SiteOut, tags=["fleet"], responses=READ_ONE)
    def get_site(name: str, _: Reader) -> SiteOut:
        return site_out(site_index(name), state.store.site_overrides(), state.store.site_readings())

    @app.patch("/v1/sites/{name}", response_model=SiteOut, tags=["fleet"], responses=WRITE_ONE)
    def patch_site(name: str, body: SitePatch, _: Admin) -> SiteOut:
        """Lower a site's import limit or power cap, or take it offline (admin)."""
        i = site_index(name)
        state.store.set_override(
            name, SiteOverride(body.import_limit_kw, body.power_cap_kw, body.offline)
        )
        log.info("site changed", extra={"fields": {"site": name, **body.model_dump()}})
        return site_out(i, state.store.site_overrides(), state.store.site_readings())

    @app.post(
        "/v1/sites/{name}/readings",
        response_model=SiteReadingOut,
        status_code=202,
        tags=["fleet"],
        responses=WRITE_ONE,
    )
    def post_reading(name: str, body: SiteReadingIn, _: Admin) -> SiteReadingOut:
        """A meter reading of the site's solar or wind output now (admin: the site's
        telemetry). It stands in for the signal provider's value for one step; if it lowers
        what the site can draw, the controller sheds work there within a second and times it
        (``compliance_s``)."""
        s = sc.sites[site_index(name)]
        for field_name, source in (("solar_kw", s.solar), ("wind_kw", s.wind)):
            value = getattr(body, field_name)
            if value is None:
                continue
            kind = field_name.removesuffix("_kw")
            if source is None:
                raise _unprocessable(
                    ["body", field_name], f"site {name!r} has no {kind}; leave {field_name} out"
                )
            if value > 1.1 * source.capacity_kw:
                raise _unprocessable(
                    ["body", field_name],
                    f"{value:g} kW is above the site's rated {kind} of "
                    f"{source.capacity_kw:g} kW; give the AC output in kW",
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

    @app.get("/v1/sites/{name}/allocation", tags=["fleet"], responses=READ_ONE)
    def allocation(name: str, _: Reader) -> dict[str, Any]:
        """What runs at the site now and its power by source over the last step."""
        site_index(name)
        last = state.store.last_tick()
        if last is None:
            return {"site": name, "time": None, "jobs": {}, "power_kw": {}}
        jobs = {
            j: a["accelerators"] for j, a in last.plan.get("jobs", {}).items() if a["site"] == name
        }
        return {
            "site": name,
            "time": last.time.isoformat(),
            "jobs": jobs,
            "power_kw": last.outcome["sites"].get(name, {}),
        }

    # -- jobs --------------------------------------------------------------------------------

    def job_out(job: JobRecord) -> JobOut:
        missed = (job.remaining_at_deadline or 0.0) > 1e-9 or (
            job.completed_at is not None and job.completed_at > job.deadline
        )
        return JobOut(
            id=job.id,
            tenant=job.tenant,
            name=job.name,
            state=job.state,  # type: ignore[arg-type]
            submitted_at=job.submitted_at.to_pydatetime(),
            deadline=job.deadline.to_pydatetime(),
            work_accelerator_hours=job.work_accelerator_hours,
            done_accelerator_hours=job.done_accelerator_hours,
            min_accelerators=job.min_accelerators,
            max_accelerators=job.max_accelerators,
            allowed_sites=list(job.allowed_sites) if job.allowed_sites is not None else None,
            function=job.function,
            args=job.args,
            error=job.error,
            site=job.site,
            accelerators=job.accelerators,
            moves=job.moves,
            stops=job.stops,
            completed_at=None if job.completed_at is None else job.completed_at.to_pydatetime(),
            deadline_missed=bool(missed),
        )

    @app.post(
        "/v1/jobs",
        response_model=JobOut,
        status_code=201,
        tags=["jobs"],
        responses={
            200: {
                "model": JobOut,
                "description": "an earlier submission with the same Idempotency-Key",
            },
            **WRITE,
        },
    )
    def submit_job(
        body: JobSubmission,
        who: Submitter,
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> Response:
        """Submit a batch job; committed before the answer. Resubmitting with the same
        ``Idempotency-Key`` returns the first job (200) instead of creating another."""
        now = state.clock.now()
        if state.jobs_need_code and body.function is None:
            raise _unprocessable(
                ["body", "function"],
                "required: the execution engine runs real code; name it as module:function",
            )
        if body.allowed_sites is not None:
            unknown = [s for s in body.allowed_sites if s not in site_names]
            if unknown:
                raise _unprocessable(
                    ["body", "allowed_sites"],
                    f"unknown site(s) {', '.join(unknown)}; sites are {', '.join(site_names)}",
                )
            if not body.allowed_sites:
                raise _unprocessable(
                    ["body", "allowed_sites"], "no site allowed; list at least one"
                )
        allowed = body.allowed_sites or site_names
        biggest = max(sc.sites[site_names.index(s)].accelerators.count for s in allowed)
        if body.min_accelerators > biggest:
            raise _unprocessable(
                ["body", "min_accelerators"],
                f"needs {body.min_accelerators} accelerators; "
                f"the largest allowed site has {biggest}",
            )
        shortest_h = body.work_accelerator_hours / body.max_accelerators
        deadline = (
            pd.Timestamp(body.deadline).tz_convert("UTC")
            if body.deadline is not None
            else (now + pd.Timedelta(hours=shortest_h + (body.slack_h or 0.0))).floor("us")
        )
        available_h = (deadline - now).total_seconds() / 3600
        if available_h + 1e-9 < shortest_h:
            raise _unprocessable(
                ["body", "deadline"],
                f"the work needs {shortest_h:.2f} h at max_accelerators={body.max_accelerators}, "
                f"the deadline leaves {max(available_h, 0):.2f} h; raise max_accelerators or "
                "move the deadline",
            )
        if deadline > sc.end:
            raise _unprocessable(
                ["body", "deadline"], f"after the end of the planned period ({sc.end.isoformat()})"
            )
        job = JobRecord(
            id=uuid.uuid4().hex,
            tenant=who.tenant,
            name=body.name,
            submitted_at=now,
            deadline=deadline,
            work_accelerator_hours=body.work_accelerator_hours,
            min_accelerators=body.min_accelerators,
            max_accelerators=body.max_accelerators,
            checkpoint_overhead_h=body.checkpoint_overhead_h,
            migration_overhead_h=body.migration_overhead_h,
            allowed_sites=tuple(body.allowed_sites) if body.allowed_sites is not None else None,
            function=body.function,
            args=dict(body.args),
            idempotency_key=idempotency_key,
        )
        stored, created = state.store.submit_job(job)
        return _json(job_out(stored), 201 if created else 200)

    def own_job(job_id: str, who: Principal) -> JobRecord:
        job = state.store.job(job_id)
        if job is None or (job.tenant != who.tenant and not who.admin):
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=READ_ONE)
    def get_job(job_id: str, who: Reader) -> Response:
        return _json(job_out(own_job(job_id, who)))

    @app.get("/v1/jobs", response_model=JobList, tags=["jobs"], responses=READ)
    def list_jobs(
        who: Reader,
        state_: Annotated[
            str | None,
            Query(alias="state", pattern="^(queued|running|paused|completed|cancelled|failed)$"),
        ] = None,
        site: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> JobList:
        """Your jobs (an admin's: everyone's), newest first."""
        jobs, total = state.store.jobs(
            None if who.admin else who.tenant, state_, site, limit, offset
        )
        return JobList(jobs=[job_out(j) for j in jobs], total=total, limit=limit, offset=offset)

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"], responses=WRITE_ONE)
    def cancel_job(job_id: str, who: Submitter) -> JobOut:
        own_job(job_id, who)
        job = state.store.cancel_job(job_id)
        assert job is not None
        return job_out(job)

    # -- inference services ------------------------------------------------------------------

    def check_points(demand: dict[str, float], path: list[str | int]) -> None:
        unknown = [p for p in demand if p not in point_names]
        if unknown:
            raise _unprocessable(
                path,
                f"unknown demand point(s) {', '.join(unknown)}; "
                f"points are {', '.join(sorted(point_names)) or '(none)'}",
            )

    def service_out(s: ServiceRecord) -> ServiceOut:
        return ServiceOut(**{k: getattr(s, k) for k in ServiceOut.model_fields})

    def own_service(name: str, who: Principal) -> ServiceRecord:
        s = state.store.service(name)
        if s is None or (s.tenant != who.tenant and not who.admin):
            raise HTTPException(404, f"no service {name!r}")
        return s

    @app.get("/v1/services", response_model=list[ServiceOut], tags=["inference"], responses=READ)
    def list_services(who: Reader) -> list[ServiceOut]:
        return [
            service_out(s) for s in state.store.services() if who.admin or s.tenant == who.tenant
        ]

    @app.post(
        "/v1/services",
        response_model=ServiceOut,
        status_code=201,
        tags=["inference"],
        responses={**WRITE, **error_responses(409)},
    )
    def create_service(body: ServiceIn, who: Submitter) -> ServiceOut:
        check_points(body.demand_rps, ["body", "demand_rps"])
        existing = state.store.service(body.name)
        if existing is not None:
            raise HTTPException(
                409, f"service {body.name!r} exists; PATCH its demand or DELETE it first"
            )
        record = ServiceRecord(
            body.name,
            who.tenant,
            body.latency_slo_ms,
            body.service_time_ms,
            body.replica_throughput_rps,
            body.accelerators_per_replica,
            dict(body.demand_rps),
            body.handler,
        )
        state.store.put_service(record)
        return service_out(record)

    @app.patch(
        "/v1/services/{name}", response_model=ServiceOut, tags=["inference"], responses=WRITE_ONE
    )
    def update_demand(name: str, body: ServicePatch, who: Submitter) -> ServiceOut:
        record = own_service(name, who)
        check_points(body.demand_rps, ["body", "demand_rps"])
        record.demand_rps = dict(body.demand_rps)
        state.store.put_service(record)
        return service_out(record)

    @app.delete("/v1/services/{name}", status_code=204, tags=["inference"], responses=WRITE_ONE)
    def delete_service(name: str, who: Submitter) -> Response:
        own_service(name, who)
        state.store.delete_service(name)
        return Response(status_code=204)

    routing_cache: dict[str, Any] = {"at": -1e9, "routing": {}}

    def plan_routing() -> dict[str, Any]:
        """The routing of the plan in force (read at most twice a second)."""
        if time.monotonic() - routing_cache["at"] > 0.5:
            last = state.store.last_tick()
            routing_cache["routing"] = {} if last is None else last.plan.get("routing", {})
            routing_cache["at"] = time.monotonic()
        routing: dict[str, Any] = routing_cache["routing"]
        return routing

    @app.post(
        "/v1/infer/{service}",
        response_model=InferOut,
        tags=["inference"],
        responses={**WRITE_ONE, **error_responses(409)},
    )
    async def infer(service: str, body: InferIn, who: Submitter) -> InferOut:
        """Serve one request from a demand point at the site the plan routes it to; the
        network round trip is emulated (``emulated_network_ms``) and end-to-end latency held
        against the SLO."""
        gateway = state.gateway
        if gateway is None:
            raise HTTPException(
                409, "inference runs on an execution engine: serve with `executor: ray`"
            )
        record = await run_in_threadpool(own_service, service, who)
        if body.point not in record.demand_rps:
            raise _unprocessable(
                ["body", "point"],
                f"{service!r} has no demand from {body.point!r}; its points are "
                f"{', '.join(sorted(record.demand_rps)) or '(none)'}",
            )
        shares = await run_in_threadpool(plan_routing)
        try:
            result = await gateway.infer(
                record, body.point, shares.get(service, {}).get(body.point, {}), body.input
            )
        except NoReplicaError as exc:
            raise HTTPException(
                503, f"{exc}; replicas start with the next plan", headers={"Retry-After": "1"}
            ) from None
        state.metrics.inference_latency.labels(service).observe(result.latency_ms / 1000.0)
        state.metrics.inference_answers.labels(
            service, result.site, str(result.within_slo).lower()
        ).inc()
        return InferOut(**result.__dict__)

    # -- plan, signals, grid events, summary -------------------------------------------------

    @app.get("/v1/plan", tags=["plan"], responses=READ)
    def plan(who: Reader) -> dict[str, Any]:
        """The decision in force: allocations (your jobs; an admin's: all), routing, set-points."""
        last = state.store.last_tick()
        if last is None:
            return {"time": None, "jobs": {}, "routing": {}, "setpoints": {}}
        jobs = last.plan.get("jobs", {})
        if not who.admin:
            mine = {j.id for j in state.store.active_jobs() if j.tenant == who.tenant}
            jobs = {k: v for k, v in jobs.items() if k in mine}
        return {
            "time": last.time.isoformat(),
            "step": last.step,
            "degraded": last.degraded,
            "jobs": jobs,
            "routing": last.plan.get("routing", {}),
            "setpoints": last.plan.get("setpoints", {}),
            # Set when the plan was re-decided between ticks (grid event, override, lost site).
            "correction": last.plan.get("correction"),
        }

    @app.get("/v1/signals", tags=["plan"], responses=READ)
    def signals(
        _: Reader, horizon_h: Annotated[float, Query(gt=0, le=24)] = 24.0
    ) -> dict[str, Any]:
        """Latest received value and the controller's forecast of each signal, per site, as
        of its last tick (forecasts reach 24 h ahead)."""
        beat = state.store.last_heartbeat()
        if beat is None or not beat.signals:
            return {"time": None, "sites": {}}
        snapshot = beat.signals
        steps = max(1, round(horizon_h * 60 / snapshot["step_minutes"]))
        return {
            "time": snapshot["time"],
            "step_minutes": snapshot["step_minutes"],
            "degraded": beat.degraded,
            "sites": {
                site: {
                    name: {"latest": v["latest"], "forecast": v["forecast"][:steps]}
                    for name, v in signals.items()
                }
                for site, signals in snapshot["sites"].items()
            },
        }

    def event_out(e: Any) -> GridEventOut:
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

    @app.post(
        "/v1/grid-events",
        response_model=GridEventOut,
        status_code=201,
        tags=["grid events"],
        responses=WRITE,
    )
    def add_grid_event(body: GridEventIn, _: Admin) -> GridEventOut:
        """Demand response: the site draws at most ``max_kw`` from ``start`` to ``end`` (admin)."""
        if body.site not in site_names:
            raise _unprocessable(
                ["body", "site"], f"unknown site {body.site!r}; sites are {', '.join(site_names)}"
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
        return event_out(event)

    @app.get(
        "/v1/grid-events",
        response_model=list[GridEventOut],
        tags=["grid events"],
        responses=READ,
    )
    def list_grid_events(_: Reader) -> list[GridEventOut]:
        return [event_out(e) for e in state.store.all_grid_events()]

    @app.get("/v1/summary", tags=["plan"], responses=READ)
    def summary(_: Reader) -> dict[str, Any]:
        """The objective so far: cost, emissions, energy by source, requests, jobs."""
        last = state.store.last_tick()
        totals = dict(last.state.get("totals", {})) if last else {}
        carbon_price = sc.carbon_price_usd_per_tonne
        cost = totals.get("cost_usd", 0.0)
        emissions = totals.get("emissions_kg", 0.0)
        requests = totals.get("requests", 0.0)
        return {
            "time": None if last is None else last.time.isoformat(),
            "objective_usd_before_penalties": cost + carbon_price * emissions / 1000.0,
            "cost_usd": cost,
            "emissions_kg": emissions,
            "carbon_price_usd_per_tonne": carbon_price,
            "energy_kwh": {k[:-4]: v for k, v in totals.items() if k.endswith("_kwh")},
            "inference": {
                "requests": requests,
                "served_within_slo": totals.get("within_slo", 0.0),
                "slo_violation_fraction": (requests - totals.get("within_slo", 0.0)) / requests
                if requests
                else 0.0,
            },
            "jobs": state.store.job_counts(),
        }

    return app


def _scopes(text: str) -> frozenset[str]:
    return frozenset(s for s in text.split(",") if s)
