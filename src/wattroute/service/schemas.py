"""The API's request and response bodies (pydantic, at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Rate = Annotated[float, Field(ge=0, le=1e9, description="requests per second")]
Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class JobSubmission(_In):
    """A batch job. Give ``deadline`` or ``slack_h`` (hours beyond its shortest run)."""

    name: str = Field(min_length=1, max_length=256)
    work_accelerator_hours: float = Field(gt=0, le=1e6)
    min_accelerators: int = Field(default=1, ge=1, le=100_000)
    max_accelerators: int = Field(default=1, ge=1, le=100_000)
    deadline: AwareDatetime | None = None
    slack_h: float | None = Field(default=None, ge=0, le=24 * 365)
    checkpoint_overhead_h: float = Field(default=0.0, ge=0, le=24)
    migration_overhead_h: float = Field(default=0.0, ge=0, le=24)
    allowed_sites: list[str] | None = Field(default=None, max_length=1000)
    function: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="the job's code, module.path:function, called as function(ctx, **args)",
    )
    args: dict[str, Any] = Field(
        default_factory=dict, max_length=100, description="keyword arguments for the function"
    )

    @model_validator(mode="after")
    def _consistent(self) -> JobSubmission:
        if (self.deadline is None) == (self.slack_h is None):
            raise ValueError("give exactly one of deadline or slack_h")
        if self.min_accelerators > self.max_accelerators:
            raise ValueError("min_accelerators must not exceed max_accelerators")
        return self


class JobOut(BaseModel):
    id: str
    tenant: str
    name: str
    state: Literal["queued", "running", "paused", "completed", "cancelled", "failed"]
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


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


class ServiceIn(_In):
    name: str = Name
    latency_slo_ms: float = Field(gt=0, le=1e6)
    service_time_ms: float = Field(ge=0, le=1e6)
    replica_throughput_rps: float = Field(gt=0, le=1e9)
    accelerators_per_replica: int = Field(default=1, ge=1, le=10_000)
    demand_rps: dict[str, Rate] = Field(default_factory=dict, max_length=1000)
    handler: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module.path:function returning the model callable (default: built-in)",
    )

    @model_validator(mode="after")
    def _sane(self) -> ServiceIn:
        if self.service_time_ms >= self.latency_slo_ms:
            raise ValueError("service_time_ms leaves no time for the network within latency_slo_ms")
        return self


class ServicePatch(_In):
    demand_rps: dict[str, Rate] = Field(max_length=1000)


class ServiceOut(BaseModel):
    name: str
    tenant: str
    latency_slo_ms: float
    service_time_ms: float
    replica_throughput_rps: float
    accelerators_per_replica: int
    demand_rps: dict[str, float]
    handler: str | None


class GridEventIn(_In):
    """Demand response: ``site`` draws at most ``max_kw`` from ``start`` to ``end``."""

    site: str = Field(min_length=1, max_length=128)
    max_kw: float = Field(ge=0, le=1e9)
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(default="", max_length=512)

    @model_validator(mode="after")
    def _ordered(self) -> GridEventIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
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
            raise ValueError("give solar_kw, wind_kw or both")
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


class Health(BaseModel):
    status: str
    time: datetime | None = None
    step: int | None = None
    reasons: list[str] = []


class ErrorOut(BaseModel):
    """An error: ``detail`` says what is wrong and how to fix it (for 422, one entry per field,
    each with its ``loc``, e.g. ``["body", "deadline"]``)."""

    detail: str | list[dict[str, Any]]
    message: str | None = None


_ERRORS = {
    400: "the body cannot be parsed (not UTF-8 JSON)",
    401: "no bearer token, or an unknown or revoked one",
    403: "the token lacks the scope this route needs",
    404: "no such object, or one that belongs to another tenant",
    409: "the object exists already",
    413: "the request body is over the size limit",
    503: "the database is unavailable: nothing was changed; retry (same Idempotency-Key)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the error answers ``codes`` a route can give."""
    return {code: {"model": ErrorOut, "description": _ERRORS[code]} for code in codes}


class InferIn(_In):
    """An inference request from a demand point."""

    point: str = Field(min_length=1, max_length=128, description="the demand point it comes from")
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
