"""The deadline reserve: slack after a step by hand, the fit test, and what it does to a
decision that would break a deadline. (How often greedy and mpc miss deadlines agnostic keeps,
on random job sets and the stress scenario, is measured by benchmarks/deadlines.py.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.builders import Genset, job, scenario, site
from wattroute.model import Scenario
from wattroute.model.tolerances import ROUNDING
from wattroute.policies.base import ActiveJobs, Decision, Observation
from wattroute.policies.deadlines import DEADLINES, ReserveStarts, fits, slack_after_step
from wattroute.signals.forecast import Clairvoyant
from wattroute.sim import SimulationOptions, simulate, summarize
from wattroute.sim.jobs import JobTable
from wattroute.sim.simulator import Simulator


def _jobs(**columns: np.ndarray) -> ActiveJobs:
    n = 4
    base = {
        "remaining_accelerator_hours": np.full(n, 8.0),
        "deadline_h": np.full(n, 6.0),
        "min_accelerators": np.full(n, 2),
        "max_accelerators": np.full(n, 4),
        "site": np.array([0, 0, -1, -1]),
        "accelerators": np.array([4, 4, 0, 0]),
        "last_site": np.array([0, 0, 1, -1]),
        "allowed": np.ones((n, 2), dtype=bool),
        "pending_overhead_h": np.array([0.0, 0.0, 0.25, 0.0]),  # job 2 owes its restore
        "checkpoint_overhead_h": np.full(n, 0.25),
        "migration_overhead_h": np.full(n, 0.5),
    }
    base.update(columns)
    return ActiveJobs.from_arrays(np.arange(n), **base)


def test_slack_after_a_step_counts_what_each_choice_costs() -> None:
    jobs = _jobs()
    # job 0 keeps running at 0 on 4; job 1 moves to 1; job 2 resumes at 1 (where it ran);
    # job 3 waits. One step of 0.5 h.
    site_of = np.array([0, 1, 1, -1])
    acc_of = np.array([4, 4, 4, 0])
    slack = slack_after_step(jobs, site_of, acc_of, 0.5)
    # 0: 6 - 0.5 left, 8 - 4 x 0.5 = 6 to do at 4 -> 1.5 h: slack 5.5 - 1.5 = 4.0
    # 1: a move owes 0.25 + 0.5: the step is all overhead (0.25 still owed), 8 to do -> 2 h:
    #    5.5 - 0.25 - 2 = 3.25
    # 2: resumes where it ran: owes its 0.25 restore, works 0.25 h -> 7 to do (1.75 h):
    #    5.5 - 1.75 = 3.75
    # 3: waits, never ran: 5.5 - 2 = 3.5
    np.testing.assert_allclose(slack, [4.0, 3.25, 3.75, 3.5])
    # Stopping job 0 instead: it will owe a restore and, should its site be full, a migration.
    stopped = slack_after_step(jobs, np.array([-1, 0, 1, -1]), np.array([0, 4, 4, 0]), 0.5)
    assert stopped[0] == pytest.approx(5.5 - 0.25 - 0.5 - 2.0)


def test_a_running_job_without_slack_for_a_move_is_tied_to_its_site() -> None:
    # 8 accelerator-hours on 4 (2 h at full parallelism); a move costs a step (0.5 h), a
    # restore (0.25 h) and a migration (0.5 h), and the reserve keeps a step plus a tenth of
    # the run (0.5 + 0.2 h) beside it: a running job needs 1.25 + 0.7 h of slack to move.
    jobs = _jobs(deadline_h=np.array([2.0 + 1.95 - 0.01, 2.0 + 1.95 + 0.01, 2.5, 2.5]))
    np.testing.assert_array_equal(DEADLINES.tied(jobs, 0.5), [True, False, False, False])
    np.testing.assert_allclose(DEADLINES.reserve_h(jobs, 0.5), 0.5 + 0.1 * 2.0)


def test_fits_is_earliest_deadline_first_with_parallelism_caps() -> None:
    # Two jobs of 8 accelerator-hours on at most 4 each, due in 2 h: 8 accelerators carry them.
    work, full = np.array([8.0, 8.0]), np.array([4.0, 4.0])
    assert fits(work, full, np.array([2.0, 2.0]), 8.0)
    assert not fits(work, full, np.array([2.0, 2.0]), 7.0)
    # Total work fits the capacity over 4 h (16 <= 4 x 4), but a job capped at 2 due in 4 h
    # beside one that must use all 4 accelerators for the first 2 h: it gets none then, and
    # cannot do its 8 in the 2 h left at 2.
    assert not fits(np.array([8.0, 8.0]), np.array([4.0, 2.0]), np.array([2.0, 4.0]), 4.0)
    assert fits(np.array([8.0, 4.0]), np.array([4.0, 2.0]), np.array([2.0, 4.0]), 4.0)
    # A job too late even alone does not stop others from fitting.
    assert fits(np.array([100.0, 4.0]), np.array([4.0, 4.0]), np.array([1.0, 2.0]), 4.0)


class _Never:
    """Defers every job and lets the reserve decide: what it does alone."""

    name = "never"

    def reset(self) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def decide(self, obs: Observation) -> Decision:
        site_of = np.full(len(obs.jobs), -1)
        acc_of = np.zeros(len(obs.jobs), dtype=np.int64)
        DEADLINES.keep_deadlines(obs, site_of, acc_of, ())
        return Decision(site_of, acc_of, (), hold_steps=1)


def test_a_job_without_slack_to_wait_runs_now_at_full_parallelism() -> None:
    """A proposal that defers a job whose slack cannot pay for waiting is overruled: the job
    starts now on all its accelerators; one with slack to spare is left to wait."""
    n = 48
    sc = scenario(
        [site("a", n=n, accelerators=8, idle_kw=0.1, price=np.full(n, 3000.0))],
        n=n,
        jobs=[
            job("tight", 0.0, 8.0, 4, 2.0 + 1 / 12 + 0.1, checkpoint_h=0.17, migration_h=0.5),
            job("loose", 0.0, 4.0, 4, 3.9, checkpoint_h=0.17, migration_h=0.5),
        ],
    )

    record = simulate(sc, _Never())
    history = record.jobs.allocation_history()
    # the tight job (8 accelerator-hours on 4 by 2.18 h) starts at once on all 4
    assert history["step"][history["job"] == 0].min() == 0
    assert history["accelerators"][history["job"] == 0][0] == 4
    # the loose one (4 on 4 by 3.9 h) waits, but not past what its slack allows
    loose_start = history["step"][(history["job"] == 1) & (history["accelerators"] > 0)].min()
    assert loose_start > 0
    summary = summarize(record)
    assert summary["batch"]["deadline_misses"] == 0
    assert summary["batch"]["completed"] == 2


def _first_site(sc: Scenario) -> int:
    """Where the reserve starts job 0 when the policy defers everything (with perfect
    forecasts, so that the run's cost is known)."""
    options = SimulationOptions(forecaster=Clairvoyant())
    history = simulate(sc, _Never(), options).jobs.allocation_history()
    mine = (history["job"] == 0) & (history["accelerators"] > 0)
    assert history["step"][mine].min() == 0, "a job without slack to wait starts at once"
    return int(history["site"][mine][0])


def test_a_job_the_reserve_must_start_runs_where_its_run_costs_least() -> None:
    """Two sites with the same room: the tight job goes to the one where an accelerator
    costs less over its run, not to the first (the roomiest, as it was) — and that is judged
    over the run, not now: a site cheap for one step and dear after it is not chosen."""
    n = 48
    tight = [job("tight", 0.0, 8.0, 4, 2.0 + 1 / 12 + 0.1)]
    dear_and_cheap = scenario(
        [
            site("a", n=n, accelerators=8, price=3000.0),
            site("b", n=n, accelerators=8, price=30.0),
        ],
        n=n,
        jobs=tight,
    )
    assert _first_site(dear_and_cheap) == 1
    cheap_now_only = np.full(n, 3000.0)
    cheap_now_only[0] = 10.0
    now_or_run = scenario(
        [
            site("a", n=n, accelerators=8, price=cheap_now_only),
            site("b", n=n, accelerators=8, price=100.0),
        ],
        n=n,
        jobs=tight,
    )
    assert _first_site(now_or_run) == 1


def test_an_accelerator_costs_what_its_marginal_source_costs() -> None:
    """One more accelerator runs on surplus sun while there is some beside the load (free
    here: the site cannot export), then on the grid within its import limit (price plus the
    carbon price), then on the genset; where none can power it, it costs ``inf``. Over a run,
    the forecast sun counts, the forecast wind does not."""
    n = 12
    sun = site(
        "sun",
        n=n,
        accelerators=8,
        solar_kw=3.0,
        solar_profile=np.ones(n),
        price=100.0,
        carbon=300.0,
        import_limit_kw=2.0,
        genset=Genset(2.0, 0.5, 700.0),
    )
    sc = scenario([sun], n=n, jobs=[job("x", 0.0, 8.0, 8, 6.0)], carbon_price=100.0)
    sim = Simulator(sc)
    table = JobTable(sim.job_spec)
    obs = sim.observe(0, table, np.array([0]), lambda: np.zeros(1))
    at_a = np.array([0])

    def cost(accelerators: int) -> float:
        return float(obs.accelerator_cost_usd_per_h(at_a, np.array([accelerators]), ())[0])

    assert cost(0) == pytest.approx(0.0)  # 1 kW of 3 kW of sun
    assert cost(2) == pytest.approx(0.0)  # the third kW of sun
    grid = 100.0 / 1000 + 100.0 * 300.0 / 1e6  # USD/kWh: price + carbon price x intensity
    assert cost(3) == pytest.approx(grid)  # 1 kW from the grid (2 kW allowed)
    assert cost(4) == pytest.approx(grid)
    genset = 0.5 + 100.0 * 700.0 / 1e6
    assert cost(5) == pytest.approx(genset)  # past the import limit
    assert cost(6) == pytest.approx(genset)  # the genset's second kW
    assert np.isinf(cost(7))  # 8 kW: more than sun, grid and genset together
    # Over the next 12 steps the forecast sun counts too (it shines on, as it did so far) ...
    run = float(obs.accelerator_cost_usd_per_h(at_a, np.array([0]), (), steps=12)[0])
    assert run == pytest.approx(0.0)
    # ... but wind counts now only: after now the power is bought (wind is forecast worst
    # from the past, and work started on a gust stays when it drops).
    windy = replace(sun, wind=sun.solar, solar=None)
    sc = scenario([windy], n=n, jobs=[job("x", 0.0, 8.0, 8, 6.0)], carbon_price=100.0)
    sim = Simulator(sc)
    obs = sim.observe(0, JobTable(sim.job_spec), np.array([0]), lambda: np.zeros(1))
    assert float(obs.accelerator_cost_usd_per_h(at_a, np.array([0]), ())[0]) == 0.0
    run = float(obs.accelerator_cost_usd_per_h(at_a, np.array([0]), (), steps=12)[0])
    assert run == pytest.approx(11 / 12 * grid)


def _fits_at_every_breakpoint(
    work: np.ndarray, full: np.ndarray, deadline: np.ndarray, capacity: float
) -> bool:
    """The fit test written out job by job at every breakpoint: the definition."""
    full = np.maximum(full, ROUNDING)
    start = deadline - work / full
    possible = start >= -ROUNDING
    work, full, deadline, start = (
        work[possible],
        full[possible],
        deadline[possible],
        start[possible],
    )
    times = np.unique(np.concatenate([start, deadline]))
    times = times[times > 0]
    lag = deadline[np.newaxis, :] - times[:, np.newaxis]
    mandatory = np.clip(work - full * lag, 0.0, work)
    return bool((mandatory.sum(axis=1) <= max(capacity, 0.0) * times + ROUNDING).all())


def test_fits_agrees_with_its_definition_on_random_job_sets() -> None:
    rng = np.random.default_rng(7)
    answers = []
    for _ in range(400):
        n = int(rng.integers(1, 60))
        full = rng.integers(0, 9, n).astype(np.float64)
        work = np.round(rng.uniform(0, 40, n), int(rng.integers(0, 3)))
        deadline = np.round(rng.uniform(-1, 24, n), int(rng.integers(0, 2)))  # ties, late jobs
        capacity = float(rng.integers(0, 3 * n + 2))
        expected = _fits_at_every_breakpoint(work, full, deadline, capacity)
        assert fits(work, full, deadline, capacity) == expected
        answers.append(expected)
    assert 0.2 < np.mean(answers) < 0.8  # both answers are exercised


def test_reserve_starts_are_kept_where_they_run_within_the_room_left():
    waiting = _jobs(site=np.full(4, -1), accelerators=np.zeros(4, np.int64))
    kept = ReserveStarts()
    # The proposal left every job waiting; the reserve started 0, 1 and 2 (3 still waits).
    kept.note(waiting, np.full(4, -1), np.array([0, 0, 1, -1]))
    assert kept.ids == {0, 1, 2}
    # A step later they run; the next proposal runs 1 itself and leaves 0 and 2 out.
    jobs = _jobs(
        site=np.array([0, 0, 1, -1]),
        accelerators=np.array([4, 2, 3, 0]),
        min_accelerators=np.array([2, 2, 1, 1]),
    )
    site_of, acc_of = np.array([-1, 0, -1, -1]), np.array([0, 2, 0, 0])
    free = np.array([3.0, 1.0])
    kept.keep_running(jobs, site_of, acc_of, free)
    # 0 gets what site 0 has left (3 of its 4, not below its minimum); 2 the 1 left at 1.
    assert site_of.tolist() == [0, 0, 1, -1]
    assert acc_of.tolist() == [3, 2, 1, 0]
    assert free.tolist() == [0.0, 0.0]
    # Below its minimum parallelism a job is not kept.
    site_of, acc_of, free = np.full(4, -1), np.zeros(4, np.int64), np.array([1.0, 5.0])
    kept.keep_running(jobs, site_of, acc_of, free)
    assert site_of.tolist() == [-1, -1, 1, -1]
    assert acc_of.tolist() == [0, 0, 3, 0]
    # Only the reserve's starts are noted: not the proposal's, nor jobs already running.
    fresh = ReserveStarts()
    fresh.note(jobs, np.array([-1, -1, -1, 1]), np.array([0, 0, 1, 1]))
    assert fresh.ids == set()
