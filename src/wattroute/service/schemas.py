"""The API's request and response bodies (pydantic, at the edge).

Requests are strict: a number given as a string (``"max_accelerators": "2"``) is refused, as
are unknown fields, NaN and Infinity, text with control characters (a NUL byte cannot be
stored), times without a UTC offset or outside 1970..2200, and job arguments nested deeper
than :data:`MAX_ARGS_DEPTH`. Every refusal names the field, the problem and the fix.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_ARGS_DEPTH = 16
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
"""Service names: letters, digits, ``.``, ``_``, ``:`` and ``-``."""
PATH_TEXT = r"^[^\x00-\x1f\x7f]+$"
"""A path or query value: any text without control characters."""
KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
"""An idempotency key: printable ASCII, no space at either end."""
PATTERNS = {
    NAME_PATTERN: (
        "is not a name",
        "use letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    ),
    PATH_TEXT: ("contains a control character (such as a NUL byte)", "remove it"),
    KEY_PATTERN: (
        "is not printable ASCII (or starts or ends with a space)",
        "use a key such as a UUID",
    ),
}
"""What each pattern means, for the error that says a value does not match it."""


def invalid(problem: str, fix: str, field: str | None = None) -> PydanticCustomError:
    """A validation error carrying its fix (and, from a model validator, the field it is
    about), which the API's error answers report."""
    context: dict[str, str] = {"problem": problem, "fix": fix}
    if field is not None:
        context["field"] = field
    return PydanticCustomError("invalid", "{problem}", context)


def _plain_text(value: str) -> str:
    if _CONTROL.search(value):
        raise invalid(
            "contains a control character (such as a NUL byte)",
            "send printable text; tabs and line breaks are allowed",
        )
    return value


def _representable(value: datetime) -> datetime:
    try:
        inside = EARLIEST <= value < LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise invalid(
            "is outside the times this service plans (1970 to 2200)",
            "give a time such as 2026-12-01T12:00:00Z",
        )
    return value.astimezone(UTC)


Text = Annotated[str, AfterValidator(_plain_text)]
Instant = Annotated[AwareDatetime, Field(strict=False), AfterValidator(_representable)]
Rate = Annotated[float, Field(ge=0, le=1e9, description="requests per second")]
RegisteredName = Annotated[Text, Field(min_length=1, max_length=128)]
"""A name the operator registered; checked against the registry, which lists the names."""


def check_json_value(value: Any, depth: int = 0) -> None:
    """Refuse what JSON cannot carry or the database cannot store in a free-form value:
    NaN and Infinity, control characters in text, nesting deeper than ``MAX_ARGS_DEPTH``."""
    if depth > MAX_ARGS_DEPTH:
        raise invalid(
            f"is nested more than {MAX_ARGS_DEPTH} levels deep",
            "flatten the arguments (or pass a path to the data instead)",
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid(
            "holds NaN or Infinity, which are not JSON numbers",
            "give finite numbers (use null for a missing value)",
        )
    if isinstance(value, str):
        _plain_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_text(key)
            check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class JobSubmission(_In):
    """A batch job. Give ``deadline`` or ``slack_h`` (hours beyond its shortest run)."""

    name: Text = Field(min_length=1, max_length=256)
    work_accelerator_hours: float = Field(gt=0, le=1e6)
    min_accelerators: int = Field(default=1, ge=1, le=100_000)
    max_accelerators: int = Field(default=1, ge=1, le=100_000)
    deadline: Instant | None = None
    slack_h: float | None = Field(default=None, ge=0, le=24 * 365)
    checkpoint_overhead_h: float = Field(default=0.0, ge=0, le=24)
    migration_overhead_h: float = Field(default=0.0, ge=0, le=24)
    allowed_sites: list[Annotated[Text, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=1000
    )
    function: RegisteredName | None = Field(
        default=None,
        description="a job function the operator registered (GET /v1/code lists yours), "
        "called as function(ctx, **args)",
    )
    args: dict[str, Any] = Field(
        default_factory=dict, max_length=100, description="keyword arguments for the function"
    )

    @field_validator("args")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_json_value(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobSubmission:
        if (self.deadline is None) == (self.slack_h is None):
            raise invalid(
                "give exactly one of deadline or slack_h",
                "send a deadline (a time) or slack_h (hours), not both and not neither",
                "deadline",
            )
        if self.min_accelerators > self.max_accelerators:
            raise invalid(
                "exceeds max_accelerators",
                "lower min_accelerators or raise max_accelerators",
                "min_accelerators",
            )
        return self


JobState = Literal["queued", "running", "paused", "completed", "cancelled", "failed"]


class JobOut(BaseModel):
    id: str
    tenant: str
    name: str
    state: JobState
    submitted_at: datetime
    deadline: datetime
    work_accelerator_hours: float
    done_accelerator_hours: float
    min_accelerators: int
    max_accelerators: int
    allowed_sites: list[str] | None
    function: str | None
    args: dict[str, Any]
    error: str | None
    site: str | None
    accelerators: int
    moves: int
    stops: int
    completed_at: datetime | None
    deadline_missed: bool


class _Page(BaseModel):
    total: int = Field(description="how many match in all")
    limit: int
    offset: int


class JobList(_Page):
    jobs: list[JobOut]


class ServiceIn(_In):
    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    latency_slo_ms: float = Field(gt=0, le=1e6)
    service_time_ms: float = Field(ge=0, le=1e6)
    replica_throughput_rps: float = Field(gt=0, le=1e9)
    accelerators_per_replica: int = Field(default=1, ge=1, le=10_000)
    demand_rps: dict[str, Rate] = Field(default_factory=dict, max_length=1000)
    handler: RegisteredName | None = Field(
        default=None,
        description="an inference handler the operator registered (GET /v1/code lists "
        "yours); default: the built-in model",
    )

    @model_validator(mode="after")
    def _sane(self) -> ServiceIn:
        if self.service_time_ms >= self.latency_slo_ms:
            raise invalid(
                "leaves no time for the network within latency_slo_ms",
                "lower service_time_ms below latency_slo_ms (or raise the SLO)",
                "service_time_ms",
            )
        return self


class ServicePatch(_In):
    demand_rps: dict[str, Rate] = Field(max_length=1000)


class ServiceOut(BaseModel):
    name: str
    tenant: str
    key: str = Field(description="tenant/name: how the plan's routing names the service")
    latency_slo_ms: float
    service_time_ms: float
    replica_throughput_rps: float
    accelerators_per_replica: int
    demand_rps: dict[str, float]
    handler: str | None


class ServiceList(_Page):
    services: list[ServiceOut]


class CodeOut(BaseModel):
    """What the calling tenant may name: registered job functions and inference handlers."""

    jobs: list[str]
    handlers: list[str]


class GridEventIn(_In):
    """Demand response: ``site`` draws at most ``max_kw`` from ``start`` to ``end``."""

    site: Text = Field(min_length=1, max_length=128)
    max_kw: float = Field(ge=0, le=1e9)
    start: Instant
    end: Instant
    reason: Text = Field(default="", max_length=512)

    @model_validator(mode="after")
    def _ordered(self) -> GridEventIn:
        if self.end <= self.start:
            raise invalid("is not after start", "give an end later than the start", "end")
        return self


class GridEventOut(BaseModel):
    id: str
    site: str
    max_kw: float
    start: datetime
    end: datetime
    reason: str
    status: Literal["upcoming", "active", "past"]
    peak_kw: float
    complied: bool | None
    compliance_s: float | None = Field(
        description="wall seconds from the event taking effect until the site's measured "
        "load was within max_kw"
    )


class GridEventList(_Page):
    grid_events: list[GridEventOut]


class SitePatch(_In):
    """An operator's change: a lower import limit or power cap (null clears it), or offline."""

    import_limit_kw: float | None = Field(default=None, ge=0, le=1e9)
    power_cap_kw: float | None = Field(default=None, ge=0, le=1e9)
    offline: bool = False


class SiteReadingIn(_In):
    """A meter reading of the site's on-site generation now: AC output, kW. Give at least one
    of ``solar_kw`` and ``wind_kw``."""

    solar_kw: float | None = Field(default=None, ge=0, le=1e9)
    wind_kw: float | None = Field(default=None, ge=0, le=1e9)

    @model_validator(mode="after")
    def _something(self) -> SiteReadingIn:
        if self.solar_kw is None and self.wind_kw is None:
            raise invalid("give solar_kw, wind_kw or both", "add the reading in kW", "solar_kw")
        return self


class SiteReadingOut(BaseModel):
    """A site's latest reading: when it was received (``time`` on the fleet's clock,
    ``received_at`` on the wall clock) and, if it lowered the power the site can draw, how
    long until the site's load fitted (``compliance_s``, wall seconds; null until then)."""

    site: str
    time: datetime
    received_at: datetime
    solar_kw: float | None
    wind_kw: float | None
    compliance_s: float | None


class SiteOut(BaseModel):
    name: str
    latitude: float
    longitude: float
    zone: str | None
    accelerators: int
    busy_kw: float
    idle_kw: float
    import_limit_kw: float | None
    export_limit_kw: float
    power_cap_kw: float | None
    solar_kw: float
    wind_kw: float
    battery_kwh: float
    genset_kw: float
    override: dict[str, Any] | None
    reading: SiteReadingOut | None = Field(
        default=None, description="the latest meter reading of on-site generation"
    )


class FleetOut(BaseModel):
    name: str
    step_minutes: float
    period_start: datetime
    period_end: datetime
    sites: list[SiteOut]
    demand_points: list[dict[str, Any]]


class AllocationOut(BaseModel):
    """What runs at a site now. ``jobs`` holds your jobs (an admin's: every tenant's) with
    their accelerators; ``power_kw`` is the whole site's, over the last step."""

    site: str
    time: datetime | None
    jobs_scope: Literal["tenant", "all"]
    jobs: dict[str, int]
    power_kw: dict[str, float] = Field(description="fleet-wide: the site's power by source")


class PlanOut(BaseModel):
    """The decision in force. ``jobs`` and ``routing`` hold your workloads (an admin's:
    every tenant's; ``workloads_scope`` says which); ``setpoints`` are the sites' batteries
    and gensets, fleet-wide. Routing is keyed by service key (``tenant/name``), then demand
    point, then site: the share of that point's requests the site serves."""

    time: datetime | None
    step: int | None
    degraded: bool
    workloads_scope: Literal["tenant", "all"]
    jobs: dict[str, dict[str, Any]]
    routing: dict[str, dict[str, dict[str, float]]]
    setpoints: dict[str, list[float] | None]
    correction: dict[str, Any] | None = Field(
        default=None, description="set when the plan was re-decided between ticks"
    )


class FleetTotals(BaseModel):
    """The whole fleet's running totals, every tenant's workloads together."""

    scope: Literal["fleet"] = "fleet"
    objective_usd_before_penalties: float
    cost_usd: float
    emissions_kg: float
    carbon_price_usd_per_tonne: float
    energy_kwh: dict[str, float]
    inference: dict[str, float]
    signal_kinds: dict[str, list[str]] = Field(
        default={},
        description="per signal, the kinds of value the run used (e.g. carbon_g_per_kwh: "
        "['average/lifecycle']; replayed files: 'recorded' or the scenario's intensity kind)",
    )


class JobCounts(BaseModel):
    """Jobs by state: yours (``scope: tenant``) or, for an admin, every tenant's."""

    scope: Literal["tenant", "all"]
    tenant: str | None
    by_state: dict[str, int]


class SummaryOut(BaseModel):
    """The objective so far (fleet-wide) and the jobs by state (yours)."""

    time: datetime | None
    fleet: FleetTotals
    jobs: JobCounts


class Health(BaseModel):
    status: Literal["ok", "ready", "not ready"]
    time: datetime | None = None
    step: int | None = None
    lag_s: float | None = Field(
        default=None, description="how far the controller trails the clock, fleet seconds"
    )
    reasons: list[str] = []


class FieldError(BaseModel):
    """One thing wrong with a request."""

    field: str | None = Field(
        description="where: body.deadline, query.limit, path.job_id, header.Authorization; "
        "null when it is not one field"
    )
    problem: str
    fix: str


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details, ``application/problem+json``): ``detail``
    says what is wrong in one line, ``errors`` names each field with the problem and fix."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError]


class InferIn(_In):
    """An inference request from a demand point."""

    point: Text = Field(min_length=1, max_length=128, description="the demand point it comes from")
    input: list[float] = Field(default_factory=list, max_length=1024)


class InferOut(BaseModel):
    """The answer, where it was served, and how long it took (ms). ``emulated_network_ms`` is
    the modelled round trip the gateway waited, standing in for the network on one machine."""

    service: str
    point: str
    site: str
    output: Any
    emulated_network_ms: float
    service_ms: float
    latency_ms: float
    within_slo: bool


class PlacementIn(_In):
    """A job to place: ``work_accelerator_hours`` on ``accelerators`` accelerators, finished
    by ``deadline`` or within ``slack_h`` hours beyond its run from now (give one)."""

    work_accelerator_hours: float = Field(gt=0, le=1e6)
    accelerators: int = Field(default=1, ge=1, le=100_000)
    deadline: Instant | None = None
    slack_h: float | None = Field(default=None, ge=0, le=24 * 365)
    allowed_sites: list[Annotated[Text, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=1000
    )
    minimise: Literal["objective", "cost", "emissions"] = Field(
        default="objective",
        description="what best means: the fleet's objective (cost plus the carbon price on "
        "emissions), the cost, or the emissions",
    )

    @model_validator(mode="after")
    def _one_deadline(self) -> PlacementIn:
        if (self.deadline is None) == (self.slack_h is None):
            raise invalid(
                "give exactly one of deadline or slack_h",
                "send a deadline (a time) or slack_h (hours), not both and not neither",
                "deadline",
            )
        return self


class PlacementOption(BaseModel):
    """Running the job at ``site`` from ``start`` to ``end``."""

    site: str
    start: datetime
    end: datetime
    energy_kwh: float = Field(description="facility energy the job adds, kWh")
    renewable_kwh: float = Field(description="of it, from on-site renewables left unused, kWh")
    bought_kwh: float = Field(description="of it, bought from the grid (or a genset), kWh")
    cost_usd: float
    emissions_kg: float = Field(description="kg CO2e")
    objective_usd: float = Field(description="cost_usd + carbon price x emissions")


class PlacementSavings(BaseModel):
    """What the best option saves against the best way to run it now (now minus best)."""

    cost_usd: float
    emissions_kg: float
    objective_usd: float


class PlacementOut(BaseModel):
    """Where and when the job would run best on the fleet's own power, against now."""

    time: datetime = Field(description="now: the start of the step in force")
    degraded: bool = Field(description="the controller plans on stale signals")
    minimise: Literal["objective", "cost", "emissions"]
    carbon_price_usd_per_tonne: float
    runtime_h: float = Field(description="the run's length: work / accelerators, hours")
    starts: int = Field(description="starts considered per site, one per step")
    best: PlacementOption
    now: PlacementOption | None = Field(
        description="the best site to start at now; null when none has the power now"
    )
    savings: PlacementSavings | None
    sites: list[PlacementOption] = Field(description="each usable site's best start")
