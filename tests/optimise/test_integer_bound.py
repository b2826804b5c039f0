"""The integer-aware bound: tighter than the LP where pauses cost restores, and still below
every policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.builders import SHARED_DATA, job, needs_shared_data, scenario, site
from wattroute.optimise.integer_bound import build_integer_bound, solve_integer_bound
from wattroute.optimise.oracle import oracle_problem, solve_oracle
from wattroute.optimise.problem import JobBlock
from wattroute.policies import get_policy
from wattroute.scenario import load_scenario
from wattroute.sim import SimulationOptions, simulate, summarize

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK_SCENARIOS = (
    ROOT / "examples" / "temporal_shifting.yaml",
    ROOT / "examples" / "multi_site_fleet.yaml",
    ROOT / "benchmarks" / "scenarios" / "stranded_power.yaml",
    ROOT / "benchmarks" / "scenarios" / "stress_days.yaml",
)


def _spike(checkpoint_h: float):
    """One accelerator of 1 kW; 2 accelerator-hours of work on 1 accelerator, due in 3 h; the
    second hour costs 1,000 USD/MWh, the others 100."""
    price = np.repeat([100.0, 1000.0, 100.0], 12)
    return scenario(
        [site("a", n=36, accelerators=1, price=price, carbon=0.0)],
        n=36,
        jobs=[job("j", 0, 2.0, 1, 3.0, min_acc=1, checkpoint_h=checkpoint_h)],
    )


def test_a_pause_across_a_spike_pays_its_restore():
    # The LP pauses through the spike for free: 1 kWh at 100 USD/MWh on each side, 0.2 USD.
    # With a 30-minute restore the job keeps its accelerator busy 2.5 h of the 3, so half of
    # the spike hour is paid: 0.1 + 0.5 + 0.1 = 0.7 USD. A schedule that costs that: run the
    # first hour, stop, restart at 1:30 (the restore takes the rest of the spike hour) and
    # work the third hour. Running through the spike costs 1.1 USD.
    sc = _spike(0.5)
    _, lp = solve_oracle(sc)
    assert lp["objective_usd"] == pytest.approx(0.2, abs=1e-6)
    bound = solve_integer_bound(sc, time_limit_s=30)
    assert bound.status == "Optimal"
    assert bound.objective_usd == pytest.approx(0.7, abs=1e-5)
    assert bound.lp_objective_usd == pytest.approx(0.2, abs=1e-6)
    # No policy does better, and running through the spike costs 1.1 USD.
    for name in ("agnostic", "greedy", "mpc"):
        s = summarize(simulate(sc, get_policy(name), SimulationOptions()))
        assert s["objective_usd"] >= bound.objective_usd - 1e-6, name


def test_a_search_stopped_at_once_still_bounds_by_the_lp_relaxation():
    # Without time for branch and bound (as on a machine too loaded to finish the root), the
    # bound is the program's LP relaxation, solved on its own: a bound every policy respects.
    sc = _spike(0.5)
    bound = solve_integer_bound(sc, time_limit_s=0.0)
    assert "bound: the LP relaxation (Optimal)" in bound.status
    assert bound.objective_usd == bound.relaxation_usd
    assert 0.2 - 1e-6 <= bound.objective_usd <= 0.7 + 1e-6  # between the LP and the optimum
    full = solve_integer_bound(sc, time_limit_s=30)
    assert np.isnan(full.relaxation_usd)  # above the oracle's LP: no relaxation needed
    assert full.objective_usd >= bound.relaxation_usd


def test_free_restores_leave_the_bound_at_the_lp():
    sc = _spike(0.0)
    _, lp = solve_oracle(sc)
    bound = solve_integer_bound(sc, time_limit_s=30)
    assert bound.objective_usd == pytest.approx(lp["objective_usd"], abs=1e-6)


def test_a_move_pays_its_restore_and_migration():
    # Two sites, one cheap in hour 0 and the other in hour 1; 2 accelerator-hours on one
    # accelerator, due in 2 h. The LP runs each hour where it is cheap (0.2 USD); a move costs
    # a 15-minute restore and a 15-minute migration there is no time for, so the job stays at
    # one site and runs one hour at 1,000 USD/MWh: 1.1 USD.
    sites = [
        site("a", n=24, accelerators=1, price=np.repeat([100.0, 1000.0], 12), carbon=0.0),
        site("b", n=24, accelerators=1, price=np.repeat([1000.0, 100.0], 12), carbon=0.0),
    ]
    sc = scenario(sites, n=24, jobs=[job("j", 0, 2.0, 1, 2.0, checkpoint_h=0.25, migration_h=0.25)])
    _, lp = solve_oracle(sc)
    assert lp["objective_usd"] == pytest.approx(0.2, abs=1e-6)
    bound = solve_integer_bound(sc, time_limit_s=30)
    assert bound.objective_usd == pytest.approx(1.1, abs=1e-5)
    for name in ("agnostic", "greedy", "mpc"):
        s = summarize(simulate(sc, get_policy(name), SimulationOptions()))
        assert s["objective_usd"] >= bound.objective_usd - 1e-6, name


def test_a_wide_job_with_an_hour_of_slack_cannot_hop_between_sites_every_hour():
    # Two sites whose cheap hours alternate; 32 accelerator-hours on 8 accelerators, due in
    # 5 h: an hour of slack. The LP hops to the cheap site every hour (3.2 USD). Each hop
    # costs a 15-minute restore and a 15-minute migration during which the job does no work,
    # so it has time for two at most; and going to the other site and back within an hour is
    # two hops, not one. The bound counts both, and stays below every policy.
    hours = np.arange(72) // 12
    cheap_a = np.where(hours % 2 == 0, 100.0, 1000.0)
    sites = [
        site("a", n=72, accelerators=8, price=cheap_a, carbon=0.0),
        site("b", n=72, accelerators=8, price=1100.0 - cheap_a, carbon=0.0),
    ]
    sc = scenario(
        sites,
        n=72,
        jobs=[job("j", 0, 32.0, 8, 5.0, min_acc=1, checkpoint_h=0.25, migration_h=0.25)],
    )
    _, lp = solve_oracle(sc)
    assert lp["objective_usd"] == pytest.approx(3.2, abs=1e-6)
    bound = solve_integer_bound(sc, time_limit_s=30)
    assert bound.status == "Optimal"
    assert bound.objective_usd > 4.0  # 3.3 when hops cost only energy and returns were free
    for name in ("agnostic", "greedy", "mpc"):
        s = summarize(simulate(sc, get_policy(name), SimulationOptions()))
        assert s["objective_usd"] >= bound.objective_usd - 1e-6, name


def test_the_bound_needs_the_jobs_overheads():
    problem = oracle_problem(_spike(0.5))
    stripped = JobBlock(
        problem.jobs.work_accelerator_hours,
        problem.jobs.max_accelerators,
        problem.jobs.available,
        problem.jobs.allowed,
        problem.jobs.current_site,
        problem.jobs.switch_cost_usd_per_accelerator_hour,
    )
    with pytest.raises(ValueError, match="overheads"):
        build_integer_bound(replace(problem, jobs=stripped))


def _one_day(path: Path, tmp_path: Path) -> Path:
    """The benchmark scenario ``path`` cut to its first day, written under ``tmp_path``."""
    spec = yaml.safe_load(path.read_text())
    spec["end"] = (pd.Timestamp(spec["start"]) + pd.Timedelta(days=1)).isoformat()
    spec["data_dir"] = str(SHARED_DATA)
    out = tmp_path / path.name
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


@needs_shared_data()
@pytest.mark.slow
@pytest.mark.parametrize("path", BENCHMARK_SCENARIOS, ids=lambda p: p.stem)
def test_no_policy_beats_the_integer_bound_on_the_benchmark_scenarios(path, tmp_path):
    sc = load_scenario(_one_day(path, tmp_path))
    bound = solve_integer_bound(sc, time_limit_s=20)
    assert np.isfinite(bound.objective_usd)
    for name in ("agnostic", "greedy", "mpc"):
        s = summarize(simulate(sc, get_policy(name), SimulationOptions()))
        assert s["batch"]["overhead_owed_at_deadline_h"] == 0.0, name
        assert s["objective_usd"] >= bound.objective_usd - 1e-6 * abs(s["objective_usd"]), name
