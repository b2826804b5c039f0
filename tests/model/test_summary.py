"""Running totals: accumulated step by step, written and read back, and read from the flat
layout runs wrote before (so a controller resumes either)."""

from __future__ import annotations

from pathlib import Path

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


def _keys(value: object, prefix: str = "") -> set[str]:
    """Dotted paths of a summary's fields (per-site and per-service entries under ``*``)."""
    if not isinstance(value, dict):
        return set()
    out = set()
    for key, item in value.items():
        name = "*" if prefix.endswith(("sites.", "by_service.")) else key
        path = f"{prefix}{name}"
        out.add(path)
        if not path.endswith(("policy_stats", "notes")):
            out |= _keys(item, path + ".")
    return out


def test_the_simulator_and_the_oracle_report_the_same_fields_all_documented() -> None:
    from tests.builders import DemandPoint, job, scenario, service, site
    from wattroute.model.summary import Summary
    from wattroute.optimise.oracle import solve_oracle
    from wattroute.policies import get_policy
    from wattroute.sim import simulate, summarize

    sc = scenario(
        [site("a", n=48, solar_kw=3.0), site("b", n=48)],
        n=48,
        jobs=[job("j", 0.0, 4.0, 2, 3.5)],
        services=[service("v", "p", [5.0] * 48)],
        points=[DemandPoint("p", 40.0, -100.0)],
    )
    simulated = summarize(simulate(sc, get_policy("greedy")))
    _, bound = solve_oracle(sc, 1.0)
    optional = set(Summary.__optional_keys__)
    only_oracle = {"period_h", "lp"}
    sim_keys = _keys(simulated) - {"policy_stats"}
    oracle_keys = {k for k in _keys(bound) if k.split(".")[0] not in only_oracle}
    assert sim_keys == oracle_keys
    assert set(Summary.__required_keys__) <= set(simulated)
    assert only_oracle <= set(bound)
    assert optional >= only_oracle
    docs = (Path(__file__).resolve().parents[2] / "docs" / "results.md").read_text()
    rows = [line for line in docs.splitlines() if line.startswith("| `")]
    every = _keys(simulated) | _keys(bound)
    leaves = {k for k in every if not any(other.startswith(k + ".") for other in every)}
    for key in sorted(leaves):
        first, last = key.split(".")[0], key.split(".")[-1]
        parent = key.rsplit(".", 1)[0].replace("*", "<name>")
        described = any(
            (f"`{first}" in row and f"{last}`" in row) or f"`{parent}.*`" in row for row in rows
        )
        assert described, f"docs/results.md has no row for {key}"
