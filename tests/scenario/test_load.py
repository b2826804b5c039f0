"""Scenario loading: signals on the grid, traces, rates, notes and cross-field checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattroute.errors import ScenarioError
from wattroute.scenario import load_scenario

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
    grid: {price: {file: prices.csv, column: usd}, carbon: 200}
"""


def _scenario(tmp_path: Path, extra: str = "", base: str = BASE) -> Path:
    index = pd.date_range("2023-05-31T22:00Z", periods=60, freq="30min")
    frame = pd.DataFrame(
        {"timestamp": index.strftime("%Y-%m-%dT%H:%M:%SZ"), "usd": np.arange(60.0)}
    )
    frame.loc[8, "usd"] = np.nan  # a 30-minute hole at 02:00
    frame.to_csv(tmp_path / "prices.csv", index=False)
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(base) + textwrap.dedent(extra))
    return path


def test_prices_are_held_and_small_gaps_filled_and_reported(tmp_path):
    sc = load_scenario(_scenario(tmp_path))
    grid = sc.sites[0].grid
    assert grid is not None
    price = grid.price.values
    # hourly grid from 00:00; the file has half-hourly values starting 22:00 the day before
    assert price[0] == 4.0
    assert price[1] == 6.0
    assert price[2] == 7.0  # 02:00 was missing: the 01:30 value is held
    assert any("filled" in note for note in sc.notes)


def test_unknown_demand_point_and_site_references(tmp_path):
    extra = """
    inference_services:
      - {name: v, latency_slo_ms: 20, service_time_ms: 5, replica_throughput_rps: 10,
         demand: [{point: nowhere, rate_rps: 5}]}
    """
    with pytest.raises(ScenarioError, match=r"inference_services\[0\]\.demand\[0\]\.point"):
        load_scenario(_scenario(tmp_path, extra))
    extra = """
    batch_jobs:
      - {name: j, arrival_h: 1, work_accelerator_hours: 1, slack_h: 2, allowed_sites: [b]}
    """
    with pytest.raises(ScenarioError, match=r"allowed_sites.*unknown site"):
        load_scenario(_scenario(tmp_path, extra))


def test_a_job_needing_more_accelerators_than_any_site(tmp_path):
    extra = """
    batch_jobs:
      - {name: j, arrival_h: 1, work_accelerator_hours: 10, min_accelerators: 9,
         max_accelerators: 9, slack_h: 2}
    """
    with pytest.raises(ScenarioError, match=r"min_accelerators.*at most 8"):
        load_scenario(_scenario(tmp_path, extra))


def test_a_deadline_after_the_end_is_refused(tmp_path):
    extra = """
    batch_jobs:
      - {name: j, arrival_h: 20, work_accelerator_hours: 10, max_accelerators: 2, slack_h: 2}
    """
    with pytest.raises(ScenarioError, match=r"deadline.*after the scenario end"):
        load_scenario(_scenario(tmp_path, extra))


def test_trace_jobs_map_columns_units_offset_and_slack(tmp_path):
    (tmp_path / "jobs.csv").write_text("t,dur,n\n0,3600,2\n1800,7200,4\n90000,60,1\n")
    extra = """
    batch_trace: {file: jobs.csv, columns: {arrival: t, duration: dur, accelerators: n},
                  time_unit: s, arrival_offset_h: 1, slack_h: 3, max_accelerators_cap: 3}
    """
    sc = load_scenario(_scenario(tmp_path, extra))
    assert len(sc.jobs) == 2  # the third arrives after the end
    first, second = sc.jobs
    assert first.arrival == pd.Timestamp("2023-06-01T01:00Z")
    assert first.work_accelerator_hours == pytest.approx(2.0)
    assert second.max_accelerators == 3  # capped
    assert second.work_accelerator_hours == pytest.approx(8.0)
    # deadline: first step at or after arrival (02:00) + 8/3 h + 3 h
    assert second.deadline == pd.Timestamp("2023-06-01T02:00Z") + pd.Timedelta(hours=8 / 3 + 3)
    assert any("capped" in n for n in sc.notes)


def test_a_slack_range_spreads_deadlines_evenly_and_reproducibly(tmp_path):
    """``slack_h: [1, 3]``: row r gets 1 + 2 x frac(r x 0.618...), the same for a row whatever
    else is taken; a reversed range is refused naming the field."""
    rows = "\n".join(f"{i * 60},3600,2" for i in range(12))
    (tmp_path / "jobs.csv").write_text("t,dur,n\n" + rows + "\n")
    extra = """
    batch_trace: {{file: jobs.csv, columns: {{arrival: t, duration: dur, accelerators: n}},
                  time_unit: s, slack_h: {slack}, every: {every}}}
    """
    golden = (5**0.5 - 1) / 2

    def slack_by_row(every: int) -> dict[int, float]:
        sc = load_scenario(_scenario(tmp_path, extra.format(slack="[1, 3]", every=every)))
        out = {}
        for job in sc.jobs:
            row = int(job.name.rsplit("-", 1)[1])
            first_run = sc.start + np.ceil((job.arrival - sc.start) / sc.step) * sc.step
            out[row] = (job.deadline - first_run) / pd.Timedelta(hours=1) - 1.0  # 2 acc-h on 2
        return out

    every_row = slack_by_row(1)
    assert len(every_row) == 12
    for row, slack in every_row.items():
        assert slack == pytest.approx(1 + 2 * ((row * golden) % 1.0), abs=1e-6)
    assert min(every_row.values()) >= 1.0
    assert max(every_row.values()) <= 3.0
    assert slack_by_row(3) == {r: every_row[r] for r in range(0, 12, 3)}
    with pytest.raises(ScenarioError, match=r"batch_trace\.slack_h"):
        load_scenario(_scenario(tmp_path, extra.format(slack="[3, 1]", every=1)))


def test_rates_follow_the_daily_cycle_with_the_requested_mean(tmp_path):
    extra = """
    demand_points: [{name: p, latitude: 40, longitude: -100}]
    inference_services:
      - {name: v, latency_slo_ms: 20, service_time_ms: 5, replica_throughput_rps: 10,
         demand: [{point: p, rate_rps: {mean_rps: 100, diurnal_amplitude: 0.5, peak_hour_utc: 18}}]}
    """
    sc = load_scenario(_scenario(tmp_path, extra))
    rate = sc.services[0].demand[0].rate_rps.values
    assert rate.mean() == pytest.approx(100.0)
    assert int(np.argmax(rate)) == 18
    assert rate.max() == pytest.approx(150.0)


def test_day_ahead_prices_are_read_ahead_by_the_simulator_and_a_bad_zone_is_named(tmp_path):
    from wattroute.model.arrays import published_ahead

    base = BASE.replace(
        "grid: {price: {file: prices.csv, column: usd}, carbon: 200}",
        "grid: {price: {file: prices.csv, column: usd}, carbon: 200,\n"
        "           day_ahead: {timezone: America/Chicago, published: '13:00'}}",
    )
    sc = load_scenario(_scenario(tmp_path, base=base))
    known = published_ahead(sc)["price_usd_per_mwh"][:, 0]
    # 00:00 UTC is 19:00 CDT the day before: the next local day (to 05:00 UTC on 2 June,
    # beyond the end) is published; the export price is the import price, published alike.
    assert known[0] == sc.n_steps
    np.testing.assert_array_equal(published_ahead(sc)["export_price_usd_per_mwh"][:, 0], known)
    bad = base.replace("America/Chicago", "America/Chicgo")
    with pytest.raises(ScenarioError, match=r"grid\.day_ahead\.timezone.*IANA"):
        load_scenario(_scenario(tmp_path, base=bad))


def test_places_the_latency_matrix_does_not_measure_are_noted(tmp_path):
    """A site in a zone the matrix does not cover, or with no zone, falls back to the distance
    model: the scenario's notes (what ``wattroute validate`` prints) say so for each."""
    matrix = tmp_path / "latency.csv"
    matrix.write_text("origin,DE,BR-CS\nDE,2,190\nBR-CS,190,3\n")
    base = BASE.replace("    latitude: 40\n", "    zone: ZA\n    latitude: 40\n", 1)
    extra = f"""
    network:
      latency_matrix: {matrix}
    demand_points:
      - {{name: frankfurt, latitude: 50.1, longitude: 8.7, zone: DE-LU}}
      - {{name: sao-paulo, latitude: -23.5, longitude: -46.6, zone: BR-SP}}
      - {{name: somewhere, latitude: 10.0, longitude: 10.0}}
    """
    sc = load_scenario(_scenario(tmp_path, extra, base))
    noted = [note for note in sc.notes if note.startswith("network.latency_matrix")]
    assert len(noted) == 2
    assert "site 'a' is in zone ZA" in noted[0]
    assert "demand point 'somewhere' has no zone" in noted[1]
    assert all("great-circle" in note for note in noted)
