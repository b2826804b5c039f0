"""Terminal tables: they fit 80 columns without cutting a number, and say what they show."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from rich.console import Console

from wattroute.cli.report import bench_tables, summary_tables

SUMMARY: dict[str, Any] = {
    "scenario": "a-scenario-with-a-rather-long-name",
    "policy": "mpc",
    "objective_usd": 12_345_678.91,
    "cost_usd": 10_000_000.0,
    "emissions_kg": 23_456_789.1,
    "carbon_price_usd_per_tonne": 100.0,
    "carbon_intensity_kind": "marginal",
    "penalties_usd": {"total": 0.0},
    "energy_kwh": dict.fromkeys(
        (
            "load",
            "grid",
            "solar",
            "wind",
            "genset",
            "battery_charge",
            "battery_discharge",
            "export",
            "curtailed",
            "unserved",
        ),
        98765432.1,
    ),
    "inference": {"requests": 1.2e12, "slo_violation_fraction": 0.0123},
    "batch": {
        "jobs": 100_000,
        "completed": 99_999,
        "deadline_misses": 1,
        "work_accelerator_hours": 9_876_543.2,
        "mean_completion_delay_h": 3.5,
        "moves": 12_345,
        "stops": 23_456,
    },
    "decision_s": {"total": 1234.5, "p99": 0.25},
    "wall_s": 4567.8,
    "sites": {
        f"{name}-datacentre": {
            "cost_usd": 1_234_567.89,
            "emissions_kg": 7_654_321.0,
            "energy_kwh": dict.fromkeys(("load", "grid", "solar", "wind", "curtailed"), 10042123.4),
            "peak_load_kw": 12_345.6,
        }
        for name in ("greensboro", "sandpoint", "miami", "frankfurt", "tokyo")
    },
    "notes": [],
}


def _render(tables, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    for table in tables:
        console.print(table)
    return console.export_text().splitlines()


def _cells(lines: list[str]) -> str:
    return "\n".join(lines)


def test_the_summary_fits_80_columns_and_shows_every_number_whole():
    lines = _render(summary_tables(SUMMARY, 80))
    assert max(len(line) for line in lines) <= 80
    text = _cells(lines)
    assert "…" not in text
    for name in SUMMARY["sites"]:
        assert name in text  # every site, in one of the tables it is split into
    assert "10,042,123.4" in text
    assert "12,345,678.91" in text
    assert "sites (1/" in text  # five long names do not fit side by side in 80 columns


def test_the_carbon_part_of_the_objective_is_in_usd_and_the_emissions_in_kg():
    text = _cells(_render(summary_tables(SUMMARY, 80)))
    rows = {line.strip("│ ").split("│")[0].strip(): line for line in text.splitlines()}
    carbon = rows["carbon cost (USD, at 100 USD/t)"]
    assert "2,345,678.91" in carbon  # 23,456,789.1 kg x 100 USD/t
    assert "23,456,789.10" in rows["emissions (kgCO2eq, marginal)"]
    # no row counts kilograms among the parts of the objective in USD
    assert not any("kg" in label and "USD" in label for label in rows)


def test_a_capture_ratio_is_shown_when_the_summary_has_one():
    summary = copy.deepcopy(SUMMARY)
    summary["capture_ratio"] = 0.4567
    assert "45.7%" in _cells(_render(summary_tables(summary, 80)))


def _bench_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for policy, objective in (("agnostic", 1_234_567.89), ("greedy", 1_100_000.0), ("mpc", 1e6)):
        rows.append(
            {
                "scenario": "s",
                "policy": policy,
                "objective_usd": objective,
                "cost_usd": objective * 0.9,
                "emissions_kg": 9_999_999.9,
                "penalties_usd": 0.0,
                "grid_kwh": 12_345_678.0,
                "solar_kwh": 1_000.0,
                "wind_kwh": 0.0,
                "genset_kwh": 0.0,
                "battery_discharge_kwh": 0.0,
                "curtailed_kwh": 10_042.0,
                "curtailed_absorbed_kwh": 0.0 if policy == "agnostic" else 42.0,
                "slo_violation_fraction": 0.0,
                "deadline_misses": 0,
                "decision_s_total": 12.5,
                "decision_s_p99": 0.01,
                "capture_ratio": 0.0 if policy == "agnostic" else 0.5,
                "bound": False,
            }
        )
    rows.append(dict(rows[-1], policy="oracle", objective_usd=9e5, bound=True, capture_ratio=1.0))
    return rows


def test_the_bench_table_fits_80_columns_and_leaves_out_metrics_zero_everywhere():
    lines = _render(bench_tables(_bench_rows(), 80))
    assert max(len(line) for line in lines) <= 80
    text = _cells(lines)
    assert "…" not in text
    for shown in ("1,234,567.89", "12,345,678", "oracle (bound)", "mpc", "50.0%", "10,042"):
        assert shown in text
    for zero in ("wind (kWh)", "genset (kWh)", "penalties (USD)", "battery out"):
        assert zero not in text
    assert "curtailment absorbed (kWh)" in text  # zero for agnostic only


@pytest.mark.parametrize("width", [80, 120])
def test_bench_tables_fit_any_width_and_show_a_missing_capture_as_n_a(width):
    rows = _bench_rows()
    rows[0]["capture_ratio"] = math.nan
    lines = _render(bench_tables(rows, width), width)
    assert max(len(line) for line in lines) <= width
    assert "n/a" in _cells(lines)
