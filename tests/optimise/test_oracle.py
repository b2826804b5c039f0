"""The oracle is a lower bound: no policy beats it on any scenario."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders import Battery, DemandPoint, job, scenario, service, site
from wattroute.errors import InputError
from wattroute.optimise.oracle import capture_ratio, oracle_problem, solve_oracle
from wattroute.policies import get_policy
from wattroute.policies.mpc import MPCPolicy
from wattroute.scenario import default_scenario
from wattroute.signals.forecast import Clairvoyant
from wattroute.sim import SimulationOptions, simulate, summarize

DAY = 288


def _small_fleet(seed: int):
    rng = np.random.default_rng(seed)
    n = 2 * DAY
    hours = np.arange(n) / 12
    price = 40 + 30 * np.sin(2 * np.pi * (hours - 14) / 24) + rng.normal(0, 3, n).cumsum() / 10
    price = np.repeat(price[::12], 12)  # hourly, as market prices are
    sun = np.clip(np.sin(2 * np.pi * (hours - 6) / 24), 0, None)
    sites = [
        site(
            "sunny",
            n=n,
            price=price,
            carbon=np.repeat(rng.uniform(100, 400, n // 12), 12),
            solar_kw=12.0,
            solar_profile=sun,
            import_limit_kw=8.0,
            accelerators=12,
            idle_kw=0.1,
            battery=Battery(20, 6, 6, 0.9, 0.1, 1.0, 0.5),
        ),
        site(
            "grid",
            n=n,
            price=price[::-1].copy(),
            carbon=300.0,
            accelerators=8,
            idle_kw=0.1,
            latitude=41.0,
        ),
    ]
    jobs = [
        job(
            f"j{i}",
            float(rng.uniform(0, 30)),
            float(rng.uniform(2, 12)),
            int(rng.integers(1, 4)),
            48.0,  # a placeholder after the arrival: replaced below
        )
        for i in range(10)
    ]
    jobs = [
        type(j)(
            **{
                **j.__dict__,
                "deadline": j.arrival
                + np.timedelta64(
                    int(
                        (j.work_accelerator_hours / j.max_accelerators + rng.uniform(2, 14)) * 3600
                    ),
                    "s",
                ),
            }
        )
        for j in jobs
    ]
    jobs = [j for j in jobs if j.deadline <= jobs[0].arrival.normalize() + np.timedelta64(2, "D")]
    rate = 20 + 10 * np.sin(2 * np.pi * hours / 24)
    return scenario(
        sites,
        n=n,
        jobs=jobs,
        points=[DemandPoint("p", 40.1, -100.1)],
        services=[service("v", "p", rate, slo_ms=30, throughput=10)],
        carbon_price=100,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_policy_beats_the_oracle(seed):
    sc = _small_fleet(seed)
    _, oracle = solve_oracle(sc)
    for name in ("agnostic", "greedy", "mpc"):
        s = summarize(simulate(sc, get_policy(name), SimulationOptions(check_energy_balance=True)))
        assert s["repairs"]["sites_powered_down"] == 0  # the bound's premise
        assert oracle["objective_usd"] <= s["objective_usd"] + 1e-6, name


def test_no_policy_beats_the_oracle_on_the_default_scenario():
    sc = default_scenario()
    _, oracle = solve_oracle(sc)
    for name in ("agnostic", "greedy"):
        s = summarize(simulate(sc, get_policy(name), SimulationOptions()))
        assert oracle["objective_usd"] <= s["objective_usd"], name


def test_a_finer_oracle_is_a_tighter_bound():
    sc = _small_fleet(4)
    _, hourly = solve_oracle(sc, period_h=1.0)
    _, quarter = solve_oracle(sc, period_h=0.25)
    assert hourly["objective_usd"] <= quarter["objective_usd"] + 1e-6


def test_mpc_with_perfect_forecasts_comes_close_to_the_oracle():
    sc = _small_fleet(5)
    _, oracle = solve_oracle(sc)
    base = summarize(simulate(sc, get_policy("agnostic"), SimulationOptions()))
    mpc = summarize(simulate(sc, MPCPolicy(), SimulationOptions(forecaster=Clairvoyant())))
    ratio = capture_ratio(base["objective_usd"], mpc["objective_usd"], oracle["objective_usd"])
    assert mpc["batch"]["deadline_misses"] == 0
    assert mpc["inference"]["slo_violation_fraction"] == pytest.approx(0.0, abs=1e-9)
    # The gap is what the relaxation ignores: checkpoints, integer accelerators, one site per job.
    assert ratio > 0.8


def test_the_oracle_step_must_divide_the_scenario():
    sc = _small_fleet(1)
    with pytest.raises(InputError, match="oracle-step"):
        oracle_problem(sc, period_h=0.7)


def test_capture_ratio_definition():
    assert capture_ratio(100.0, 60.0, 50.0) == pytest.approx(0.8)
    assert capture_ratio(100.0, 100.0, 50.0) == 0.0
    assert np.isnan(capture_ratio(100.0, 90.0, 100.0))


def test_the_oracle_plans_no_work_nobody_asked_for_when_power_pays():
    """Where importing earns money (a negative price net of the carbon price), more busy
    accelerators would earn more; the oracle still plans exactly the work the jobs need, and
    reports it."""
    n = DAY
    price = np.where((np.arange(n) // 12) % 6 == 0, -80.0, 60.0)  # every sixth hour pays
    sc = scenario(
        [site("a", n=n, price=price, carbon=100.0, accelerators=16, idle_kw=0.2)],
        n=n,
        jobs=[job("j1", 0.0, 12.0, 4, 20.0), job("j2", 2.0, 6.0, 2, 12.0)],
        carbon_price=50.0,
    )
    plan, summary = solve_oracle(sc, 1.0)
    planned = plan.work.sum(axis=(1, 2)) * plan.problem.period_h  # accelerator-hours per job
    np.testing.assert_allclose(planned, [12.0, 6.0], rtol=1e-9)
    assert summary["batch"]["work_accelerator_hours"] == pytest.approx(18.0, rel=1e-9)
    assert summary["batch"]["deadline_misses"] == 0
