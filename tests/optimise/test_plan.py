"""A plan's load, cost, emissions, energy and penalties: the arithmetic of its flows, checked
on a hand-made plan of two sites and two half-hour periods and on one the LP solves by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.builders import Genset, scenario, site
from wattroute.model.arrays import FleetStatic
from wattroute.optimise import JobBlock, PlanningProblem, ServiceBlock, optimise
from wattroute.optimise.plan import Plan
from wattroute.optimise.solver import LpSolution

ENERGY_IN = ("grid", "solar", "wind", "genset", "battery_discharge")
ENERGY_OUT = ("load", "battery_charge", "export")


def _fleet(with_b: bool = True) -> FleetStatic:
    """a: 4 accelerators (1 kW busy, 0.25 idle), 0.5 kW base load, a genset burning 0.30 USD
    and 700 g per kWh; b: 2 accelerators (2 kW busy, 0.5 idle), no base load, no genset."""
    a = dataclasses.replace(
        site("a", n=2, accelerators=4, busy_kw=1.0, idle_kw=0.25, genset=Genset(5.0, 0.30, 700.0)),
        base_it_kw=0.5,
    )
    b = site("b", n=2, accelerators=2, busy_kw=2.0, idle_kw=0.5)
    return FleetStatic.from_scenario(scenario([a, b] if with_b else [a], n=2))


def _problem(
    fleet: FleetStatic,
    price: list[list[float]],
    carbon: list[list[float]],
    pue: list[list[float]],
    jobs: JobBlock,
    services: tuple[ServiceBlock, ...] = (),
    export_price: list[list[float]] | None = None,
    solar: list[list[float]] | None = None,
    wind: list[list[float]] | None = None,
    period_h: float = 1.0,
) -> PlanningProblem:
    shape = np.shape(price)
    zeros = np.zeros(shape)
    return PlanningProblem(
        period_h=period_h,
        fleet=fleet,
        price_usd_per_mwh=np.asarray(price, float),
        carbon_g_per_kwh=np.asarray(carbon, float),
        export_price_usd_per_mwh=np.asarray(price if export_price is None else export_price, float),
        solar_kw=zeros if solar is None else np.asarray(solar, float),
        wind_kw=zeros if wind is None else np.asarray(wind, float),
        pue=np.asarray(pue, float),
        carbon_price_usd_per_tonne=0.0,
        soc_kwh=fleet.battery_initial_kwh,
        terminal_value_usd_per_kwh=np.zeros(fleet.n_sites),
        jobs=jobs,
        services=services,
        deadline_penalty_usd_per_accelerator_hour=10.0,
        slo_penalty_usd_per_request=0.001,
    )


def _one_job(n_periods: int, n_sites: int, work: float = 4.0) -> JobBlock:
    return JobBlock(
        np.array([work]),
        np.array([4.0]),
        np.ones((1, n_periods)),
        np.ones((1, n_sites), bool),
        np.array([-1]),
        np.zeros(1),
    )


def _hand_made() -> Plan:
    """Two sites, two periods of half an hour, flows that balance in every period and site.

    Busy accelerators: the job runs on 2 at a in period 0 and on 1 at b in period 1; the
    service (2 accelerators a replica of 10 requests/s: 0.2 per request/s) sends 5 requests/s
    to b in period 0 (3 of 8 dropped) and 10 to a in period 1. So busy = [[2, 1], [2, 1]].
    IT kW: a 0.5 + 0.25 x 4 + 0.75 x 2 = 3.0; b 0.5 x 2 + 1.5 x 1 = 2.5 in both periods.
    Load = IT x PUE - shed: a 3.0 x 1.2 = 3.6, 3.0 x 1.5 = 4.5; b 2.5 - 0.5 = 2.0, then 2.5.
    """
    fleet = _fleet()
    service = ServiceBlock(np.array([[8.0], [10.0]]), np.ones((1, 2), bool), 10.0, 2)
    problem = _problem(
        fleet,
        price=[[100.0, 50.0], [200.0, 50.0]],
        export_price=[[40.0, 20.0], [40.0, 20.0]],
        carbon=[[300.0, 400.0], [100.0, 400.0]],
        pue=[[1.2, 1.0], [1.5, 1.0]],
        solar=[[2.0, 1.0], [4.0, 0.0]],
        wind=[[0.0, 3.0], [0.0, 0.0]],
        jobs=_one_job(2, 2),
        services=(service,),
        period_h=0.5,
    )
    work = np.zeros((1, 2, 2))
    work[0, 0, 0] = 2.0
    work[0, 1, 1] = 1.0
    route = np.zeros((2, 1, 2))
    route[0, 0, 1] = 5.0
    route[1, 0, 0] = 10.0
    # Per period and site, in = out:
    #   a0: grid 1.6 + renewables 2 + genset 1         = load 3.6 + charge 1
    #   b0: renewables 3 (of 4: 1 curtailed)           = load 2.0 + export 1
    #   a1: renewables 3 (of 4) + discharge 2          = load 4.5 + export 0.5
    #   b1: grid 2.5                                   = load 2.5
    return Plan(
        problem=problem,
        solution=LpSolution(
            ok=True, status="hand-made", objective=0.0, x=np.zeros(0), seconds=0.0, iterations=0
        ),
        grid_import_kw=np.array([[1.6, 0.0], [0.0, 2.5]]),
        grid_export_kw=np.array([[0.0, 1.0], [0.5, 0.0]]),
        genset_kw=np.array([[1.0, 0.0], [0.0, 0.0]]),
        charge_kw=np.array([[1.0, 0.0], [0.0, 0.0]]),
        discharge_kw=np.array([[0.0, 0.0], [2.0, 0.0]]),
        renewable_kw=np.array([[2.0, 3.0], [3.0, 0.0]]),
        shed_kw=np.array([[0.0, 0.5], [0.0, 0.0]]),
        soc_kwh=np.zeros((2, 2)),
        work=work,
        undone_accelerator_hours=np.array([1.5]),
        deferred_accelerator_hours=np.zeros(1),
        route=(route,),
        dropped=(np.array([[3.0], [0.0]]),),
    )


def test_load_is_pue_times_base_idle_and_busy_power_less_what_is_shed() -> None:
    plan = _hand_made()
    np.testing.assert_allclose(plan.busy_accelerators(), [[2.0, 1.0], [2.0, 1.0]])
    np.testing.assert_allclose(plan.load_kw(), [[3.6, 2.0], [4.5, 2.5]])
    np.testing.assert_allclose(plan.curtailed_kw, [[0.0, 1.0], [1.0, 0.0]])


def test_totals_are_the_cost_emissions_and_energy_of_the_flows() -> None:
    totals = _hand_made().totals()
    # cost = 0.5 h x (grid x price - export x export price + genset x fuel)
    #      = 0.5 x ((1.6 x 0.1 + 2.5 x 0.05) - (1.0 x 0.02 + 0.5 x 0.04) + 1.0 x 0.30)
    #      = 0.5 x (0.285 - 0.04 + 0.3) = 0.2725 USD
    assert totals["cost_usd"] == pytest.approx(0.2725)
    # emissions = 0.5 h x (1.6 x 300 + 2.5 x 400 + 1.0 x 700) g = 0.5 x 2180 g = 1.09 kg
    assert totals["emissions_kg"] == pytest.approx(1.09)
    # Renewables used split by what each could give: a (all solar) 2 + 3, b 3 x 1/4 solar.
    energy = {
        "grid": 0.5 * (1.6 + 2.5),
        "solar": 0.5 * (2.0 + 3.0 * 0.25 + 3.0),
        "wind": 0.5 * (3.0 * 0.75),
        "genset": 0.5 * 1.0,
        "battery_charge": 0.5 * 1.0,
        "battery_discharge": 0.5 * 2.0,
        "curtailed": 0.5 * (1.0 + 1.0),
        "export": 0.5 * (1.0 + 0.5),
        "load": 0.5 * (3.6 + 2.0 + 4.5 + 2.5),
        "unserved": 0.5 * 0.5,
    }
    assert {key: totals[key] for key in energy} == pytest.approx(energy)
    # In = out: 2.05 + 2.875 + 1.125 + 0.5 + 1.0 = 7.55 = 6.3 + 0.5 + 0.75.
    assert sum(totals[k] for k in ENERGY_IN) == pytest.approx(7.55)
    assert sum(totals[k] for k in ENERGY_OUT) == pytest.approx(7.55)
    # Requests: (8 + 10) requests/s x 1800 s = 32400; dropped 3 x 1800 = 5400.
    assert totals["requests"] == pytest.approx(32400.0)
    assert totals["dropped"] == pytest.approx(5400.0)
    assert totals["slo_penalty_usd"] == pytest.approx(5400.0 * 0.001)
    assert totals["undone_accelerator_hours"] == pytest.approx(1.5)
    assert totals["deadline_penalty_usd"] == pytest.approx(1.5 * 10.0)
    assert totals["shed_penalty_usd"] == pytest.approx(0.25 * 10.0)  # default 10 USD/kWh


def test_totals_of_periods_add_up_to_the_whole_and_penalties_for_work_belong_to_none() -> None:
    plan = _hand_made()
    first, second, whole = plan.totals(slice(0, 1)), plan.totals(slice(1, 2)), plan.totals()
    # Period 0: 0.5 x (0.16 - 0.02 + 0.30) = 0.22 USD, 0.5 x (480 + 700) g = 0.59 kg;
    # period 1: 0.5 x (0.125 - 0.02) = 0.0525 USD, 0.5 x 1000 g = 0.5 kg.
    assert (first["cost_usd"], second["cost_usd"]) == pytest.approx((0.22, 0.0525))
    assert (first["emissions_kg"], second["emissions_kg"]) == pytest.approx((0.59, 0.5))
    for key in ("cost_usd", "emissions_kg", "grid", "load", "requests", "dropped"):
        assert first[key] + second[key] == pytest.approx(whole[key]), key
    for key in ("undone_accelerator_hours", "deadline_penalty_usd"):
        assert first[key] == second[key] == whole[key], key
    # Per period and site: a0 0.5 x (0.16 + 0.30), b0 and a1 0.5 x -0.02 of exports, b1
    # 0.5 x 0.125; together the totals.
    np.testing.assert_allclose(plan.cost_usd(), [[0.23, -0.01], [-0.01, 0.0625]])
    by_site = plan.energy_kwh_by_site()
    np.testing.assert_allclose(by_site["load"], [0.5 * (3.6 + 4.5), 0.5 * (2.0 + 2.5)])


def test_the_lp_runs_the_job_in_the_cheap_hour_and_its_plan_costs_what_its_flows_do() -> None:
    # One site (a): 4 accelerators of 1 kW busy / 0.25 idle, 0.5 kW base load, PUE 1.2, prices
    # 100 then 20 USD/MWh at 300 then 500 g/kWh. 4 accelerator-hours of work go in hour 1.
    problem = _problem(
        _fleet(with_b=False),
        price=[[100.0], [20.0]],
        carbon=[[300.0], [500.0]],
        pue=[[1.2], [1.2]],
        jobs=_one_job(2, 1),
    )
    plan = optimise(problem)
    np.testing.assert_allclose(plan.work[0, 0], [0.0, 4.0], atol=1e-7)
    # Load = 1.2 x (0.5 + 0.25 x 4 + 0.75 x busy): idle 1.2 x 1.5 = 1.8, busy 1.2 x 4.5 = 5.4.
    np.testing.assert_allclose(plan.load_kw()[:, 0], [1.8, 5.4], atol=1e-6)
    np.testing.assert_allclose(plan.grid_import_kw[:, 0], [1.8, 5.4], atol=1e-6)
    totals = plan.totals()
    # 1.8 x 0.100 + 5.4 x 0.020 = 0.18 + 0.108 = 0.288 USD; 1.8 x 0.3 + 5.4 x 0.5 = 3.24 kg.
    assert totals["cost_usd"] == pytest.approx(0.288, abs=1e-6)
    assert totals["emissions_kg"] == pytest.approx(3.24, abs=1e-5)
    assert totals["undone_accelerator_hours"] == pytest.approx(0.0, abs=1e-7)
    assert sum(totals[k] for k in ENERGY_IN) == pytest.approx(
        sum(totals[k] for k in ENERGY_OUT), abs=1e-6
    )
