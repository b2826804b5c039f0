"""The oracle's relaxation over a receding horizon: what ``mpc`` would reach if it forecast
perfectly and carried out its plans exactly.

Every period it solves the oracle's problem (actual signals, continuous allocations, free
checkpoints and migrations, per-period means; see :mod:`wattroute.optimise.oracle`) over the
next ``horizon_h`` hours, for the jobs that have arrived by the period's end, and commits the
first period: the work done and the battery's state carry over. Work beyond the horizon may be
deferred at the mean of its cheapest sites' energy cost over the horizon, and battery energy
left at the horizon's end is worth the median energy cost — as in ``mpc``.

It sits between two measured numbers, and so splits the distance between them:

* against the oracle (the same relaxation over the whole scenario at once), it measures what
  foresight beyond the horizon is worth — signals and job arrivals the horizon does not reach;
* against ``mpc`` with perfect forecasts, it measures what turning plans into schedules costs:
  whole accelerators, minimum parallelism, steps within a period, checkpoints and migrations.

It is not a bound: a schedule may do better than a short-sighted plan.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from wattroute.model.costs import busy_accelerator_hour_usd
from wattroute.model.scenario import Scenario
from wattroute.model.tolerances import ROUNDING
from wattroute.optimise.oracle import oracle_problem
from wattroute.optimise.plan import optimise
from wattroute.optimise.problem import JobBlock, PlanningProblem, ServiceBlock, deferral_cost


def solve_receding(
    scenario: Scenario,
    horizon_h: float = 24.0,
    period_h: float = 1.0,
    time_limit_s: float = 60.0,
) -> dict[str, Any]:
    """Run the relaxation over a receding horizon; its objective (USD), cost (USD), emissions
    (kg), penalties (USD), work left undone at deadlines (accelerator-hours) and solve time (s).

    Raises :class:`~wattroute.errors.OptimisationError` if a window's LP cannot be solved.
    """
    started = time.perf_counter()
    whole = oracle_problem(scenario, period_h)
    n, window = whole.n_periods, max(1, round(horizon_h / period_h))
    jobs, fleet = whole.jobs, whole.fleet
    remaining = jobs.work_accelerator_hours.copy()
    soc = whole.soc_kwh.copy()
    energy_cost = whole.bought_power_cost_usd_per_kwh
    acc_cost = busy_accelerator_hour_usd(fleet, whole.pue, energy_cost)
    opened = np.cumsum(jobs.available > 0, axis=1) > 0  # (J, H): arrived by the period's end
    left = np.cumsum(jobs.available[:, ::-1], axis=1)[:, ::-1]  # (J, H): window from here on
    totals = dict.fromkeys(("cost_usd", "emissions_kg", "penalties_usd", "undone"), 0.0)
    solve_s = 0.0
    for h in range(n):
        end = min(n, h + window)
        ids = np.flatnonzero(opened[:, h] & (left[:, h] > 0) & (remaining > ROUNDING))
        after = left[ids, end] if end < n else np.zeros(ids.size)
        block = JobBlock(
            work_accelerator_hours=remaining[ids],
            max_accelerators=jobs.max_accelerators[ids],
            available=jobs.available[ids, h:end],
            allowed=jobs.allowed[ids],
            current_site=np.full(ids.size, -1),
            switch_cost_usd_per_accelerator_hour=np.zeros(ids.size),
            deferrable_accelerator_hours=np.minimum(
                remaining[ids], jobs.max_accelerators[ids] * after * period_h
            ),
            deferral_cost_usd_per_accelerator_hour=deferral_cost(
                jobs.allowed[ids], acc_cost[h:end]
            ),
        )
        terminal = (
            np.median(energy_cost[h:end], axis=0) * fleet.battery_discharge_eff
            if end < n
            else np.zeros(fleet.n_sites)
        )
        plan = optimise(_window(whole, h, end, soc, terminal, block), time_limit_s)
        solve_s += plan.solution.seconds
        remaining[ids] -= plan.work[:, :, 0].sum(axis=1) * period_h
        soc = plan.soc_kwh[0].copy()
        first = plan.totals(slice(0, 1))
        totals["cost_usd"] += first["cost_usd"]
        totals["emissions_kg"] += first["emissions_kg"]
        totals["penalties_usd"] += first["slo_penalty_usd"] + first["shed_penalty_usd"]
        # Work whose window closes with this period and is not done misses its deadline.
        window_left = left[ids, h + 1] if h + 1 < n else np.zeros(ids.size)
        closing = ids[(window_left <= 0) & (remaining[ids] > 1e-6)]
        totals["undone"] += float(remaining[closing].sum())
        remaining[closing] = 0.0
    penalties = (
        totals["penalties_usd"] + totals["undone"] * whole.deadline_penalty_usd_per_accelerator_hour
    )
    return {
        "objective_usd": totals["cost_usd"]
        + whole.carbon_price_usd_per_tonne * totals["emissions_kg"] / 1000.0
        + penalties,
        "cost_usd": totals["cost_usd"],
        "emissions_kg": totals["emissions_kg"],
        "penalties_usd": penalties,
        "work_undone_at_deadline_accelerator_hours": totals["undone"],
        "horizon_h": window * period_h,
        "replans": n,
        "solve_s": solve_s,
        "wall_s": time.perf_counter() - started,
    }


def _window(
    whole: PlanningProblem,
    first: int,
    end: int,
    soc_kwh: np.ndarray,
    terminal_value_usd_per_kwh: np.ndarray,
    jobs: JobBlock,
) -> PlanningProblem:
    rows = slice(first, end)
    return replace(
        whole,
        price_usd_per_mwh=whole.price_usd_per_mwh[rows],
        carbon_g_per_kwh=whole.carbon_g_per_kwh[rows],
        export_price_usd_per_mwh=whole.export_price_usd_per_mwh[rows],
        solar_kw=whole.solar_kw[rows],
        wind_kw=whole.wind_kw[rows],
        pue=whole.pue[rows],
        soc_kwh=soc_kwh,
        terminal_value_usd_per_kwh=terminal_value_usd_per_kwh,
        jobs=jobs,
        # Among equally cheap plans, work earlier, as mpc does (the oracle needs no tie-break).
        early_bias_usd_per_accelerator_hour=PlanningProblem.early_bias_usd_per_accelerator_hour,
        services=tuple(
            ServiceBlock(
                s.rate_rps[rows], s.feasible, s.replica_throughput_rps, s.accelerators_per_replica
            )
            for s in whole.services
        ),
    )
