"""The simulator: accounting, job progress, overheads, inference, repairs, determinism."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import time

import numpy as np
import pytest

from tests.builders import Battery, DemandPoint, Scripted, job, scenario, service, site
from wattroute.policies import get_policy
from wattroute.policies.base import Decision, Observation
from wattroute.signals.forecast import Persistence
from wattroute.signals.publication import DayAhead
from wattroute.sim import SimulationOptions, simulate, summarize


class StepByStep:
    """Wraps a policy and forces it to decide at every step."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name

    def reset(self):
        self.inner.reset()

    def stats(self):
        return self.inner.stats()

    def decide(self, observation: Observation) -> Decision:
        return replace(self.inner.decide(observation), hold_steps=1)


def _run(sc, policy="agnostic"):
    p = get_policy(policy) if isinstance(policy, str) else policy
    return summarize(simulate(sc, p, SimulationOptions(check_energy_balance=True)))


def test_one_job_energy_and_cost_by_hand():
    # 4 accelerator-hours at 4 accelerators: one hour at 4 kW (busy 1 kW, idle 0, PUE 1.2).
    sc = scenario(
        [site(price=100.0, carbon=500.0, pue=1.2)],
        n=36,
        jobs=[job("j", 0, 4.0, 4, 2.5)],
        carbon_price=50,
    )
    s = _run(sc)
    assert s["energy_kwh"]["grid"] == pytest.approx(4.8)
    assert s["cost_usd"] == pytest.approx(4.8 * 0.1)
    assert s["emissions_kg"] == pytest.approx(4.8 * 0.5)
    assert s["objective_usd"] == pytest.approx(0.48 + 50 * 2.4 / 1000)
    assert s["batch"]["completed"] == 1
    assert s["batch"]["deadline_misses"] == 0
    assert s["batch"]["mean_completion_delay_h"] == pytest.approx(0.0)


def test_a_job_finishing_mid_step_draws_power_only_for_the_part_it_ran():
    sc = scenario([site()], n=48, jobs=[job("j", 0, 2.52, 1, 4.0)])
    s = _run(sc)
    assert s["energy_kwh"]["load"] == pytest.approx(2.52)
    assert s["batch"]["work_accelerator_hours"] == pytest.approx(2.52)


def test_jobs_finishing_inside_one_block_draw_power_only_while_they_run():
    # agnostic holds its decision over completions: one block, three different finishes.
    works = [1.26, 2.52, 3.1]
    sc = scenario([site()], n=48, jobs=[job(f"j{i}", 0, w, 1, 4.0) for i, w in enumerate(works)])
    record = simulate(sc, get_policy("agnostic"), SimulationOptions(check_energy_balance=True))
    assert record.blocks == 1
    np.testing.assert_allclose(record.jobs.completed_h, works)
    busy = record.sites.series("batch_accelerators")[:, 0]
    # 5-minute steps: the jobs end 0.12 into step 15, 0.24 into step 30 and 0.2 into step 37.
    expected = np.zeros(48)
    expected[:15], expected[15], expected[16:30] = 3.0, 2.12, 2.0
    expected[30], expected[31:37], expected[37] = 1.24, 1.0, 0.2
    np.testing.assert_allclose(busy, expected, atol=1e-5)
    s = summarize(record)
    assert s["energy_kwh"]["load"] == pytest.approx(sum(works))


def test_energy_identity_and_site_totals_add_up():
    sc = scenario(
        [
            site(
                "a",
                solar_kw=5.0,
                solar_profile=np.linspace(0, 1, 288),
                export_limit_kw=1.0,
                battery=Battery(20, 5, 5, 0.9, 0.1, 1.0, 0.5),
            ),
            site("b", import_limit_kw=3.0),
        ],
        jobs=[job(f"j{i}", i, 6.0, 2, 20.0) for i in range(6)],
    )
    s = _run(sc)
    e = s["energy_kwh"]
    supply = e["grid"] + e["solar"] + e["wind"] + e["genset"] + e["battery_discharge"]
    assert supply == pytest.approx(e["load"] + e["battery_charge"] + e["export"])
    assert e["unserved"] == pytest.approx(0.0, abs=1e-9)
    assert sum(x["cost_usd"] for x in s["sites"].values()) == pytest.approx(s["cost_usd"])
    assert sum(x["energy_kwh"]["load"] for x in s["sites"].values()) == pytest.approx(e["load"])


def test_checkpoint_and_migration_overheads_delay_completion():
    # 3 h of work at 1 accelerator: run 1 h at site 0, pause 1 h, resume at site 1.
    def plan(step):
        return 0 if step < 12 else (-1 if step < 24 else 1)

    sites = [site("a"), site("b")]
    base = scenario(
        sites, n=120, jobs=[job("j", 0, 3.0, 1, 10.0, checkpoint_h=0.25, migration_h=0.5)]
    )
    s = _run(base, Scripted(plan))
    assert s["batch"]["completed"] == 1
    assert s["batch"]["moves"] == 1
    assert s["batch"]["overhead_hours"] == pytest.approx(0.75)
    # 1 h + 1 h paused + 0.75 h overhead + 2 h = 4.75 h; the fastest possible was 3 h.
    assert s["batch"]["mean_completion_delay_h"] == pytest.approx(1.75)
    # overhead time draws busy power: 3 h of work + 0.75 h of overhead at 1 kW.
    assert s["energy_kwh"]["load"] == pytest.approx(3.75)


def test_agnostic_routes_to_the_nearest_feasible_site_and_counts_violations():
    near = site("near", latitude=40.0, longitude=-100.0)
    far = site("far", latitude=10.0, longitude=20.0)
    points = [DemandPoint("p", 40.01, -100.01)]
    rate = np.full(288, 25.0)
    sc = scenario(
        [far, near],
        points=points,
        services=[service("v", "p", rate, slo_ms=20, service_ms=5, throughput=10)],
    )
    s = _run(sc)
    assert s["inference"]["slo_violation_fraction"] == pytest.approx(0.0)
    assert s["inference"]["requests"] == pytest.approx(25.0 * 288 * 300)
    near_load = s["sites"]["near"]["energy_kwh"]["load"]
    assert near_load == pytest.approx(24 * 2.5)  # 2.5 accelerators busy on average at 1 kW
    assert s["sites"]["far"]["energy_kwh"]["load"] == pytest.approx(0.0)

    unreachable = scenario(
        [far], points=points, services=[service("v", "p", rate, slo_ms=20, service_ms=5)]
    )
    s = _run(unreachable)
    assert s["inference"]["dropped"] == pytest.approx(s["inference"]["requests"])
    assert s["inference"]["slo_violation_fraction"] == pytest.approx(1.0)
    # 25 requests/s x 86400 s, all dropped, at the default 0.001 USD a request
    assert s["penalties_usd"]["slo"] == pytest.approx(25.0 * 86400 * 0.001)


def test_inference_takes_accelerators_from_batch_when_demand_rises():
    rate = np.concatenate([np.full(144, 10.0), np.full(144, 60.0)])  # 1 then 6 replicas
    sc = scenario(
        [site("a", accelerators=8)],
        points=[DemandPoint("p", 40.0, -100.0)],
        services=[service("v", "p", rate, throughput=10)],
        jobs=[job("j", 0, 100.0, 7, 24.0, min_acc=1)],
    )
    s = _run(sc)
    assert s["inference"]["slo_violation_fraction"] == pytest.approx(0.0)
    # At 12 h the job on 7 gives way to 5 more replicas: stopped once, for capacity.
    assert s["repairs"]["jobs_stopped_for_capacity"] == 1
    assert s["batch"]["stops"] == 1
    assert s["batch"]["completed"] == 1
    # 7 x 12 = 84 done by then; the repaired decision stands a step (5 min), then the 16 left
    # run on the 2 accelerators free: done at 12 h + 5 min + 8 h, 100 / 7 h at the soonest.
    assert s["batch"]["mean_completion_delay_h"] == pytest.approx(20.0 + 1 / 12 - 100 / 7)
    # Energy at 1 kW a busy accelerator: inference 1 x 12 + 6 x 12, batch 100.
    assert s["energy_kwh"]["load"] == pytest.approx(12.0 + 72.0 + 100.0)


def test_power_shortage_is_repaired_by_shedding_batch_and_never_left_unserved():
    # Islanded: solar only by day, nothing at night. The job must not draw power at night.
    profile = np.where((np.arange(288) % 288) < 144, 1.0, 0.0)
    sc = scenario(
        [site("island", grid=False, solar_kw=10.0, solar_profile=profile, accelerators=8)],
        jobs=[job("j", 0, 120.0, 8, 23.0)],
    )
    s = _run(sc)
    assert s["energy_kwh"]["unserved"] == pytest.approx(0.0, abs=1e-6)
    # 8 accelerators at 1 kW run the 12 sunny hours (96 of 120 accelerator-hours) and are
    # stopped once, at dusk; the rest is undone at the deadline.
    assert s["repairs"]["jobs_stopped_for_power"] == 1
    assert s["batch"]["work_accelerator_hours"] == pytest.approx(96.0)
    assert s["batch"]["work_undone_at_deadline_accelerator_hours"] == pytest.approx(24.0)
    assert s["energy_kwh"]["load"] == pytest.approx(96.0)
    assert s["energy_kwh"]["solar"] == pytest.approx(96.0)
    assert s["energy_kwh"]["curtailed"] == pytest.approx(10.0 * 12 - 96.0)


def test_deadline_miss_is_counted_and_penalised():
    sc = scenario(
        [site(accelerators=2)], n=288, jobs=[job("a", 0, 20.0, 2, 10.0), job("b", 0, 20.0, 2, 12.0)]
    )
    s = _run(sc)
    assert s["batch"]["deadline_misses"] == 1
    assert s["batch"]["work_undone_at_deadline_accelerator_hours"] == pytest.approx(20.0 - 4.0)
    assert s["penalties_usd"]["deadline"] == pytest.approx(16.0 * 10.0)


@pytest.mark.parametrize("policy", ["agnostic", "greedy"])
def test_holding_a_decision_over_a_block_equals_deciding_every_step(policy):
    rng = np.random.default_rng(3)
    n = 288
    price = 40 + 40 * rng.random(n)
    sc = scenario(
        [
            site(
                "a",
                price=price,
                solar_kw=6.0,
                solar_profile=np.clip(np.sin(np.linspace(0, 3, n)), 0, 1),
                battery=Battery(15, 4, 4, 0.9, 0.1, 1.0, 0.5),
                import_limit_kw=9.0,
                export_limit_kw=2.0,
            ),
            site("b", price=price[::-1], latitude=41, longitude=-101, idle_kw=0.1),
        ],
        n=n,
        points=[DemandPoint("p", 40.2, -100.1)],
        services=[service("v", "p", 20 + 15 * np.sin(np.arange(n) / 20) ** 2, slo_ms=40)],
        jobs=[job(f"j{i}", 0.5 * i, 3.0 + i, 3, 14.0 + i, checkpoint_h=0.1) for i in range(8)],
        carbon_price=80,
    )
    blocked = _run(sc, policy)
    stepped = _run(sc, StepByStep(get_policy(policy)))
    for key in ("objective_usd", "cost_usd", "emissions_kg"):
        assert blocked[key] == pytest.approx(stepped[key], rel=1e-9)
    for key, value in blocked["energy_kwh"].items():
        assert value == pytest.approx(stepped["energy_kwh"][key], rel=1e-9, abs=1e-9)
    assert blocked["batch"] == pytest.approx(stepped["batch"])


def test_runs_are_deterministic():
    sc = scenario([site("a"), site("b")], jobs=[job(f"j{i}", i, 5.0, 2, 20.0) for i in range(5)])
    a, b = _run(sc, "greedy"), _run(sc, "greedy")
    for volatile in ("wall_s", "decision_s"):
        a.pop(volatile), b.pop(volatile)
    assert a == b


def test_greedy_defers_to_the_cheap_hours_it_has_seen_before():
    n = 2 * 288
    price = np.where((np.arange(n) // 12) % 24 < 18, 200.0, 10.0)  # cheap from 18:00 daily
    # The job arrives on day 2: day 1 is the history the forecast learns the pattern from.
    sc = scenario([site(price=price, n=n)], n=n, jobs=[job("j", 24.0, 6.0, 2, 47.9)])
    greedy, agnostic = _run(sc, "greedy"), _run(sc, "agnostic")
    assert greedy["batch"]["deadline_misses"] == 0
    assert greedy["cost_usd"] < 0.2 * agnostic["cost_usd"]
    assert agnostic["cost_usd"] == pytest.approx(6.0 * 0.2)


def test_unlimited_import_is_infinite_in_the_arrays():
    sc = scenario([site(import_limit_kw=math.inf)], jobs=[job("j", 0, 1.0, 1, 5.0)])
    assert _run(sc)["energy_kwh"]["unserved"] == 0.0


def test_capping_inference_for_power_never_powers_more_accelerators_than_the_site_has():
    # Islanded, a battery for power: 1 kW can run two 0.5 kW accelerators, but there is one.
    # Demand for three replicas; the repair caps inference at what the site has and can power.
    sc = scenario(
        [
            site(
                "island",
                grid=False,
                accelerators=1,
                busy_kw=0.5,
                idle_kw=0.0,
                battery=Battery(2.0, 1.0, 1.0, 1.0, 0.1, 0.95, 0.5),
            )
        ],
        points=[DemandPoint("p", 40.0, -100.0)],
        services=[service("v", "p", np.full(288, 28.0), slo_ms=10.0, throughput=10.0)],
    )
    record = simulate(sc, get_policy("greedy"), SimulationOptions(check_energy_balance=True))
    data = record.sites.data
    assert data["inference_accelerators"].max() <= 1.0
    assert (data["inference_accelerators"] <= data["powered_accelerators"] + 1e-6).all()


def test_policies_read_day_ahead_prices_once_published_and_no_further():
    n = 288 * 2  # two days at 5 minutes from midnight UTC
    price = np.arange(n, dtype=float)
    noon = DayAhead("UTC", time(12, 0))
    sc = scenario([site(price=price, n=n, day_ahead=noon)], n=n, jobs=[job("j", 0, 1.0, 1, 30.0)])
    seen = {}

    class Looks:
        name = "looks"

        def reset(self):
            pass

        def stats(self):
            return {}

        def decide(self, observation):
            seen[observation.step] = observation.forecast("price_usd_per_mwh", 300)[:, 0]
            return replace(get_policy("agnostic").decide(observation), hold_steps=1)

    simulate(sc, Looks(), SimulationOptions(forecaster=Persistence()))
    # 11:55 UTC: the rest of day 1 is published (leads up to midnight), then persistence
    morning = 143
    np.testing.assert_array_equal(seen[morning][: 288 - morning - 1], price[morning + 1 : 288])
    assert (seen[morning][288 - morning - 1 :] == price[morning]).all()
    # 12:00 UTC: day 2 is published too
    np.testing.assert_array_equal(seen[144], price[145 : 145 + 300])


def test_overhead_still_owed_at_a_deadline_is_reported():
    # Run 1 h, pause 30 min, resume 30 min before the 2-hour deadline with a 1 h restore:
    # 30 min of the restore falls after the deadline.
    def plan(step):
        return 0 if step < 12 or step >= 18 else -1

    base = scenario([site("a")], n=60, jobs=[job("j", 0, 1.5, 1, 2.0, checkpoint_h=1.0)])
    s = _run(base, Scripted(plan))
    assert s["batch"]["deadline_misses"] == 1
    assert s["batch"]["overhead_owed_at_deadline_h"] == pytest.approx(0.5)
    # A job that finishes in time owes nothing at its deadline.
    s = _run(base, Scripted(lambda step: 0))
    assert s["batch"]["overhead_owed_at_deadline_h"] == 0.0
