"""Put the service together from its configuration, and run it.

One worker (the default): one process runs the API and, in a thread, the controller.
Several workers (``api.workers``): the parent process runs the controller and supervises that
many API processes on the same port (uvicorn's multiprocess mode). The API processes share
nothing with the controller but the database: they read its heartbeat for health and signals,
and the replay clock's anchor (passed in the environment) keeps their time in step with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from wattroute.policies import get_policy
from wattroute.runtime.clock import Clock, RealClock, ReplayClock
from wattroute.runtime.controller import ControllerOptions, build_controller
from wattroute.service.api import AppState, create_app
from wattroute.service.config import LiveSignalsConfig, ServiceConfig, load_service_config
from wattroute.service.db import make_engine, migrate
from wattroute.service.http import server_options
from wattroute.service.logs import configure
from wattroute.service.readiness import ReadinessRules
from wattroute.service.store import SqlStore
from wattroute.service.supervise import ENV_PARENT_PID, bind_listener, exit_with_parent
from wattroute.service.workers import (
    ENV_CLOCK_ANCHOR,
    ENV_CLOCK_START,
    ENV_CONFIG,
    ENV_DATABASE,
    ENV_METRICS_DIR,
    ENV_RAY_ADDRESS,
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
    if spec.clock.kind == "real" or isinstance(spec.signals, LiveSignalsConfig):
        return RealClock()  # live signals are the world's now
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
    on_close: list[Callable[[], None]] = []
    executor = None
    gateway = None
    cluster = None
    if spec.executor == "ray":
        from wattroute.execution.gateway import Gateway

        address = os.environ.get(ENV_RAY_ADDRESS)
        if with_controller:
            executor, address, cluster = _start_ray(config, on_close)
            os.environ[ENV_RAY_ADDRESS] = address  # for API workers
        gateway = Gateway(config.scenario, address)
    controller = None
    live = isinstance(spec.signals, LiveSignalsConfig)
    if with_controller:
        provider = None
        if live:
            from wattroute.service.signals import build_live_provider

            provider, clients = build_live_provider(config, clock, store)
            on_close.append(clients.close)
            provider.start_fetching()  # apart from the controller's thread
            on_close.append(provider.stop_fetching)
        controller = build_controller(
            config.scenario,
            store,
            get_policy(spec.policy),
            clock,
            provider=provider,
            executor=executor,
            options=ControllerOptions(
                # Requests pass through the gateway: its time counts against the SLO.
                latency_margin_ms=spec.ray.gateway_margin_ms if spec.executor == "ray" else 0.0,
                registry=config.registry,
                # On real time the past is gone: go to the step in force, not through the
                # steps missed while down (or before the service first started).
                skip_missed_steps=spec.clock.kind == "real" or live,
                baseline=spec.baseline,  # on replayed signals: the dashboard's comparison
            ),
        )
    sc = config.scenario
    return AppState(
        scenario=sc,
        store=store,
        clock=clock,
        controller=controller,
        auth_required=spec.auth.required,
        max_body_bytes=spec.api.max_body_bytes,
        gateway=gateway,
        jobs_need_code=spec.executor == "ray",
        registry=config.registry,
        readiness=ReadinessRules(
            sc.start,
            sc.end,
            sc.step,
            spec.readiness.max_lag_steps,
            spec.readiness.max_lag_s,
            spec.readiness.heartbeat_timeout_s,
            spec.clock.speedup if spec.clock.kind == "replay" and not live else 1.0,
        ),
        on_close=on_close,
        cluster=cluster,
    )


def _start_ray(config: ServiceConfig, on_close: list[Callable[[], None]]) -> tuple[Any, str, Any]:
    """Join (or start, for ``address: local``) the Ray cluster; the executor, the address and
    the emulated cluster (None when joining one). What it starts is stopped by ``on_close``
    (run in reverse)."""
    import ray

    from wattroute.execution.actors import NAMESPACE
    from wattroute.execution.cluster import LocalSites
    from wattroute.execution.executor import RayExecutor, RayOptions
    from wattroute.model.arrays import FleetSignals, FleetStatic
    from wattroute.sim.dispatch import GridTerms

    sc, settings = config.scenario, config.spec.ray
    sites = None
    if settings.address == "local":
        sites = LocalSites(
            [(s.name, s.accelerators.count) for s in sc.sites],
            cpus_per_site=settings.cpus_per_site,
            object_store_mb=settings.object_store_mb,
            node_ip_address=settings.node_ip_address,
        )
        on_close.append(sites.stop)
        address = sites.start()
    else:
        ray.init(address=settings.address, namespace=NAMESPACE, log_to_driver=False)
        on_close.append(ray.shutdown)
        address = str(ray.get_runtime_context().gcs_address)
    actual = FleetSignals.from_scenario(sc)
    executor = RayExecutor(
        FleetStatic.from_scenario(sc),
        actual,
        sc.step_h,
        RayOptions(
            checkpoint_root=config.checkpoint_root,
            stop_timeout_s=settings.stop_timeout_s,
            suspect_s=settings.suspect_s,
        ),
        terms=GridTerms.from_signals(actual, sc.carbon_price_usd_per_tonne),
    )
    on_close.append(executor.close)
    log.info("ray executor ready", extra={"fields": {"address": address}})
    return executor, address, sites


def build_app(config: ServiceConfig, clock: Clock | None = None) -> tuple[FastAPI, AppState]:
    """The app and its state; the controller starts with the app's lifespan."""
    state = build_state(config, clock)
    return create_app(state), state


@dataclass
class _Listen:
    host: str
    port: int

    def bind(self) -> socket.socket:
        """The listening socket, once a previous instance released the port (bounded wait).

        Raises
        ------
        InputError
            If the port stays in use, or cannot be bound.
        """
        return bind_listener(self.host, self.port)


def serve(
    config: ServiceConfig,
    host: str | None = None,
    port: int | None = None,
    config_path: str | None = None,
) -> None:
    """Run the service until interrupted (SIGINT or SIGTERM).

    The port is bound first, before the controller starts: a second instance on a port that
    stays in use fails (:class:`~wattroute.errors.InputError`) without touching the database.
    """
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
                "clock": "real"
                if config.spec.clock.kind == "real"
                or isinstance(config.spec.signals, LiveSignalsConfig)
                else "replay",
                "host": listen.host,
                "port": listen.port,
                "workers": api.workers,
                "auth": config.spec.auth.required,
            }
        },
    )
    if api.workers > 1 and not os.environ.get(ENV_METRICS_DIR):
        raise RuntimeError("several workers need workers.prepare_workers() first")
    try:
        sock = listen.bind()
    except BaseException:
        if api.workers > 1:  # _serve_workers would have removed it
            shutil.rmtree(os.environ[ENV_METRICS_DIR], ignore_errors=True)
        raise
    with sock:
        if api.workers == 1:
            app, _ = build_app(config)
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=listen.host,
                    port=listen.port,
                    log_level="warning",
                    access_log=False,
                    **server_options(),
                )
            )
            with contextlib.suppress(KeyboardInterrupt):
                server.run(sockets=[sock])
            return
        _serve_workers(config, listen, config_path, sock)


def _serve_workers(
    config: ServiceConfig, listen: _Listen, config_path: str | None, sock: socket.socket
) -> None:
    """The controller in a thread of this process and ``api.workers`` API processes on
    ``sock``, which they inherit; each of them exits when this process dies."""
    state = build_state(config)
    controller = state.controller
    assert controller is not None
    controller.notices.append(state.metrics.on_notice)
    os.environ[ENV_CONFIG] = os.path.abspath(config_path) if config_path else ""
    os.environ[ENV_DATABASE] = config.database_url
    if isinstance(state.clock, ReplayClock):
        os.environ[ENV_CLOCK_START] = state.clock.start.isoformat()
        os.environ[ENV_CLOCK_ANCHOR] = repr(state.clock.anchor)
    os.environ[ENV_PARENT_PID] = str(os.getpid())
    controller.listeners.append(state.metrics.on_tick)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), name="controller", daemon=True)
    thread.start()
    try:
        # What uvicorn.run does for several workers, but on our socket (uvicorn.run would bind
        # its own; its fd= takes the socket for a Unix one).
        workers = uvicorn.Config(
            "wattroute.service.server:worker_app",
            factory=True,
            host=listen.host,
            port=listen.port,
            workers=config.spec.api.workers,
            log_level="warning",
            access_log=False,
            **server_options(),
        )
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(workers, sockets=[sock]).run()
    finally:
        stop.set()
        thread.join(timeout=30)
        for close in reversed(state.on_close):
            close()
        shutil.rmtree(os.environ[ENV_METRICS_DIR], ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one API worker process (no controller: the parent runs it). The worker
    exits when the parent does, even when the parent is killed."""
    configure()
    exit_with_parent()
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


@contextlib.contextmanager
def serve_in_thread(
    config: ServiceConfig, log_level: str = "warning"
) -> Iterator[tuple[str, AppState]]:
    """The service in this process, uvicorn in a thread on a free loopback port; yields its
    URL and state. On leaving, the app's lifespan stops the controller and whatever the
    executor started (Ray actors, an emulated cluster)."""
    configure(log_level)
    state = build_state(config)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(state),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            **server_options(),
        )
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def _redact(url: str) -> str:
    """The database URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
