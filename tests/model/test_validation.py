"""The model classes check their own values: a bad one is refused naming the field and the fix."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.builders import SHARED_DATA, job, scenario, service, site, small_fleet
from wattroute.errors import ScenarioError
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
from wattroute.scenario import load_scenario
from wattroute.service.config import load_service_config
from wattroute.signals.signal import Signal

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = pd.Timestamp("2023-06-01T00:00Z")
STEP = pd.Timedelta("1h")
N = 24
NAN = math.nan
INF = math.inf


def sig(value: float | list[float], n: int = N) -> Signal:
    values = np.full(n, value) if isinstance(value, float | int) else np.asarray(value, float)
    return Signal(values, START, STEP)


def as_any(value: object) -> Any:
    """A value of another type than the field's, passed on purpose."""
    return value


def hours(h: float) -> pd.Timestamp:
    return START + pd.Timedelta(hours=h)


POOL = AcceleratorPool(8, 1.0, 0.1)
PUE = Pue(1.2, 0.01, 20.0, 1.6)
GRID = GridConnection(100.0, 10.0, sig(50.0), sig(300.0), sig(40.0))
SOLAR = Renewable(10.0, sig(0.5), clear_sky=np.full(N, 0.8))
BATTERY = Battery(20.0, 5.0, 5.0, 0.9, 0.1, 0.9, 0.5)
GENSET = Genset(10.0, 0.3, 700.0)
SITE = Site(
    "a",
    40.0,
    -100.0,
    POOL,
    PUE,
    GRID,
    solar=SOLAR,
    battery=BATTERY,
    genset=GENSET,
    temperature_c=sig(20.0),
)
POINT = DemandPoint("p", 40.0, -100.0)
DEMAND = Demand("p", sig(5.0))
SERVICE = InferenceService("v", 30.0, 5.0, 10.0, 1, (DEMAND,))
JOB = BatchJob("j", hours(1), 4.0, 1, 4, hours(10))
FIBRE = FibreModel()
NETWORK = Network({("DE", "GB"): 14.0})
PENALTIES = Penalties()
SCENARIO = Scenario(
    "t", START, START + N * STEP, STEP, (SITE,), (POINT,), (SERVICE,), (JOB,), NETWORK
)


def scene(**change: Any) -> Scenario:
    return replace(SCENARIO, **change)


CASES = [
    # accelerators
    (lambda: replace(POOL, count=-4), "accelerators.count", "whole number >= 0, got -4"),
    (lambda: replace(POOL, count=as_any(4.0)), "accelerators.count", "whole number >= 0, got 4.0"),
    (lambda: replace(POOL, busy_kw=-1.0), "accelerators.busy_kw", ">= 0"),
    (lambda: replace(POOL, busy_kw=NAN), "accelerators.busy_kw", "got nan"),
    (lambda: replace(POOL, busy_kw=INF, idle_kw=0.0), "accelerators.busy_kw", "finite"),
    (lambda: replace(POOL, idle_kw=2.0), "accelerators.idle_kw", "must not exceed busy_kw"),
    (lambda: replace(POOL, idle_kw=-0.1), "accelerators.idle_kw", ">= 0"),
    # PUE
    (lambda: replace(PUE, base=0.9), "pue.base", ">= 1"),
    (lambda: replace(PUE, base=NAN), "pue.base", "got nan"),
    (lambda: replace(PUE, per_degree_c=-0.01), "pue.per_degree_c", ">= 0"),
    (lambda: replace(PUE, reference_c=NAN), "pue.reference_c", "finite"),
    (lambda: replace(PUE, maximum=1.1), "pue.maximum", ">= 1.2, got 1.1"),
    (lambda: replace(PUE, maximum=INF), "pue.maximum", "finite"),
    (lambda: Pue(2.5), "pue.maximum", ">= 2.5, got 2.0"),
    # grid
    (lambda: replace(GRID, import_limit_kw=-5.0), "grid.import_limit_kw", ">= 0"),
    (lambda: replace(GRID, import_limit_kw=NAN), "grid.import_limit_kw", "got nan"),
    (lambda: replace(GRID, export_limit_kw=-1.0), "grid.export_limit_kw", ">= 0"),
    (lambda: replace(GRID, price=sig([NAN] + [50.0] * 23)), "grid.price", "nan at step 0"),
    (lambda: replace(GRID, price=as_any(np.full(N, 50.0))), "grid.price", "must be a Signal"),
    (lambda: replace(GRID, carbon=sig(-1.0)), "grid.carbon", ">= 0 at every step"),
    (lambda: replace(GRID, export_price=sig(INF)), "grid.export_price", "inf at step 0"),
    # solar and wind
    (lambda: replace(SOLAR, capacity_kw=-1.0), "renewable.capacity_kw", ">= 0"),
    (lambda: replace(SOLAR, capacity_kw=INF), "renewable.capacity_kw", "finite"),
    (lambda: replace(SOLAR, profile=sig(1.2)), "renewable.profile", "in [0, 1]"),
    (lambda: replace(SOLAR, profile=sig(-0.1)), "renewable.profile", "in [0, 1]"),
    (lambda: replace(SOLAR, clear_sky=np.full(N, NAN)), "renewable.clear_sky", "nan"),
    (lambda: replace(SOLAR, clear_sky=np.full(3, 0.5)), "renewable.clear_sky", "3 steps"),
    # battery
    (lambda: replace(BATTERY, capacity_kwh=-1.0), "battery.capacity_kwh", ">= 0"),
    (lambda: replace(BATTERY, charge_kw=INF), "battery.charge_kw", "finite"),
    (lambda: replace(BATTERY, discharge_kw=NAN), "battery.discharge_kw", "got nan"),
    (
        lambda: replace(BATTERY, round_trip_efficiency=0.0),
        "battery.round_trip_efficiency",
        "(0, 1]",
    ),
    (
        lambda: replace(BATTERY, round_trip_efficiency=1.1),
        "battery.round_trip_efficiency",
        "(0, 1]",
    ),
    (lambda: replace(BATTERY, soc_min=-0.1), "battery.soc_min", "in [0, 1]"),
    (lambda: replace(BATTERY, soc_max=1.1), "battery.soc_max", "in [0, 1]"),
    (lambda: replace(BATTERY, initial_soc=NAN), "battery.initial_soc", "got nan"),
    (lambda: replace(BATTERY, soc_min=0.95), "battery.soc_max", "below soc_min"),
    (lambda: replace(BATTERY, initial_soc=0.05), "battery.initial_soc", "between soc_min"),
    (lambda: replace(BATTERY, initial_soc=0.95), "battery.initial_soc", "between soc_min"),
    # genset
    (lambda: replace(GENSET, capacity_kw=-1.0), "genset.capacity_kw", ">= 0"),
    (lambda: replace(GENSET, fuel_cost_usd_per_kwh=NAN), "genset.fuel_cost_usd_per_kwh", "nan"),
    (
        lambda: replace(GENSET, emission_factor_g_per_kwh=-1.0),
        "genset.emission_factor_g_per_kwh",
        ">= 0",
    ),
    # site
    (lambda: replace(SITE, name=""), "sites[].name", "non-empty string"),
    (lambda: replace(SITE, latitude=91.0), "sites[a].latitude", "in [-90, 90]"),
    (lambda: replace(SITE, longitude=NAN), "sites[a].longitude", "in [-180, 180]"),
    (lambda: replace(SITE, base_it_kw=-1.0), "sites[a].base_it_kw", ">= 0"),
    (lambda: replace(SITE, power_cap_kw=-1.0), "sites[a].power_cap_kw", "math.inf allowed"),
    (lambda: replace(SITE, power_cap_kw=NAN), "sites[a].power_cap_kw", "got nan"),
    (lambda: replace(SITE, temperature_c=sig(NAN)), "sites[a].temperature_c", "nan at step 0"),
    # demand points, demand and services
    (lambda: replace(POINT, name=""), "demand_points[].name", "non-empty string"),
    (lambda: replace(POINT, latitude=-91.0), "demand_points[p].latitude", "in [-90, 90]"),
    (lambda: replace(DEMAND, rate_rps=sig(-1.0)), "demand[p].rate_rps", ">= 0 at every step"),
    (lambda: replace(DEMAND, point=""), "demand[].point", "non-empty string"),
    (lambda: replace(SERVICE, latency_slo_ms=0.0), "services[v].latency_slo_ms", "> 0"),
    (lambda: replace(SERVICE, service_time_ms=-1.0), "services[v].service_time_ms", ">= 0"),
    (lambda: replace(SERVICE, service_time_ms=30.0), "services[v].service_time_ms", "no time"),
    (
        lambda: replace(SERVICE, replica_throughput_rps=0.0),
        "services[v].replica_throughput_rps",
        "> 0",
    ),
    (
        lambda: replace(SERVICE, accelerators_per_replica=0),
        "services[v].accelerators_per_replica",
        "whole number >= 1",
    ),
    # batch jobs
    (lambda: replace(JOB, name=""), "jobs[].name", "non-empty string"),
    (lambda: replace(JOB, work_accelerator_hours=0.0), "jobs[j].work_accelerator_hours", "> 0"),
    (lambda: replace(JOB, work_accelerator_hours=NAN), "jobs[j].work_accelerator_hours", "nan"),
    (lambda: replace(JOB, work_accelerator_hours=INF), "jobs[j].work_accelerator_hours", "inf"),
    (lambda: replace(JOB, min_accelerators=0), "jobs[j].min_accelerators", "whole number >= 1"),
    (lambda: replace(JOB, min_accelerators=5), "jobs[j].max_accelerators", "below min_acc"),
    (
        lambda: replace(JOB, max_accelerators=as_any(2.0)),
        "jobs[j].max_accelerators",
        "whole number",
    ),
    (lambda: replace(JOB, checkpoint_overhead_h=-1.0), "jobs[j].checkpoint_overhead_h", ">= 0"),
    (lambda: replace(JOB, migration_overhead_h=NAN), "jobs[j].migration_overhead_h", "nan"),
    (lambda: replace(JOB, deadline=hours(1)), "jobs[j].deadline", "after the arrival"),
    (lambda: replace(JOB, deadline=hours(0)), "jobs[j].deadline", "after the arrival"),
    (
        lambda: replace(JOB, arrival=pd.Timestamp("2023-06-01T01:00")),
        "jobs[j].arrival",
        "timezone-aware",
    ),
    (lambda: replace(JOB, deadline=as_any(pd.NaT)), "jobs[j].deadline", "timezone-aware"),
    (
        lambda: replace(JOB, allowed_sites=as_any("a")),
        "jobs[j].allowed_sites",
        "tuple of site names",
    ),
    (lambda: replace(JOB, allowed_sites=()), "jobs[j].allowed_sites", "no site allowed"),
    (lambda: replace(JOB, allowed_sites=("",)), "jobs[j].allowed_sites", "non-empty string"),
    # network and penalties
    (lambda: replace(FIBRE, fibre_km_per_ms=0.0), "fibre.fibre_km_per_ms", "> 0"),
    (lambda: replace(FIBRE, route_factor=0.5), "fibre.route_factor", ">= 1"),
    (lambda: replace(FIBRE, base_ms=-1.0), "fibre.base_ms", ">= 0"),
    (lambda: Network({("DE", "GB"): -1.0}), "network.matrix_ms[DE, GB]", ">= 0"),
    (lambda: Network({("DE", "GB"): NAN}), "network.matrix_ms[DE, GB]", "got nan"),
    (
        lambda: replace(PENALTIES, deadline_miss_usd_per_accelerator_hour=-1.0),
        "penalties.deadline_miss_usd_per_accelerator_hour",
        ">= 0",
    ),
    (
        lambda: replace(PENALTIES, slo_violation_usd_per_request=NAN),
        "penalties.slo_violation_usd_per_request",
        "nan",
    ),
    # the scenario
    (lambda: scene(name=""), "name", "non-empty string"),
    (lambda: scene(start=pd.Timestamp("2023-06-01")), "start", "timezone-aware"),
    (lambda: scene(end=START), "end", "after start"),
    (lambda: scene(step=pd.Timedelta(0)), "step", "positive duration"),
    (lambda: scene(end=START + pd.Timedelta("90min")), "end", "not a whole number of"),
    (lambda: scene(carbon_price_usd_per_tonne=-1.0), "carbon_price_usd_per_tonne", ">= 0"),
    (lambda: scene(carbon_price_usd_per_tonne=INF), "carbon_price_usd_per_tonne", "finite"),
    (lambda: scene(carbon_intensity_kind="mean"), "carbon_intensity_kind", "'marginal'"),
    (lambda: scene(sites=()), "sites", "no site"),
    (lambda: scene(sites=(SITE, SITE)), "sites[1].name", "'a' is used twice"),
    (lambda: scene(demand_points=(POINT, POINT)), "demand_points[1].name", "used twice"),
    (lambda: scene(services=(SERVICE, SERVICE)), "services[1].name", "used twice"),
    (lambda: scene(jobs=(JOB, JOB)), "jobs[1].name", "used twice"),
    (
        lambda: scene(sites=(replace(SITE, grid=replace(GRID, price=sig(50.0, n=10))),)),
        "sites[a].grid.price",
        "has 10 values but the scenario has 24 steps",
    ),
    (
        lambda: scene(
            sites=(replace(SITE, solar=replace(SOLAR, profile=sig(0.5, n=10), clear_sky=None)),)
        ),
        "sites[a].solar.profile",
        "has 10 values",
    ),
    (
        lambda: scene(services=(replace(SERVICE, demand=(Demand("p", sig(1.0, n=3)),)),)),
        "services[v].demand[p].rate_rps",
        "has 3 values",
    ),
    (
        lambda: scene(services=(replace(SERVICE, demand=(Demand("q", sig(1.0)),)),)),
        "services[v].demand[q].point",
        "unknown demand point 'q'",
    ),
    (
        lambda: scene(jobs=(replace(JOB, allowed_sites=("b",)),)),
        "jobs[j].allowed_sites",
        "unknown site(s) b",
    ),
    (
        lambda: scene(jobs=(replace(JOB, min_accelerators=9, max_accelerators=9),)),
        "jobs[j].min_accelerators",
        "largest allowed site has 8",
    ),
    (
        lambda: scene(jobs=(replace(JOB, arrival=hours(-1)),)),
        "jobs[j].arrival",
        "outside the period",
    ),
    (
        lambda: scene(jobs=(replace(JOB, arrival=hours(N), deadline=hours(N + 5)),)),
        "jobs[j].arrival",
        "outside the period",
    ),
]


@pytest.mark.parametrize(
    ("make", "field", "words"), CASES, ids=[f"{field}:{words}" for _, field, words in CASES]
)
def test_a_bad_value_is_refused_naming_the_field_and_the_fix(make, field, words):
    with pytest.raises(ScenarioError) as error:
        make()
    assert error.value.field == field
    assert words in error.value.problem
    assert error.value.fix
    assert str(error.value) == f"{field}: {error.value.problem} Fix: {error.value.fix}"


def test_the_site_with_negative_accelerators_or_import_cannot_be_built():
    with pytest.raises(ScenarioError) as error:
        Site("a", 40.0, -100.0, AcceleratorPool(-4, 1.0, 0.1), grid=GRID)
    assert str(error.value) == (
        "accelerators.count: must be a whole number >= 0, got -4. "
        "Fix: give the number of accelerators, 0 or more."
    )
    with pytest.raises(ScenarioError, match=r"^grid\.import_limit_kw: .* got -5\.0\. Fix: "):
        Site("a", 40.0, -100.0, POOL, grid=GridConnection(-5.0, 0.0, sig(50.0), sig(300.0)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: AcceleratorPool(0, 1.0, 0.0),  # no accelerators: a site of power assets only
        lambda: AcceleratorPool(as_any(np.int64(4)), 0.0, 0.0),  # free compute, a numpy count
        lambda: replace(GRID, import_limit_kw=0.0, export_limit_kw=INF),  # islanded, exports
        lambda: replace(GRID, import_limit_kw=INF, price=sig(-20.0)),  # negative prices
        lambda: Battery(0.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5),
        lambda: Pue(1.0),
        lambda: Pue(2.5, maximum=2.5),
        lambda: Genset(0.0, 0.0, 0.0),
        lambda: replace(SOLAR, capacity_kw=0.0, clear_sky=None),
        lambda: replace(SITE, power_cap_kw=0.0, grid=None, temperature_c=None),
        lambda: replace(SERVICE, service_time_ms=0.0, demand=()),
        lambda: replace(JOB, max_accelerators=as_any(np.int64(4)), allowed_sites=("a",)),
        lambda: replace(
            JOB, arrival=as_any(hours(1).to_pydatetime()), deadline=as_any(hours(2).to_pydatetime())
        ),
        # a deadline after the end (its work is penalised), signals longer than the period
        lambda: scene(jobs=(replace(JOB, deadline=hours(N + 48)),), end=START + 10 * STEP),
        lambda: scene(jobs=(), demand_points=(), services=()),
    ],
)
def test_odd_but_meaningful_objects_are_built(make):
    make()


def _example_files() -> list[Path]:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    return files


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.name)
def test_every_example_still_builds(path):
    raw = yaml.safe_load(path.read_text())
    if "data_dir" in raw and not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    # A service configuration (``fleet:``) builds its fleet's scenario the same way.
    sc = load_service_config(path).scenario if "fleet" in raw else load_scenario(path)
    assert sc.sites


def test_the_test_builders_fleets_still_build():
    small_fleet()
    sc = scenario(
        [site("a", accelerators=0), site("b", grid=False, solar_kw=5.0)],
        jobs=[job("j", 0.0, 4.0, 2, 30.0, allowed=("a", "b"))],
        services=[service("v", "p", np.full(288, 5.0))],
        points=[DemandPoint("p", 40.0, -100.0)],
    )
    assert sc.jobs[0].deadline > sc.end  # allowed: the simulator penalises what is undone


# -- the loader names what the model refuses by its place in the file --------------------------

BASE = """
name: t
start: 2023-06-01T00:00:00Z
end: 2023-06-02T00:00:00Z
step: 1h
sites:
  - name: a
    latitude: 40
    longitude: -100
    accelerators: {count: 8, busy_kw: 1, idle_kw: 0}
    grid: {price: 50, carbon: 200}
demand_points: [{name: p, latitude: 40, longitude: -100}]
"""

SERVICE_YAML = """
inference_services:
  - {name: v, latency_slo_ms: 20, service_time_ms: 5, replica_throughput_rps: 10,
     demand: [{point: p, rate_rps: 5}]}
"""


def _load(tmp_path: Path, text: str) -> Scenario:
    rates = pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=24, freq="1h").strftime("%Y-%m-%dT%H:%MZ"),
            "rps": [3.0] * 12 + [-1.0] * 12,
            "g": [-5.0] * 24,
        }
    )
    rates.to_csv(tmp_path / "series.csv", index=False)
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text))
    return load_scenario(path)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("carbon: 200", "carbon: {file: series.csv, column: g}"),
            "sites[0].grid.carbon",
            "got -5.0 at step 0",
        ),
        (
            ("rate_rps: 5", "rate_rps: {file: {file: series.csv, column: rps}}"),
            "inference_services[0].demand[0].rate_rps",
            "got -1.0 at step 12",
        ),
        (
            ("service_time_ms: 5", "service_time_ms: 20"),
            "inference_services[0].service_time_ms",
            "leaves no time for the network within the 20.0 ms SLO",
        ),
    ],
)
def test_the_loader_names_a_model_check_by_its_place_in_the_file(tmp_path, change, field, words):
    with pytest.raises(ScenarioError) as error:
        _load(tmp_path, (BASE + SERVICE_YAML).replace(*change))
    assert error.value.field == field
    assert words in error.value.problem
    assert error.value.fix


def test_a_file_refuses_what_the_model_refuses(tmp_path):
    with pytest.raises(ScenarioError, match=r"sites\[0\]\.base_it_kw: .*finite number"):
        _load(tmp_path, BASE.replace("grid:", "base_it_kw: .nan\n    grid:"))
    with pytest.raises(ScenarioError, match=r"maximum \(2\.0\) must not be below base \(2\.5\)"):
        _load(tmp_path, BASE.replace("grid:", "pue: {base: 2.5}\n    grid:"))
    # A constant PUE above the default maximum is what it says.
    sc = _load(tmp_path, BASE.replace("grid:", "pue: 2.5\n    grid:"))
    assert sc.sites[0].pue.base == 2.5
