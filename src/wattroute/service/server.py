"""Put the service together from its configuration, and run it.

One worker (the default): one process runs the API and, in a thread, the controller.
Several workers (``api.workers``): the parent process runs the controller and supervises that
many API processes on the same port (uvicorn's multiprocess mode). The API processes share
nothing with the controller but the database: they read its heartbeat for health and signals,
and the replay clock's anchor (passed in the environment) keeps their time in step with it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass

import pandas as pd
import uvicorn
from fastapi import FastAPI

from wattroute.policies import get_policy
from wattroute.runtime.clock import Clock, RealClock, ReplayClock
from wattroute.runtime.controller import ControllerOptions, build_controller
from wattroute.service.api import AppState, create_app
from wattroute.service.config import ServiceConfig, load_service_config
from wattroute.service.db import make_engine, migrate
from wattroute.service.logs import configure
from wattroute.service.store import SqlStore
from wattroute.service.workers import (
    ENV_CLOCK_ANCHOR,
    ENV_CLOCK_START,
    ENV_CONFIG,
    ENV_DATABASE,
    ENV_METRICS_DIR,
)

log = logging.getLogger("wattroute.service")


def open_store(url: str) -> SqlStore:
    """The store at ``url``, its schema migrated to the latest version."""
    engine = make_engine(url)
    migrate(engine)
    return SqlStore(engine)


def make_clock(config: ServiceConfig, store: SqlStore) -> Clock:
    """The configured clock; a replay resumes after the last committed tick."""
    spec = config.spec
    if spec.clock.kind == "real":
        return RealClock()
    last = store.last_tick()
    start = config.scenario.start if last is None else last.time + config.scenario.step
    return ReplayClock(pd.Timestamp(start), spec.clock.speedup)


def build_state(
    config: ServiceConfig,
    clock: Clock | None = None,
    store: SqlStore | None = None,
    with_controller: bool = True,
) -> AppState:
    """What the API serves: the fleet, the store, the clock, and (unless it runs elsewhere)
    the controller, which the app's lifespan starts."""
    store = store if store is not None else open_store(config.database_url)
    clock = clock if clock is not None else make_clock(config, store)
    spec = config.spec
    controller = None
    if with_controller:
        controller = build_controller(
            config.scenario, store, get_policy(spec.policy), clock, options=ControllerOptions()
        )
    return AppState(
        scenario=config.scenario,
        store=store,
        clock=clock,
        controller=controller,
        auth_required=spec.auth.required,
        max_body_bytes=spec.api.max_body_bytes,
    )


def build_app(config: ServiceConfig, clock: Clock | None = None) -> tuple[FastAPI, AppState]:
    """The app and its state; the controller starts with the app's lifespan."""
    state = build_state(config, clock)
    return create_app(state), state


@dataclass
class _Listen:
    host: str
    port: int


def serve(
    config: ServiceConfig,
    host: str | None = None,
    port: int | None = None,
    config_path: str | None = None,
) -> None:
    """Run the service until interrupted (SIGINT or SIGTERM)."""
    configure()
    api = config.spec.api
    listen = _Listen(host or api.host, port if port is not None else api.port)
    log.info(
        "serving",
        extra={
            "fields": {
                "fleet": config.scenario.name,
                "policy": config.spec.policy,
                "database": _redact(config.database_url),
                "clock": config.spec.clock.kind,
                "host": listen.host,
                "port": listen.port,
                "workers": api.workers,
                "auth": config.spec.auth.required,
            }
        },
    )
    if api.workers == 1:
        app, _ = build_app(config)
        uvicorn.run(app, host=listen.host, port=listen.port, log_level="warning", access_log=False)
        return
    _serve_workers(config, listen, config_path)


def _serve_workers(config: ServiceConfig, listen: _Listen, config_path: str | None) -> None:
    if not os.environ.get(ENV_METRICS_DIR):
        raise RuntimeError("several workers need workers.prepare_workers() first")
    state = build_state(config)
    controller = state.controller
    assert controller is not None
    os.environ[ENV_CONFIG] = os.path.abspath(config_path) if config_path else ""
    os.environ[ENV_DATABASE] = config.database_url
    if isinstance(state.clock, ReplayClock):
        os.environ[ENV_CLOCK_START] = state.clock.start.isoformat()
        os.environ[ENV_CLOCK_ANCHOR] = repr(state.clock.anchor)
    controller.listeners.append(state.metrics.on_tick)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), name="controller", daemon=True)
    thread.start()
    try:
        uvicorn.run(
            "wattroute.service.server:worker_app",
            factory=True,
            host=listen.host,
            port=listen.port,
            workers=config.spec.api.workers,
            log_level="warning",
            access_log=False,
        )
    finally:
        stop.set()
        thread.join(timeout=30)
        shutil.rmtree(os.environ[ENV_METRICS_DIR], ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one API worker process (no controller: the parent runs it)."""
    configure()
    config = load_service_config(os.environ.get(ENV_CONFIG) or None, os.environ[ENV_DATABASE])
    store = SqlStore(make_engine(config.database_url))  # the parent migrated it
    clock: Clock = RealClock()
    if ENV_CLOCK_START in os.environ:
        clock = ReplayClock(
            pd.Timestamp(os.environ[ENV_CLOCK_START]),
            config.spec.clock.speedup,
            float(os.environ[ENV_CLOCK_ANCHOR]),
        )
    return create_app(build_state(config, clock, store, with_controller=False))


def _redact(url: str) -> str:
    """The database URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
