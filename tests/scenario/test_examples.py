"""The shipped examples load, and are what the README says they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import needs_shared_data
from wattroute.scenario import default_scenario, load_scenario

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


@needs_shared_data()
def test_temporal_shifting_is_one_site_on_real_data_with_pai_jobs():
    sc = load_scenario(EXAMPLES / "temporal_shifting.yaml")
    assert len(sc.sites) == 1
    assert len(sc.jobs) == 1000
    # 24 h of slack beyond the shortest run
    job = sc.jobs[0]
    assert (job.deadline - job.arrival).total_seconds() / 3600 == pytest.approx(
        24 + job.min_duration_h, abs=0.1
    )


@needs_shared_data()
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
    sc = load_scenario(path)
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
