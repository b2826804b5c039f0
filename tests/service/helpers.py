"""A service over a small fleet, a temporary database and a manual clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from tests.builders import small_fleet
from wattroute.model import Scenario
from wattroute.policies import get_policy
from wattroute.runtime import Controller, ControllerOptions, ManualClock, build_controller
from wattroute.runtime.executor import Executor, SimulatedExecutor
from wattroute.runtime.providers import SignalProvider
from wattroute.runtime.registry import CodeRegistry
from wattroute.service.api import AppState, create_app
from wattroute.service.auth import new_token, parse_scopes, token_hash
from wattroute.service.server import open_store
from wattroute.service.store import SqlStore

if TYPE_CHECKING:
    from wattroute.execution.gateway import Gateway


@dataclass
class Service:
    client: TestClient
    state: AppState
    store: SqlStore
    controller: Controller
    clock: ManualClock

    def token(self, tenant: str, scope: str) -> dict[str, str]:
        token = new_token()
        self.store.add_token(tenant, ",".join(sorted(parse_scopes(scope))), token_hash(token))
        return {"Authorization": f"Bearer {token}"}

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.controller.tick()
            self.clock.current = self.controller.time_of(self.controller.next_step)


def make_service(
    database: str,
    policy: str = "greedy",
    provider: SignalProvider | None = None,
    max_body_bytes: int = 64 * 1024,
    fleet: Scenario | None = None,
    executor: Executor | None = None,
    gateway: Gateway | None = None,
    registry: CodeRegistry | None = None,
) -> Service:
    sc = fleet if fleet is not None else small_fleet()
    store = open_store(database)
    clock = ManualClock(sc.start)
    registry = registry if registry is not None else CodeRegistry.builtin()
    controller = build_controller(
        sc,
        store,
        get_policy(policy),
        clock,
        provider=provider,
        executor=executor,
        options=ControllerOptions(registry=registry),
    )
    state = AppState(
        sc,
        store,
        clock,
        controller,
        run_controller=False,
        max_body_bytes=max_body_bytes,
        gateway=gateway,
        jobs_need_code=executor is not None and not isinstance(executor, SimulatedExecutor),
        registry=registry,
    )
    client = TestClient(create_app(state))
    return Service(client, state, store, controller, clock)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wattroute.db'}"
