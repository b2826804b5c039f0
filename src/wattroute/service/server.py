"""Put the service together from its configuration, and run it."""

from __future__ import annotations

import logging

import pandas as pd
import uvicorn
from fastapi import FastAPI

from wattroute.policies import get_policy
from wattroute.runtime.clock import Clock, RealClock, ReplayClock
from wattroute.runtime.controller import ControllerOptions, build_controller
from wattroute.service.api import AppState, create_app
from wattroute.service.config import ServiceConfig
from wattroute.service.db import make_engine, migrate
from wattroute.service.logs import configure
from wattroute.service.store import SqlStore

log = logging.getLogger("wattroute.service")


def open_store(url: str) -> SqlStore:
    """The store at ``url``, its schema migrated to the latest version."""
    engine = make_engine(url)
    migrate(engine)
    return SqlStore(engine)


def build_app(config: ServiceConfig, clock: Clock | None = None) -> tuple[FastAPI, AppState]:
    """The app and its state; the controller starts with the app's lifespan."""
    store = open_store(config.database_url)
    scenario = config.scenario
    spec = config.spec
    if clock is None:
        if spec.clock.kind == "real":
            clock = RealClock()
        else:
            # Resume where the last run stopped: the clock starts after the last tick.
            last = store.last_tick()
            start = scenario.start if last is None else last.time + scenario.step
            clock = ReplayClock(pd.Timestamp(start), spec.clock.speedup)
    controller = build_controller(
        scenario, store, get_policy(spec.policy), clock, options=ControllerOptions()
    )
    state = AppState(
        scenario=scenario,
        store=store,
        clock=clock,
        controller=controller,
        auth_required=spec.auth.required,
        max_body_bytes=spec.api.max_body_bytes,
    )
    return create_app(state), state


def serve(config: ServiceConfig, host: str | None = None, port: int | None = None) -> None:
    """Run the service until interrupted."""
    configure()
    app, _ = build_app(config)
    api = config.spec.api
    log.info(
        "serving",
        extra={
            "fields": {
                "fleet": config.scenario.name,
                "policy": config.spec.policy,
                "database": _redact(config.database_url),
                "clock": config.spec.clock.kind,
                "host": host or api.host,
                "port": port or api.port,
                "auth": config.spec.auth.required,
            }
        },
    )
    uvicorn.run(
        app,
        host=host or api.host,
        port=port if port is not None else api.port,
        log_level="warning",
        access_log=False,
    )


def _redact(url: str) -> str:
    """The database URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
