"""The planning LP on tiny instances whose optimum is known by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from tests.builders import Battery, scenario, site
from wattroute.model.arrays import FleetStatic
from wattroute.optimise import JobBlock, PlanningProblem, ServiceBlock, optimise
from wattroute.optimise.formulation import build


def _fleet(*sites) -> FleetStatic:
    return FleetStatic.from_scenario(scenario(list(sites), n=4))


def _problem(
    fleet,
    price,
    *,
    jobs=None,
    services=(),
    solar=None,
    carbon=None,
    period_h=1.0,
    pue=1.0,
    carbon_price=0.0,
    soc=None,
    export_price=None,
):
    price = np.asarray(price, float)
    if price.ndim == 1:
        price = price[:, None]
    h, s = price.shape[0], fleet.n_sites
    price = np.broadcast_to(price, (h, s))
    zeros = np.zeros((h, s))
    return PlanningProblem(
        period_h=period_h,
        fleet=fleet,
        price_usd_per_mwh=price,
        carbon_g_per_kwh=zeros if carbon is None else np.broadcast_to(carbon, (h, s)),
        export_price_usd_per_mwh=price
        if export_price is None
        else np.broadcast_to(export_price, (h, s)),
        solar_kw=zeros if solar is None else np.broadcast_to(solar, (h, s)),
        wind_kw=zeros,
        pue=np.full((h, s), pue),
        carbon_price_usd_per_tonne=carbon_price,
        soc_kwh=fleet.battery_initial_kwh if soc is None else np.asarray(soc, float),
        terminal_value_usd_per_kwh=np.zeros(s),
        jobs=jobs if jobs is not None else JobBlock.empty(h, s),
        services=tuple(services),
        deadline_penalty_usd_per_accelerator_hour=10.0,
        slo_penalty_usd_per_request=0.001,
    )


def _jobs(work, max_acc, available, allowed):
    n = len(work)
    return JobBlock(
        np.asarray(work, float),
        np.asarray(max_acc, float),
        np.asarray(available, float),
        np.asarray(allowed, bool),
        np.full(n, -1),
        np.zeros(n),
    )


def test_one_job_runs_in_the_one_cheap_hour():
    fleet = _fleet(site(accelerators=4, busy_kw=1.0, idle_kw=0.0))
    problem = _problem(fleet, [100.0, 20.0], jobs=_jobs([4.0], [4], [[1, 1]], [[True]]))
    plan = optimise(problem)
    np.testing.assert_allclose(plan.work[0, 0], [0.0, 4.0], atol=1e-7)
    assert plan.totals()["cost_usd"] == pytest.approx(4 * 0.020)
    assert plan.solution.objective == pytest.approx(0.080, abs=1e-4)


@pytest.mark.parametrize(
    ("restart_usd", "objective"),
    [
        # A pause and resume costs more than the cheaper hour saves: no accelerator is
        # restarted; the relaxation runs it at half its accelerators in each hour instead.
        (0.05, 0.025),
        (0.002, 0.022),  # it costs less: pause now, run in the cheap hour, pay the restart
        (None, 0.020),  # restarts not priced (the oracle): the cheap hour, for free
    ],
)
def test_a_running_job_pauses_only_if_the_cheaper_hour_pays_for_the_restart(restart_usd, objective):
    fleet = _fleet(site(accelerators=1, busy_kw=1.0, idle_kw=0.0))
    jobs = dataclasses.replace(
        _jobs([1.0], [1], [[1, 1]], [[True]]),
        current_site=np.zeros(1, np.int64),
        accelerators_now=np.ones(1),
        restart_cost_usd_per_accelerator=None if restart_usd is None else np.array([restart_usd]),
    )
    # The second hour saves 10 USD/MWh on 1 kWh: 0.01 USD.
    plan = optimise(_problem(fleet, [30.0, 20.0], jobs=jobs))
    work = plan.work[0, 0]
    if restart_usd == 0.05:
        assert work[1] <= work[0] + 1e-9
    else:
        np.testing.assert_allclose(work, [0.0, 1.0], atol=1e-7)
    assert plan.solution.objective == pytest.approx(objective, abs=1e-4)


def test_a_negative_restart_cost_is_refused_with_the_field_named():
    # Rises have no upper bound: priced below zero, the plan would be unbounded.
    with pytest.raises(ValueError, match="restart_cost_usd_per_accelerator must be >= 0"):
        dataclasses.replace(
            _jobs([1.0], [1], [[1, 1]], [[True]]),
            restart_cost_usd_per_accelerator=np.array([-0.001]),
        )


def test_parallelism_limits_force_work_into_dearer_hours():
    fleet = _fleet(site(accelerators=8, busy_kw=1.0, idle_kw=0.0))
    problem = _problem(fleet, [100.0, 20.0, 50.0], jobs=_jobs([6.0], [4], [[1, 1, 1]], [[True]]))
    plan = optimise(problem)
    # 4 accelerator-hours in the cheap hour, the other 2 in the next cheapest
    np.testing.assert_allclose(plan.work[0, 0], [0.0, 4.0, 2.0], atol=1e-7)


def test_work_that_cannot_fit_is_left_undone_at_its_penalty():
    fleet = _fleet(site(accelerators=2, busy_kw=1.0, idle_kw=0.0))
    problem = _problem(fleet, [50.0, 50.0], jobs=_jobs([10.0], [2], [[1, 0.5]], [[True]]))
    plan = optimise(problem)
    assert plan.undone_accelerator_hours[0] == pytest.approx(10.0 - 3.0)
    assert plan.totals()["deadline_penalty_usd"] == pytest.approx(70.0)


@pytest.mark.parametrize(("efficiency", "arbitrage"), [(0.81, True), (0.36, False)])
def test_battery_arbitrages_a_price_spread_exactly_up_to_its_efficiency(efficiency, arbitrage):
    # 1 kW of idle load every hour; power costs 20 then 50 USD/MWh. Storing 1 kWh in the cheap
    # hour delivers efficiency kWh later: worth it when 20 < 50 x efficiency.
    battery = Battery(
        capacity_kwh=10,
        charge_kw=5,
        discharge_kw=5,
        round_trip_efficiency=efficiency,
        soc_min=0.0,
        soc_max=1.0,
        initial_soc=0.0,
    )
    fleet = _fleet(site(accelerators=1, busy_kw=1.0, idle_kw=1.0, battery=battery))
    problem = _problem(fleet, [20.0, 50.0])
    plan = optimise(problem)
    eta = math.sqrt(efficiency)
    if arbitrage:
        # charge just enough to cover the second hour's 1 kWh: 1 / eta^2 bought in hour 1
        assert plan.charge_kw[0, 0] == pytest.approx(1 / efficiency, rel=1e-6)
        assert plan.discharge_kw[1, 0] == pytest.approx(1.0, rel=1e-6)
        assert plan.grid_import_kw[1, 0] == pytest.approx(0.0, abs=1e-7)
        assert plan.totals()["cost_usd"] == pytest.approx((1 + 1 / efficiency) * 0.020, rel=1e-6)
    else:
        assert plan.charge_kw.sum() == pytest.approx(0.0, abs=1e-7)
        assert plan.totals()["cost_usd"] == pytest.approx(0.020 + 0.050)
    assert plan.soc_kwh[0, 0] == pytest.approx(plan.charge_kw[0, 0] * eta, rel=1e-6)


@pytest.mark.parametrize("export_limit_kw", [math.inf, 5.0])
def test_a_feed_in_tariff_above_the_price_pays_only_for_power_the_site_makes(export_limit_kw):
    # Exports earn 80 USD/MWh, imports cost 20, and neither link is limited in the first case:
    # importing to export would earn without end (no plan at all); in the simulator a site
    # exports only its surplus. Solar gives 3 kW in the first hour, nothing in the second.
    fleet = _fleet(site(accelerators=1, busy_kw=1.0, idle_kw=0.0, export_limit_kw=export_limit_kw))
    problem = _problem(fleet, [20.0, 20.0], solar=np.array([[3.0], [0.0]]), export_price=80.0)
    plan = optimise(problem)
    np.testing.assert_allclose(plan.grid_export_kw[:, 0], [3.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(plan.grid_import_kw[:, 0], [0.0, 0.0], atol=1e-7)
    assert plan.solution.objective == pytest.approx(-3.0 * 0.080, abs=1e-6)


def test_surplus_solar_is_used_before_the_grid_and_the_rest_curtailed():
    fleet = _fleet(site(accelerators=4, busy_kw=1.0, idle_kw=0.0, export_limit_kw=0.0))
    problem = _problem(
        fleet,
        [80.0, 80.0],
        solar=np.array([[10.0], [0.0]]),
        jobs=_jobs([6.0], [4], [[1, 1]], [[True]]),
    )
    plan = optimise(problem)
    np.testing.assert_allclose(plan.work[0, 0], [4.0, 2.0], atol=1e-7)
    assert plan.curtailed_kw[0, 0] == pytest.approx(6.0)
    assert plan.totals()["grid"] == pytest.approx(2.0)


def test_inference_goes_to_the_cheaper_feasible_site_and_is_dropped_when_nowhere_fits():
    fleet = _fleet(
        site("a", accelerators=4, busy_kw=1.0, idle_kw=0.0),
        site("b", accelerators=4, busy_kw=1.0, idle_kw=0.0, latitude=41),
    )
    service = ServiceBlock(
        rate_rps=np.array([[20.0, 100.0]]),  # point 0: 20 rps, point 1: 100 rps
        feasible=np.array([[True, True], [False, True]]),
        replica_throughput_rps=10.0,
        accelerators_per_replica=1,
    )
    problem = _problem(fleet, np.array([[300.0, 30.0]]), services=[service])
    plan = optimise(problem)
    routed = plan.route[0][0]
    # point 1 may only use b, whose 4 accelerators serve 40 rps: 60 rps dropped; point 0
    # must then go to the dearer a, which beats dropping at 0.001 USD per request.
    assert routed[1, 1] == pytest.approx(40.0, abs=1e-6)
    assert plan.dropped[0][0, 1] == pytest.approx(60.0, abs=1e-6)
    assert routed[0, 0] == pytest.approx(20.0, abs=1e-6)
    assert routed[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert routed[1, 0] == 0.0  # no column for the infeasible pair


def test_columns_exist_only_inside_job_windows_and_allowed_sites():
    fleet = _fleet(site("a"), site("b", latitude=41))
    jobs = _jobs([1.0, 1.0], [1, 1], [[0, 1, 1], [1, 0, 0]], [[True, False], [True, True]])
    lp = build(_problem(fleet, [10.0, 10.0, 10.0], jobs=jobs))
    j, s, h = lp.layout.work_index
    assert sorted(zip(j.tolist(), s.tolist(), h.tolist(), strict=True)) == [
        (0, 0, 1),
        (0, 0, 2),
        (1, 0, 0),
        (1, 1, 0),
    ]
