"""Read a scenario file and build the core :class:`~wattroute.model.Scenario` from it.

Every signal is put on the step grid here: prices and carbon intensity are *held* (a market
price applies for its whole interval), weather is *interpolated* linearly and evaluated at the
middle of each step, solar output comes from the weather through pvlib
(:mod:`wattroute.signals.solar`) and wind output through windpowerlib
(:mod:`wattroute.signals.wind`). Gaps up to ``signals.max_gap`` are filled and listed in the
scenario's notes; anything else wrong is an :class:`~wattroute.errors.InputError` naming the
field and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from wattroute.errors import DataFileError, InputError, ScenarioError
from wattroute.iotools import (
    read_grid,
    read_job_trace,
    read_latency_matrix,
    read_request_log,
    read_solcast,
    read_timeseries,
    read_weather,
)
from wattroute.iotools.tmy import read_pvlib_tmy
from wattroute.model import (
    AcceleratorPool,
    BatchJob,
    Battery,
    Demand,
    DemandPoint,
    FibreModel,
    Genset,
    GridConnection,
    InferenceService,
    Network,
    Penalties,
    Pue,
    Renewable,
    Scenario,
    Site,
)
from wattroute.scenario.errors import scenario_error
from wattroute.scenario.schema import (
    DemandSpec,
    FileSignal,
    GridSpec,
    JobSpec,
    JobTraceSpec,
    RateSpec,
    ScenarioSpec,
    SiteSpec,
    TraceSpec,
)
from wattroute.signals.publication import DayAhead
from wattroute.signals.resample import to_grid
from wattroute.signals.signal import Signal
from wattroute.signals.solar import (
    PvSystem,
    solar_profile_from_cloud_cover,
    solar_profile_from_irradiance,
)
from wattroute.signals.synthetic import DiurnalGridModel
from wattroute.signals.wind import wind_profile

T = TypeVar("T")
P = ParamSpec("P")

GRID_PRICE_COLUMN = "price_usd_per_mwh"
GRID_CARBON_COLUMN = "carbon_intensity_g_per_kwh"
CLEAR_SKY_TEMPERATURE_C = 25.0
CLEAR_SKY_WIND_M_PER_S = 1.0


def read_scenario_file(path: str | os.PathLike[str]) -> ScenarioSpec:
    """Parse and validate a scenario YAML file (no data files are read)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(source, "scenario file not found.", "check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(source, f"cannot read the scenario file ({exc}).") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(
            source,
            f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}.",
            "fix the YAML syntax (indentation, colons, quotes).",
        ) from None
    return parse_scenario(raw, source)


def parse_scenario(raw: Any, source: str = "<scenario>") -> ScenarioSpec:
    """Validate an already parsed scenario (a dict)."""
    if not isinstance(raw, dict):
        raise ScenarioError(source, "must be a mapping of fields (name, start, end, sites, ...).")
    try:
        return ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        raise scenario_error(exc, ScenarioSpec, source) from None


def load_scenario(
    path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None
) -> Scenario:
    """Read, validate and build a scenario.

    Parameters
    ----------
    path
        The scenario YAML file.
    data_dir
        Folder that relative data paths resolve against; overrides the file's ``data_dir``.
    """
    spec = read_scenario_file(path)
    folder = Path(path).resolve().parent
    if data_dir is not None:
        base = Path(data_dir)
    elif spec.data_dir is not None:
        base = folder / spec.data_dir
    else:
        base = folder
    return build_scenario(spec, base)


def build_scenario(spec: ScenarioSpec, data_dir: Path, live: bool = False) -> Scenario:
    """Build the core scenario from a validated spec, reading data relative to ``data_dir``.

    ``live``: the fleet of a live service, whose signals come from providers at run time. A
    site's solar or wind without weather or a trace then gets a zero profile, and a PUE that
    follows temperature its base value, as placeholders the providers' values replace."""
    return _Builder(spec, data_dir, live).build()


def pv_system(spec: SiteSpec) -> PvSystem:
    """The PV system a site's solar describes: its tilt and azimuth in degrees (the model's
    equator-facing defaults where not given) and DC/AC ratio, the model's defaults otherwise."""
    assert spec.solar is not None
    return PvSystem(
        tilt_deg=spec.solar.tilt_deg,
        azimuth_deg=spec.solar.azimuth_deg,
        dc_ac_ratio=spec.solar.dc_ac_ratio,
    )


def site_pue(spec: SiteSpec) -> Pue:
    """A site's PUE model: a constant, or one that follows the temperature."""
    if isinstance(spec.pue, float | int):
        # Constant: the maximum, which caps a PUE that rises with temperature, is not used.
        return Pue(base=float(spec.pue), maximum=max(float(spec.pue), Pue.maximum))
    return Pue(**spec.pue.model_dump())


def _ts(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value).tz_convert("UTC")


class _Builder:
    def __init__(self, spec: ScenarioSpec, data_dir: Path, live: bool = False) -> None:
        self.spec = spec
        self.data_dir = data_dir
        self.live = live
        self.start = _ts(spec.start)
        self.end = _ts(spec.end)
        self.step = pd.Timedelta(spec.step)
        self.max_gap = pd.Timedelta(spec.signals.max_gap)
        span = self.end - self.start
        if span % self.step != pd.Timedelta(0):
            raise ScenarioError(
                "end",
                f"the period {self.start} .. {self.end} is not a whole number of "
                f"{spec.step} steps.",
                "move `end` so that end - start is a multiple of `step`.",
            )
        self.n = int(span / self.step)
        self.mid = pd.date_range(self.start + self.step / 2, periods=self.n, freq=self.step)
        self.notes: list[str] = []
        self._cache: dict[tuple[str, str], Any] = {}

    # -- files -------------------------------------------------------------------------------

    def path(self, field: str, name: str) -> Path:
        path = Path(name)
        if not path.is_absolute():
            path = self.data_dir / path
        if not path.is_file():
            raise DataFileError(
                field,
                f"file not found: {path}.",
                f"check the name; relative paths resolve against data_dir = {self.data_dir} "
                "(set `data_dir` in the scenario, or pass --data-dir).",
            )
        return path

    def cached(self, kind: str, path: Path, reader: Callable[[], T]) -> T:
        key = (kind, str(path))
        if key not in self._cache:
            self._cache[key] = reader()
        return self._cache[key]  # type: ignore[no-any-return,unused-ignore]

    def on_grid(
        self, series: pd.Series, how: str, source: str, field: str, midpoints: bool = False
    ) -> np.ndarray:
        try:
            values, gaps = to_grid(
                series,
                self.start,
                self.step,
                self.n,
                how=how,  # type: ignore[arg-type]
                max_gap=self.max_gap,
                source=source,
            )
        except InputError as exc:
            raise type(exc)(f"{field} ({exc.field})", exc.problem, exc.fix) from None
        self.notes.extend(g.describe() for g in gaps)
        if midpoints and self.n > 1:
            # Linear interpolation at the middle of each step, holding over the last one, so
            # that data ending where the period ends still covers it.
            values = np.concatenate([(values[:-1] + values[1:]) / 2.0, values[-1:]])
        return values

    def signal(self, values: np.ndarray, name: str, unit: str) -> Signal:
        return Signal(values, self.start, self.step, name, unit)

    # -- signals -----------------------------------------------------------------------------

    def file_signal(
        self, spec: FileSignal, field: str, default_column: str | None, how: str
    ) -> np.ndarray:
        path = self.path(f"{field}.file", spec.file)
        column = spec.column or default_column
        if spec.format == "grid":
            frame = self.cached("grid", path, lambda: read_grid(path))
        else:
            frame = self.cached(
                f"csv:{spec.time_column}:{spec.time_unit}:{spec.origin}",
                path,
                lambda: read_timeseries(
                    path,
                    time_column=spec.time_column,
                    time_unit=spec.time_unit,
                    origin=_ts(spec.origin) if spec.origin is not None else None,
                ),
            )
        if column is None:
            raise ScenarioError(
                f"{field}.column", "no column given.", f"name one of: {', '.join(frame.columns)}."
            )
        if column not in frame.columns:
            raise ScenarioError(
                f"{field}.column",
                f"{spec.file} has no column {column!r}.",
                f"use one of: {', '.join(map(str, frame.columns))}.",
            )
        series = frame[column]
        if series.isna().all():
            raise ScenarioError(
                field,
                f"{spec.file} has no values in column {column!r}.",
                "give a constant (a number) or another file for this signal.",
            )
        return self.on_grid(series, how, f"{spec.file}:{column}", field) * spec.scale

    def value_signal(
        self, spec: float | FileSignal, field: str, default_column: str | None, name: str, unit: str
    ) -> Signal:
        if isinstance(spec, FileSignal):
            values = self.file_signal(spec, field, default_column, "hold")
        else:
            values = np.full(self.n, float(spec))
        return self.signal(values, name, unit)

    def grid_connection(self, site: SiteSpec, grid: GridSpec, field: str) -> GridConnection:
        price: Signal | None = None
        carbon: Signal | None = None
        if grid.model is not None:
            model = DiurnalGridModel(**grid.model.model_dump())
            p, c = model.price_and_carbon(self.mid, site.latitude, site.longitude)
            price = self.signal(p, "price", "USD/MWh")
            carbon = self.signal(c, "carbon", "g/kWh")
        if grid.file is not None:
            source = FileSignal(file=grid.file, format="grid")
            if grid.price is None:
                price = self.value_signal(
                    source,
                    f"{field}.price (from {field}.file)",
                    GRID_PRICE_COLUMN,
                    "price",
                    "USD/MWh",
                )
            if grid.carbon is None:
                carbon = self.value_signal(
                    source, f"{field}.carbon", GRID_CARBON_COLUMN, "carbon", "g/kWh"
                )
        if grid.price is not None:
            price = self.value_signal(
                grid.price, f"{field}.price", GRID_PRICE_COLUMN, "price", "USD/MWh"
            )
        if grid.carbon is not None:
            carbon = self.value_signal(
                grid.carbon, f"{field}.carbon", GRID_CARBON_COLUMN, "carbon", "g/kWh"
            )
        assert price is not None
        assert carbon is not None
        export_price = (
            self.value_signal(
                grid.export_price,
                f"{field}.export_price",
                GRID_PRICE_COLUMN,
                "export price",
                "USD/MWh",
            )
            if grid.export_price is not None
            else None
        )
        limit = math.inf if grid.import_limit_kw == "unlimited" else float(grid.import_limit_kw)
        day_ahead = (
            DayAhead(grid.day_ahead.timezone, grid.day_ahead.published)
            if grid.day_ahead is not None
            else None
        )
        return _built(
            field,
            GridConnection,
            limit,
            grid.export_limit_kw,
            price,
            carbon,
            export_price,
            day_ahead,
        )

    def weather(
        self, site: SiteSpec, field: str
    ) -> tuple[pd.DataFrame, dict[str, float], str] | None:
        if site.weather is None:
            return None
        if site.weather.pvlib_tmy is not None:
            name = site.weather.pvlib_tmy
            try:
                frame, meta = read_pvlib_tmy(
                    name, self.start - pd.Timedelta(days=2), self.end + pd.Timedelta(days=2)
                )
            except InputError as exc:
                raise ScenarioError(f"{field}.weather.pvlib_tmy", exc.problem, exc.fix) from None
            return frame, meta, f"pvlib TMY {name}"
        assert site.weather.file is not None
        path = self.path(f"{field}.weather.file", site.weather.file)
        frame, meta = self.cached("weather", path, lambda: read_weather(path))
        return frame, meta, site.weather.file

    def weather_column(
        self, weather: tuple[pd.DataFrame, dict[str, float], str], column: str, field: str
    ) -> np.ndarray:
        frame, _, source = weather
        if column not in frame.columns:
            raise ScenarioError(field, f"the weather ({source}) has no column {column!r}.")
        return self.on_grid(
            frame[column], "interpolate", f"{source}:{column}", field, midpoints=True
        )

    def trace_profile(self, trace: TraceSpec, field: str) -> np.ndarray:
        path = self.path(f"{field}.trace.file", trace.file)
        if trace.format == "solcast":
            frame = self.cached("solcast", path, lambda: read_solcast(path))
        else:
            frame = self.cached(
                f"csv:{trace.time_column}",
                path,
                lambda: read_timeseries(path, time_column=trace.time_column),
            )
        if trace.column not in frame.columns:
            raise ScenarioError(
                f"{field}.trace.column",
                f"{trace.file} has no column {trace.column!r}.",
                f"use one of: {', '.join(map(str, frame.columns))}.",
            )
        values = self.on_grid(
            frame[trace.column],
            "interpolate",
            f"{trace.file}:{trace.column}",
            f"{field}.trace",
            midpoints=True,
        )
        if (values < -1e-9).any() or (values > 1 + 1e-9).any():
            raise ScenarioError(
                f"{field}.trace",
                f"{trace.file}:{trace.column} is not normalised to 0..1.",
                "give a trace as a fraction of nameplate output.",
            )
        return np.clip(values, 0.0, 1.0)

    def site(self, i: int, spec: SiteSpec) -> Site:
        field = f"sites[{i}]"
        weather = self.weather(spec, field)
        elevation = weather[1].get("elevation_m", 0.0) if weather else 0.0
        temperature = None
        if weather is not None:
            temperature = self.signal(
                self.weather_column(weather, "temperature_c", f"{field}.weather"),
                "temperature",
                "degC",
            )
        pue = site_pue(spec)
        if pue.depends_on_temperature and temperature is None and not self.live:
            raise ScenarioError(
                f"{field}.pue.per_degree_c",
                "a temperature-dependent PUE needs the site's weather.",
                "add `weather:` to the site, or set per_degree_c to 0.",
            )
        solar = None
        if spec.solar is not None:
            if spec.solar.trace is not None:
                profile = self.trace_profile(spec.solar.trace, f"{field}.solar")
                how = f"trace {spec.solar.trace.file}:{spec.solar.trace.column}"
            elif weather is not None:
                profile, how = self.solar_from_weather(spec, weather, elevation, f"{field}.solar")
            elif self.live:
                profile, how = np.zeros(self.n), "live: weather forecast"
            else:
                raise ScenarioError(
                    f"{field}.solar",
                    "solar needs the site's weather or a trace.",
                    "add `weather:` to the site, or `trace:` to its solar.",
                )
            solar = Renewable(
                spec.solar.capacity_kw,
                self.signal(profile, "solar", "fraction"),
                how,
                clear_sky=self.clear_sky(spec, elevation),
            )
        wind = None
        if spec.wind is not None:
            if spec.wind.trace is not None:
                profile = self.trace_profile(spec.wind.trace, f"{field}.wind")
                how = f"trace {spec.wind.trace.file}:{spec.wind.trace.column}"
            elif weather is not None:
                speed = self.weather_column(weather, "wind_speed_10m_m_per_s", f"{field}.weather")
                temp = (
                    np.asarray(temperature.values)
                    if temperature is not None
                    else np.full(self.n, 15.0)
                )
                try:
                    profile = wind_profile(
                        speed,
                        temp,
                        turbine_type=spec.wind.turbine,
                        hub_height_m=spec.wind.hub_height_m,
                        elevation_m=elevation,
                    )
                except ScenarioError as exc:
                    raise ScenarioError(f"{field}.wind.turbine", exc.problem, exc.fix) from None
                how = f"windpowerlib {spec.wind.turbine} from {weather[2]}"
            elif self.live:
                profile, how = np.zeros(self.n), "live: weather forecast"
            else:
                raise ScenarioError(
                    f"{field}.wind",
                    "wind needs the site's weather or a trace.",
                    "add `weather:` to the site, or `trace:` to its wind.",
                )
            wind = Renewable(spec.wind.capacity_kw, self.signal(profile, "wind", "fraction"), how)
        return Site(
            name=spec.name,
            latitude=spec.latitude,
            longitude=spec.longitude,
            zone=spec.zone,
            accelerators=AcceleratorPool(
                spec.accelerators.count, spec.accelerators.busy_kw, spec.accelerators.idle_kw
            ),
            pue=pue,
            grid=self.grid_connection(spec, spec.grid, f"{field}.grid") if spec.grid else None,
            solar=solar,
            wind=wind,
            battery=Battery(**spec.battery.model_dump()) if spec.battery else None,
            genset=Genset(**spec.genset.model_dump()) if spec.genset else None,
            temperature_c=temperature,
            base_it_kw=spec.base_it_kw,
            power_cap_kw=spec.power_cap_kw if spec.power_cap_kw is not None else math.inf,
        )

    def clear_sky(self, spec: SiteSpec, elevation: float) -> np.ndarray:
        """A site's solar output under a cloudless sky, fraction of nameplate per step: the
        same PV model with no cloud, at a fixed 25 °C and 1 m/s (the weather to come is not
        known), so that it is computable ahead."""
        return solar_profile_from_cloud_cover(
            self.mid,
            spec.latitude,
            spec.longitude,
            elevation,
            np.zeros(self.n),
            np.full(self.n, CLEAR_SKY_TEMPERATURE_C),
            np.full(self.n, CLEAR_SKY_WIND_M_PER_S),
            pv=pv_system(spec),
        )

    def solar_from_weather(
        self,
        spec: SiteSpec,
        weather: tuple[pd.DataFrame, dict[str, float], str],
        elevation: float,
        field: str,
    ) -> tuple[np.ndarray, str]:
        frame, _, source = weather
        pv = pv_system(spec)
        temp = self.weather_column(weather, "temperature_c", f"{field}")
        wind = self.weather_column(weather, "wind_speed_10m_m_per_s", f"{field}")
        if {"ghi", "dni", "dhi"} <= set(frame.columns):
            ghi, dni, dhi = (self.weather_column(weather, c, field) for c in ("ghi", "dni", "dhi"))
            profile = solar_profile_from_irradiance(
                self.mid,
                spec.latitude,
                spec.longitude,
                elevation,
                ghi,
                dni,
                dhi,
                temp,
                wind,
                pv=pv,
            )
            return profile, f"pvlib from measured irradiance ({source})"
        cloud = self.weather_column(weather, "cloud_cover_pct", field)
        profile = solar_profile_from_cloud_cover(
            self.mid,
            spec.latitude,
            spec.longitude,
            elevation,
            cloud,
            temp,
            wind,
            pv=pv,
        )
        return profile, f"pvlib from cloud cover ({source})"

    # -- workloads ---------------------------------------------------------------------------

    def rate(self, spec: DemandSpec, field: str) -> Signal:
        rate = spec.rate_rps
        if not isinstance(rate, RateSpec):
            return self.signal(np.full(self.n, float(rate)), "rate", "rps")
        if rate.file is not None:
            values = self.file_signal(rate.file, f"{field}.rate_rps.file", None, "hold")
            return self.signal(values, "rate", "rps")
        assert rate.mean_rps is not None
        times = pd.date_range(self.start, periods=self.n, freq=self.step)
        h = np.asarray(times.hour) + np.asarray(times.minute) / 60.0
        shape = 1.0 + rate.diurnal_amplitude * np.cos(2 * np.pi * (h - rate.peak_hour_utc) / 24.0)
        if rate.request_log is not None:
            shape = shape * self.request_log_shape(rate, f"{field}.rate_rps.request_log")
        mean = float(shape.mean())
        values = rate.mean_rps * shape / mean if mean > 0 else np.zeros(self.n)
        return self.signal(values, "rate", "rps")

    def request_log_shape(self, rate: RateSpec, field: str) -> np.ndarray:
        assert rate.request_log is not None
        path = self.path(f"{field}.file", rate.request_log.file)
        times = self.cached(
            f"log:{rate.request_log.timestamp_column}",
            path,
            lambda: read_request_log(path, timestamp_column=rate.request_log.timestamp_column),  # type: ignore[union-attr]
        )
        offsets = (times - times[0]) / self.step
        full = int(np.floor((times[-1] - times[0]) / self.step))
        if full < 1:
            raise ScenarioError(
                field,
                f"the log spans {times[-1] - times[0]}, less than one {self.spec.step} step.",
                "use a shorter step or a longer request log.",
            )
        counts = np.bincount(
            np.floor(np.asarray(offsets, dtype=np.float64)).astype(int), minlength=full
        )[:full]
        profile = counts / counts.mean()
        self.notes.append(
            f"{field}: request rates shaped by {rate.request_log.file} ({len(times)} requests, "
            f"{full} steps of {self.spec.step}, tiled over the period)"
        )
        return np.resize(profile, self.n)

    def job(self, i: int, spec: JobSpec, site_counts: dict[str, int]) -> BatchJob:
        field = f"batch_jobs[{i}]"
        arrival = (
            _ts(spec.arrival)
            if spec.arrival is not None
            else self.start + pd.Timedelta(hours=spec.arrival_h or 0.0)
        )
        duration = pd.Timedelta(hours=spec.work_accelerator_hours / spec.max_accelerators)
        deadline = (
            _ts(spec.deadline)
            if spec.deadline is not None
            else arrival + duration + pd.Timedelta(hours=spec.slack_h or 0.0)
        )
        if not self.start <= arrival < self.end:
            raise ScenarioError(
                f"{field}.arrival",
                f"{arrival} is outside the period {self.start} .. {self.end}.",
                "move the arrival into the period.",
            )
        self.check_sites(
            f"{field}.allowed_sites", spec.allowed_sites, spec.min_accelerators, site_counts
        )
        first_run = self.start + math.ceil(round((arrival - self.start) / self.step, 9)) * self.step
        if deadline > self.end:
            raise ScenarioError(
                f"{field}.deadline",
                f"{deadline} is after the scenario end {self.end}; its work could be "
                "deferred beyond what is measured.",
                "move the deadline into the period, or the end past it.",
            )
        if first_run + duration > deadline + pd.Timedelta(seconds=1):
            need = math.ceil(
                spec.work_accelerator_hours
                / max((deadline - first_run) / pd.Timedelta(hours=1), 1e-9)
            )
            raise ScenarioError(
                f"{field}.max_accelerators",
                f"job {spec.name!r} needs {duration / pd.Timedelta(hours=1):.2f} h at "
                f"{spec.max_accelerators} accelerators but only "
                f"{(deadline - first_run) / pd.Timedelta(hours=1):.2f} h remain between its "
                "first step and its deadline.",
                f"raise max_accelerators to at least {need}, or move the deadline later.",
            )
        return BatchJob(
            name=spec.name,
            arrival=arrival,
            work_accelerator_hours=spec.work_accelerator_hours,
            min_accelerators=spec.min_accelerators,
            max_accelerators=spec.max_accelerators,
            deadline=deadline,
            checkpoint_overhead_h=spec.checkpoint_overhead_h,
            migration_overhead_h=spec.migration_overhead_h,
            allowed_sites=tuple(spec.allowed_sites) if spec.allowed_sites is not None else None,
        )

    def check_sites(
        self, field: str, allowed: list[str] | None, min_acc: int, site_counts: dict[str, int]
    ) -> None:
        names = allowed if allowed is not None else list(site_counts)
        unknown = [n for n in names if n not in site_counts]
        if unknown:
            raise ScenarioError(
                field,
                f"unknown site(s) {', '.join(unknown)}.",
                f"use site names: {', '.join(site_counts)}.",
            )
        if not names:
            raise ScenarioError(field, "no site allowed.", "list at least one site.")
        biggest = max(site_counts[n] for n in names)
        if min_acc > biggest:
            raise ScenarioError(
                field.replace("allowed_sites", "min_accelerators"),
                f"needs {min_acc} accelerators but the largest allowed site has {biggest}.",
                f"lower min_accelerators to at most {biggest}.",
            )

    def trace_jobs(self, spec: JobTraceSpec, site_counts: dict[str, int]) -> list[BatchJob]:
        field = "batch_trace"
        path = self.path(f"{field}.file", spec.file)
        frame = read_job_trace(
            path,
            arrival_column=spec.columns.arrival,
            duration_column=spec.columns.duration,
            accelerators_column=spec.columns.accelerators,
            time_unit=spec.time_unit,
        )
        self.check_sites(
            f"{field}.allowed_sites", spec.allowed_sites, spec.min_accelerators, site_counts
        )
        names = spec.allowed_sites if spec.allowed_sites is not None else list(site_counts)
        biggest = max(site_counts[n] for n in names)
        cap = min(spec.max_accelerators_cap or biggest, biggest)
        frame = frame.iloc[:: spec.every]
        arrival_h = frame["arrival_h"].to_numpy() + spec.arrival_offset_h
        period_h = (self.end - self.start) / pd.Timedelta(hours=1)
        inside = (arrival_h >= 0) & (arrival_h < period_h)
        frame, arrival_h = frame[inside], arrival_h[inside]
        if spec.limit is not None:
            frame, arrival_h = frame.iloc[: spec.limit], arrival_h[: spec.limit]
        jobs: list[BatchJob] = []
        late = capped = 0
        for row, (arr_h, duration_h, acc) in enumerate(
            zip(
                arrival_h,
                frame["duration_h"].to_numpy(),
                frame["accelerators"].to_numpy(),
                strict=True,
            )
        ):
            work = float(duration_h * acc)
            max_acc = int(max(spec.min_accelerators, min(round(acc), cap)))
            capped += int(round(acc) > cap)
            arrival = self.start + pd.Timedelta(hours=float(arr_h))
            first_run = (
                self.start + math.ceil(round((arrival - self.start) / self.step, 9)) * self.step
            )
            slack_h = _trace_slack_h(spec.slack_h, int(frame.index[row]))
            deadline = first_run + pd.Timedelta(hours=work / max_acc + slack_h)
            if deadline > self.end:
                late += 1
                continue
            jobs.append(
                BatchJob(
                    name=f"{spec.name_prefix}-{int(frame.index[row])}",
                    arrival=arrival,
                    work_accelerator_hours=work,
                    min_accelerators=min(spec.min_accelerators, max_acc),
                    max_accelerators=max_acc,
                    deadline=deadline,
                    checkpoint_overhead_h=spec.checkpoint_overhead_h,
                    migration_overhead_h=spec.migration_overhead_h,
                    allowed_sites=tuple(spec.allowed_sites)
                    if spec.allowed_sites is not None
                    else None,
                )
            )
        self.notes.append(f"batch_trace: {len(jobs)} jobs from {spec.file}")
        if late:
            self.notes.append(
                f"batch_trace: {late} jobs left out because their deadline falls after the end"
            )
        if capped:
            self.notes.append(
                f"batch_trace: {capped} jobs' parallelism capped at {cap} accelerators"
            )
        return jobs

    # -- the whole scenario ------------------------------------------------------------------

    def note_unmeasured(
        self, network: Network, sites: tuple[Site, ...], points: tuple[DemandPoint, ...]
    ) -> None:
        """Note every site and demand point whose latencies the matrix does not measure (no
        zone, or a zone it does not cover): the distance model estimates them."""
        places = [("site", s.name, s.zone) for s in sites]
        places += [("demand point", p.name, p.zone) for p in points]
        for kind, name, zone in places:
            if network.knows(zone):
                continue
            why = "has no zone" if zone is None else f"is in zone {zone}, which it does not cover"
            self.notes.append(
                f"network.latency_matrix: {kind} {name!r} {why}; its latencies are estimated "
                f"from great-circle distance over fibre (give a zone the matrix has, or add "
                f"the zone to the matrix, to use measured ones)"
            )

    def build(self) -> Scenario:
        spec = self.spec
        _unique("sites", [s.name for s in spec.sites])
        _unique("demand_points", [p.name for p in spec.demand_points])
        _unique("inference_services", [s.name for s in spec.inference_services])
        sites = tuple(self.site(i, s) for i, s in enumerate(spec.sites))
        site_counts = {s.name: s.accelerators.count for s in sites}
        points = tuple(
            DemandPoint(p.name, p.latitude, p.longitude, p.zone) for p in spec.demand_points
        )
        point_names = {p.name for p in points}
        services = []
        for i, svc in enumerate(spec.inference_services):
            demand = []
            for j, d in enumerate(svc.demand):
                field = f"inference_services[{i}].demand[{j}]"
                if d.point not in point_names:
                    raise ScenarioError(
                        f"{field}.point",
                        f"unknown demand point {d.point!r}.",
                        "use one of: "
                        + (", ".join(sorted(point_names)) or "(none defined: add demand_points)")
                        + ".",
                    )
                demand.append(_built(field, Demand, d.point, self.rate(d, field)))
            services.append(
                _built(
                    f"inference_services[{i}]",
                    InferenceService,
                    svc.name,
                    svc.latency_slo_ms,
                    svc.service_time_ms,
                    svc.replica_throughput_rps,
                    svc.accelerators_per_replica,
                    tuple(demand),
                )
            )
        jobs = [self.job(i, j, site_counts) for i, j in enumerate(spec.batch_jobs)]
        if spec.batch_trace is not None:
            jobs.extend(self.trace_jobs(spec.batch_trace, site_counts))
        _unique("batch_jobs", [j.name for j in jobs])
        network = Network(
            fibre=FibreModel(
                spec.network.fibre_km_per_ms, spec.network.route_factor, spec.network.base_ms
            )
        )
        if spec.network.latency_matrix is not None:
            path = self.path("network.latency_matrix", spec.network.latency_matrix)
            network = Network(read_latency_matrix(path), network.fibre)
            self.note_unmeasured(network, sites, points)
        return Scenario(
            name=spec.name,
            description=spec.description.strip(),
            start=self.start,
            end=self.end,
            step=self.step,
            sites=sites,
            demand_points=points,
            services=tuple(services),
            jobs=tuple(sorted(jobs, key=lambda j: j.arrival)),
            network=network,
            carbon_price_usd_per_tonne=spec.carbon_price_usd_per_tonne,
            carbon_intensity_kind=spec.carbon_intensity,
            penalties=Penalties(**spec.penalties.model_dump()),
            notes=tuple(self.notes),
        )


GOLDEN_FRACTION = (math.sqrt(5.0) - 1.0) / 2.0


def _trace_slack_h(slack_h: float | tuple[float, float], row: int) -> float:
    """A trace job's slack, hours: the given value, or for a ``(low, high)`` range the point
    of row ``row`` in a golden-ratio sequence over it (evenly spread, the same for a row
    whatever else is taken)."""
    if not isinstance(slack_h, tuple):
        return slack_h
    low, high = slack_h
    return low + (high - low) * ((row * GOLDEN_FRACTION) % 1.0)


def _built(field: str, make: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``make(*args, **kwargs)``, a model object. Its own checks name a field from the object
    (``grid.carbon``, ``services[v].service_time_ms``); an error here names it from ``field``,
    where the object stands in the file (``sites[0].grid.carbon``)."""
    try:
        return make(*args, **kwargs)
    except ScenarioError as exc:
        raise ScenarioError(field + _below_head(exc.field), exc.problem, exc.fix) from None


def _below_head(path: str) -> str:
    """``"services[a.b].demand[p].rate_rps"`` -> ``".demand[p].rate_rps"``: the path without
    its first part (a name and its key)."""
    depth = 0
    for i, char in enumerate(path):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "." and depth == 0:
            return path[i:]
    return ""


def _unique(field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ScenarioError(
                f"{field}[{i}].name", f"{name!r} is used twice.", "give every entry its own name."
            )
        seen.add(name)
