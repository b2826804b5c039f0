"""Inference services (per tenant), the code a tenant may name, and the gateway."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from wattroute.execution.errors import NoReplicaError
from wattroute.runtime.records import ServiceRecord
from wattroute.service.api.deps import (
    Limit,
    ObjectId,
    Offset,
    Reader,
    State,
    Submitter,
    TenantParam,
    acting_tenant,
)
from wattroute.service.api.problems import (
    READ,
    READ_ONE,
    WRITE_ONE,
    ProblemError,
    error_responses,
    not_found,
)
from wattroute.service.api.state import AppState
from wattroute.service.schemas import (
    CodeOut,
    InferIn,
    InferOut,
    ServiceIn,
    ServiceList,
    ServiceOut,
    ServicePatch,
)

router = APIRouter(tags=["inference"])


def service_out(s: ServiceRecord) -> ServiceOut:
    return ServiceOut(
        name=s.name,
        tenant=s.tenant,
        key=s.key,
        latency_slo_ms=s.latency_slo_ms,
        service_time_ms=s.service_time_ms,
        replica_throughput_rps=s.replica_throughput_rps,
        accelerators_per_replica=s.accelerators_per_replica,
        demand_rps=s.demand_rps,
        handler=s.handler,
    )


def _check_points(state: AppState, demand: dict[str, float]) -> None:
    unknown = [p for p in demand if p not in state.point_names]
    if unknown:
        raise ProblemError(
            422,
            "body.demand_rps",
            f"unknown demand point(s) {', '.join(map(repr, unknown))}",
            f"use demand points of the fleet: {', '.join(sorted(state.point_names)) or '(none)'}",
        )


def _no_service(name: str) -> ProblemError:
    """The 404 for a service the caller has not (another tenant's looks the same)."""
    return not_found("path.name", f"service {name!r}", "list your services with GET /v1/services")


def own_service(state: AppState, name: str, tenant: str) -> ServiceRecord:
    s = state.store.service(tenant, name)
    if s is None:
        raise _no_service(name)
    return s


@router.get("/v1/code", response_model=CodeOut, tags=["jobs"], responses=READ)
def code(state: State, who: Reader) -> CodeOut:
    """The job functions and inference handlers you may name (the operator registers them)."""
    return CodeOut(
        jobs=state.registry.allowed("job", who.tenant),
        handlers=state.registry.allowed("handler", who.tenant),
    )


@router.get("/v1/services", response_model=ServiceList, responses=READ)
def list_services(state: State, who: Reader, limit: Limit = 100, offset: Offset = 0) -> ServiceList:
    """Your services (an admin's: every tenant's), by tenant and name, a page at a time."""
    services, total = state.store.services_page(None if who.admin else who.tenant, limit, offset)
    return ServiceList(
        services=[service_out(s) for s in services], total=total, limit=limit, offset=offset
    )


@router.get("/v1/services/{name}", response_model=ServiceOut, responses=READ_ONE)
def get_service(
    name: ObjectId, state: State, who: Reader, tenant: TenantParam = None
) -> ServiceOut:
    """One of your services (admins: ``?tenant=`` names another tenant's)."""
    return service_out(own_service(state, name, acting_tenant(who, tenant)))


@router.post(
    "/v1/services",
    response_model=ServiceOut,
    status_code=201,
    responses={
        201: {
            "description": "the service, created",
            "links": {
                **{
                    operation: {
                        "operationId": operation,
                        "parameters": {"name": "$response.body#/name"},
                    }
                    for operation in ("get_service", "update_demand", "delete_service")
                },
                "infer": {
                    "operationId": "infer",
                    "parameters": {"service": "$response.body#/name"},
                },
            },
        },
        **error_responses(400, 401, 403, 409, 413, 422, 503),
    },
)
def create_service(body: ServiceIn, state: State, who: Submitter) -> ServiceOut:
    """Create a service in your namespace (names are per tenant). Of concurrent creates of
    one name exactly one succeeds; the others get 409."""
    _check_points(state, body.demand_rps)
    if (
        body.handler is not None
        and state.registry.lookup("handler", body.handler, who.tenant) is None
    ):
        problem, fix = state.registry.refusal("handler", body.handler, who.tenant)
        raise ProblemError(422, "body.handler", problem, fix)
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
    if not state.store.create_service(record):
        raise ProblemError(
            409,
            "body.name",
            f"you have a service {body.name!r} already",
            "PATCH its demand, or DELETE it first",
        )
    return service_out(record)


@router.patch("/v1/services/{name}", response_model=ServiceOut, responses=WRITE_ONE)
def update_demand(
    name: ObjectId, body: ServicePatch, state: State, who: Submitter, tenant: TenantParam = None
) -> ServiceOut:
    """Replace a service's demand, requests per second by demand point."""
    _check_points(state, body.demand_rps)
    updated = state.store.set_service_demand(
        acting_tenant(who, tenant), name, dict(body.demand_rps)
    )
    if updated is None:
        raise _no_service(name)
    return service_out(updated)


@router.delete(
    "/v1/services/{name}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422, 503),
)
def delete_service(
    name: ObjectId, state: State, who: Submitter, tenant: TenantParam = None
) -> Response:
    if not state.store.delete_service(acting_tenant(who, tenant), name):
        raise _no_service(name)
    return Response(status_code=204)


def plan_routing(state: AppState) -> dict[str, Any]:
    """The routing of the plan in force (read from the store at most twice a second)."""
    at, routing = state.routing
    if time.monotonic() - at > 0.5:
        last = state.store.last_tick()
        routing = {} if last is None else last.plan.get("routing", {})
        state.routing = (time.monotonic(), routing)
    return routing


@router.post(
    "/v1/infer/{service}",
    response_model=InferOut,
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
async def infer(
    service: ObjectId, body: InferIn, state: State, who: Submitter, tenant: TenantParam = None
) -> InferOut:
    """Serve one request from a demand point at the site the plan routes it to; the
    network round trip is emulated (``emulated_network_ms``) and end-to-end latency held
    against the SLO."""
    gateway = state.gateway
    if gateway is None:
        raise ProblemError(
            409,
            None,
            "inference runs on an execution engine, and this service has none",
            "the operator serves with `executor: ray`",
        )
    owner = acting_tenant(who, tenant)
    record = await run_in_threadpool(own_service, state, service, owner)
    if body.point not in record.demand_rps:
        raise ProblemError(
            422,
            "body.point",
            f"{service!r} has no demand from {body.point!r}",
            f"use one of its points: {', '.join(sorted(record.demand_rps)) or '(none)'}",
        )
    shares = await run_in_threadpool(plan_routing, state)
    try:
        result = await gateway.infer(
            record, body.point, shares.get(record.key, {}).get(body.point, {}), body.input
        )
    except NoReplicaError as exc:
        raise ProblemError(
            503,
            None,
            str(exc),
            "retry: replicas start with the next plan",
            {"Retry-After": "1"},
        ) from None
    state.metrics.inference_latency.labels(record.key).observe(result.latency_ms / 1000.0)
    state.metrics.inference_answers.labels(
        record.key, result.site, str(result.within_slo).lower()
    ).inc()
    return InferOut(**result.__dict__)
