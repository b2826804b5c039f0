"""The MPC policy: it plans, follows its plan, keeps deadlines and SLOs, and falls back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.builders import Battery, DemandPoint, Genset, job, scenario, service, site
from wattroute.errors import OptimisationError
from wattroute.policies.base import Decision, Observation
from wattroute.policies.mpc import MPCPolicy
from wattroute.scenario import load_scenario
from wattroute.signals.forecast import Clairvoyant
from wattroute.sim import SimulationOptions, simulate, summarize

DAY = 288


def _run(sc, policy):
    return summarize(simulate(sc, policy, SimulationOptions(check_energy_balance=True)))


def test_mpc_moves_work_into_the_cheap_hours_it_forecasts():
    n = 2 * DAY
    price = np.where((np.arange(n) // 12) % 24 < 18, 200.0, 10.0)
    sc = scenario([site(price=price, n=n)], n=n, jobs=[job("j", 24.0, 6.0, 2, 47.9)])
    s = _run(sc, MPCPolicy())
    assert s["batch"]["deadline_misses"] == 0
    assert s["cost_usd"] == pytest.approx(6.0 * 0.010, rel=0.05)  # all of it at 10 USD/MWh


def test_mpc_charges_the_battery_from_the_grid_ahead_of_an_expensive_evening():
    n = 2 * DAY
    hour = (np.arange(n) // 12) % 24
    price = np.where(hour >= 17, 300.0, 20.0)  # same shape both days: the forecast sees it
    battery = Battery(40, 10, 10, 0.9, 0.0, 1.0, 0.0)
    sc = scenario([site(price=price, n=n, idle_kw=1.0, accelerators=4, battery=battery)], n=n)
    mpc, merit = _run(sc, MPCPolicy()), _run(sc, get_agnostic())
    assert mpc["energy_kwh"]["battery_charge"] > 10  # it bought cheap energy to use later
    assert mpc["cost_usd"] < 0.9 * merit["cost_usd"]


def test_mpc_exports_surplus_worth_more_sold_than_stored():
    # 6 kW of midday surplus sells at 200 USD/MWh; stored (round trip 0.25), it would displace
    # 50 USD/MWh imports at a quarter of its energy. Merit order stores it; the plan sells it.
    n = 2 * DAY
    hour = (np.arange(n) // 12) % 24
    midday = (hour >= 10) & (hour < 14)
    price = np.where(midday, 200.0, 50.0)
    battery = Battery(40, 10, 10, 0.25, 0.0, 1.0, 0.0)
    sc = scenario(
        [
            site(
                price=price,
                n=n,
                idle_kw=1.0,
                accelerators=4,
                export_limit_kw=20.0,
                solar_kw=10.0,
                solar_profile=midday.astype(float),
                battery=battery,
            )
        ],
        n=n,
    )
    perfect = SimulationOptions(forecaster=Clairvoyant())
    mpc = summarize(simulate(sc, MPCPolicy(), perfect))
    merit = summarize(simulate(sc, get_agnostic(), perfect))
    assert merit["energy_kwh"]["battery_charge"] > 20
    assert mpc["energy_kwh"]["export"] == pytest.approx(2 * 4 * 6.0, rel=0.02)
    assert mpc["energy_kwh"]["battery_charge"] == pytest.approx(0.0, abs=1e-6)
    assert mpc["cost_usd"] < merit["cost_usd"] - 5.0


def test_mpc_starts_work_planned_on_a_morning_hour_as_the_sun_rises_not_before():
    # The sun rises through hour 10 and shines on until 14; 48 accelerator-hours of work fit
    # the sunny hours only if the plan uses the morning hour's mean output. Started at the
    # hour's dark start, that work would run on imported power.
    n = DAY
    step = np.arange(n)
    sun = np.where((step >= 132) & (step < 168), 1.0, 0.0)
    sun[120:132] = np.linspace(0.0, 1.0, 12)
    sc = scenario(
        [site(n=n, price=100.0, carbon=0.0, accelerators=12, solar_kw=24.0, solar_profile=sun)],
        n=n,
        jobs=[job("j", 0.0, 48.0, 12, 23.9)],
    )
    r = simulate(sc, MPCPolicy(), SimulationOptions(forecaster=Clairvoyant()))
    assert summarize(r)["batch"]["deadline_misses"] == 0
    morning = slice(120, 132)
    grid = r.sites.data["grid_import_kw"][morning, 0]
    busy = r.sites.data["batch_accelerators"][morning, 0]
    # The plan uses the morning hour: from the first light, every step runs at least the
    # accelerators (1 kW each) its sun can power, up to all 12.
    powered_by_sun = np.minimum(np.floor(24.0 * sun[morning] + 1e-9), 12.0)
    assert powered_by_sun.tolist() == [0, 2, 4, 6, 8, 10, 12, 12, 12, 12, 12, 12]
    assert (busy >= powered_by_sun).all(), busy
    # Never more than the one accelerator the step's sun cannot quite cover.
    assert grid.max() <= 1.0 + 1e-6
    assert grid.sum() / 12 < 0.5  # kWh


def test_mpc_plans_a_genset_site_on_the_sun_it_has_at_every_step_of_the_hour():
    # Site a has sun for the first half of every hour and a genset behind no import; site b
    # buys from the grid. The hour's mean sun (4 kW) would draw the plan to a, and the dark
    # half of every hour would run the genset, at over four times the grid's cost; so at a site
    # with a genset a plan counts only on the hour's least output, and the work runs at b.
    n = DAY
    sun = np.tile(np.repeat([1.0, 0.0], 6), n // 12)
    sc = scenario(
        [
            site(
                "a",
                n=n,
                solar_kw=8.0,
                solar_profile=sun,
                import_limit_kw=0.0,
                genset=Genset(8.0, 0.5, 700.0),
            ),
            site("b", n=n, price=100.0, carbon=300.0),
        ],
        n=n,
        jobs=[job("j", 0.0, 16.0, 4, 12.0)],
        carbon_price=100.0,
    )
    s = summarize(simulate(sc, MPCPolicy(), SimulationOptions(forecaster=Clairvoyant())))
    assert s["batch"]["deadline_misses"] == 0
    assert s["energy_kwh"]["genset"] == pytest.approx(0.0, abs=1e-9)
    at_b = 16.0 * (100.0 + 100.0 * 300.0 / 1000.0) / 1000.0  # USD: 16 kWh at b
    assert s["objective_usd"] <= at_b + 1e-6


def test_mpc_routes_inference_within_the_slo_to_the_cheaper_site():
    n = DAY
    near_dear = site("near", n=n, price=300.0, accelerators=8)
    far_cheap = site("far", n=n, price=20.0, accelerators=8, latitude=41.0)  # ~110 km: ~2.7 ms
    sc = scenario(
        [near_dear, far_cheap],
        n=n,
        points=[DemandPoint("p", 40.0, -100.0)],
        services=[service("v", "p", np.full(n, 30.0), slo_ms=20, throughput=10)],
    )
    s = _run(sc, MPCPolicy())
    assert s["inference"]["slo_violation_fraction"] == pytest.approx(0.0, abs=1e-9)
    assert s["sites"]["far"]["energy_kwh"]["load"] > s["sites"]["near"]["energy_kwh"]["load"]


def test_mpc_serves_a_request_surge_its_plan_did_not_forecast_at_another_site_with_room():
    # 30 rps for 13 hours, then 110 rps (11 replicas). The plan, forecasting from the past,
    # routes everything to the cheap site; its 8 accelerators cannot serve the surge until the
    # next plan, so the requests beyond its replicas go to the dear site, within the SLO.
    n = DAY
    rate = np.where(np.arange(n) < 13 * 12 + 5, 30.0, 110.0)
    near_dear = site("near", n=n, price=300.0, accelerators=8)
    far_cheap = site("far", n=n, price=20.0, accelerators=8, latitude=41.0)
    sc = scenario(
        [near_dear, far_cheap],
        n=n,
        points=[DemandPoint("p", 40.0, -100.0)],
        services=[service("v", "p", rate, slo_ms=20, throughput=10)],
    )
    run = simulate(sc, MPCPolicy(), SimulationOptions(check_energy_balance=True))
    s = summarize(run)
    assert s["inference"]["dropped"] == pytest.approx(0.0, abs=1e-6)
    assert s["inference"]["slo_violation_fraction"] == pytest.approx(0.0, abs=1e-9)
    replicas = np.asarray(run.sites.data["inference_accelerators"])
    assert replicas[:, 1].max() <= 8  # the cheap site never asked for more than it has
    assert replicas[13 * 12 + 5, :].sum() == 11  # the surge is served from its first step


def test_mpc_plans_through_negative_prices_without_falling_back_to_greedy():
    # A day of negative prices (net of nothing: no carbon price) and jobs that pay a
    # checkpoint to restart. Overheads priced at a negative energy cost once made every plan
    # unbounded (a restart "earned"), and the day ran on greedy.
    price = np.where((np.arange(DAY) // 12) % 24 < 12, -80.0, -20.0)
    sc = scenario(
        [site("s", price=price, accelerators=8)],
        jobs=[job(f"j{i}", 2.0 * i, 6.0, 4, 2.0 * i + 12.0, checkpoint_h=0.1) for i in range(4)],
    )
    s = _run(sc, MPCPolicy())
    assert s["policy_stats"]["fallbacks_to_greedy"] == 0
    assert s["policy_stats"]["replans"] > 0
    assert s["batch"]["deadline_misses"] == 0


def test_a_solver_failure_falls_back_to_greedy_and_is_counted():
    sc = scenario([site()], jobs=[job("j", 0, 4.0, 2, 10.0)])
    s = _run(sc, MPCPolicy(time_limit_s=0.0))
    stats = s["policy_stats"]
    # A plan with work in it cannot be proven optimal in no time; one without can (presolve).
    assert 0 < stats["fallbacks_to_greedy"] <= stats["replans"]
    assert s["batch"]["completed"] == 1  # greedy still did the work
    assert s["batch"]["deadline_misses"] == 0


def test_many_jobs_are_planned_as_classes_and_all_finish():
    n = DAY
    rng = np.random.default_rng(0)
    jobs = [
        job(f"j{i}", float(rng.uniform(0, 4)), float(rng.uniform(0.5, 3)), 1, 20.0)
        for i in range(40)
    ]
    sc = scenario(
        [site(n=n, accelerators=16, price=np.repeat(rng.uniform(20, 80, n // 12), 12))],
        n=n,
        jobs=jobs,
    )
    policy = _CountingActive(MPCPolicy(max_job_rows=5))
    s = _run(sc, policy)
    # Jobs are grouped into classes exactly when a re-plan sees more than 5 of them.
    crowded = sum(n > 5 for n in policy.active_at_replans)
    assert crowded >= 1  # (the case exercises classes)
    assert s["policy_stats"]["replans_with_job_classes"] == crowded
    assert s["policy_stats"]["replans"] == len(policy.active_at_replans)
    assert s["batch"]["completed"] == 40
    assert s["batch"]["deadline_misses"] == 0


class _CountingActive:
    """An MPC policy that notes how many jobs were active at each of its re-plans."""

    def __init__(self, inner: MPCPolicy) -> None:
        self.inner = inner
        self.name = inner.name
        self.active_at_replans: list[int] = []

    def reset(self) -> None:
        self.inner.reset()
        self.active_at_replans.clear()

    def stats(self) -> dict[str, float]:
        return dict(self.inner.stats())

    def decide(self, observation: Observation) -> Decision:
        before = self.inner.stats()["replans"]
        decision = self.inner.decide(observation)
        if self.inner.stats()["replans"] > before:
            self.active_at_replans.append(len(observation.jobs))
        return decision


def get_agnostic():
    from wattroute.policies import get_policy

    return get_policy("agnostic")


class _Gated:
    """``optimise`` for mpc that holds every solve after the first until ``gate`` is set (and
    fails the second with ``fail``), noting the thread each ran on."""

    def __init__(self, fail: bool = False) -> None:
        from wattroute.optimise.plan import optimise

        self.real = optimise
        self.gate = threading.Event()
        self.solved = threading.Event()
        self.threads: list[str] = []
        self.fail = fail

    def __call__(self, problem, *args, **kwargs):
        self.threads.append(threading.current_thread().name)
        if len(self.threads) > 1:
            assert self.gate.wait(30)
            if self.fail and len(self.threads) == 2:
                self.solved.set()
                raise OptimisationError("time limit reached", 0.5)
        plan = self.real(problem, *args, **kwargs)
        if len(self.threads) > 1:
            self.solved.set()
        return plan


class _Watching:
    """Runs ``inner`` and notes, after each decision, the step of the plan in force; at
    ``release`` it lets the held solve finish and waits until it has, and from then on waits
    for every solve begun (a simulation does not wait between steps: without this, a solve
    could still be running when the last decision is taken)."""

    def __init__(self, inner: MPCPolicy, gated: _Gated, release: int) -> None:
        self.inner, self.gated, self.release = inner, gated, release
        self.name = inner.name
        self.plan_steps: dict[int, int | None] = {}

    def reset(self) -> None:
        self.inner.reset()

    def stats(self) -> dict[str, float]:
        return dict(self.inner.stats())

    def decide(self, observation: Observation) -> Decision:
        decision = self.inner.decide(observation)
        self.plan_steps[observation.step] = self.inner.plan_step
        if observation.step == self.release:
            self.gated.gate.set()
            assert self.gated.solved.wait(30)
        if observation.step >= self.release:
            while self.inner.replanning:
                time.sleep(0.001)
        return decision


def _background_run(monkeypatch, gated: _Gated) -> tuple[_Watching, dict[str, Any]]:
    from wattroute.policies import mpc

    monkeypatch.setattr(mpc, "optimise", gated)
    n = DAY
    price = np.where((np.arange(n) // 12) % 24 < 8, 200.0, 10.0)
    sc = scenario([site(price=price, n=n)], n=n, jobs=[job("j", 0.0, 6.0, 2, 20.0)])
    watching = _Watching(MPCPolicy(background_replans=True), gated, release=30)
    try:
        s = _run(sc, watching)
    finally:
        gated.gate.set()
    return watching, s


def test_a_background_replan_is_followed_from_the_decision_after_it_is_solved(monkeypatch):
    gated = _Gated()
    watching, s = _background_run(monkeypatch, gated)
    steps = watching.plan_steps
    # The first plan is waited for; the hour's re-plan at step 12 solves on the worker thread
    # while decisions follow the plan of step 0, and no second solve starts at step 24.
    assert gated.threads[0] == threading.main_thread().name
    assert all(name.startswith("mpc-replan") for name in gated.threads[1:])
    assert [steps[k] for k in (0, 12, 24, 30)] == [0, 0, 0, 0]
    assert steps[31] == 12  # solved at step 30: followed from the next decision
    assert max(v for v in steps.values() if v is not None) > 12  # the re-plans go on
    stats = s["policy_stats"]
    assert stats["replans_skipped_while_solving"] >= 1
    assert stats["replans_in_background"] == stats["replans"] - 1
    assert s["batch"]["completed"] == 1
    assert s["batch"]["deadline_misses"] == 0


def test_a_background_replan_that_fails_hands_the_decisions_to_greedy_until_the_next(
    monkeypatch,
):
    gated = _Gated(fail=True)
    watching, s = _background_run(monkeypatch, gated)
    steps = watching.plan_steps
    assert steps[30] == 0
    assert steps[31] is None  # greedy decides once the failure is known
    assert steps[36] == 36  # until the next re-plan, which with no plan in force is waited for
    assert s["policy_stats"]["fallbacks_to_greedy"] >= 1
    assert s["batch"]["completed"] == 1
    assert s["batch"]["deadline_misses"] == 0


class _Pauses:
    """An MPC policy that notes, per pause of a running job, how many steps it waited before
    it ran again, and how long it had left to run when it paused (h)."""

    def __init__(self, policy: MPCPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        self.paused: dict[int, int] = {}
        self.waits: list[int] = []
        self.left_h: list[float] = []

    def reset(self) -> None:
        self.policy.reset()

    def stats(self) -> dict[str, float]:
        return self.policy.stats()

    def decide(self, obs: Observation) -> Decision:
        decision = self.policy.decide(obs)
        jobs = obs.jobs
        running, runs = jobs.site >= 0, decision.job_site >= 0
        for j in np.flatnonzero(running & ~runs):
            self.paused[int(jobs.ids[j])] = obs.step
            self.left_h.append(
                float(jobs.remaining_accelerator_hours[j] / max(jobs.accelerators[j], 1))
            )
        for j in np.flatnonzero(~running & runs):
            since = self.paused.pop(int(jobs.ids[j]), None)
            if since is not None:
                self.waits.append(obs.step - since)
        return decision


def test_mpc_pauses_no_job_for_a_step_or_two_nor_one_about_to_finish(tmp_path):
    # Three days of the temporal-shifting example (its shipped data): 32 accelerators, jobs
    # with a day of slack and 10-minute checkpoints. The plan may pause work across dear
    # hours, but a job the deadline reserve had to start is not paused again only for the
    # reserve to restart it (a restore paid for a five-minute pause), and a job that would
    # finish within its checkpoint's time finishes.
    root = Path(__file__).resolve().parents[2] / "examples"
    spec = yaml.safe_load((root / "temporal_shifting.yaml").read_text())
    spec["end"] = (pd.Timestamp(spec["start"]) + pd.Timedelta(days=3)).isoformat()
    spec["data_dir"] = str(root / "data")
    path = tmp_path / "three_days.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    policy = _Pauses(MPCPolicy())
    s = summarize(simulate(load_scenario(path), policy))
    assert s["batch"]["deadline_misses"] == 0
    assert policy.waits  # (the case has pauses)
    assert min(policy.waits) > 2
    checkpoint_h = spec["batch_trace"]["checkpoint_overhead_h"]
    assert all(left > checkpoint_h for left in policy.left_h)


class _Planned(MPCPolicy):
    """``mpc``, noting the sites each plan allows each running job."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed: list[np.ndarray] = []

    def _problem(self, obs: Observation, k: int) -> Any:
        problem, row_of = super()._problem(obs, k)
        running = obs.jobs.site >= 0
        if running.any():
            self.allowed.append(problem.jobs.allowed[row_of[running]])
        return problem, row_of


def test_mpc_plans_no_move_of_a_job_the_deadline_reserve_keeps_where_it_runs():
    # Site a is cheap for the first two hours, b after them. The job (16 accelerator-hours
    # on 4, 0.6 h of slack) starts at a; moving to b would cost a restore and a migration it
    # has no slack for, so the reserve keeps it at a, and each plan made while it runs knows.
    n = DAY
    hours = np.arange(n) / 12
    sc = scenario(
        [
            site("a", n=n, accelerators=8, price=np.where(hours < 2, 10.0, 300.0)),
            site("b", n=n, accelerators=8, price=np.where(hours < 2, 300.0, 10.0)),
        ],
        n=n,
        jobs=[job("tight", 0.0, 16.0, 4, 4.6, checkpoint_h=0.17, migration_h=0.5)],
    )
    policy = _Planned()
    record = simulate(sc, policy)
    history = record.jobs.allocation_history()
    assert set(history["site"][history["accelerators"] > 0].tolist()) == {0}
    assert summarize(record)["batch"]["deadline_misses"] == 0
    assert len(policy.allowed) >= 3  # re-planned every hour while it ran
    for allowed in policy.allowed:
        np.testing.assert_array_equal(allowed, [[True, False]])
