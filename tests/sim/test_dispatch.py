"""Power dispatch: merit order, limits, battery bookkeeping and the energy balance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.builders import Battery, Genset, scenario, site
from wattroute.errors import EnergyBalanceError
from wattroute.model.arrays import FleetSignals, FleetStatic
from wattroute.sim.dispatch import GridTerms, check_energy_balance, clamped_cumsum, dispatch


def _fleet(**kwargs) -> FleetStatic:
    return FleetStatic.from_scenario(scenario([site(**kwargs)], n=4))


def _one_step(
    fleet: FleetStatic,
    demand_kw: float,
    solar_kw: float,
    soc_kwh: float,
    step_h: float = 1.0,
    battery_kw: float | None = None,
    genset_kw: float | None = None,
    grid_pays: bool = False,
    export_costs: bool = False,
):
    """Dispatch one step at a one-site fleet (no wind); set-points as scalars, grid terms
    as flags."""
    return dispatch(
        np.array([[demand_kw]]),
        np.array([[solar_kw]]),
        np.zeros((1, 1)),
        fleet,
        np.array([soc_kwh]),
        step_h,
        battery_setpoint_kw=None if battery_kw is None else np.array([battery_kw]),
        genset_setpoint_kw=None if genset_kw is None else np.array([genset_kw]),
        terms=GridTerms(np.array([[grid_pays]]), np.array([[export_costs]])),
    )


def _sequential(start, deltas, lo, hi):
    out = np.empty_like(deltas)
    x = start.copy()
    for t in range(deltas.shape[0]):
        x = np.clip(x + deltas[t], lo, hi)
        out[t] = x
    return out


@settings(max_examples=200, deadline=None)
@given(
    deltas=arrays(
        np.float64, st.tuples(st.integers(1, 70), st.integers(1, 4)), elements=st.floats(-50, 50)
    ),
    data=st.data(),
)
def test_clamped_cumsum_equals_the_sequential_recursion(deltas, data):
    s = deltas.shape[1]
    lo = np.array(data.draw(st.lists(st.floats(0, 20), min_size=s, max_size=s)))
    width = np.array(data.draw(st.lists(st.floats(0, 100), min_size=s, max_size=s)))
    hi = lo + width
    start = lo + width * np.array(data.draw(st.lists(st.floats(0, 1), min_size=s, max_size=s)))
    np.testing.assert_allclose(
        clamped_cumsum(start, deltas, lo, hi), _sequential(start, deltas, lo, hi), atol=1e-9
    )


def test_merit_order_renewables_then_battery_then_grid_then_genset():
    fleet = _fleet(
        import_limit_kw=10.0,
        battery=Battery(
            capacity_kwh=100,
            charge_kw=5,
            discharge_kw=5,
            round_trip_efficiency=1.0,
            initial_soc=0.5,
        ),
        genset=Genset(capacity_kw=20, fuel_cost_usd_per_kwh=0.3, emission_factor_g_per_kwh=700),
    )
    r = _one_step(fleet, demand_kw=30.0, solar_kw=8.0, soc_kwh=50.0)
    assert r.solar_kw[0, 0] == pytest.approx(8.0)
    assert r.battery_discharge_kw[0, 0] == pytest.approx(5.0)
    assert r.grid_import_kw[0, 0] == pytest.approx(10.0)
    assert r.genset_kw[0, 0] == pytest.approx(7.0)
    assert r.unserved_kw[0, 0] == pytest.approx(0.0)


def test_surplus_charges_battery_then_exports_then_curtails():
    fleet = _fleet(
        export_limit_kw=3.0,
        battery=Battery(
            capacity_kwh=100,
            charge_kw=4,
            discharge_kw=4,
            round_trip_efficiency=0.81,
            initial_soc=0.5,
        ),
    )
    r = _one_step(fleet, demand_kw=10.0, solar_kw=20.0, soc_kwh=50.0, step_h=0.5)
    assert r.battery_charge_kw[0, 0] == pytest.approx(4.0)
    assert r.export_kw[0, 0] == pytest.approx(3.0)
    assert r.curtailed_kw[0, 0] == pytest.approx(3.0)
    assert r.solar_kw[0, 0] == pytest.approx(17.0)  # generation used excludes curtailment
    # one-way efficiency 0.9: 4 kW for half an hour stores 1.8 kWh
    assert r.soc_kwh[0, 0] == pytest.approx(51.8)


def test_unserved_when_nothing_can_cover_the_load():
    fleet = _fleet(import_limit_kw=5.0)
    r = _one_step(fleet, demand_kw=12.0, solar_kw=0.0, soc_kwh=0.0)
    assert r.grid_import_kw[0, 0] == pytest.approx(5.0)
    assert r.unserved_kw[0, 0] == pytest.approx(7.0)
    assert r.load_kw[0, 0] == pytest.approx(5.0)


def test_battery_stops_at_its_soc_limits():
    fleet = _fleet(
        import_limit_kw=100.0,
        battery=Battery(
            capacity_kwh=10,
            charge_kw=10,
            discharge_kw=10,
            round_trip_efficiency=1.0,
            soc_min=0.2,
            initial_soc=0.3,
        ),
    )
    demand = np.full((4, 1), 5.0)
    r = dispatch(demand, np.zeros((4, 1)), np.zeros((4, 1)), fleet, np.array([3.0]), 1.0)
    # 1 kWh above the 2 kWh floor: one hour of 1 kW, then nothing.
    np.testing.assert_allclose(r.battery_discharge_kw[:, 0], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(r.soc_kwh[:, 0], [2.0, 2.0, 2.0, 2.0])


def test_battery_setpoint_charges_from_grid_and_never_causes_unserved_load():
    fleet = _fleet(
        import_limit_kw=12.0,
        battery=Battery(
            capacity_kwh=100,
            charge_kw=20,
            discharge_kw=20,
            round_trip_efficiency=1.0,
            initial_soc=0.0,
        ),
    )
    r = _one_step(fleet, demand_kw=10.0, solar_kw=0.0, soc_kwh=0.0, battery_kw=20.0)
    assert r.battery_charge_kw[0, 0] == pytest.approx(2.0)  # only the import headroom
    assert r.unserved_kw[0, 0] == pytest.approx(0.0)


@pytest.mark.parametrize("setpoint", [0.0, 5.0])
def test_a_battery_setpoint_never_leaves_load_unserved_that_the_battery_could_serve(setpoint):
    # 10 kW of load, 2 of sun, 4 of imports: a hold or a charge would leave 4 kW unserved.
    fleet = _fleet(import_limit_kw=4.0, battery=Battery(100, 10, 10, 1.0, initial_soc=0.5))
    r = _one_step(fleet, demand_kw=10.0, solar_kw=2.0, soc_kwh=50.0, battery_kw=setpoint)
    check_energy_balance(r, np.array([50.0]), fleet, 1.0)
    assert r.battery_discharge_kw[0, 0] == pytest.approx(4.0)
    assert r.unserved_kw[0, 0] == 0.0


@pytest.mark.parametrize("setpoint", [-20.0, 0.0, 5.0])
def test_a_battery_setpoint_never_wastes_renewable_energy(setpoint):
    # 40 kW of sun, 10 kW of load, 10 kW of export: 20 kW would be curtailed.
    fleet = _fleet(
        export_limit_kw=10.0,
        battery=Battery(
            capacity_kwh=100,
            charge_kw=15,
            discharge_kw=20,
            round_trip_efficiency=1.0,
            initial_soc=0.5,
        ),
    )
    r = _one_step(fleet, demand_kw=10.0, solar_kw=40.0, soc_kwh=50.0, battery_kw=setpoint)
    check_energy_balance(r, np.array([50.0]), fleet, 1.0)
    assert r.battery_discharge_kw[0, 0] == 0.0  # discharging would only displace the sun
    assert r.battery_charge_kw[0, 0] == pytest.approx(15.0)  # the most it can store
    assert r.export_kw[0, 0] == pytest.approx(10.0)
    assert r.curtailed_kw[0, 0] == pytest.approx(5.0)


def test_a_discharge_setpoint_goes_no_further_than_load_and_export_beyond_the_sun():
    fleet = _fleet(
        export_limit_kw=10.0,
        battery=Battery(100, 20, 20, 1.0, initial_soc=0.5),
    )
    r = _one_step(fleet, demand_kw=10.0, solar_kw=6.0, soc_kwh=50.0, battery_kw=-20.0)
    assert r.battery_discharge_kw[0, 0] == pytest.approx(14.0)  # 4 kW of load + 10 kW of export
    assert r.solar_kw[0, 0] == pytest.approx(6.0)
    assert r.curtailed_kw[0, 0] == 0.0


def test_where_the_grid_pays_renewables_give_way_to_imports():
    fleet = _fleet()  # no import limit
    r = _one_step(fleet, demand_kw=10.0, solar_kw=30.0, soc_kwh=0.0, grid_pays=True)
    check_energy_balance(r, np.zeros(1), fleet, 1.0)
    assert r.grid_import_kw[0, 0] == pytest.approx(10.0)
    assert r.solar_kw[0, 0] == 0.0
    assert r.curtailed_kw[0, 0] == pytest.approx(30.0)


def test_where_the_grid_pays_the_battery_charges_and_renewables_fill_what_imports_cannot():
    fleet = _fleet(import_limit_kw=4.0, battery=Battery(100, 5, 5, 1.0, initial_soc=0.5))
    r = _one_step(fleet, demand_kw=10.0, solar_kw=30.0, soc_kwh=50.0, grid_pays=True)
    check_energy_balance(r, np.array([50.0]), fleet, 1.0)
    assert r.grid_import_kw[0, 0] == pytest.approx(4.0)
    assert r.battery_charge_kw[0, 0] == pytest.approx(5.0)
    assert r.solar_kw[0, 0] == pytest.approx(11.0)  # 10 kW of load + 5 of charge - 4 imported
    assert r.curtailed_kw[0, 0] == pytest.approx(19.0)


@pytest.mark.parametrize("setpoint", [None, -5.0])
def test_where_the_grid_pays_the_battery_discharges_only_what_the_sources_cannot_cover(setpoint):
    fleet = _fleet(import_limit_kw=4.0, battery=Battery(100, 5, 5, 1.0, initial_soc=0.5))
    r = _one_step(
        fleet, demand_kw=10.0, solar_kw=3.0, soc_kwh=50.0, battery_kw=setpoint, grid_pays=True
    )
    assert r.battery_discharge_kw[0, 0] == pytest.approx(3.0)
    assert r.grid_import_kw[0, 0] == pytest.approx(4.0)
    assert r.solar_kw[0, 0] == pytest.approx(3.0)
    assert r.unserved_kw[0, 0] == 0.0
    flush = _one_step(
        fleet, demand_kw=2.0, solar_kw=3.0, soc_kwh=50.0, battery_kw=setpoint, grid_pays=True
    )
    assert flush.battery_discharge_kw[0, 0] == 0.0  # it would displace paid imports
    assert flush.grid_import_kw[0, 0] == pytest.approx(4.0 if setpoint is None else 2.0)
    if setpoint is None:  # merit order charges all it can: from the paying grid, then the sun
        assert flush.battery_charge_kw[0, 0] == pytest.approx(5.0)
        assert flush.solar_kw[0, 0] == pytest.approx(3.0)
    else:  # a discharge set-point is held at zero; the sun gives way to the grid
        assert flush.battery_charge_kw[0, 0] == 0.0
        assert flush.solar_kw[0, 0] == 0.0


def test_where_the_grid_pays_the_battery_does_not_charge_from_the_genset():
    fleet = _fleet(
        import_limit_kw=4.0,
        battery=Battery(100, 10, 10, 1.0, initial_soc=0.5),
        genset=Genset(capacity_kw=50, fuel_cost_usd_per_kwh=0.3, emission_factor_g_per_kwh=700),
    )
    r = _one_step(fleet, demand_kw=10.0, solar_kw=0.0, soc_kwh=50.0, grid_pays=True)
    check_energy_balance(r, np.array([50.0]), fleet, 1.0)
    assert r.grid_import_kw[0, 0] == pytest.approx(4.0)
    assert r.battery_charge_kw[0, 0] == 0.0
    assert r.battery_discharge_kw[0, 0] == pytest.approx(6.0)  # before the genset
    assert r.genset_kw[0, 0] == 0.0


def test_where_exporting_costs_surplus_is_stored_or_curtailed():
    fleet = _fleet(export_limit_kw=10.0, battery=Battery(100, 5, 5, 1.0, initial_soc=0.5))
    r = _one_step(fleet, demand_kw=10.0, solar_kw=30.0, soc_kwh=50.0, export_costs=True)
    check_energy_balance(r, np.array([50.0]), fleet, 1.0)
    assert r.export_kw[0, 0] == 0.0
    assert r.battery_charge_kw[0, 0] == pytest.approx(5.0)
    assert r.curtailed_kw[0, 0] == pytest.approx(15.0)
    sell = _one_step(
        fleet, demand_kw=10.0, solar_kw=16.0, soc_kwh=50.0, battery_kw=-5.0, export_costs=True
    )
    assert sell.battery_discharge_kw[0, 0] == 0.0  # nowhere to send it but a costly export
    assert sell.export_kw[0, 0] == 0.0


def test_grid_terms_follow_prices_net_of_the_carbon_price():
    sc = scenario(
        [
            site(
                price=[-20.0, -20.0, 30.0, 30.0],
                carbon=[100.0, 300.0, 100.0, 100.0],
                export_limit_kw=5.0,
            )
        ],
        n=4,
        carbon_price=100.0,
    )
    signals = FleetSignals.from_scenario(sc)
    terms = GridTerms.from_signals(signals, sc.carbon_price_usd_per_tonne)
    assert terms is not None
    # -20 USD/MWh + 100 USD/t x 100 g/kWh = -10 USD/MWh: paid; with 300 g/kWh it costs 10.
    np.testing.assert_array_equal(terms.grid_pays[:, 0], [True, False, False, False])
    np.testing.assert_array_equal(terms.export_costs[:, 0], [True, True, False, False])
    calm = scenario([site(price=30.0)], n=4, carbon_price=100.0)
    assert GridTerms.from_signals(FleetSignals.from_scenario(calm), 100.0) is None


def test_genset_setpoint_beyond_load_is_turned_down_when_nothing_absorbs_it():
    fleet = _fleet(
        genset=Genset(capacity_kw=50, fuel_cost_usd_per_kwh=0.3, emission_factor_g_per_kwh=700)
    )
    r = _one_step(fleet, demand_kw=10.0, solar_kw=4.0, soc_kwh=0.0, genset_kw=50.0)
    check_energy_balance(r, np.zeros(1), fleet, 1.0)
    assert r.genset_kw[0, 0] == pytest.approx(10.0)
    assert r.curtailed_kw[0, 0] == pytest.approx(4.0)


@settings(max_examples=150, deadline=None)
@given(
    n_steps=st.integers(1, 40),
    demand=st.floats(0, 200),
    wiggle=arrays(np.float64, 40, elements=st.floats(0, 1)),
    solar_kw=st.floats(0, 300),
    import_limit=st.floats(0, 150),
    export_limit=st.floats(0, 100),
    battery_kwh=st.floats(0, 400),
    battery_kw=st.floats(1, 100),
    efficiency=st.floats(0.5, 1.0),
    initial=st.floats(0, 1),
    genset_kw=st.floats(0, 80),
    setpoint=st.one_of(st.none(), st.floats(-120, 120)),
    genset_setpoint=st.one_of(st.none(), st.floats(0, 100)),
    pays=arrays(np.bool_, 40),
    costs=arrays(np.bool_, 40),
)
def test_energy_balance_holds_for_random_sites_and_loads(
    n_steps,
    demand,
    wiggle,
    solar_kw,
    import_limit,
    export_limit,
    battery_kwh,
    battery_kw,
    efficiency,
    initial,
    genset_kw,
    setpoint,
    genset_setpoint,
    pays,
    costs,
):
    battery = (
        Battery(battery_kwh, battery_kw, battery_kw, efficiency, 0.1, 0.95, 0.1 + 0.85 * initial)
        if battery_kwh > 0
        else None
    )
    genset = Genset(genset_kw, 0.3, 700) if genset_kw > 0 else None
    fleet = _fleet(
        import_limit_kw=import_limit, export_limit_kw=export_limit, battery=battery, genset=genset
    )
    load = (demand * wiggle[:n_steps])[:, None]
    sun = (solar_kw * wiggle[::-1][:n_steps])[:, None]
    soc0 = fleet.battery_initial_kwh.copy()
    r = dispatch(
        load,
        sun,
        np.zeros_like(sun),
        fleet,
        soc0,
        0.25,
        battery_setpoint_kw=None if setpoint is None else np.array([setpoint]),
        genset_setpoint_kw=None if genset_setpoint is None else np.array([genset_setpoint]),
        terms=GridTerms(pays[:n_steps, None], costs[:n_steps, None]),
    )
    check_energy_balance(r, soc0, fleet, 0.25)
    paid = pays[:n_steps, None]
    assert not (r.export_kw[costs[:n_steps, None]] > 1e-9).any()
    # Where the grid pays, renewables are used only once imports are at their limit.
    assert np.all(r.grid_import_kw[paid & (r.solar_kw > 1e-9)] >= import_limit - 1e-9)
    # Whatever the set-points, the battery never discharges while renewables are curtailed.
    assert not ((r.curtailed_kw > 1e-9) & (r.battery_discharge_kw > 1e-9)).any()
    np.testing.assert_allclose(r.load_kw + r.unserved_kw, load, atol=1e-9)
    np.testing.assert_allclose(r.solar_kw + r.curtailed_kw, sun, atol=1e-9)
    # Merit order: load is unserved only when every source is exhausted.
    if setpoint is None and genset_setpoint is None:
        short = r.unserved_kw > 1e-9
        assert np.all(r.grid_import_kw[short] >= import_limit - 1e-9)
        assert np.all(r.genset_kw[short] >= genset_kw - 1e-9)
        assert np.all(r.curtailed_kw[short] <= 1e-9)
        # Paid imports charge the battery; it never discharges while the grid has room.
        roomy = paid & (r.grid_import_kw < import_limit - 1e-9)
        assert not (r.battery_discharge_kw[roomy] > 1e-9).any()


def test_the_guard_catches_a_broken_balance():
    fleet = _fleet(import_limit_kw=100.0)
    r = dispatch(np.array([[10.0]]), np.zeros((1, 1)), np.zeros((1, 1)), fleet, np.zeros(1), 1.0)
    r.grid_import_kw[0, 0] = 9.0
    with pytest.raises(EnergyBalanceError, match="energy balance"):
        check_energy_balance(r, np.zeros(1), fleet, 1.0)
