"""Running totals: accumulated step by step, written and read back, and read from the flat
layout runs wrote before (so a controller resumes either)."""

from __future__ import annotations

import pytest

from wattroute.model.summary import ENERGY_KEYS, RunningTotals, violation_fraction


def test_totals_add_up_and_survive_a_round_trip() -> None:
    totals = RunningTotals()
    step = {"grid": 2.0, "load": 3.0, "solar": 1.0}
    totals.add(1.5, 4.0, step, {"requests": 10.0, "served_within_slo": 9.0, "dropped": 1.0})
    totals.add(0.5, 1.0, step, {"requests": 10.0, "served_within_slo": 10.0})
    assert totals.cost_usd == 2.0
    assert totals.emissions_kg == 5.0
    assert totals.energy_kwh["grid"] == 4.0
    assert totals.energy_kwh["load"] == 6.0
    assert totals.energy_kwh["wind"] == 0.0
    assert totals.requests == {
        "requests": 20.0,
        "served_within_slo": 19.0,
        "served_late": 0.0,
        "dropped": 1.0,
    }
    # 2 USD + 100 USD/t x 5 kg
    assert totals.objective_usd_before_penalties(100.0) == pytest.approx(2.5)
    again = RunningTotals.from_json(totals.to_json())
    assert again == totals


def test_totals_written_flat_by_earlier_versions_are_read() -> None:
    flat = {
        "cost_usd": 3.0,
        "emissions_kg": 7.0,
        "grid_kwh": 11.0,
        "battery_discharge_kwh": 2.0,
        "requests": 50.0,
        "within_slo": 45.0,
        "late": 3.0,
        "dropped": 2.0,
    }
    totals = RunningTotals.from_json(flat)
    assert totals.cost_usd == 3.0
    assert totals.emissions_kg == 7.0
    assert totals.energy_kwh == {
        **dict.fromkeys(ENERGY_KEYS, 0.0),
        "grid": 11.0,
        "battery_discharge": 2.0,
    }
    assert totals.requests == {
        "requests": 50.0,
        "served_within_slo": 45.0,
        "served_late": 3.0,
        "dropped": 2.0,
    }


def test_nothing_read_is_nothing() -> None:
    assert RunningTotals.from_json({}) == RunningTotals()


def test_violation_fraction() -> None:
    assert violation_fraction(200.0, 150.0) == 0.25
    assert violation_fraction(0.0, 0.0) == 0.0
