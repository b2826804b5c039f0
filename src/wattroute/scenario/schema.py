"""The scenario file format (YAML), validated with pydantic.

This is the edge: these models exist only to check what a user wrote and to say precisely what
is wrong with it. :mod:`wattroute.scenario.load` turns a validated file into the core
:class:`~wattroute.model.Scenario` dataclasses. Unknown fields are errors (a misspelt
``capcity_kw`` must not be silently ignored). Durations are strings such as ``"5min"``,
``"1h"``, ``"30s"`` (pandas offsets); timestamps are ISO 8601 with a timezone (``Z``). Numbers
are finite (``.nan`` and ``.inf`` are errors; an unlimited import is ``"unlimited"``).

The :mod:`wattroute.model` classes check their own values when built; the rules here are the
same or stricter (a file's counts, capacities and limits are positive where the model allows 0),
so a value that passes here passes there. Rules across entries (names that refer to other
entries, a service time within its SLO, values read from files) are the loader's and the
model's.

Paths are relative to ``data_dir``, which is itself relative to the scenario file's folder
(default: the folder itself).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)


class Strict(BaseModel):
    """Base: unknown fields are errors, so a misspelt name is never silently ignored; numbers
    are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _duration(value: object) -> str:
    try:
        delta = pd.Timedelta(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a duration; write e.g. '5min', '1h' or '30s'") from None
    if delta <= pd.Timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration")
    return str(value)


Duration = Annotated[str, Field(description="A positive duration such as '5min' or '1h'.")]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(
            f"{value.isoformat()} has no timezone; add one, e.g. '{value.isoformat()}Z' for UTC"
        )
    return value


# -- signals ----------------------------------------------------------------------------------


class FileSignal(Strict):
    """A column of a CSV file.

    ``format``: ``grid`` (a file of ``../shared/data/grid``), or ``csv`` (any timestamped CSV;
    give ``time_column``, and ``time_unit`` + ``origin`` if times are numbers).
    """

    file: str
    column: str | None = None
    format: Literal["grid", "csv"] = "csv"
    time_column: str = "timestamp"
    time_unit: Literal["s", "min", "h"] | None = None
    origin: datetime | None = None
    scale: float = 1.0

    _aware_origin = field_validator("origin")(lambda v: _aware(v) if v is not None else v)


class DiurnalModel(Strict):
    """The documented synthetic grid model (:mod:`wattroute.signals.synthetic`)."""

    mean_price_usd_per_mwh: float = 70.0
    mean_carbon_g_per_kwh: NonNegativeFloat = 350.0
    evening_peak: NonNegativeFloat = 0.5
    solar_dip: NonNegativeFloat = 0.6
    noise: NonNegativeFloat = 0.08
    seed: int = 0


SignalSpec = float | FileSignal


class DayAheadSpec(Strict):
    """The grid price is a day-ahead market's: each local delivery day's prices are published
    the day before at ``published`` (local time in ``timezone``), and planners may read them
    from then on (:mod:`wattroute.signals.publication`)."""

    timezone: str
    published: time

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; write e.g. 'America/Los_Angeles' or "
                "'Europe/Berlin'"
            ) from None
        return value


class GridSpec(Strict):
    """A grid connection.

    Price and carbon come from ``file`` (a grid-format CSV: ``price_usd_per_mwh`` and
    ``carbon_intensity_g_per_kwh``), from ``model`` (synthetic), or each from ``price`` /
    ``carbon`` (a constant or a :class:`FileSignal`), which override the others.
    """

    import_limit_kw: NonNegativeFloat | Literal["unlimited"] = "unlimited"
    export_limit_kw: NonNegativeFloat = 0.0
    file: str | None = None
    model: DiurnalModel | None = None
    price: SignalSpec | None = None
    carbon: SignalSpec | None = None
    export_price: SignalSpec | None = None
    day_ahead: DayAheadSpec | None = None

    @model_validator(mode="after")
    def _has_sources(self) -> GridSpec:
        if self.file is None and self.model is None and (self.price is None or self.carbon is None):
            raise ValueError(
                "give the grid's price and carbon: `file: grid/ZONE_YEAR.csv`, a synthetic "
                "`model: {...}`, or both `price:` and `carbon:`"
            )
        if self.file is not None and self.model is not None:
            raise ValueError("give either `file` or `model`, not both")
        return self


class WeatherSpec(Strict):
    """Weather at the site: a weather-format CSV, or a TMY file that pvlib ships.

    ``pvlib_tmy`` names a file in pvlib's data folder (``723170TYA.CSV``: Greensboro NC,
    ``703165TY.csv``: Sand Point AK, ``12839.tm2``: Miami FL); its typical year is laid over
    the scenario's calendar.
    """

    file: str | None = None
    pvlib_tmy: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WeatherSpec:
        if (self.file is None) == (self.pvlib_tmy is None):
            raise ValueError("give exactly one of `file` or `pvlib_tmy`")
        return self


class TraceSpec(Strict):
    """A normalised generation trace (0..1 of nameplate): solcast format or a CSV column."""

    file: str
    column: str
    format: Literal["solcast", "csv"] = "solcast"
    time_column: str = "timestamp"


class SolarSpec(Strict):
    """Solar PV: from the site's weather through pvlib, or from a normalised trace."""

    capacity_kw: PositiveFloat
    trace: TraceSpec | None = None
    tilt_deg: float | None = Field(default=None, ge=0, le=90)
    azimuth_deg: float | None = Field(default=None, ge=0, lt=360)
    dc_ac_ratio: PositiveFloat = 1.2


class WindSpec(Strict):
    """Wind: from the site's weather through windpowerlib, or from a normalised trace."""

    capacity_kw: PositiveFloat
    trace: TraceSpec | None = None
    turbine: str = "E-126/4200"
    hub_height_m: PositiveFloat | None = None


class AcceleratorSpec(Strict):
    count: PositiveInt
    busy_kw: PositiveFloat
    idle_kw: NonNegativeFloat

    @model_validator(mode="after")
    def _idle_below_busy(self) -> AcceleratorSpec:
        if self.idle_kw > self.busy_kw:
            raise ValueError("idle_kw must not exceed busy_kw")
        return self


class PueSpec(Strict):
    base: float = Field(default=1.2, ge=1.0)
    per_degree_c: NonNegativeFloat = 0.0
    reference_c: float = 20.0
    maximum: float = Field(default=2.0, ge=1.0)

    @model_validator(mode="after")
    def _maximum_above_base(self) -> PueSpec:
        if self.maximum < self.base:
            raise ValueError(f"maximum ({self.maximum}) must not be below base ({self.base})")
        return self


class BatterySpec(Strict):
    capacity_kwh: PositiveFloat
    charge_kw: PositiveFloat
    discharge_kw: PositiveFloat
    round_trip_efficiency: float = Field(default=0.9, gt=0, le=1)
    soc_min: float = Field(default=0.0, ge=0, le=1)
    soc_max: float = Field(default=1.0, ge=0, le=1)
    initial_soc: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _soc_order(self) -> BatterySpec:
        if not self.soc_min <= self.initial_soc <= self.soc_max:
            raise ValueError("need soc_min <= initial_soc <= soc_max")
        return self


class GensetSpec(Strict):
    capacity_kw: PositiveFloat
    fuel_cost_usd_per_kwh: NonNegativeFloat
    emission_factor_g_per_kwh: NonNegativeFloat


class SiteSpec(Strict):
    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    zone: str | None = None
    accelerators: AcceleratorSpec
    pue: float | PueSpec = 1.2
    base_it_kw: NonNegativeFloat = 0.0
    power_cap_kw: PositiveFloat | None = None
    weather: WeatherSpec | None = None
    grid: GridSpec | None = None
    solar: SolarSpec | None = None
    wind: WindSpec | None = None
    battery: BatterySpec | None = None
    genset: GensetSpec | None = None

    @field_validator("pue")
    @classmethod
    def _pue_at_least_one(cls, value: float | PueSpec) -> float | PueSpec:
        if isinstance(value, float | int) and value < 1.0:
            raise ValueError("a PUE is at least 1.0 (facility power / IT power)")
        return value


# -- workloads --------------------------------------------------------------------------------


class DemandPointSpec(Strict):
    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    zone: str | None = None


class RequestLogSpec(Strict):
    """A log of request timestamps whose per-step counts shape the rate (tiled over time)."""

    file: str
    timestamp_column: str = "TIMESTAMP"


class RateSpec(Strict):
    """A request rate: ``mean_rps`` x a diurnal cycle x (optionally) the shape of a request log,
    or a CSV column of rates (``file``)."""

    mean_rps: NonNegativeFloat | None = None
    diurnal_amplitude: float = Field(default=0.0, ge=0, le=1)
    peak_hour_utc: float = Field(default=14.0, ge=0, lt=24)
    request_log: RequestLogSpec | None = None
    file: FileSignal | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RateSpec:
        if (self.mean_rps is None) == (self.file is None):
            raise ValueError("give exactly one of `mean_rps` or `file`")
        return self


class DemandSpec(Strict):
    point: str
    rate_rps: NonNegativeFloat | RateSpec


class ServiceSpec(Strict):
    name: str = Field(min_length=1)
    latency_slo_ms: PositiveFloat
    service_time_ms: NonNegativeFloat
    replica_throughput_rps: PositiveFloat
    accelerators_per_replica: PositiveInt = 1
    demand: list[DemandSpec] = Field(min_length=1)


class JobSpec(Strict):
    """One batch job. Give ``arrival`` or ``arrival_h`` (hours after start), and ``deadline``
    or ``slack_h`` (hours beyond the shortest possible run)."""

    name: str = Field(min_length=1)
    arrival: datetime | None = None
    arrival_h: NonNegativeFloat | None = None
    work_accelerator_hours: PositiveFloat
    min_accelerators: PositiveInt = 1
    max_accelerators: PositiveInt = 1
    deadline: datetime | None = None
    slack_h: NonNegativeFloat | None = None
    checkpoint_overhead_h: NonNegativeFloat = 0.0
    migration_overhead_h: NonNegativeFloat = 0.0
    allowed_sites: list[str] | None = None

    _aware = field_validator("arrival", "deadline")(lambda v: _aware(v) if v is not None else v)

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if (self.arrival is None) == (self.arrival_h is None):
            raise ValueError("give exactly one of `arrival` or `arrival_h`")
        if (self.deadline is None) == (self.slack_h is None):
            raise ValueError("give exactly one of `deadline` or `slack_h`")
        if self.min_accelerators > self.max_accelerators:
            raise ValueError("min_accelerators must not exceed max_accelerators")
        return self


class TraceColumns(Strict):
    arrival: str = "arrival_time"
    duration: str = "length"
    accelerators: str = "cpus"


class JobTraceSpec(Strict):
    """Batch jobs from a trace CSV (e.g. the Alibaba PAI trace).

    A row becomes a job arriving at ``start + arrival_offset_h + arrival``, with work
    ``duration x accelerators`` accelerator-hours, parallelism from ``min_accelerators`` up to
    the trace's accelerators (capped at ``max_accelerators_cap``), and a deadline ``slack_h``
    after the shortest possible run — or, given ``[low, high]``, a slack spread evenly over that
    range, job by job (a low-discrepancy sequence over the trace's row numbers, so the same row
    always gets the same slack). Rows are taken in file order: every ``every``-th one,
    arriving within the period, at most ``limit`` of them.
    """

    file: str
    columns: TraceColumns = TraceColumns()
    time_unit: Literal["s", "min", "h"] = "h"
    arrival_offset_h: float = 0.0
    every: PositiveInt = 1
    limit: PositiveInt | None = None
    slack_h: NonNegativeFloat | tuple[NonNegativeFloat, NonNegativeFloat] = 24.0
    min_accelerators: PositiveInt = 1
    max_accelerators_cap: PositiveInt | None = None
    checkpoint_overhead_h: NonNegativeFloat = 0.0
    migration_overhead_h: NonNegativeFloat = 0.0
    allowed_sites: list[str] | None = None
    name_prefix: str = "job"

    @field_validator("slack_h")
    @classmethod
    def _slack_range(cls, value: float | tuple[float, float]) -> float | tuple[float, float]:
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError("a slack range is [low, high] with low <= high")
        return value


# -- the scenario -----------------------------------------------------------------------------


class NetworkSpec(Strict):
    latency_matrix: str | None = None
    fibre_km_per_ms: PositiveFloat = 200.0
    route_factor: float = Field(default=1.5, ge=1.0)
    base_ms: NonNegativeFloat = 1.0


class SignalOptions(Strict):
    """How signals are put on the step grid: gaps up to ``max_gap`` are filled and reported."""

    max_gap: str = "3h"

    _check = field_validator("max_gap")(_duration)


class PenaltySpec(Strict):
    deadline_miss_usd_per_accelerator_hour: NonNegativeFloat = 10.0
    slo_violation_usd_per_request: NonNegativeFloat = 0.001


class ScenarioSpec(Strict):
    """A scenario file."""

    name: str = Field(min_length=1)
    description: str = ""
    start: datetime
    end: datetime
    step: str = "5min"
    data_dir: str | None = None
    carbon_price_usd_per_tonne: NonNegativeFloat = 0.0
    carbon_intensity: Literal["average", "marginal"] = "average"
    signals: SignalOptions = SignalOptions()
    penalties: PenaltySpec = PenaltySpec()
    network: NetworkSpec = NetworkSpec()
    sites: list[SiteSpec] = Field(min_length=1)
    demand_points: list[DemandPointSpec] = []
    inference_services: list[ServiceSpec] = []
    batch_jobs: list[JobSpec] = []
    batch_trace: JobTraceSpec | None = None

    _aware = field_validator("start", "end")(_aware)
    _step = field_validator("step")(_duration)

    @model_validator(mode="after")
    def _period(self) -> ScenarioSpec:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self
