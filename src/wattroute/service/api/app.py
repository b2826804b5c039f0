"""The application: routers, middleware, error answers, the controller's lifespan."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from wattroute.service.api import (
    dashboard,
    fleet,
    grid_events,
    health,
    inference,
    jobs,
    placements,
    plan,
    problems,
)
from wattroute.service.api.deps import no_unknown_query
from wattroute.service.api.middleware import BodyLimit, Timing
from wattroute.service.api.state import AppState
from wattroute.service.schemas import Problem

DESCRIPTION = """Where and when AI workloads run across sites with variable power.

A live dashboard is at `/`. Every route but `/healthz` and `/readyz` takes
`Authorization: Bearer <token>`. A tenant sees and acts on only its own jobs and services;
fleet-wide values (site power, the running cost) are labelled as such. Errors are RFC 9457
problem details naming each field, the problem and the fix."""


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
        watch = state.store.watch_tokens(
            state.tokens.clear, state.tokens.enable, state.tokens.disable, state.stop
        )
        yield
        state.stop.set()
        if state.thread is not None:
            state.thread.join(timeout=30)
        if watch is not None:
            watch.join(timeout=5)
        for close in reversed(state.on_close):
            close()

    app = FastAPI(
        title="wattroute",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc are the dashboard router's: their assets are served from here
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(no_unknown_query)],
        # Operation ids are the route functions' names (submit_job, get_job, ...): stable,
        # and what the schema's links between operations name.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.wattroute = state
    app.add_middleware(BodyLimit, limit=state.max_body_bytes)
    app.add_middleware(Timing, metrics=state.metrics)
    problems.install(app)
    for module in (health, fleet, jobs, placements, inference, plan, grid_events, dashboard):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
                .pop("$defs", {})
                .items()
            ):
                schemas[name] = definition
            schemas["Problem"] = {
                k: v
                for k, v in Problem.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                ).items()
                if k != "$defs"
            }
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
