"""The greedy baseline: cheapest place now, deferral by forecast, deadlines first."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders import DemandPoint, job, scenario, service, site
from wattroute.policies import get_policy
from wattroute.policies.greedy import _Slots, distinct_rows, resume_site, window_quantiles
from wattroute.sim import SimulationOptions, simulate, summarize
from wattroute.sim.summary import job_frame

DAY = 288


def _run(sc, policy):
    return summarize(simulate(sc, get_policy(policy), SimulationOptions(check_energy_balance=True)))


def test_greedy_places_work_at_the_cheaper_site():
    sc = scenario(
        [site("dear", price=300.0), site("cheap", price=20.0, latitude=41)],
        jobs=[job("j", 0, 4.0, 4, 6.0)],
    )
    s = _run(sc, "greedy")
    assert s["sites"]["cheap"]["energy_kwh"]["load"] == pytest.approx(4.0)
    assert s["sites"]["dear"]["energy_kwh"]["load"] == pytest.approx(0.0)


def test_greedy_keeps_every_deadline_when_cheap_hours_are_scarce():
    # Two days; each day is cheap only from 20:00 to 24:00, and the site has 4 accelerators.
    # Twelve jobs of 4 accelerator-hours with deadlines during day 2 cannot all wait for the
    # cheap window: deadline pressure must run some of them at dear hours.
    n = 2 * DAY
    hour = (np.arange(n) // 12) % 24
    price = np.where(hour >= 20, 10.0, 200.0)
    jobs = [job(f"j{i}", 24.0 + i * 0.5, 4.0, 2, 24.0 + 10.0 + i) for i in range(12)]
    sc = scenario([site(price=price, n=n, accelerators=4)], n=n, jobs=jobs)
    greedy, agnostic = _run(sc, "greedy"), _run(sc, "agnostic")
    assert greedy["batch"]["deadline_misses"] == 0
    assert greedy["batch"]["completed"] == 12
    assert agnostic["batch"]["deadline_misses"] == 0
    assert greedy["objective_usd"] <= agnostic["objective_usd"] + 1e-9


def test_greedy_soaks_up_curtailed_renewables():
    n = 2 * DAY
    sun = np.clip(np.sin(np.linspace(0, 4 * np.pi, n) - np.pi / 2), 0, None)  # two days of sun
    sc = scenario(
        [site("solar", price=150.0, solar_kw=8.0, solar_profile=sun, n=n, accelerators=8)],
        n=n,
        jobs=[job(f"j{i}", 24.0 + i, 6.0, 4, 47.0) for i in range(3)],
    )
    greedy, agnostic = _run(sc, "greedy"), _run(sc, "agnostic")
    assert greedy["energy_kwh"]["curtailed"] < agnostic["energy_kwh"]["curtailed"]
    assert greedy["cost_usd"] < agnostic["cost_usd"]
    assert greedy["batch"]["deadline_misses"] == 0


def test_window_quantiles_equal_numpy_quantile_on_random_profiles():
    rng = np.random.default_rng(7)
    for trial in range(300):
        size, n_profiles = int(rng.integers(1, 60)), int(rng.integers(1, 5))
        profiles = rng.normal(0.0, 5.0, (size, n_profiles)).round(int(rng.integers(0, 4)))
        profiles[rng.random(profiles.shape) < 0.2] = np.inf  # sites with no room
        if trial % 7 == 0:
            profiles[:, 0] = np.inf
        jobs = int(rng.integers(1, 40))
        column = rng.integers(0, n_profiles, jobs)
        window = rng.integers(1, size + 5, jobs)  # some longer than the profile
        q = rng.random(jobs)
        q[rng.random(jobs) < 0.2] = 1.0
        q[rng.random(jobs) < 0.1] = 0.0
        got = window_quantiles(profiles, column, window, q)
        for i in range(jobs):
            head = profiles[: window[i], column[i]]
            head = head[np.isfinite(head)]
            want = np.quantile(head, q[i]) if head.size else np.inf
            assert got[i] == want, (trial, i)  # the same arithmetic: equal to the last bit


def test_distinct_rows_equal_numpy_unique_on_random_matrices():
    rng = np.random.default_rng(5)
    for trial in range(300):
        n, width = int(rng.integers(1, 60)), int(rng.integers(1, 20))
        rows = rng.random((n, width)) < rng.random()
        if trial % 3 == 0:
            rows = rows[rng.integers(0, max(n // 4, 1), n)]  # many repeats
        want, want_group = np.unique(rows, axis=0, return_inverse=True)
        got, group = distinct_rows(rows)
        assert got.dtype == want.dtype, trial
        assert got.tolist() == want.tolist(), trial
        assert group.tolist() == want_group.reshape(-1).tolist(), trial


def test_slots_keep_the_next_cost_as_a_fresh_look_finds_it():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n_sites = int(rng.integers(1, 6))
        slots = _Slots(
            rng.integers(0, 4, (3, n_sites)).astype(float), rng.normal(0.0, 1.0, (3, n_sites))
        )
        for _ in range(8):
            site = int(rng.integers(0, n_sites))
            slots.take(site, float(rng.integers(0, 5)))
            fresh = _Slots.__new__(_Slots)
            fresh.slots, fresh.cost = slots.slots, slots.cost
            assert slots.next_cost.tolist() == fresh._next(np.arange(n_sites)).tolist()


def test_greedy_serves_inference_beside_running_work_rather_than_displace_it():
    # Two sites within the SLO, 8 accelerators each, whose prices swap every 15 minutes. The
    # stream needs 6 accelerators; a job of 4 runs for 2 hours with an hour of slack. Routed
    # to whichever site is cheaper now, the stream would land on the job every other quarter
    # hour and push it off (a restore and a migration each time) until it missed its deadline.
    n = DAY
    cheap_a = (np.arange(n) // 3) % 2 == 0
    sc = scenario(
        [
            site("a", n=n, price=np.where(cheap_a, 20.0, 60.0), accelerators=8),
            site("b", n=n, price=np.where(cheap_a, 60.0, 20.0), accelerators=8, latitude=41.0),
        ],
        n=n,
        jobs=[job("j", 0.0, 8.0, 4, 3.0, min_acc=4, checkpoint_h=0.1, migration_h=0.1)],
        points=[DemandPoint("p", 40.0, -100.0)],
        services=[service("v", "p", np.full(n, 60.0), slo_ms=20, throughput=10)],
    )
    run = simulate(sc, get_policy("greedy"), SimulationOptions(check_energy_balance=True))
    s, jobs = summarize(run), job_frame(run)
    assert s["batch"]["deadline_misses"] == 0
    assert s["inference"]["slo_violation_fraction"] == pytest.approx(0.0, abs=1e-9)
    assert jobs.loc[0, "stops"] == 0
    assert jobs.loc[0, "moves"] == 0


def test_a_job_resumes_where_it_last_ran_unless_elsewhere_pays_for_the_move():
    fits = np.ones(3, dtype=bool)
    # A move adds a tenth of the run in overhead: 9 USD/h elsewhere costs 9.9, not 10.
    assert resume_site(np.array([10.0, 10.0, 9.0]), fits, 0, 0.1) == 2
    assert resume_site(np.array([10.0, 10.0, 9.5]), fits, 0, 0.1) == 0
    # At equal negative prices a move earns nothing: it resumes where it ran.
    assert resume_site(np.array([-10.0, -10.0, -10.0]), fits, 1, 0.1) == 1
    assert resume_site(np.array([-10.0, -10.0, -10.0]), fits, 2, 0.5) == 2
    # Only where it fits; a job that never ran takes the cheapest.
    assert resume_site(np.array([-10.0, -10.0, -9.0]), np.array([False, True, True]), 0, 0.1) == 1
    assert resume_site(np.array([3.0, -1.0, 2.0]), fits, -1, 0.5) == 1
    # A site with no power to offer costs without bound, where it last ran too.
    assert resume_site(np.array([np.inf, 5.0, np.inf]), fits, 0, 0.0) == 1
    assert resume_site(np.full(3, np.inf), np.array([False, False, True]), 0, 0.1) == 2
