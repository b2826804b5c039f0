"""The placement query on fleets small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.builders import START, Genset, scenario, site
from wattroute.errors import InputError
from wattroute.model.arrays import FleetStatic
from wattroute.optimise.placement import PlacementRequest, PowerOutlook, place

STEP_H = 5 / 60
T = 36  # three hours of 5-minute steps


def fleet(**b: object) -> FleetStatic:
    """Site ``a`` (PUE 1.5) and ``b`` (PUE 1), 8 accelerators of 1 kW busy, 0 idle; ``b``
    options from ``b``."""
    return FleetStatic.from_scenario(
        scenario([site("a", pue=1.5), site("b", **b)])  # type: ignore[arg-type]
    )


def outlook(**columns: np.ndarray) -> PowerOutlook:
    """Both sites: 100 USD/MWh and 300 g/kWh, no renewables, PUE from the fleet; overrides by
    signal, ``(T, 2)``."""
    base = {
        "price_usd_per_mwh": np.full((T, 2), 100.0),
        "export_price_usd_per_mwh": np.zeros((T, 2)),
        "carbon_g_per_kwh": np.full((T, 2), 300.0),
        "solar_kw": np.zeros((T, 2)),
        "wind_kw": np.zeros((T, 2)),
        "pue": np.column_stack([np.full(T, 1.5), np.ones(T)]),
    }
    base.update(columns)
    return PowerOutlook(START, STEP_H, load_kw=np.zeros(2), **base)


def cheap_window_at_b() -> dict[str, np.ndarray]:
    price = np.full((T, 2), 100.0)
    carbon = np.full((T, 2), 300.0)
    price[12:24, 1] = 20.0  # 01:00 to 02:00 at b
    carbon[12:24, 1] = 100.0
    return {"price_usd_per_mwh": price, "carbon_g_per_kwh": carbon}


def request(
    work: float = 2.0, n: int = 2, deadline_h: float = 3.0, **kw: object
) -> PlacementRequest:
    return PlacementRequest(work, n, START + pd.Timedelta(hours=deadline_h), **kw)  # type: ignore[arg-type]


def test_the_cheap_window_wins_and_now_is_the_best_site_for_now():
    # 2 accelerator-hours on 2 accelerators: 1 h at 2 kW IT.
    result = place(request(), fleet(), outlook(**cheap_window_at_b()), 100.0)
    best, now = result.best, result.now
    assert (best.site, best.start, best.end) == (
        "b",
        START + pd.Timedelta(hours=1),
        START + pd.Timedelta(hours=2),
    )
    assert best.energy_kwh == pytest.approx(2.0)
    assert best.cost_usd == pytest.approx(2.0 * 20 / 1000)  # 0.04 USD
    assert best.emissions_kg == pytest.approx(2.0 * 100 / 1000)  # 0.2 kg
    assert best.objective_usd == pytest.approx(0.04 + 100 * 0.2 / 1000)
    # Now: b (2 kWh at 100 USD/MWh) beats a (PUE 1.5: 3 kWh).
    assert now is not None
    assert (now.site, now.start) == ("b", START)
    assert now.cost_usd == pytest.approx(0.2)
    assert now.emissions_kg == pytest.approx(0.6)
    assert {o.site: o.start for o in result.by_site}["a"] == START  # a is flat: earliest
    assert {o.site: o.energy_kwh for o in result.by_site}["a"] == pytest.approx(3.0)
    assert result.runtime_h == pytest.approx(1.0)
    assert result.starts == 25  # 00:00 .. 02:00


def test_a_deadline_before_the_window_keeps_the_job_at_now():
    result = place(request(deadline_h=1.5), fleet(), outlook(**cheap_window_at_b()), 0.0)
    # The last start is 00:30, which catches half of the window: 0.5 h at 20 + 0.5 h at 100.
    assert (result.best.site, result.best.start) == ("b", START + pd.Timedelta(minutes=30))
    assert result.best.cost_usd == pytest.approx(1.0 * 0.020 + 1.0 * 0.100)
    assert result.starts == 7


def test_spare_renewables_are_free_when_curtailed_and_cost_the_export_price_when_exported():
    solar = np.zeros((T, 2))
    solar[:, 1] = 5.0  # b: 5 kW of sun against a 4 kW load: 1 kW spare
    view = outlook(solar_kw=solar)
    view = PowerOutlook(**{**view.__dict__, "load_kw": np.array([0.0, 4.0])})
    result = place(request(), fleet(), view, 0.0, offline=frozenset({"a"}))
    # 2 kW for 1 h: 1 kWh spare (curtailed: free), 1 kWh from the grid at 100 USD/MWh.
    assert result.best.renewable_kwh == pytest.approx(1.0)
    assert result.best.bought_kwh == pytest.approx(1.0)
    assert result.best.cost_usd == pytest.approx(0.1)
    assert result.best.emissions_kg == pytest.approx(0.3)
    # Half the spare would be exported at 40 USD/MWh: using it forgoes that.
    exporting = PowerOutlook(**{**view.__dict__, "export_price_usd_per_mwh": np.full((T, 2), 40.0)})
    paid = place(request(), fleet(export_limit_kw=0.5), exporting, 0.0, offline=frozenset({"a"}))
    assert paid.best.cost_usd == pytest.approx(0.5 * 0.040 + 1.0 * 0.1)
    assert paid.best.emissions_kg == pytest.approx(0.3)


def test_the_last_step_counts_the_part_of_it_the_run_takes():
    # 1.4 accelerator-hours on 2: 0.7 h, 8 full steps and 0.4 of a ninth.
    result = place(request(work=1.4), fleet(), outlook(), 0.0)
    assert result.best.site == "b"
    assert result.best.energy_kwh == pytest.approx(1.4)
    assert result.best.end == START + pd.Timedelta(minutes=42)


def test_the_criterion_changes_the_answer():
    price = np.full((T, 2), 100.0)
    carbon = np.full((T, 2), 300.0)
    price[:, 0], carbon[:, 0] = 50.0, 600.0  # a: cheap and dirty (PUE 1.5: 3 kWh)
    view = outlook(price_usd_per_mwh=price, carbon_g_per_kwh=carbon)
    assert place(request(minimise="cost"), fleet(), view, 0.0).best.site == "a"
    assert place(request(minimise="emissions"), fleet(), view, 0.0).best.site == "b"
    # Objective at 100 USD/t: a 0.15 + 0.18, b 0.2 + 0.06.
    assert place(request(), fleet(), view, 100.0).best.site == "b"


def test_an_islanded_site_without_a_genset_runs_only_on_spare_power():
    solar = np.zeros((T, 2))
    solar[24:, 1] = 3.0  # from 02:00
    view = outlook(solar_kw=solar)
    result = place(request(deadline_h=3.0, allowed_sites=("b",)), fleet(grid=False), view, 0.0)
    assert result.now is None
    assert result.best.start == START + pd.Timedelta(hours=2)
    assert result.best.cost_usd == 0.0
    with pytest.raises(InputError) as err:
        place(request(deadline_h=2.5, allowed_sites=("b",)), fleet(grid=False), view, 0.0)
    assert err.value.field == "allowed_sites"
    genset = Genset(10.0, 0.3, 700.0)
    fuelled = place(
        request(deadline_h=2.5, allowed_sites=("b",)), fleet(grid=False, genset=genset), view, 0.0
    )
    assert fuelled.now is not None
    assert fuelled.now.cost_usd == pytest.approx(2.0 * 0.3)
    assert fuelled.now.emissions_kg == pytest.approx(2.0 * 0.7)


def test_beyond_the_forecast_each_signal_repeats_its_last_day():
    day = 288
    price = np.column_stack([np.arange(day + 1.0), np.arange(day + 1.0)])
    view = PowerOutlook(
        START,
        STEP_H,
        price,
        np.zeros_like(price),
        np.zeros_like(price),
        np.zeros_like(price),
        np.zeros_like(price),
        np.ones_like(price),
        np.zeros(2),
    )
    rows = view.rows(2 * day + 5)["price_usd_per_mwh"][:, 0]
    assert rows[day] == day
    assert rows[day + 1] == 1.0  # the same time of day, a day before
    assert rows[2 * day + 1] == 1.0


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (request(allowed_sites=("a", "mars")), "allowed_sites"),
        (request(n=9), "accelerators"),
        (request(deadline_h=0.5), "deadline"),
    ],
)
def test_what_cannot_be_placed_names_the_field(req, field):
    with pytest.raises(InputError) as err:
        place(req, fleet(), outlook(), 0.0)
    assert err.value.field == field
    assert err.value.fix


def test_the_fleet_period_bounds_the_starts():
    end = START + pd.Timedelta(hours=1, minutes=30)
    result = place(request(), fleet(), outlook(**cheap_window_at_b()), 0.0, period_end=end)
    assert result.starts == 7
    with pytest.raises(InputError, match="fleet period"):
        place(request(), fleet(), outlook(), 0.0, period_end=START + pd.Timedelta(minutes=30))
