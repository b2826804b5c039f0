"""The deadline safety net: a decision played forward by hand, and the property it gives —
on job sets known from the start, greedy and mpc miss no deadline the continuation keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import START, job, scenario, site
from wattroute.model import BatchJob
from wattroute.model.arrays import JobArrays
from wattroute.policies import get_policy
from wattroute.policies.base import ActiveJobs
from wattroute.policies.rollout import Continuation
from wattroute.sim import simulate, summarize

STEP_H = 1 / 12


def _jobs(**columns: np.ndarray) -> ActiveJobs:
    n = len(columns["remaining_accelerator_hours"])
    base = {
        "deadline_h": np.full(n, 1.5),
        "min_accelerators": np.full(n, 2),
        "max_accelerators": np.full(n, 4),
        "site": np.full(n, -1),
        "accelerators": np.zeros(n, np.int64),
        "last_site": np.full(n, -1),
        "allowed": np.ones((n, 1), dtype=bool),
        "pending_overhead_h": np.zeros(n),
        "checkpoint_overhead_h": np.full(n, 0.25),
        "migration_overhead_h": np.full(n, 0.5),
    }
    base.update(columns)
    return ActiveJobs.from_arrays(np.arange(n), **base)


def test_two_jobs_on_one_site_by_hand() -> None:
    # 4 accelerators; two jobs of 4 accelerator-hours on up to 4, both due in 1.5 h.
    # Whichever runs first ends at 1.0 h; the other starts then and ends at 2.0 h: one job
    # late by 0.5 h, and inside any margin.
    jobs = _jobs(remaining_accelerator_hours=np.array([4.0, 4.0]))
    carry_on = Continuation(jobs, np.array([4.0]))
    site, acc = carry_on.decide()
    assert site.tolist() == [0, -1]
    assert acc.tolist() == [4, 0]
    late, inside, hours = carry_on.misses(site, acc, STEP_H, np.full(2, 0.1))
    assert late == 1
    assert abs(inside - 0.6) < 1e-9  # 0.5 h late, and the 0.1 h margin before it
    assert abs(hours - 0.5) < 1e-9
    # Two accelerators each: both end at 2.0 h, both late.
    late, _, hours = carry_on.misses(np.array([0, 0]), np.array([2, 2]), STEP_H, np.zeros(2))
    assert late == 2
    assert abs(hours - 1.0) < 1e-9


def test_a_stop_costs_its_restore_and_a_move_its_migration() -> None:
    # One job running on 4 of 8 accelerators at site 0, 3.6 accelerator-hours left, due in
    # 1.5 h: carrying on it ends at 0.9 h. Stopped for a step it resumes (the continuation
    # starts it at once) with a 0.25 h restore: 1/12 + 0.25 + 0.9 = 1.23 h, 0.03 h inside a
    # 0.3 h margin. Moved to site 1 it pays the restore and a 0.5 h migration: 1.65 h, late.
    jobs = _jobs(
        remaining_accelerator_hours=np.array([3.6]),
        site=np.array([0]),
        accelerators=np.array([4]),
        last_site=np.array([0]),
        allowed=np.ones((1, 2), dtype=bool),
    )
    carry_on = Continuation(jobs, np.array([8.0, 8.0]))
    margin = np.array([0.3])
    assert carry_on.misses(np.array([0]), np.array([4]), STEP_H, margin) == (0, 0.0, 0.0)
    late, inside, _ = carry_on.misses(np.array([-1]), np.array([0]), STEP_H, margin)
    assert late == 0
    assert abs(inside - (1 / 12 + 0.25 + 0.9 - 1.2)) < 1e-9
    late, _, hours = carry_on.misses(np.array([1]), np.array([4]), STEP_H, margin)
    assert late == 1
    assert abs(hours - (0.25 + 0.5 + 0.9 - 1.5)) < 1e-9


def test_a_decision_the_simulator_would_repair_is_played_as_repaired() -> None:
    # Asked to run on 1 accelerator, below its minimum of 2, the job is stopped by the
    # simulator; the rollout plays that, not the decision as written.
    jobs = _jobs(remaining_accelerator_hours=np.array([4.0]), deadline_h=np.array([1.2]))
    carry_on = Continuation(jobs, np.array([4.0]))
    below = carry_on.misses(np.array([0]), np.array([1]), STEP_H, np.zeros(1))
    waiting = carry_on.misses(np.array([-1]), np.array([0]), STEP_H, np.zeros(1))
    assert below == waiting
    assert carry_on.misses(np.array([0]), np.array([4]), STEP_H, np.zeros(1))[0] == 0


def _tight_jobs(
    rng: np.random.Generator,
    count: int,
    most: tuple[int, int],
    run_h: tuple[float, float],
    spare_h: tuple[float, float],
    least: tuple[int, int] | None = None,
) -> list[BatchJob]:
    """``count`` jobs arriving at the start, each on up to ``most`` accelerators (drawn from
    that range, as the others) for ``run_h`` hours at full parallelism, due ``spare_h`` hours
    after it could be done, at least ``least`` accelerators (1 if not given)."""
    jobs = []
    for i in range(count):
        widest = int(rng.integers(*most))
        run = float(rng.uniform(*run_h))
        jobs.append(
            job(
                f"j{i}",
                0.0,
                run * widest,
                widest,
                run + float(rng.uniform(*spare_h)),
                min_acc=1 if least is None else min(int(rng.integers(*least)), widest),
                checkpoint_h=0.17,
                migration_h=0.5,
            )
        )
    return jobs


def _known_from_the_start(rng: np.random.Generator):
    """3-9 tight jobs, all arriving at the start, on two grid sites whose prices swing from
    -50 to 3,000 USD/MWh in mirrored blocks: where saving money means waiting."""
    n = 12 * 12
    jobs = _tight_jobs(rng, int(rng.integers(3, 10)), (2, 7), (0.5, 3.0), (0.3, 3.0), (1, 3))
    price = np.repeat(rng.uniform(-50.0, 3000.0, 4), n // 4)
    sites = [
        site("a", n=n, accelerators=8, idle_kw=0.1, price=price),
        site("b", n=n, accelerators=6, idle_kw=0.1, price=price[::-1].copy()),
    ]
    return scenario(sites, n=n, jobs=jobs, carbon_price=100.0)


def _continuation_misses(sc) -> int:
    """Jobs the continuation makes late from the start, as its rollout predicts."""
    spec = JobArrays.from_scenario(sc)
    n = spec.n_jobs
    start_h = (sc.start - START) / pd.Timedelta(hours=1)
    jobs = ActiveJobs.from_arrays(
        np.arange(n),
        remaining_accelerator_hours=spec.work_accelerator_hours.astype(float),
        deadline_h=spec.deadline_h - start_h,
        min_accelerators=spec.min_accelerators,
        max_accelerators=spec.max_accelerators,
        site=np.full(n, -1),
        accelerators=np.zeros(n, np.int64),
        last_site=np.full(n, -1),
        allowed=spec.allowed,
        pending_overhead_h=np.zeros(n),
        checkpoint_overhead_h=spec.checkpoint_overhead_h,
        migration_overhead_h=spec.migration_overhead_h,
    )
    capacity = np.array([float(s.accelerators.count) for s in sc.sites])
    carry_on = Continuation(jobs, capacity)
    site, acc = carry_on.decide()
    return carry_on.misses(site, acc, sc.step_h, np.zeros(n))[0]


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_no_deadline_the_continuation_keeps_is_missed(seed: int) -> None:
    """On job sets known from the start, with room that does not change, neither greedy nor
    mpc misses more deadlines than the continuation it falls back on: the safety net keeps
    the number of jobs that continuation would make late from growing, step after step."""
    sc = _known_from_the_start(np.random.default_rng(seed))
    bound = _continuation_misses(sc)
    for name in ("greedy", "mpc"):
        misses = summarize(simulate(sc, get_policy(name)))["batch"]["deadline_misses"]
        assert misses <= bound, (name, misses, bound)


def test_with_hundreds_of_jobs_greedy_still_misses_none_the_continuation_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where a decision differs from the continuation's for a hundred jobs or more, rule 5's
    search over how many follow the continuation still ends on a decision the rollout passes,
    so greedy misses no deadline the continuation keeps."""
    rng = np.random.default_rng(7)
    n = 12 * 12
    jobs = _tight_jobs(rng, 400, (1, 5), (0.5, 4.0), (0.5, 8.0))
    price = np.repeat(rng.uniform(-50.0, 3000.0, 4), n // 4)
    sites = [
        site(name, n=n, accelerators=160, idle_kw=0.1, price=np.roll(price, 36 * k))
        for k, name in enumerate("abc")
    ]
    sc = scenario(sites, n=n, jobs=jobs, carbon_price=100.0)
    differing: list[int] = []
    real = Continuation.decide

    def noting(self: Continuation) -> tuple[np.ndarray, np.ndarray]:
        site_now, acc_now = real(self)
        differing.append(int(((site_now >= 0) & (self.jobs.site < 0)).sum()))
        return site_now, acc_now

    monkeypatch.setattr(Continuation, "decide", noting)
    summary = summarize(simulate(sc, get_policy("greedy")))
    assert max(differing) >= 128  # the continuation starts that many where greedy waits
    assert summary["batch"]["deadline_misses"] <= _continuation_misses(sc)
    assert summary["batch"]["completed"] == 400


def test_a_cheap_miss_penalty_is_no_licence_to_miss() -> None:
    """Power at 10,000 USD/MWh until after the deadline, below zero from then on, and a miss
    priced at a cent per accelerator-hour: waiting and finishing late is far cheaper, and
    neither greedy nor mpc does it."""
    from dataclasses import replace

    from wattroute.model.scenario import Penalties

    n = 48
    sc = scenario(
        [site("a", n=n, accelerators=8, idle_kw=0.1, price=np.repeat([10_000.0, -50.0], 24))],
        n=n,
        jobs=[job("j", 0.0, 8.0, 4, 2.5, min_acc=2, checkpoint_h=0.17, migration_h=0.5)],
    )
    sc = replace(sc, penalties=Penalties(deadline_miss_usd_per_accelerator_hour=0.01))
    for name in ("greedy", "mpc"):
        s = summarize(simulate(sc, get_policy(name)))
        assert s["batch"]["deadline_misses"] == 0, name
        assert s["batch"]["completed"] == 1, name


class _Plain(Continuation):
    """The continuation step written out plainly — every waiting and running job tried in
    order, each waiting one at the allowed site with most room — and every running job
    advanced from its mask, and a step taken at every completion (settled or not): what the
    faster rollout must match exactly."""

    def _settled(self, state) -> bool:
        return False

    @staticmethod
    def _advance(state, t, dt, ids=None) -> np.ndarray:
        run = (state.site >= 0) & np.isinf(state.finish)
        if not run.any():
            return np.flatnonzero(run)
        owed, rem, acc = state.owed[run], state.remaining[run], state.acc[run]
        done_at = t + owed + rem / acc
        paid = np.minimum(owed, dt)
        rem = rem - acc * (dt - paid)
        finished = rem <= 1e-9 * np.maximum(acc, 1.0)
        ids = np.flatnonzero(run)
        state.owed[ids] = owed - paid
        state.remaining[ids] = np.maximum(rem, 0.0)
        state.finish[ids[finished]] = done_at[finished]
        state.site[ids[finished]] = -1
        state.acc[ids[finished]] = 0.0
        return np.flatnonzero((state.site >= 0) & np.isinf(state.finish))

    def _act(self, state, t) -> None:
        jobs = self.jobs
        active = np.isinf(state.finish)
        running = active & (state.site >= 0)
        used = np.bincount(
            state.site[running], weights=state.acc[running], minlength=self.capacity.size
        )
        free = np.floor(self.capacity - used + 1e-9).tolist()
        least, most = jobs.min_accelerators, jobs.max_accelerators
        hopeless = t + state.owed + state.remaining / most > jobs.deadline_h + 1e-9
        order = np.lexsort((jobs.deadline_h, hopeless))
        for j in order[(active & ~running)[order]]:
            sites = np.flatnonzero(jobs.allowed[j]).tolist()
            best = max(sites, key=free.__getitem__)
            take = min(float(most[j]), free[best])
            if take < least[j]:
                continue
            state.site[j] = best
            state.acc[j] = take
            free[best] -= take
            if state.last[j] >= 0 and state.last[j] != best:
                state.owed[j] += jobs.migration_overhead_h[j]
            state.last[j] = best
        for j in order[(running & (state.acc < most))[order]]:
            s = int(state.site[j])
            grow = min(float(most[j] - state.acc[j]), free[s])
            if grow > 0:
                state.acc[j] += grow
                free[s] -= grow


def _random_jobs(rng: np.random.Generator, n_sites: int) -> ActiveJobs:
    n = int(rng.integers(1, 40))
    most = rng.integers(1, 9, n)
    least = np.minimum(rng.integers(1, 4, n), most)
    site = np.where(rng.random(n) < 0.5, rng.integers(0, n_sites, n), -1)
    accelerators = np.where(site >= 0, most, 0)
    allowed = rng.random((n, n_sites)) < (0.6 if rng.random() < 0.5 else 1.1)
    allowed[np.arange(n), np.where(site >= 0, site, rng.integers(0, n_sites, n))] = True
    return _jobs(
        remaining_accelerator_hours=rng.uniform(0.0, 30.0, n).round(int(rng.integers(0, 3))),
        deadline_h=rng.uniform(-1.0, 12.0, n).round(int(rng.integers(0, 3))),
        min_accelerators=least,
        max_accelerators=most,
        site=site,
        accelerators=accelerators,
        last_site=np.where(rng.random(n) < 0.3, rng.integers(0, n_sites, n), site),
        allowed=allowed,
        pending_overhead_h=np.where(rng.random(n) < 0.3, 0.17, 0.0),
    )


@pytest.mark.parametrize("most_sites", [5, 14])
def test_the_continuation_matches_its_plain_statement_on_random_jobs(most_sites: int) -> None:
    """With up to 4 sites, and up to 13 (jobs confined to more than 8 of them too)."""
    rng = np.random.default_rng(11 if most_sites == 5 else most_sites)
    for _ in range(150):
        n_sites = int(rng.integers(1, most_sites))
        jobs = _random_jobs(rng, n_sites)
        capacity = rng.integers(0, 24, n_sites).astype(float)
        fast, plain = Continuation(jobs, capacity), _Plain(jobs, capacity)
        site, acc = fast.decide()
        plain_site, plain_acc = plain.decide()
        assert site.tolist() == plain_site.tolist()
        assert acc.tolist() == plain_acc.tolist()
        margin = rng.uniform(0.0, 1.0, len(jobs))
        asked_site = np.where(
            rng.random(len(jobs)) < 0.5, rng.integers(-1, n_sites, len(jobs)), site
        )
        asked_acc = np.where(asked_site >= 0, rng.integers(0, 9, len(jobs)), 0)
        for decision in ((site, acc), (asked_site, asked_acc)):
            assert fast.misses(*decision, STEP_H, margin) == plain.misses(*decision, STEP_H, margin)
