"""One accounting of power and money: the simulator's and the LP's agree on the same flows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders import Battery, Genset, job, scenario, site
from wattroute.model import Scenario
from wattroute.model.arrays import FleetStatic
from wattroute.model.costs import (
    busy_accelerator_hour_usd,
    emissions_kg,
    energy_cost_usd,
    genset_cost_usd_per_kwh,
    import_cost_usd_per_kwh,
    objective_usd,
)
from wattroute.model.power import (
    battery_discharge_room_kw,
    busy_accelerator_kw,
    facility_kw,
    standing_kw,
)
from wattroute.optimise.formulation import build
from wattroute.optimise.oracle import oracle_problem, solve_oracle
from wattroute.policies import get_policy
from wattroute.sim import simulate, summarize

CARBON_PRICE = 80.0  # USD/t


def _fleet_with_every_flow() -> Scenario:
    """A day of 5-minute steps: site ``a`` with solar, a battery and exports at a price that
    dips below zero; site ``b`` behind a small import limit with a genset; two jobs."""
    n = 288
    sun = np.clip(np.sin(np.linspace(0, 2 * np.pi, n) - np.pi / 2), 0, None)
    price = 40 + 60 * np.sin(np.linspace(0, 4 * np.pi, n))  # USD/MWh, -20 .. 100
    return scenario(
        [
            site(
                "a",
                n=n,
                accelerators=6,
                idle_kw=0.2,
                pue=1.3,
                solar_kw=9.0,
                solar_profile=sun,
                export_limit_kw=4.0,
                battery=Battery(12, 4, 4, 0.92, 0.1, 1.0, 0.5),
                price=price,
                carbon=np.linspace(150, 450, n),
            ),
            site(
                "b",
                n=n,
                accelerators=6,
                idle_kw=0.2,
                pue=1.1,
                import_limit_kw=2.0,
                genset=Genset(6.0, 0.25, 700.0),
                price=70.0,
                carbon=500.0,
            ),
        ],
        n=n,
        jobs=[job("j1", 0.5, 30.0, 4, 20.0), job("j2", 3.0, 24.0, 6, 23.0)],
        carbon_price=CARBON_PRICE,
    )


def test_the_simulators_accounting_equals_the_lps_on_the_simulated_flows() -> None:
    """The LP's cost coefficients (one period per simulation step), applied to the flows the
    simulator dispatched, give the simulator's cost plus the carbon price on its emissions."""
    sc = _fleet_with_every_flow()
    run = simulate(sc, get_policy("agnostic"))  # runs the genset where imports fall short
    summary, record = summarize(run), run.sites
    lp = build(oracle_problem(sc, period_h=sc.step_h))
    x = np.zeros(lp.cost.size)
    for column, flow in (
        ("grid_import", "grid_import_kw"),
        ("grid_export", "export_kw"),
        ("genset", "genset_kw"),
    ):
        x[lp.layout.site(column)] = record.series(flow)
    flows = record.series("grid_import_kw"), record.series("export_kw"), record.series("genset_kw")
    assert all(f.sum() > 1.0 for f in flows), "every priced flow must be exercised"
    energy_part = float(lp.cost @ x)
    expected = summary["cost_usd"] + CARBON_PRICE * summary["emissions_kg"] / 1000.0
    # the recorded series are float32; the summary's totals were summed in float64
    assert energy_part == pytest.approx(expected, rel=1e-6)


def test_the_oracles_lp_objective_is_its_summarys_objective() -> None:
    """What HiGHS minimised is exactly what the oracle's summary reports (no term priced in
    one and not the other)."""
    sc = _fleet_with_every_flow()
    plan, summary = solve_oracle(sc, 1.0)
    assert plan.solution.objective == pytest.approx(summary["objective_usd"], rel=1e-9)


def test_a_kwh_costs_its_price_and_the_carbon_price_on_its_emissions() -> None:
    # 50 USD/MWh + 100 USD/t x 400 g/kWh = 0.05 + 0.04 USD/kWh
    assert import_cost_usd_per_kwh(np.array(50.0), np.array(400.0), 100.0) == pytest.approx(0.09)
    fleet = FleetStatic.from_scenario(_fleet_with_every_flow())
    # site b's genset: 0.25 USD/kWh fuel + 80 USD/t x 700 g/kWh = 0.25 + 0.056
    assert genset_cost_usd_per_kwh(fleet, CARBON_PRICE)[1] == pytest.approx(0.306)
    assert objective_usd(10.0, 500.0, 80.0, 2.0) == pytest.approx(10 + 40 + 2)


def test_flow_costs_and_emissions_by_hand() -> None:
    fleet = FleetStatic.from_scenario(_fleet_with_every_flow())
    grid, export, genset = np.array([[2.0, 1.0]]), np.array([[3.0, 0.0]]), np.array([[0.0, 4.0]])
    price, export_price = np.array([[100.0, 70.0]]), np.array([[-20.0, 0.0]])
    cost = energy_cost_usd(fleet, 0.5, grid, export, genset, price, export_price)
    # a: 0.5 h x (2 kW x 0.1 USD/kWh + 3 kW x 0.02 USD/kWh paid to export) = 0.13
    # b: 0.5 h x (1 kW x 0.07 + 4 kW x 0.25) = 0.535
    np.testing.assert_allclose(cost, [[0.13, 0.535]])
    kg = emissions_kg(fleet, 0.5, grid, genset, np.array([[300.0, 500.0]]))
    # a: 0.5 x 2 x 300 g = 300 g; b: 0.5 x (1 x 500 + 4 x 700) g = 1650 g
    np.testing.assert_allclose(kg, [[0.3, 1.65]])


def test_facility_power_by_hand() -> None:
    fleet = FleetStatic.from_scenario(_fleet_with_every_flow())
    pue = np.array([1.3, 1.1])
    # a: 1.3 x (0 base + 0.2 x 6 idle + 0.8 x 2.5 busy) = 1.3 x 3.2; b: 1.1 x (1.2 + 0.8 x 6)
    np.testing.assert_allclose(facility_kw(fleet, pue, np.array([2.5, 6.0])), [4.16, 6.6])
    # powered down to 4 at a: 1.3 x (0.2 x 4 + 0.8 x 2.5) = 3.64
    np.testing.assert_allclose(
        facility_kw(fleet, pue, np.array([2.5, 0.0]), np.array([4.0, 6.0]))[0], 3.64
    )
    np.testing.assert_allclose(standing_kw(fleet, pue), [1.56, 1.32])
    np.testing.assert_allclose(busy_accelerator_kw(fleet, pue), [1.04, 0.88])
    # one busy accelerator-hour at 0.1 USD/kWh: 1.3 x 0.8 kW x 0.1
    np.testing.assert_allclose(
        busy_accelerator_hour_usd(fleet, pue, np.array([0.1, 0.1])), [0.104, 0.088]
    )


def test_battery_room_is_the_discharge_limit_or_the_energy_above_its_minimum() -> None:
    fleet = FleetStatic.from_scenario(_fleet_with_every_flow())
    # a: 12 kWh, min 10 % = 1.2 kWh, discharge 4 kW, 92 % round trip (sqrt(0.92) each way);
    # b has none
    full = battery_discharge_room_kw(fleet, np.array([12.0, 0.0]), 1.0)
    np.testing.assert_allclose(full, [4.0, 0.0])
    low = battery_discharge_room_kw(fleet, np.array([2.2, 0.0]), 0.5)
    # 1 kWh above the minimum x sqrt(0.92) over half an hour = 1.918 kW
    np.testing.assert_allclose(low, [2 * np.sqrt(0.92), 0.0])
    empty = battery_discharge_room_kw(fleet, np.array([1.0, 0.0]), 0.5)
    np.testing.assert_allclose(empty, [0.0, 0.0])
