"""Repair of a policy's decision: allowed sites, parallelism bounds, accelerator capacity and the
power envelope, each on a case small enough to work out by hand, and the same limits on
random decisions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import scenario, site
from wattroute.errors import PolicyError
from wattroute.model.arrays import FleetStatic
from wattroute.policies.base import ActiveJobs, Decision
from wattroute.sim.repair import RepairCounts, check_shapes, clean_routing, repair


def _fleet(
    accelerators: tuple[int, ...] = (4, 4),
    busy_kw: float = 1.0,
    idle_kw: float = 0.25,
    base_it_kw: float = 0.0,
) -> FleetStatic:
    """Sites ``a``, ``b``, ... with the same accelerators' power and base load."""
    sites = [
        dataclasses.replace(
            site(name, n=4, accelerators=count, busy_kw=busy_kw, idle_kw=idle_kw),
            base_it_kw=base_it_kw,
        )
        for name, count in zip("abcdef", accelerators, strict=False)
    ]
    return FleetStatic.from_scenario(scenario(sites, n=4))


def _jobs(
    min_acc: list[int],
    max_acc: list[int],
    deadline_h: list[float] | None = None,
    remaining: list[float] | None = None,
    allowed: list[list[bool]] | None = None,
    n_sites: int = 2,
) -> ActiveJobs:
    """Active jobs that have not run yet (no overheads owed)."""
    n = len(min_acc)
    return ActiveJobs.from_arrays(
        np.arange(n),
        remaining_accelerator_hours=np.asarray(remaining or [4.0] * n, float),
        deadline_h=np.asarray(deadline_h or [24.0] * n, float),
        min_accelerators=np.asarray(min_acc, np.int64),
        max_accelerators=np.asarray(max_acc, np.int64),
        site=np.full(n, -1),
        accelerators=np.zeros(n, np.int64),
        last_site=np.full(n, -1),
        allowed=np.ones((n, n_sites), bool)
        if allowed is None
        else np.asarray(allowed, bool).reshape(n, n_sites),
        pending_overhead_h=np.zeros(n),
        checkpoint_overhead_h=np.zeros(n),
        migration_overhead_h=np.zeros(n),
    )


def _decide(sites: list[int], acc: list[int]) -> Decision:
    return Decision(np.asarray(sites, np.int64), np.asarray(acc, np.int64), ())


def _repair(
    decision: Decision,
    jobs: ActiveJobs,
    fleet: FleetStatic,
    need: list[float] | None = None,
    busy: list[float] | None = None,
    pue: float = 1.0,
    supply_kw: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, RepairCounts, list[str]]:
    """Repair with inference ``need`` / ``busy`` accelerators per site (default none) and
    ``supply_kw`` of facility power per site (default unlimited); the job sites, job
    accelerators, accelerator limits, counts and what changed."""
    s = fleet.n_sites
    counts = RepairCounts()
    fixed = repair(
        decision,
        (),
        jobs,
        fleet,
        np.asarray(need or [0.0] * s, float),
        np.asarray(busy or [0.0] * s, float),
        np.full(s, pue),
        np.asarray(supply_kw or [math.inf] * s, float),
        counts,
    )
    return fixed.job_site, fixed.job_accelerators, fixed.accelerator_limit, counts, fixed.changed


def test_a_feasible_decision_is_left_as_it_is_and_counts_nothing() -> None:
    jobs = _jobs([1, 1], [4, 4])
    sites, acc, limit, counts, changed = _repair(_decide([0, 1], [4, 2]), jobs, _fleet())
    assert sites.tolist() == [0, 1]
    assert acc.tolist() == [4, 2]
    assert limit.tolist() == [4.0, 4.0]  # every accelerator stays powered
    assert changed == []
    assert counts == RepairCounts()


def test_jobs_at_forbidden_sites_or_below_their_minimum_stop_above_their_maximum_clip() -> None:
    # j0 may run at a only but is sent to b; j1 asks 5 of at most 3; j2 asks 1 of at least 2.
    jobs = _jobs([2, 2, 2], [3, 3, 3], allowed=[[True, False], [True, True], [True, True]])
    sites, acc, _, counts, changed = _repair(_decide([1, 0, 0], [2, 5, 1]), jobs, _fleet())
    assert sites.tolist() == [-1, 0, -1]
    assert acc.tolist() == [0, 3, 0]
    assert counts.jobs_moved_to_allowed == 1
    assert counts.jobs_clamped == 2  # one clipped, one stopped
    assert counts.decisions_repaired == 1
    assert changed == ["site not allowed", "parallelism out of bounds"]


def test_a_site_index_out_of_range_or_no_accelerators_means_not_running() -> None:
    jobs = _jobs([1, 1, 1], [4, 4, 4])
    sites, acc, _, counts, changed = _repair(_decide([2, -1, 0], [2, 3, 0]), jobs, _fleet())
    assert sites.tolist() == [-1, -1, -1]
    assert acc.tolist() == [0, 0, 0]
    assert changed == []  # not running is a valid decision, not a repair
    assert counts.decisions_repaired == 0


def test_inference_keeps_its_accelerators_and_the_job_with_most_slack_is_stopped() -> None:
    # Site a: 4 accelerators, 2 for inference replicas. Two jobs of 2 ask for the other 4.
    # Slack = deadline - remaining / max: j0 4 - 4/2 = 2 h, j1 10 - 4/2 = 8 h: j1 gives way.
    # Site b's job is not touched.
    jobs = _jobs([1, 1, 1], [2, 2, 3], deadline_h=[4.0, 10.0, 1.5], remaining=[4.0, 4.0, 3.0])
    sites, acc, _, counts, changed = _repair(
        _decide([0, 0, 1], [2, 2, 3]), jobs, _fleet(), need=[2.0, 0.0], busy=[1.5, 0.0]
    )
    assert sites.tolist() == [0, -1, 1]
    assert acc.tolist() == [2, 0, 3]
    assert counts.jobs_stopped_for_capacity == 1
    assert changed == ["capacity"]


def test_a_site_short_of_power_stops_the_job_with_most_slack_until_the_rest_fits() -> None:
    # Site a: 4 accelerators of 1 kW busy, 0.25 kW idle, PUE 1.25, 4 kW of supply: room for
    # 4 / 1.25 = 3.2 kW of IT. Both jobs (2 + 2): 4 x 0.25 + 4 x 0.75 = 4 kW, too much;
    # without j1 (most slack): 4 x 0.25 + 2 x 0.75 = 2.5 kW, which fits.
    jobs = _jobs([1, 1], [2, 2], deadline_h=[4.0, 10.0])
    sites, acc, limit, counts, changed = _repair(
        _decide([0, 0], [2, 2]), jobs, _fleet(), pue=1.25, supply_kw=[4.0, math.inf]
    )
    assert sites.tolist() == [0, -1]
    assert acc.tolist() == [2, 0]
    assert limit.tolist() == [4.0, 4.0]  # all still powered
    assert counts.jobs_stopped_for_power == 1
    assert counts.sites_short_of_power == 1
    assert counts.sites_powered_down == 0
    assert changed == ["power"]


def test_idle_accelerators_a_site_cannot_power_are_powered_down_as_few_as_needed() -> None:
    # 8 accelerators of 1 kW busy, 0.5 kW idle, 1 kW base load, PUE 1, 5 kW of supply: 4 kW of
    # room for accelerators. Inference needs 2 replicas' accelerators, fully busy: all 8 on draw
    # 8 x 0.5 + 2 x 0.5 = 5 kW. Powered p: 0.5 p + 1 <= 4 gives p = 6 (5 kW at the site, its
    # supply exactly).
    fleet = _fleet((8,), idle_kw=0.5, base_it_kw=1.0)
    _, _, limit, counts, changed = _repair(
        _decide([], []), _jobs([], [], n_sites=1), fleet, need=[2.0], busy=[2.0], supply_kw=[5.0]
    )
    assert limit.tolist() == [6.0]
    assert counts.sites_short_of_power == 1
    assert counts.sites_powered_down == 1
    assert counts.sites_inference_capped == 0
    assert changed == ["power"]


def test_inference_is_capped_last_to_what_the_site_can_power_fully_busy() -> None:
    # The site above with 2 kW of supply: 1 kW for accelerators after the base load. Even the 2
    # replica accelerators alone draw 2 x 0.5 + 2 x 0.5 = 2 kW: inference is capped to
    # floor(1 kW / 1 kW busy) = 1 accelerator. With less supply than the base load, to none.
    fleet = _fleet((8,), idle_kw=0.5, base_it_kw=1.0)
    for supply, expected in ((2.0, 1.0), (0.5, 0.0)):
        _, _, limit, counts, _ = _repair(
            _decide([], []),
            _jobs([], [], n_sites=1),
            fleet,
            need=[2.0],
            busy=[2.0],
            supply_kw=[supply],
        )
        assert limit.tolist() == [expected]
        assert counts.sites_powered_down == 1
        assert counts.sites_inference_capped == 1


def test_routing_shares_are_clipped_to_0_1_and_rows_over_1_scaled_down() -> None:
    counts = RepairCounts()
    (cleaned,) = clean_routing((np.array([[1.5, -0.2], [0.6, 0.6], [0.3, 0.2]]),), counts)
    # Row 0 clips to [1, 0] (sums to 1, kept); row 1 sums to 1.2, scaled to [0.5, 0.5];
    # row 2 sums to 0.5, kept (the other half is dropped).
    np.testing.assert_allclose(cleaned, [[1.0, 0.0], [0.5, 0.5], [0.3, 0.2]])
    assert counts.routing_rescaled == 1


def _two_jobs(
    routing: tuple[np.ndarray, ...] = (np.zeros((1, 2)),),
    battery_kw: np.ndarray | None = None,
    hold_steps: int = 1,
    n_allocations: int = 2,
) -> Decision:
    """A decision for two jobs at a two-site fleet with one service of one demand point."""
    sites = np.zeros(2, np.int64)
    return Decision(sites, np.zeros(n_allocations, np.int64), routing, battery_kw, None, hold_steps)


@pytest.mark.parametrize(
    ("decision", "words"),
    [
        (_two_jobs(n_allocations=1), "(2,) job sites and (1,) job allocations for 2 active jobs"),
        (_two_jobs(routing=()), "routes 0 services, expected 1"),
        (_two_jobs(routing=(np.full((1, 2), np.nan),)), "routing must be finite"),
        (_two_jobs(routing=(np.zeros((2, 2)),)), "with shape (1, 2)"),
        (_two_jobs(battery_kw=np.zeros(3)), "battery_kw must have shape (2,), got (3,)"),
        (_two_jobs(hold_steps=0), "hold_steps must be a positive integer, got 0"),
    ],
)
def test_a_malformed_decision_is_a_policy_error_naming_what_is_wrong(
    decision: Decision, words: str
) -> None:
    check_shapes(_two_jobs(), 2, [(1, 2)], 2)  # the well-formed one passes
    with pytest.raises(PolicyError) as refused:
        check_shapes(decision, 2, [(1, 2)], 2)
    assert words in str(refused.value)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[FleetStatic, ActiveJobs, Decision, dict[str, np.ndarray]]:
    """A random fleet, jobs, decision, inference load and supply."""
    n_sites = draw(st.integers(1, 3))
    n_jobs = draw(st.integers(0, 6))
    counts = draw(st.lists(st.integers(0, 8), min_size=n_sites, max_size=n_sites))
    idle = draw(st.floats(0.0, 0.5))
    busy = idle + draw(st.floats(0.1, 1.0))
    fleet = _fleet(tuple(counts), busy, idle, draw(st.floats(0.0, 2.0)))
    lo = draw(st.lists(st.integers(1, 3), min_size=n_jobs, max_size=n_jobs))
    hi = [m + draw(st.integers(0, 3)) for m in lo]
    allowed = [
        draw(st.lists(st.booleans(), min_size=n_sites, max_size=n_sites)) for _ in range(n_jobs)
    ]
    jobs = _jobs(
        lo,
        hi,
        deadline_h=draw(st.lists(st.floats(0, 48), min_size=n_jobs, max_size=n_jobs)),
        allowed=allowed,
        n_sites=n_sites,
    )
    decision = _decide(
        draw(st.lists(st.integers(-1, n_sites), min_size=n_jobs, max_size=n_jobs)),
        draw(st.lists(st.integers(0, 8), min_size=n_jobs, max_size=n_jobs)),
    )
    need = np.array([draw(st.integers(0, c)) for c in counts], float)
    load = {
        "need": need,
        "busy": need * draw(st.floats(0.0, 1.0)),
        "pue": np.full(n_sites, draw(st.floats(1.0, 2.0))),
        "supply": np.array(
            [draw(st.one_of(st.just(math.inf), st.floats(0.0, 20.0))) for _ in range(n_sites)]
        ),
    }
    return fleet, jobs, decision, load


@settings(max_examples=300, deadline=None)
@given(case=_cases())
def test_a_repaired_decision_never_asks_a_site_for_more_than_it_has(
    case: tuple[FleetStatic, ActiveJobs, Decision, dict[str, np.ndarray]],
) -> None:
    """Whatever the policy asked: running jobs are at allowed sites within their parallelism
    bounds; batch jobs fit beside the inference replicas; no site powers more accelerators
    than it has, and the power it then draws (idle accelerators powered, batch and inference
    busy, base load) fits within its supply wherever the supply covers the base load."""
    fleet, jobs, decision, load = case
    counts = RepairCounts()
    fixed = repair(
        decision,
        (),
        jobs,
        fleet,
        load["need"],
        load["busy"],
        load["pue"],
        load["supply"],
        counts,
    )
    running = fixed.job_site >= 0
    idx = np.flatnonzero(running)
    assert jobs.allowed[idx, fixed.job_site[idx]].all()
    assert (fixed.job_accelerators[running] >= jobs.min_accelerators[running]).all()
    assert (fixed.job_accelerators[running] <= jobs.max_accelerators[running]).all()
    assert (fixed.job_accelerators[~running] == 0).all()
    # Only jobs the policy ran, where it ran them, and never on more than it asked.
    assert (fixed.job_site[running] == decision.job_site[running]).all()
    assert (fixed.job_accelerators <= np.maximum(decision.job_accelerators, 0)).all()

    batch = np.bincount(
        fixed.job_site[running], weights=fixed.job_accelerators[running], minlength=fleet.n_sites
    )
    assert (batch <= np.maximum(fleet.accelerators - load["need"], 0.0)).all()
    assert (fixed.accelerator_limit <= fleet.accelerators).all()
    assert (fixed.accelerator_limit >= 0).all()

    # Inference is served on what the batch jobs leave of the powered accelerators.
    inference_busy = np.minimum(load["busy"], np.maximum(fixed.accelerator_limit - batch, 0.0))
    it = (
        fleet.base_it_kw
        + fleet.idle_kw * fixed.accelerator_limit
        + (fleet.busy_kw - fleet.idle_kw) * (batch + inference_busy)
    )
    covers_base = load["supply"] >= load["pue"] * fleet.base_it_kw
    drawn, supply = (it * load["pue"])[covers_base], load["supply"][covers_base]
    assert (drawn <= supply + 1e-6 * np.maximum(1.0, supply)).all()
    # Every repair made is counted.
    assert counts.decisions_repaired == (1 if fixed.changed else 0)
