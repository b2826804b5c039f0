"""What the API's routes work with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wattroute.model import Scenario
from wattroute.runtime.clock import Clock
from wattroute.runtime.controller import Controller
from wattroute.runtime.registry import CodeRegistry
from wattroute.runtime.submissions import FleetRules
from wattroute.service.auth import TokenCache
from wattroute.service.metrics import ServiceMetrics
from wattroute.service.readiness import ReadinessRules
from wattroute.service.store import SqlStore

if TYPE_CHECKING:
    from wattroute.execution.gateway import Gateway


@dataclass
class AppState:
    """The fleet, the store, the clock and (in the process that runs it) the controller.

    ``registry`` is the code tenants may name; ``jobs_need_code`` is set when an execution
    engine runs real code (jobs must name a registered function). ``readiness`` tunes
    ``/readyz`` (default: from the fleet's period and step)."""

    scenario: Scenario
    store: SqlStore
    clock: Clock
    controller: Controller | None = None
    auth_required: bool = True
    max_body_bytes: int = 64 * 1024
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    tokens: TokenCache = field(default_factory=TokenCache)
    run_controller: bool = True
    gateway: Gateway | None = None
    jobs_need_code: bool = False
    registry: CodeRegistry = field(default_factory=CodeRegistry.builtin)
    readiness: ReadinessRules | None = None
    on_close: list[Callable[[], None]] = field(default_factory=list)
    cluster: Any = None  # the emulated Ray cluster the service started, if any
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    # The plan's routing as the gateway last read it: (monotonic time read, routing).
    routing: tuple[float, dict[str, Any]] = (-1e9, {})

    def __post_init__(self) -> None:
        sc = self.scenario
        self.site_names = tuple(s.name for s in sc.sites)
        self.point_names = frozenset(p.name for p in sc.demand_points)
        self.rules = FleetRules(
            {s.name: s.accelerators.count for s in sc.sites},
            sc.end,
            self.registry,
            self.jobs_need_code,
        )
        if self.readiness is None:
            self.readiness = ReadinessRules(sc.start, sc.end, sc.step)
