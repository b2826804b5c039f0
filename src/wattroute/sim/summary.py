"""The summary every run writes (DESIGN.md, "What is measured").

``objective_usd = cost_usd + carbon_price_usd_per_tonne * emissions_kg / 1000 + penalties``

* ``cost_usd``: grid energy x price + genset fuel - export revenue;
* ``emissions_kg``: grid energy x grid intensity (of the scenario's kind) + genset energy x
  its emission factor;
* penalties: work undone at each job's deadline x ``deadline_miss_usd_per_accelerator_hour``,
  plus every request not served within its SLO x ``slo_violation_usd_per_request``.

Energy identity (checked by the tests): ``grid + solar + wind + genset + battery_discharge =
load + battery_charge + export``, where solar and wind exclude curtailed energy and ``load``
is the facility energy served; ``unserved`` is demand no source could cover, reported apart.

``mean_completion_delay_h`` is, over completed jobs, the time from the earliest a job could
have finished (arrival + work at full parallelism) to when it did.

:func:`job_frame` is the per-job result (``jobs.parquet``): one row per job, from what the job
table kept per job and its allocation changes (never per step).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from wattroute.model.costs import objective_usd
from wattroute.model.summary import (
    ENERGY_KEYS,
    EnergyKwh,
    PenaltiesUsd,
    Requests,
    SiteTotals,
    Summary,
    period_of,
    violation_fraction,
)
from wattroute.model.tolerances import ROUNDING
from wattroute.sim.simulator import RunRecord


def _energy(totals: dict[str, np.ndarray], site: int | None) -> EnergyKwh:
    return cast(
        EnergyKwh,
        {
            key: float(totals[key].sum() if site is None else totals[key][site])
            for key in ENERGY_KEYS
        },
    )


def summarize(run: RunRecord) -> Summary:
    """The run's summary (the module docstring; :class:`~wattroute.model.summary.Summary`)."""
    scenario = run.scenario
    record = run.sites
    carbon_price = scenario.carbon_price_usd_per_tonne
    penalties = scenario.penalties

    cost = float(record.cost_usd.sum())
    emissions = float(record.emissions_kg.sum())

    jobs = run.jobs
    spec = jobs.spec
    completed = jobs.finished
    late = _late(run)
    undone_at_deadline = float(np.nansum(jobs.remaining_at_deadline))
    delays = _delays(run)[completed]

    inf = run.inference
    requests = float(inf.requests.sum())
    within = float(inf.within_slo.sum())
    violations = max(requests - within, 0.0)  # within may exceed by float rounding
    deadline_penalty = undone_at_deadline * penalties.deadline_miss_usd_per_accelerator_hour
    slo_penalty = violations * penalties.slo_violation_usd_per_request
    penalty = deadline_penalty + slo_penalty

    decision = np.array(run.decision_s) if run.decision_s else np.zeros(1)
    sites: dict[str, SiteTotals] = {}
    for i, name in enumerate(run.fleet.names):
        sites[name] = SiteTotals(
            cost_usd=float(record.cost_usd[i]),
            emissions_kg=float(record.emissions_kg[i]),
            energy_kwh=_energy(record.energy_kwh, i),
            peak_load_kw=float(record.peak_load_kw[i]),
            mean_pue=float(record.signals.pue[:, i].mean()) if scenario.n_steps else 0.0,
        )

    summary = Summary(
        scenario=scenario.name,
        policy=run.policy,
        forecaster=run.forecaster,
        bound=False,
        period=period_of(scenario),
        objective_usd=objective_usd(cost, emissions, carbon_price, penalty),
        cost_usd=cost,
        emissions_kg=emissions,
        carbon_price_usd_per_tonne=carbon_price,
        carbon_intensity_kind=scenario.carbon_intensity_kind,
        penalties_usd=PenaltiesUsd(
            deadline=deadline_penalty, slo=slo_penalty, shed=0.0, total=penalty
        ),
        energy_kwh=_energy(record.energy_kwh, None),
        inference={
            "requests": requests,
            "served_within_slo": within,
            "served_late": float(inf.late.sum()),
            "dropped": float(inf.dropped.sum()),
            "slo_violation_fraction": violation_fraction(requests, within),
            "by_service": {
                s.name: Requests(
                    requests=float(inf.requests[i]),
                    served_within_slo=float(inf.within_slo[i]),
                    served_late=float(inf.late[i]),
                    dropped=float(inf.dropped[i]),
                )
                for i, s in enumerate(run.services)
            },
        },
        batch={
            "jobs": int(spec.n_jobs),
            "completed": int(completed.sum()),
            "deadline_misses": int(late.sum()),
            "work_accelerator_hours": float(jobs.done.sum()),
            "work_undone_at_deadline_accelerator_hours": undone_at_deadline,
            "mean_completion_delay_h": float(delays.mean()) if delays.size else 0.0,
            "moves": int(jobs.moves.sum()),
            "stops": int(jobs.stops.sum()),
            "overhead_hours": float(jobs.overhead_paid_h.sum()),
            "overhead_owed_at_deadline_h": float(np.nansum(jobs.owed_at_deadline_h)),
        },
        decision_s={
            "total": float(decision.sum()),
            "p99": float(np.percentile(decision, 99)),
            "decisions": len(run.decision_s),
        },
        wall_s=run.wall_s,
        blocks=run.blocks,
        repairs=run.repairs.as_dict(),
        sites=sites,
        notes=list(scenario.notes),
    )
    if run.policy_stats:
        summary["policy_stats"] = run.policy_stats
    return summary


def _late(run: RunRecord) -> np.ndarray:
    """Per job: finished after its deadline, or unfinished at a deadline inside the period."""
    jobs, spec = run.jobs, run.jobs.spec
    end_h = run.scenario.n_steps * run.scenario.step_h
    late_done = jobs.finished & (jobs.completed_h > spec.deadline_h + ROUNDING)
    undone_due = ~jobs.finished & (spec.deadline_h <= end_h + ROUNDING)
    return cast(np.ndarray, late_done | undone_due)


def _delays(run: RunRecord) -> np.ndarray:
    """Per job, hours from the earliest it could finish (arrival + work at full parallelism) to
    its completion; NaN if unfinished."""
    jobs, spec = run.jobs, run.jobs.spec
    earliest = spec.arrival_h + spec.work_accelerator_hours / spec.max_accelerators
    return cast(np.ndarray, jobs.completed_h - earliest)


SITE_SEPARATOR = ">"
"""Between the sites of a job that ran at several, in ``jobs.parquet``'s ``sites``."""


def _utc_times(times: list[pd.Timestamp]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([t.tz_convert("UTC") for t in times], dtype="datetime64[ns, UTC]")


def job_frame(run: RunRecord) -> pd.DataFrame:
    """One row per batch job: where and when it ran, its moves and overheads, and how it met
    its deadline. Times are UTC, durations hours, work accelerator-hours (the columns are
    listed with their units in docs/results.md, "The per-job result")."""
    scenario, jobs = run.scenario, run.jobs
    spec = jobs.spec
    n = spec.n_jobs
    step_h = scenario.step_h
    end_h = scenario.n_steps * step_h
    history = jobs.allocation_history()
    ran = history["site"] >= 0
    order = np.argsort(history["job"][ran], kind="stable")  # per job, in time order
    job_of = history["job"][ran][order]
    site_of = history["site"][ran][order]
    step_of = history["step"][ran][order]
    first_of_job = np.ones(job_of.size, dtype=bool)
    first_of_job[1:] = job_of[1:] != job_of[:-1]
    start_step = np.full(n, -1, dtype=np.int64)
    start_step[job_of[first_of_job]] = step_of[first_of_job]
    changed = first_of_job.copy()
    changed[1:] |= site_of[1:] != site_of[:-1]  # a new site in the job's sequence
    names = run.fleet.names
    sites = [""] * n
    for job, site in zip(job_of[changed].tolist(), site_of[changed].tolist(), strict=True):
        sites[job] = f"{sites[job]}{SITE_SEPARATOR}{names[site]}" if sites[job] else names[site]

    def utc(hours: np.ndarray) -> pd.DatetimeIndex:
        offsets = pd.to_timedelta(np.round(hours * 3_600_000.0), unit="ms")
        return pd.DatetimeIndex(scenario.start + offsets).as_unit("ns")

    late = _late(run)
    completion_h = jobs.completed_h
    late_h = np.where(
        jobs.finished,
        np.maximum(completion_h - spec.deadline_h, 0.0),
        np.maximum(end_h - spec.deadline_h, 0.0),
    )
    late_h = np.where(late, late_h, 0.0)
    start_h = np.where(start_step >= 0, start_step * step_h, np.nan)
    return pd.DataFrame(
        {
            "job": pd.array(spec.names, dtype="string"),
            "arrival": _utc_times([j.arrival for j in scenario.jobs]),
            "deadline": _utc_times([j.deadline for j in scenario.jobs]),
            "work_accelerator_hours": spec.work_accelerator_hours.astype(np.float64),
            "sites": pd.array(sites, dtype="string"),
            "start": utc(start_h),
            "completion": utc(completion_h),
            "completed": jobs.finished.copy(),
            "moves": jobs.moves.copy(),
            "stops": jobs.stops.copy(),
            "restores": jobs.restores.copy(),
            "overhead_h": jobs.overhead_paid_h.copy(),
            "work_done_accelerator_hours": jobs.done.copy(),
            "work_undone_at_deadline_accelerator_hours": jobs.remaining_at_deadline.copy(),
            "late": late,
            "late_h": late_h,
            "completion_delay_h": _delays(run),
        }
    )
