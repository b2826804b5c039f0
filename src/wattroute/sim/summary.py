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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wattroute.sim.simulator import RunRecord


def _energy(totals: dict[str, np.ndarray], site: int | None) -> dict[str, float]:
    return {
        key: float(values.sum() if site is None else values[site]) for key, values in totals.items()
    }


def summarize(run: RunRecord) -> dict[str, Any]:
    """The run's summary as plain JSON-able values (see the module docstring)."""
    scenario = run.scenario
    step_h = scenario.step_h
    record = run.sites
    carbon_price = scenario.carbon_price_usd_per_tonne
    penalties = scenario.penalties

    cost = float(record.cost_usd.sum())
    emissions = float(record.emissions_kg.sum())

    jobs = run.jobs
    spec = jobs.spec
    end_h = scenario.n_steps * step_h
    completed = jobs.finished
    late_done = completed & (jobs.completed_h > spec.deadline_h + 1e-9)
    undone_due = ~completed & (spec.deadline_h <= end_h + 1e-9)
    undone_at_deadline = float(np.nansum(jobs.remaining_at_deadline))
    delays = jobs.completed_h[completed] - (
        spec.arrival_h[completed]
        + spec.work_accelerator_hours[completed] / spec.max_accelerators[completed]
    )

    inf = run.inference
    requests = float(inf.requests.sum())
    within = float(inf.within_slo.sum())
    violations = requests - within
    deadline_penalty = undone_at_deadline * penalties.deadline_miss_usd_per_accelerator_hour
    slo_penalty = violations * penalties.slo_violation_usd_per_request
    penalty = deadline_penalty + slo_penalty

    decision = np.array(run.decision_s) if run.decision_s else np.zeros(1)
    sites: dict[str, Any] = {}
    for i, name in enumerate(run.fleet.names):
        sites[name] = {
            "cost_usd": float(record.cost_usd[i]),
            "emissions_kg": float(record.emissions_kg[i]),
            "energy_kwh": _energy(record.energy_kwh, i),
            "peak_load_kw": float(record.peak_load_kw[i]),
            "mean_pue": float(record.signals.pue[:, i].mean()) if scenario.n_steps else 0.0,
        }

    return {
        "scenario": scenario.name,
        "policy": run.policy,
        "forecaster": run.forecaster,
        "period": {
            "start": scenario.start.isoformat(),
            "end": scenario.end.isoformat(),
            "step_minutes": scenario.step.total_seconds() / 60.0,
            "steps": scenario.n_steps,
        },
        "objective_usd": cost + carbon_price * emissions / 1000.0 + penalty,
        "cost_usd": cost,
        "emissions_kg": emissions,
        "carbon_price_usd_per_tonne": carbon_price,
        "carbon_intensity_kind": scenario.carbon_intensity_kind,
        "penalties_usd": {
            "deadline": deadline_penalty,
            "slo": slo_penalty,
            "total": penalty,
        },
        "energy_kwh": _energy(record.energy_kwh, None),
        "inference": {
            "requests": requests,
            "served_within_slo": within,
            "served_late": float(inf.late.sum()),
            "dropped": float(inf.dropped.sum()),
            "slo_violation_fraction": violations / requests if requests > 0 else 0.0,
            "by_service": {
                s.name: {
                    "requests": float(inf.requests[i]),
                    "served_within_slo": float(inf.within_slo[i]),
                    "served_late": float(inf.late[i]),
                    "dropped": float(inf.dropped[i]),
                }
                for i, s in enumerate(run.services)
            },
        },
        "batch": {
            "jobs": int(spec.n_jobs),
            "completed": int(completed.sum()),
            "deadline_misses": int(late_done.sum() + undone_due.sum()),
            "work_accelerator_hours": float(jobs.done.sum()),
            "work_undone_at_deadline_accelerator_hours": undone_at_deadline,
            "mean_completion_delay_h": float(delays.mean()) if delays.size else 0.0,
            "moves": int(jobs.moves.sum()),
            "stops": int(jobs.stops.sum()),
            "overhead_hours": float(jobs.overhead_paid_h.sum()),
        },
        "decision_s": {
            "total": float(decision.sum()),
            "p99": float(np.percentile(decision, 99)),
            "decisions": len(run.decision_s),
        },
        "wall_s": run.wall_s,
        "blocks": run.blocks,
        "repairs": run.repairs.as_dict(),
        **({"policy_stats": run.policy_stats} if run.policy_stats else {}),
        "sites": sites,
        "notes": list(scenario.notes),
    }
