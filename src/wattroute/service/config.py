"""The service configuration file (YAML, validated with pydantic at the edge).

It names the fleet (sites and demand points in the scenario schema, or a scenario file whose
fleet to use), the signals to replay and the period they cover, the policy, the executor, the
database and the clock::

    name: demo
    fleet:                      # the scenario schema's fleet fields
      step: 5min
      carbon_price_usd_per_tonne: 100
      sites: [...]
      demand_points: [...]
    signals: {provider: replay, start: 2023-06-05T00:00:00Z, end: 2023-06-12T00:00:00Z}
    policy: mpc
    executor: simulated         # or ray (see RayConfig)
    database: sqlite:///wattroute.db
    clock: {kind: replay, speedup: 3600}
    api: {host: 127.0.0.1, port: 8080, max_body_bytes: 65536, workers: 1}
    auth: {required: true}
    code:                       # what tenants may run (default: the built-in examples)
      jobs: {train: my_models.train:main}
      handlers: {detector: {entry: my_models.serve:detector, tenants: [acme]}}
    readiness: {max_lag_steps: 3, max_lag_s: 10, heartbeat_timeout_s: 30}

Inputs and state resolve differently. Relative data files (and the secrets file) resolve
against the config file's folder, or ``data_dir``. What the service writes — a relative
``sqlite:///`` database and a relative ``ray.checkpoint_dir`` — goes to the *state directory*
(:func:`state_directory`: ``$WATTROUTE_STATE_DIR``, else ``$XDG_STATE_HOME/wattroute``, else
``~/.local/state/wattroute``), so running the service never leaves files beside a config or
in the working directory. Absolute paths and URLs are used as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Tag,
    ValidationError,
    model_validator,
)

from wattroute.errors import DataFileError, InputError, ScenarioError
from wattroute.model import Scenario
from wattroute.runtime.providers.values import as_utc
from wattroute.runtime.registry import ENTRY_POINT, NAME, CodeEntry, CodeRegistry
from wattroute.scenario.errors import scenario_error
from wattroute.scenario.load import build_scenario, read_scenario_file
from wattroute.scenario.schema import (
    DemandPointSpec,
    NetworkSpec,
    PenaltySpec,
    ScenarioSpec,
    SiteSpec,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FleetConfig(_Strict):
    """The fleet: inline in the scenario schema, or the fleet of a scenario file."""

    scenario: str | None = None
    step: str = "5min"
    carbon_price_usd_per_tonne: float = Field(default=0.0, ge=0)
    carbon_intensity: Literal["average", "marginal"] = "average"
    penalties: PenaltySpec = PenaltySpec()
    network: NetworkSpec = NetworkSpec()
    sites: list[SiteSpec] = []
    demand_points: list[DemandPointSpec] = []

    @model_validator(mode="after")
    def _one_source(self) -> FleetConfig:
        if (self.scenario is None) == (not self.sites):
            raise ValueError(
                "give the sites inline (`sites:`) or a scenario file (`scenario:`), not both"
            )
        return self


class SignalsConfig(_Strict):
    """Where signals come from: ``replay`` plays recorded signals over ``[start, end)`` (the
    period of the fleet's scenario if not given)."""

    provider: Literal["replay"] = "replay"
    start: datetime | None = None
    end: datetime | None = None


class ProviderSettings(_Strict):
    """How to reach one provider: its endpoint (the public one by default), timeout,
    retries, the request budget its plan allows, and the *names* of its credentials
    (environment variables, or keys of ``signals.secrets_file``) — never the values."""

    base_url: str | None = None
    timeout_s: PositiveFloat = 10.0
    attempts: int = Field(default=3, ge=1, le=10)
    requests_per_minute: PositiveInt | None = None
    requests_per_month: PositiveInt | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None


ProviderName = Literal["electricitymaps", "watttime", "entsoe", "gridstatus", "openmeteo"]


class SourceSpec(_Strict):
    """One source of a site's signal, in the order they are tried.

    ``electricitymaps`` needs ``zone`` (``DE``, ``US-CAL-CISO``) and takes ``scope``
    (lifecycle or direct); ``watttime`` needs ``region`` (``CAISO_NORTH``); ``entsoe`` needs
    ``area`` (``DE_LU`` or an EIC code); ``gridstatus`` needs ``iso`` and ``node`` and takes
    ``market``.
    """

    source: Literal["electricitymaps", "watttime", "entsoe", "gridstatus"]
    zone: str | None = None
    region: str | None = None
    area: str | None = None
    iso: Literal["CAISO", "ERCOT", "PJM", "NYISO"] | None = None
    node: str | None = None
    market: Literal["day-ahead", "real-time"] = "day-ahead"
    scope: Literal["lifecycle", "direct"] = "lifecycle"

    @model_validator(mode="after")
    def _place(self) -> SourceSpec:
        need = {
            "electricitymaps": ("zone",),
            "watttime": ("region",),
            "entsoe": ("area",),
            "gridstatus": ("iso", "node"),
        }[self.source]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"source {self.source} needs {' and '.join(missing)}")
        return self


class SiteSignals(_Strict):
    """A site's live sources: ``carbon`` and ``price`` in the order tried; ``weather``
    (``openmeteo``) turns a weather forecast into its solar, wind and PUE."""

    carbon: list[SourceSpec] = []
    price: list[SourceSpec] = []
    weather: Literal["openmeteo"] | None = None


class LiveSignalsConfig(_Strict):
    """Signals from the providers' APIs, on the real clock.

    ``start`` is the service's first day (kept across restarts: steps count from it) and
    ``days`` how long it runs. ``sites`` names each site's sources; ``providers`` how to
    reach each provider. ``required`` lists the signals every grid-connected site must have
    a source for (``wattroute signals check`` fails otherwise). Carbon intensities of
    different kinds (average and marginal, lifecycle and direct) in one objective are refused
    unless ``allow_mixed_kinds``. ``usd_per_eur`` converts ENTSO-E's EUR/MWh.
    """

    provider: Literal["live"]
    start: datetime
    days: int = Field(default=366, ge=1, le=3660)
    refresh_minutes: PositiveFloat = 15.0
    stale_after_hours: PositiveFloat = 3.0
    lookback_days: PositiveFloat = 3.0
    horizon_days: float = Field(default=2.0, gt=0, le=16)
    secrets_file: str | None = None
    usd_per_eur: PositiveFloat | None = None
    allow_mixed_kinds: bool = False
    required: list[Literal["carbon", "price"]] = ["carbon", "price"]
    providers: dict[ProviderName, ProviderSettings] = {}
    sites: dict[str, SiteSignals] = {}

    @model_validator(mode="after")
    def _consistent(self) -> LiveSignalsConfig:
        for name, site in self.sites.items():
            for src in site.carbon:
                if src.source == "gridstatus":
                    raise ValueError(
                        f"sites.{name}.carbon: gridstatus gives prices, not carbon: move it "
                        "under price"
                    )
            for src in site.price:
                if src.source in ("electricitymaps", "watttime"):
                    raise ValueError(
                        f"sites.{name}.price: {src.source} gives carbon, not prices: move it "
                        "under carbon"
                    )
                if src.source == "entsoe" and self.usd_per_eur is None:
                    raise ValueError(
                        "ENTSO-E prices are in EUR: set usd_per_eur (USD per EUR) to convert them"
                    )
        return self


class ClockConfig(_Strict):
    """``replay``: recorded time from the signals' start at ``speedup`` x real time;
    ``real``: wall-clock time (the signals must cover it)."""

    kind: Literal["replay", "real"] = "replay"
    speedup: PositiveFloat = 3600.0


class ApiConfig(_Strict):
    """Where the API listens. ``workers`` > 1 runs that many API processes on the port (the
    controller runs once, in the parent process); each is one Python interpreter, so on a
    machine with spare cores more workers answer more requests."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: PositiveInt = 64 * 1024
    workers: PositiveInt = Field(default=1, le=64)


class AuthConfig(_Strict):
    """``required: false`` opens every route to anyone (for local demos only)."""

    required: bool = True


class RayConfig(_Strict):
    """The Ray cluster that ``executor: ray`` runs work on.

    ``address: local`` starts one on this machine with a node per site (emulated sites, each
    with ``cpus_per_site`` CPUs and ``object_store_mb`` MiB of object store, carrying
    ``site:<name>`` sized to its accelerators) and stops it at exit. Any other address
    (``auto``, ``host:port``, ``ray://host:port``) joins a running cluster whose site nodes
    carry those resources. ``node_ip_address`` is the address the nodes of a local cluster
    are started with, listen on and are reached at (``address: local`` only; the default,
    127.0.0.1, keeps every port they open on loopback; one of this machine's network addresses
    opens them to other hosts). ``checkpoint_dir`` is where jobs checkpoint: a directory every
    node reaches (relative to the config file), or an fsspec URL. ``gateway_margin_ms`` is the
    gateway's own time counted in the planner's SLO test: a site is routed to only if the round
    trip, the service time and this margin fit the SLO.
    """

    address: str = "local"
    checkpoint_dir: str = "checkpoints"
    cpus_per_site: PositiveInt = 1
    object_store_mb: int = Field(default=80, ge=80, le=1_000_000)
    node_ip_address: str = "127.0.0.1"
    stop_timeout_s: PositiveFloat = 30.0
    suspect_s: NonNegativeFloat = 5.0
    gateway_margin_ms: NonNegativeFloat = 10.0


RegisteredName = Annotated[str, Field(pattern=NAME.pattern)]
EntryPoint = Annotated[str, Field(pattern=ENTRY_POINT.pattern)]
TenantName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class CodeEntrySpec(_Strict):
    """A registered piece of code: its entry point, and the tenants that may use it (all if
    not given)."""

    entry: EntryPoint
    tenants: list[TenantName] | None = None


class CodeConfig(_Strict):
    """What tenants may run, by the name they use: ``jobs`` are functions called as
    ``function(ctx, **args)``; ``handlers`` return an inference model. An entry is an entry
    point (``module.path:function``) or ``{entry: ..., tenants: [...]}``. Entry points are
    imported where the work runs, not here. Without a ``code`` section the built-in examples
    are registered (``train-logistic-regression``, ``mlp``); with one, exactly what it lists.
    """

    jobs: dict[RegisteredName, EntryPoint | CodeEntrySpec] = {}
    handlers: dict[RegisteredName, EntryPoint | CodeEntrySpec] = {}

    def registry(self) -> CodeRegistry:
        def entries(section: dict[str, str | CodeEntrySpec]) -> list[CodeEntry]:
            return [
                CodeEntry(name, spec)
                if isinstance(spec, str)
                else CodeEntry(
                    name,
                    spec.entry,
                    None if spec.tenants is None else frozenset(spec.tenants),
                )
                for name, spec in section.items()
            ]

        return CodeRegistry.of(entries(self.jobs), entries(self.handlers))


class ReadinessConfig(_Strict):
    """When ``/readyz`` says ready. The controller must have reported within
    ``heartbeat_timeout_s`` wall seconds and must not trail the clock by more than
    ``max_lag_steps`` steps of fleet time — or, on a fast replay, by more than ``max_lag_s``
    wall seconds' worth of it, whichever is more."""

    max_lag_steps: PositiveFloat = 3.0
    max_lag_s: NonNegativeFloat = 10.0
    heartbeat_timeout_s: PositiveFloat = 30.0


def _signals_provider(value: Any) -> str:
    """Which signals section this is: ``provider`` (``replay`` when not given)."""
    raw = value.get("provider", "replay") if isinstance(value, dict) else value.provider
    return str(raw)


class ServiceConfigSpec(_Strict):
    name: str = "wattroute"
    data_dir: str | None = None
    fleet: FleetConfig
    signals: Annotated[
        Annotated[SignalsConfig, Tag("replay")] | Annotated[LiveSignalsConfig, Tag("live")],
        Discriminator(_signals_provider),
    ] = SignalsConfig()
    policy: str = "mpc"
    executor: Literal["simulated", "ray"] = "simulated"
    ray: RayConfig = RayConfig()
    database: str = "sqlite:///wattroute.db"
    clock: ClockConfig = ClockConfig()
    api: ApiConfig = ApiConfig()
    auth: AuthConfig = AuthConfig()
    code: CodeConfig | None = None
    readiness: ReadinessConfig = ReadinessConfig()
    baseline: bool = True
    """Run the carbon-agnostic baseline beside the fleet (on replayed signals) for the
    dashboard's comparison. It steps a second, agnostic controller every tick, about doubling
    a tick's work: turn it off where ticks must be fast."""

    @model_validator(mode="before")
    @classmethod
    def _live_grid_placeholders(cls, raw: Any) -> Any:
        """With live signals a site's grid names no price or carbon file: its sources are
        under ``signals.sites``. Zero placeholders stand in for the fleet's build."""
        if not isinstance(raw, dict):
            return raw
        signals, fleet = raw.get("signals"), raw.get("fleet")
        if not (isinstance(signals, dict) and signals.get("provider") == "live"):
            return raw
        if not isinstance(fleet, dict) or not isinstance(fleet.get("sites"), list):
            return raw
        sites = []
        for site in fleet["sites"]:
            grid = site.get("grid") if isinstance(site, dict) else None
            if isinstance(grid, dict) and not ({"file", "model", "price", "carbon"} & set(grid)):
                site = {**site, "grid": {**grid, "price": 0.0, "carbon": 0.0}}
            sites.append(site)
        return {**raw, "fleet": {**fleet, "sites": sites}}


@dataclass(frozen=True, eq=False)
class ServiceConfig:
    """A validated configuration, with the fleet built (sites, signals over the period)."""

    spec: ServiceConfigSpec
    scenario: Scenario
    database_url: str
    folder: Path

    @property
    def registry(self) -> CodeRegistry:
        """The code tenants may run: the ``code`` section, or the built-in examples."""
        return CodeRegistry.builtin() if self.spec.code is None else self.spec.code.registry()

    @property
    def checkpoint_root(self) -> str:
        """Where jobs checkpoint: an fsspec URL or an absolute path as given, a relative path
        resolved against the state directory (:func:`state_directory`)."""
        root = self.spec.ray.checkpoint_dir
        if "://" in root or Path(root).is_absolute():
            return root
        return str((state_directory() / root).resolve())


STATE_DIR_ENV = "WATTROUTE_STATE_DIR"
"""The environment variable naming the state directory."""


def state_directory(environ: Mapping[str, str] | None = None) -> Path:
    """The folder the service and the demo write their state to (the SQLite database,
    checkpoints), created on first use (mode 0700): ``$WATTROUTE_STATE_DIR``, else
    ``$XDG_STATE_HOME/wattroute``, else ``~/.local/state/wattroute`` (the XDG base directory
    convention for state that outlives a run but is not a user's document)."""
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        folder = Path(env[STATE_DIR_ENV]).expanduser()
    else:
        base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        folder = Path(base).expanduser() / "wattroute"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            STATE_DIR_ENV,
            f"the state directory {folder} cannot be created ({exc.strerror}).",
            f"set {STATE_DIR_ENV} to a writable folder, or give absolute paths for the "
            "database and ray.checkpoint_dir.",
        ) from None
    return folder.resolve()


def _absolute_sqlite(url: str, folder: Path | None) -> str:
    """A relative ``sqlite:///`` path resolved against the state directory; any other URL as
    given.

    Raises
    ------
    InputError
        If the database is not in the state directory yet but is beside the config file
        (``folder``), where relative databases went before: starting on an empty one there
        would look like lost work (not checked for the built-in demo: ``folder`` None).
    """
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        relative = url[len(prefix) :]
        path = state_directory() / relative
        old = folder / relative if folder is not None else None
        if old is not None and not path.exists() and old.is_file():
            raise InputError(
                "database",
                f"{url} is in the state directory now ({path}), but the database is at {old}, "
                "beside the config, where relative paths used to resolve.",
                f"move it to {path}, or give its absolute path: sqlite:///{old.resolve()}.",
            )
        return prefix + str(path)
    return url


def load_service_config(
    path: str | os.PathLike[str] | None, database: str | None = None
) -> ServiceConfig:
    """Read, validate and build a service configuration (the built-in demo if ``path`` is
    ``None``); ``database`` overrides the file's URL."""
    if path is None:
        from wattroute.scenario import default_scenario_path

        raw: dict[str, Any] = {
            "name": "wattroute-demo",
            "fleet": {"scenario": str(default_scenario_path())},
            "database": "sqlite:///wattroute-demo.db",
            "auth": {"required": False},
        }
        folder = Path.cwd()
        source = "<built-in demo>"
    else:
        source = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileError(source, "config file not found.", "check the path.") from None
        except (OSError, yaml.YAMLError) as exc:
            raise ScenarioError(source, f"cannot be read as YAML ({exc}).") from None
        if not isinstance(raw, dict):
            raise ScenarioError(
                source, "must be a mapping of fields (fleet, signals, policy, ...)."
            )
        folder = Path(path).resolve().parent
    try:
        spec = ServiceConfigSpec.model_validate(raw)
    except ValidationError as exc:
        raise scenario_error(exc, ServiceConfigSpec, source) from None
    data_dir = folder / spec.data_dir if spec.data_dir else folder
    scenario = _fleet_scenario(spec, data_dir, folder)
    from wattroute.policies import get_policy

    get_policy(spec.policy)  # an unknown policy is an error now, not at the first tick
    return ServiceConfig(
        spec,
        scenario,
        _absolute_sqlite(database or spec.database, None if path is None else folder),
        folder,
    )


def _fleet_scenario(spec: ServiceConfigSpec, data_dir: Path, folder: Path) -> Scenario:
    fleet = spec.fleet
    if isinstance(spec.signals, LiveSignalsConfig):
        return _live_scenario(spec, spec.signals, data_dir)
    if fleet.scenario is not None:
        path = Path(fleet.scenario)
        path = path if path.is_absolute() else folder / path
        base = read_scenario_file(path)
        scenario_dir = (
            path.resolve().parent / base.data_dir if base.data_dir else path.resolve().parent
        )
        values = base.model_dump()
        values.update(batch_jobs=[], batch_trace=None, inference_services=[])
        if spec.signals.start is not None:
            values["start"] = spec.signals.start
        if spec.signals.end is not None:
            values["end"] = spec.signals.end
        return build_scenario(ScenarioSpec.model_validate(values), scenario_dir)
    if spec.signals.start is None or spec.signals.end is None:
        raise ScenarioError(
            "signals", "the replayed period is not given.", "set signals.start and signals.end."
        )
    return _inline_scenario(spec, spec.signals.start, spec.signals.end, data_dir)


def _inline_scenario(
    spec: ServiceConfigSpec, start: datetime, end: datetime, data_dir: Path, live: bool = False
) -> Scenario:
    """The scenario of the fleet given inline, over ``[start, end)``."""
    fleet = spec.fleet
    scenario_spec = ScenarioSpec(
        name=spec.name,
        start=start,
        end=end,
        step=fleet.step,
        carbon_price_usd_per_tonne=fleet.carbon_price_usd_per_tonne,
        carbon_intensity=fleet.carbon_intensity,
        penalties=fleet.penalties,
        network=fleet.network,
        sites=fleet.sites,
        demand_points=fleet.demand_points,
    )
    return build_scenario(scenario_spec, data_dir, live)


def _live_scenario(spec: ServiceConfigSpec, live: LiveSignalsConfig, data_dir: Path) -> Scenario:
    """The fleet of a live service: its sites as given inline, over ``days`` from ``start``,
    with placeholder signals (the providers' values replace them)."""
    fleet = spec.fleet
    if fleet.scenario is not None:
        raise ScenarioError(
            "fleet.scenario",
            "a live service takes its sites inline, not from a scenario file.",
            "list the sites under fleet.sites.",
        )
    names = {site.name for site in fleet.sites}
    unknown = sorted(set(live.sites) - names)
    if unknown:
        raise ScenarioError(
            "signals.sites",
            f"names sites the fleet does not have: {', '.join(unknown)}.",
            f"use the fleet's site names: {', '.join(sorted(names))}.",
        )
    start = as_utc(pd.Timestamp(live.start))
    end = start + pd.Timedelta(days=live.days)
    return _inline_scenario(spec, start.to_pydatetime(), end.to_pydatetime(), data_dir, True)
