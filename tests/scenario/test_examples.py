"""The shipped examples load, and are what the README says they are."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.builders import SHARED_DATA, needs_shared_data
from wattroute.scenario import default_scenario, load_scenario
from wattroute.service.config import load_service_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_default_needs_no_files_and_says_what_is_measured():
    sc = default_scenario()
    assert "MEASURED" in sc.description
    assert "MODELLED" in sc.description
    assert {s.name for s in sc.sites} == {"greensboro", "sandpoint", "miami"}
    assert all("pvlib" in s.solar.source for s in sc.sites if s.solar)
    for s in sc.sites:
        if s.solar is not None:
            # In daylight the clear sky bounds the measured output (to some % for temperature
            # and the clear-sky model), and the sun rises in it every day.
            clear = s.solar.clear_sky_kw()
            assert clear is not None
            lit = clear > 0.1 * s.solar.capacity_kw
            assert (s.solar.power_kw()[lit] <= clear[lit] * 1.15).all()
            assert clear.reshape(-1, 288).max(axis=1).min() > 0.5 * s.solar.capacity_kw
    assert all("windpowerlib" in s.wind.source for s in sc.sites if s.wind)
    pv = sc.sites[0].solar
    assert pv is not None
    solar = pv.profile.values
    assert 0.3 < solar.max() <= 1.0  # June sun in North Carolina
    assert solar.min() == 0.0  # and nights


def test_examples_default_is_the_builtin():
    assert (EXAMPLES / "default.yaml").resolve().read_text() == (
        Path(__file__).resolve().parents[2]
        / "src"
        / "wattroute"
        / "scenario"
        / "builtin"
        / "default.yaml"
    ).read_text()


def test_temporal_shifting_is_one_site_on_real_data_with_pai_jobs():
    sc = load_scenario(EXAMPLES / "temporal_shifting.yaml")
    assert len(sc.sites) == 1
    assert len(sc.jobs) == 1000
    # 24 h of slack beyond the shortest run
    job = sc.jobs[0]
    assert (job.deadline - job.arrival).total_seconds() / 3600 == pytest.approx(
        24 + job.min_duration_h, abs=0.1
    )


def test_multi_site_fleet_spans_four_zones_with_renewables_inference_and_pai_jobs():
    sc = load_scenario(EXAMPLES / "multi_site_fleet.yaml")
    zones = {s.zone for s in sc.sites}
    assert len(zones) >= 4
    assert any(s.solar for s in sc.sites)
    assert any(s.wind for s in sc.sites)
    assert any(s.battery for s in sc.sites)
    assert sc.services
    assert len(sc.demand_points) >= 2
    assert len(sc.jobs) > 100
    assert sc.network.matrix_ms  # measured latency


@needs_shared_data()
def test_the_stress_days_have_what_its_description_promises():
    """Price spikes, hours of negative prices, tight deadlines with minimum parallelism and
    checkpoints, a genset behind a small import limit, a battery that can export."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "stress_days.yaml"
    sc = load_scenario(path, data_dir=SHARED_DATA)
    sites = {s.name: s for s in sc.sites}
    price = {name: s.grid.price.values for name, s in sites.items() if s.grid is not None}
    assert price["sydney"].max() >= 1400
    assert price["dallas"].max() >= 2200
    assert (price["sydney"] < 0).sum() / 12 >= 10  # hours
    assert (price["frankfurt"] < 0).sum() / 12 >= 14
    assert sites["sydney"].battery is not None
    assert sites["sydney"].grid is not None
    assert sites["sydney"].grid.export_limit_kw > 0
    texas = sites["west-texas"]
    assert texas.genset is not None
    assert texas.grid is not None
    assert texas.grid.import_limit_kw <= 15
    assert len(sc.jobs) > 500
    for job in sc.jobs:
        first_run = sc.start + ((job.arrival - sc.start) / sc.step).__ceil__() * sc.step
        shortest_h = job.work_accelerator_hours / job.max_accelerators
        slack_h = (job.deadline - first_run).total_seconds() / 3600 - shortest_h
        assert 1.0 - 1e-6 <= slack_h <= 3.0 + 1e-6
        assert job.min_accelerators == min(2, job.max_accelerators)
        assert job.checkpoint_overhead_h > 0
    assert sc.services[0].latency_slo_ms <= 30


def _differences(a: object, b: object, path: str = "scenario") -> Iterator[str]:
    """Where two built scenarios differ, field by field (job names left out)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            yield f"{path}: {type(a).__name__} against {type(b).__name__}"
            return
        for field in dataclasses.fields(a):
            if field.name == "name" and path.startswith("scenario.jobs["):
                continue
            yield from _differences(
                getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}"
            )
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True):
            yield path
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            yield f"{path}: {len(a)} against {len(b)} entries"
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            yield f"{path}: keys differ"
            return
        for key in a:
            yield from _differences(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, pd.Series | pd.Index):
        if type(a) is not type(b) or not np.array_equal(np.asarray(a), np.asarray(b)):
            yield path
    elif a != b:
        yield path


@needs_shared_data()
@pytest.mark.parametrize("name", ["temporal_shifting", "multi_site_fleet"])
def test_the_shipped_slices_give_the_scenario_the_full_data_gives(name):
    """examples/data is cut from ../shared/data: every signal, service and job (but its name)
    is the same either way."""
    path = EXAMPLES / f"{name}.yaml"
    shipped = load_scenario(path)
    full = load_scenario(path, data_dir=SHARED_DATA)
    assert shipped.jobs
    assert shipped.sites
    assert list(_differences(shipped, full)) == []


@needs_shared_data()
def test_the_ray_demo_fleet_is_the_same_on_the_shipped_slices(tmp_path):
    raw = yaml.safe_load((EXAMPLES / "demo_ray.yaml").read_text())
    raw["data_dir"] = str(SHARED_DATA)
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(raw))
    shipped = load_service_config(EXAMPLES / "demo_ray.yaml").scenario
    full = load_service_config(tmp_path / "full.yaml").scenario
    assert list(_differences(shipped, full)) == []


def test_the_examples_read_only_what_the_repository_ships():
    for path in EXAMPLES.glob("*.yaml"):
        assert "../shared" not in path.read_text(), path
    shipped = [f for f in (EXAMPLES / "data").rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in shipped) < 1_000_000  # bytes
