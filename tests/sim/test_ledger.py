"""The power ledger: posted demand dispatched when needed, in pieces or at once, into an exact
record: the energy identity, cost and emissions over a few hourly steps worked out by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tests.builders import Battery, Genset, scenario, signal, site
from wattroute.model.arrays import FleetSignals, FleetStatic
from wattroute.sim.ledger import Ledger, head
from wattroute.sim.record import SiteRecorder

HOUR = pd.Timedelta("1h")


def _ledger(
    n: int = 3,
    solar_profile: list[float] | np.ndarray | None = None,
    check_balance: bool = True,
) -> tuple[Ledger, SiteRecorder]:
    """One site on hourly steps: up to 10 kW of imports at 100 USD/MWh and 300 g/kWh, up to
    5 kW of exports paid 40 USD/MWh, 20 kW of solar (``solar_profile``, default 0, 0.5, 1), a
    10 kWh battery half full (4 kW either way, lossless) and a 5 kW genset burning 0.30 USD and
    700 g per kWh."""
    profile = [0.0, 0.5, 1.0] if solar_profile is None else solar_profile
    base = site(
        "a",
        n=n,
        step=HOUR,
        price=100.0,
        carbon=300.0,
        import_limit_kw=10.0,
        export_limit_kw=5.0,
        solar_kw=20.0,
        solar_profile=profile,
        battery=Battery(10.0, 4.0, 4.0, 1.0, 0.0, 1.0, 0.5),
        genset=Genset(5.0, 0.30, 700.0),
    )
    assert base.grid is not None
    grid = dataclasses.replace(base.grid, export_price=signal(np.full(n, 40.0), HOUR))
    sc = scenario([dataclasses.replace(base, grid=grid)], n=n, step=HOUR)
    fleet, signals = FleetStatic.from_scenario(sc), FleetSignals.from_scenario(sc)
    record = SiteRecorder(fleet, signals, 1.0)
    return Ledger(fleet, signals, record, 1.0, check_balance), record


def _column(values: list[float]) -> np.ndarray:
    return np.asarray(values, float)[:, np.newaxis]


def test_three_hours_dispatch_balance_and_cost_as_worked_out_by_hand() -> None:
    ledger, record = _ledger()
    ledger.post(0, _column([16.0, 8.0, 6.0]), None, None)
    # Hour 0, no sun, 16 kW: the battery gives 4 (5 -> 1 kWh), the grid its 10, the genset 2.
    # Hour 1, 10 kW of sun, 8 kW: 2 kW surplus charges the battery (1 -> 3 kWh).
    # Hour 2, 20 kW of sun, 6 kW: the battery takes 4 (3 -> 7 kWh), 5 are exported, 5 curtailed.
    assert ledger.soc_at(1).tolist() == pytest.approx([1.0])
    assert ledger.soc_at(3).tolist() == pytest.approx([7.0])
    assert ledger.done == 3
    energy = {key: float(value[0]) for key, value in record.energy_kwh.items()}
    assert energy == pytest.approx(
        {
            "grid": 10.0,
            "solar": 0.0 + 10.0 + 15.0,
            "wind": 0.0,
            "genset": 2.0,
            "battery_charge": 2.0 + 4.0,
            "battery_discharge": 4.0,
            "curtailed": 5.0,
            "export": 5.0,
            "load": 16.0 + 8.0 + 6.0,
            "unserved": 0.0,
        }
    )
    # grid + solar + wind + genset + discharge = 10 + 25 + 0 + 2 + 4 = 41
    #   = load + charge + export = 30 + 6 + 5
    supply = sum(energy[k] for k in ("grid", "solar", "wind", "genset", "battery_discharge"))
    assert supply == pytest.approx(energy["load"] + energy["battery_charge"] + energy["export"])
    # cost = grid x price - export x export price + genset x fuel
    #      = 10 x 0.100 - 5 x 0.040 + 2 x 0.30 = 1.0 - 0.2 + 0.6 = 1.4 USD
    assert record.cost_usd.tolist() == pytest.approx([1.4])
    # emissions = 10 kWh x 300 g + 2 kWh x 700 g = 3.0 + 1.4 = 4.4 kg
    assert record.emissions_kg.tolist() == pytest.approx([4.4])
    assert record.peak_load_kw.tolist() == pytest.approx([16.0])
    # The per-step series say the same as the totals.
    np.testing.assert_allclose(record.series("grid_import_kw")[:, 0], [10.0, 0.0, 0.0])
    np.testing.assert_allclose(record.series("soc_kwh")[:, 0], [1.0, 3.0, 7.0])
    np.testing.assert_allclose(record.series("cost_usd")[:, 0], [1.6, 0.0, -0.2], atol=1e-6)
    np.testing.assert_allclose(record.series("load_kw")[:, 0], [16.0, 8.0, 6.0])


def test_load_no_source_covers_is_unserved_and_costs_nothing_extra() -> None:
    # 30 kW with no sun: battery 4, grid 10, genset 5; 11 kW unserved.
    ledger, record = _ledger(n=1, solar_profile=[0.0])
    ledger.post(0, _column([30.0]), None, None)
    ledger.flush(1)
    assert record.energy_kwh["unserved"].tolist() == pytest.approx([11.0])
    assert record.energy_kwh["load"].tolist() == pytest.approx([19.0])
    # 10 x 0.100 + 5 x 0.30 = 2.5 USD; 10 x 300 + 5 x 700 g = 6.5 kg
    assert record.cost_usd.tolist() == pytest.approx([2.5])
    assert record.emissions_kg.tolist() == pytest.approx([6.5])


def test_set_points_posted_with_a_block_are_dispatched_with_it() -> None:
    # Hour 0, 6 kW, no sun: the battery told to charge 3 kW from the grid (5 -> 8 kWh) and the
    # genset to run 2 kW: grid 6 + 3 - 2 = 7 kW.
    ledger, record = _ledger(n=1, solar_profile=[0.0])
    ledger.post(0, _column([6.0]), np.array([[3.0]]), np.array([[2.0]]))
    assert ledger.soc_at(1).tolist() == pytest.approx([8.0])
    assert record.energy_kwh["grid"].tolist() == pytest.approx([7.0])
    assert record.energy_kwh["genset"].tolist() == pytest.approx([2.0])
    # 7 x 0.100 + 2 x 0.30 = 1.3 USD
    assert record.cost_usd.tolist() == pytest.approx([1.3])


def test_a_block_dispatched_ahead_is_committed_only_as_far_as_it_is_kept() -> None:
    ledger, record = _ledger()
    ledger.post(0, _column([16.0, 8.0, 6.0]), None, None)
    ahead = ledger.dispatch_block(0, 3)
    assert ledger.done == 0  # nothing written yet
    assert not record.energy_kwh["grid"].any()
    ledger.commit(head(ahead, 1))  # keep hour 0 only
    assert ledger.done == 1
    assert ledger.soc_kwh.tolist() == pytest.approx([1.0])
    assert record.energy_kwh["grid"].tolist() == pytest.approx([10.0])
    assert record.cost_usd.tolist() == pytest.approx([1.6])  # 10 x 0.1 + 2 x 0.3
    ledger.post(1, _column([2.0, 2.0]), None, None)  # the rest, posted anew
    ledger.flush(3)
    # Hours 1-2 with 2 kW: surplus 8 then 18 kW; charge 4 + 4 (1 -> 9 kWh), export 4 + 5.
    assert ledger.soc_kwh.tolist() == pytest.approx([9.0])
    assert record.energy_kwh["export"].tolist() == pytest.approx([9.0])
    assert record.energy_kwh["curtailed"].tolist() == pytest.approx([9.0])


def test_a_block_above_the_firm_supply_might_go_unserved() -> None:
    # Firm supply (without the battery) in hour 0: no sun + 10 kW grid + 5 kW genset = 15 kW;
    # in hour 2: 20 + 10 + 5 = 35 kW.
    ledger, _ = _ledger()
    assert ledger.firm_kw[:, 0].tolist() == pytest.approx([15.0, 25.0, 35.0])
    assert not ledger.might_go_unserved(0, _column([15.0]))
    assert ledger.might_go_unserved(0, _column([15.5]))
    assert not ledger.might_go_unserved(1, _column([25.0, 35.0]))
    assert ledger.might_go_unserved(1, _column([10.0, 35.5]))


def test_dispatching_in_pieces_records_what_dispatching_at_once_does() -> None:
    """A long run flushed in uneven pieces (a policy asking for the battery state now and
    then, and chunks of CHUNK_STEPS) gives the same totals and series as one flush."""
    n = 9000
    rng = np.random.default_rng(7)
    profile = np.clip(np.sin(np.linspace(0, 60 * np.pi, n)), 0, None)
    demand = _column(list(rng.uniform(2.0, 30.0, n)))
    whole, whole_record = _ledger(n=n, solar_profile=profile)
    whole.post(0, demand, None, None)
    whole.flush(n)
    pieces, pieces_record = _ledger(n=n, solar_profile=profile)
    first = 0
    for cut in (1, 17, 4100, 4101, 8999, n):
        pieces.post(first, demand[first:cut], None, None)
        pieces.soc_at(cut)
        first = cut
    for key, total in whole_record.energy_kwh.items():
        np.testing.assert_allclose(pieces_record.energy_kwh[key], total, rtol=1e-10, err_msg=key)
    np.testing.assert_allclose(pieces_record.cost_usd, whole_record.cost_usd, rtol=1e-10)
    np.testing.assert_allclose(pieces_record.emissions_kg, whole_record.emissions_kg, rtol=1e-10)
    np.testing.assert_allclose(
        pieces_record.series("soc_kwh"), whole_record.series("soc_kwh"), rtol=1e-6, atol=1e-6
    )
    energy = {key: float(v[0]) for key, v in whole_record.energy_kwh.items()}
    supply = sum(energy[k] for k in ("grid", "solar", "wind", "genset", "battery_discharge"))
    assert supply == pytest.approx(energy["load"] + energy["battery_charge"] + energy["export"])
    # Cost from the energy: every hour is priced the same here.
    assert whole_record.cost_usd[0] == pytest.approx(
        energy["grid"] * 0.100 - energy["export"] * 0.040 + energy["genset"] * 0.30
    )
