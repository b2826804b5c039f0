"""What the live controller reads and writes: plain records, and the store interface.

The controller never talks to a database: it reads and commits these records through a
:class:`Store`. The service implements it on SQLAlchemy (:mod:`wattroute.service.store`);
:class:`MemoryStore` is its in-memory twin for tests and embedding.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

JOB_STATES = ("queued", "running", "paused", "completed", "cancelled", "failed")
"""queued: not yet run; running; paused: ran and was stopped; completed; cancelled; failed:
its code raised (``error`` says what)."""


# What a tick changes in a job: its state, progress and allocation.
PROGRESS_FIELDS = (
    "state",
    "done_accelerator_hours",
    "site",
    "accelerators",
    "last_site",
    "pending_overhead_h",
    "overhead_paid_h",
    "moves",
    "stops",
    "completed_at",
    "remaining_at_deadline",
    "error",
)


@dataclass
class JobRecord:
    """One batch job as stored: its request and its progress.

    Times are UTC; work in accelerator-hours; overheads in hours.
    """

    id: str
    tenant: str
    name: str
    submitted_at: pd.Timestamp
    deadline: pd.Timestamp
    work_accelerator_hours: float
    min_accelerators: int
    max_accelerators: int
    checkpoint_overhead_h: float = 0.0
    migration_overhead_h: float = 0.0
    allowed_sites: tuple[str, ...] | None = None
    function: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    state: str = "queued"
    done_accelerator_hours: float = 0.0
    site: str | None = None
    accelerators: int = 0
    last_site: str | None = None
    pending_overhead_h: float = 0.0
    overhead_paid_h: float = 0.0
    moves: int = 0
    stops: int = 0
    completed_at: pd.Timestamp | None = None
    remaining_at_deadline: float | None = None
    idempotency_key: str | None = None
    error: str | None = None
    # SHA-256 of the request as submitted: a repeated idempotency key must come with it.
    request_hash: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running", "paused")

    def __deepcopy__(self, memo: dict[int, Any]) -> JobRecord:
        """What ``copy.deepcopy`` gives, at a fraction of its cost (a memory store copies
        every active job in and out at every tick): every field but ``args`` is immutable
        (texts, numbers, timestamps, tuples of texts) and is shared; ``args`` is copied."""
        new = copy.copy(self)
        new.args = copy.deepcopy(self.args, memo)
        return new


@dataclass
class ServiceRecord:
    """An inference service and its current demand, requests per second by demand point.

    Names are per tenant: two tenants may each have a service ``vision``. Everything that
    runs or routes services keys them by :attr:`key`, ``tenant/name``.
    """

    name: str
    tenant: str
    latency_slo_ms: float
    service_time_ms: float
    replica_throughput_rps: float
    accelerators_per_replica: int
    demand_rps: dict[str, float] = field(default_factory=dict)
    handler: str | None = None  # a registered inference handler (None: the built-in model)

    @property
    def key(self) -> str:
        """``tenant/name``: unique across tenants (neither part contains ``/``)."""
        return service_key(self.tenant, self.name)


def service_key(tenant: str, name: str) -> str:
    """The fleet-wide key of a tenant's service."""
    return f"{tenant}/{name}"


@dataclass
class GridEventRecord:
    """Demand response: ``site`` may draw at most ``max_kw`` from ``start`` to ``end``."""

    id: str
    site: str
    max_kw: float
    start: pd.Timestamp
    end: pd.Timestamp
    reason: str = ""
    peak_kw: float = 0.0  # the most the site drew during the event so far
    complied: bool | None = None  # None while pending or active
    # Wall seconds from the event taking effect (accepted, or its start if later) until the
    # site's load measured below max_kw; None until then.
    compliance_s: float | None = None
    created_at: pd.Timestamp | None = None  # when it was accepted


@dataclass
class SiteOverride:
    """An operator's change to a site: tighter limits, or taking it offline."""

    import_limit_kw: float | None = None
    power_cap_kw: float | None = None
    offline: bool = False


@dataclass
class SiteReading:
    """A measurement of a site's on-site generation, pushed by its meters between ticks.

    ``time`` is fleet time when it was received (the controller's clock), ``received_at`` wall
    time (UTC). ``solar_kw`` and ``wind_kw`` are AC output, kW; ``None`` where not measured.
    The reading stands in for the signal provider's value at that site for one step from
    ``time``. ``compliance_s`` is set when a reading that lowered the site's supply was met:
    wall seconds from ``received_at`` until the site's load fitted the supply left.
    """

    site: str
    time: pd.Timestamp
    received_at: pd.Timestamp
    solar_kw: float | None = None
    wind_kw: float | None = None
    compliance_s: float | None = None


@dataclass
class TickRecord:
    """One planning tick: when, what was decided, what it cost, in which state.

    ``state`` carries what the controller needs to resume after a restart (battery energy
    per site, the received signal history's last good values).
    """

    time: pd.Timestamp
    step: int
    decision_s: float
    degraded: bool
    reasons: tuple[str, ...]
    plan: dict[str, Any]
    outcome: dict[str, Any]
    state: dict[str, Any]


@dataclass
class Heartbeat:
    """What the controller last reported about itself, so that any API process can answer
    health, readiness and signal queries without sharing its memory.

    ``at`` is wall-clock time (UTC) when written; ``time`` and ``step`` are the fleet's time
    of the last tick; ``signals`` holds, per site and signal, the latest received value and
    the forecast the controller plans with (``{"step_minutes": .., "sites": {site: {signal:
    {"latest": v, "forecast": [...]}}}}``).
    """

    at: pd.Timestamp
    step: int = -1
    time: pd.Timestamp | None = None
    degraded: bool = False
    reasons: tuple[str, ...] = ()
    lag_s: float = 0.0
    finished: bool = False
    signals: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobChanges:
    """What :meth:`Store.job_changes` answers.

    ``jobs`` are the jobs written outside the controller (submitted, cancelled) since the
    mark asked with, in any state; or, when ``complete``, every active job in the order the
    controller plans them (by submission time, then id). ``since`` is the mark to ask with
    next time. A job may come back more than once: applying it again changes nothing.
    """

    jobs: list[JobRecord]
    since: int | None
    complete: bool


class Store(Protocol):
    """What the controller needs of durable state."""

    def active_jobs(self) -> list[JobRecord]: ...

    def job_changes(self, since: int | None) -> JobChanges:
        """The jobs changed outside the controller since mark ``since`` (every active job if
        ``None``, or if the store cannot tell what changed)."""
        ...

    def services(self) -> list[ServiceRecord]: ...

    def grid_events(self, start: pd.Timestamp, end: pd.Timestamp) -> list[GridEventRecord]: ...

    def site_overrides(self) -> dict[str, SiteOverride]: ...

    def site_readings(self) -> dict[str, SiteReading]:
        """The latest reading of each site that has one."""
        ...

    def last_tick(self) -> TickRecord | None: ...

    def commit_tick(
        self, tick: TickRecord, jobs: list[JobRecord], events: list[GridEventRecord]
    ) -> None:
        """Record a tick and the jobs and events it changed, all or nothing."""
        ...

    def heartbeat(self, beat: Heartbeat) -> None:
        """Replace the controller's report about itself."""
        ...

    def commit_correction(self, step: int, plan: dict[str, Any], jobs: list[JobRecord]) -> None:
        """Record a correction between ticks: the plan of step ``step`` now in force and the
        jobs it changed, all or nothing."""
        ...

    def record_compliance(self, event_id: str, seconds: float) -> None:
        """Record how long a grid event took to be complied with."""
        ...

    def record_reading_compliance(self, site: str, time: pd.Timestamp, seconds: float) -> None:
        """Record how long the site's reading at fleet time ``time`` took to be met (if it is
        still the site's latest)."""
        ...


class MemoryStore:
    """:class:`Store` in memory (for tests and for embedding the controller)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[str, JobRecord] = {}
        self.service_records: dict[str, ServiceRecord] = {}
        self.events: dict[str, GridEventRecord] = {}
        self.overrides: dict[str, SiteOverride] = {}
        self.readings: dict[str, SiteReading] = {}
        self.ticks: list[TickRecord] = []
        self.beat: Heartbeat | None = None

    def add_job(self, job: JobRecord) -> None:
        with self._lock:
            self.jobs[job.id] = copy.deepcopy(job)

    def active_jobs(self) -> list[JobRecord]:
        with self._lock:
            return [copy.deepcopy(j) for j in self.jobs.values() if j.active]

    def job_changes(self, since: int | None) -> JobChanges:
        """Every active job, each time: tests and embedders change jobs in place, which
        leaves no mark to go by."""
        return JobChanges(self.active_jobs(), None, complete=True)

    def services(self) -> list[ServiceRecord]:
        with self._lock:
            return [copy.deepcopy(s) for s in self.service_records.values()]

    def grid_events(self, start: pd.Timestamp, end: pd.Timestamp) -> list[GridEventRecord]:
        with self._lock:
            return [
                copy.deepcopy(e) for e in self.events.values() if e.start < end and e.end > start
            ]

    def site_overrides(self) -> dict[str, SiteOverride]:
        with self._lock:
            return copy.deepcopy(self.overrides)

    def site_readings(self) -> dict[str, SiteReading]:
        with self._lock:
            return copy.deepcopy(self.readings)

    def set_reading(self, reading: SiteReading) -> None:
        with self._lock:
            self.readings[reading.site] = copy.deepcopy(reading)

    def last_tick(self) -> TickRecord | None:
        with self._lock:
            return copy.deepcopy(self.ticks[-1]) if self.ticks else None

    def commit_tick(
        self, tick: TickRecord, jobs: list[JobRecord], events: list[GridEventRecord]
    ) -> None:
        with self._lock:
            self.ticks.append(copy.deepcopy(tick))
            for job in jobs:
                current = self.jobs.get(job.id)
                # A cancellation that landed during the tick wins over the tick's progress.
                if current is not None and current.state == "cancelled":
                    continue
                self.jobs[job.id] = copy.deepcopy(job)
            for event in events:
                self.events[event.id] = copy.deepcopy(event)

    def heartbeat(self, beat: Heartbeat) -> None:
        with self._lock:
            self.beat = copy.deepcopy(beat)

    def commit_correction(self, step: int, plan: dict[str, Any], jobs: list[JobRecord]) -> None:
        with self._lock:
            for i, tick in enumerate(self.ticks):
                if tick.step == step:
                    self.ticks[i] = dataclasses.replace(tick, plan=copy.deepcopy(plan))
            for job in jobs:
                current = self.jobs.get(job.id)
                if current is not None and current.state == "cancelled":
                    continue
                self.jobs[job.id] = copy.deepcopy(job)

    def record_compliance(self, event_id: str, seconds: float) -> None:
        with self._lock:
            event = self.events.get(event_id)
            if event is not None and event.compliance_s is None:
                event.compliance_s = seconds

    def record_reading_compliance(self, site: str, time: pd.Timestamp, seconds: float) -> None:
        with self._lock:
            reading = self.readings.get(site)
            if reading is not None and reading.time == time and reading.compliance_s is None:
                reading.compliance_s = seconds
