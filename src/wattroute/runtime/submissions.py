"""Admitting a batch job: the checks every submission passes, whoever submits it.

:func:`admit_job` turns a :class:`JobRequest` into the :class:`JobRecord` the store keeps, or
refuses it with an :class:`~wattroute.errors.InputError` naming the field, what is wrong and
the fix. The API calls it with the body it validated; tests and embedding code call it
directly. What is checked against the fleet: the allowed sites exist, the job fits the largest
of them, its work fits before its deadline at full parallelism, the deadline falls within the
period the fleet has signals for, and its code is a name the operator registered for the
tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from wattroute.errors import InputError
from wattroute.model.tolerances import ROUNDING
from wattroute.model.workloads import allowed_site_names
from wattroute.runtime.records import JobRecord
from wattroute.runtime.registry import CodeRegistry


class PeriodOverError(InputError):
    """The fleet's signals end before now: nothing more can be planned or run."""


@dataclass(frozen=True)
class JobRequest:
    """What a tenant asks for. Work in accelerator-hours, overheads and slack in hours; give
    ``deadline`` (UTC) or ``slack_h`` (hours beyond the shortest run), not both."""

    name: str
    work_accelerator_hours: float
    min_accelerators: int = 1
    max_accelerators: int = 1
    deadline: pd.Timestamp | None = None
    slack_h: float | None = None
    checkpoint_overhead_h: float = 0.0
    migration_overhead_h: float = 0.0
    allowed_sites: tuple[str, ...] | None = None
    function: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetRules:
    """What a submission is checked against.

    Parameters
    ----------
    accelerators
        Accelerators per site, by site name, in fleet order.
    period_end
        The end of the period the fleet has signals for (UTC).
    registry
        The job functions tenants may name.
    code_required
        Whether jobs must name a function (an execution engine runs real code).
    """

    accelerators: Mapping[str, int]
    period_end: pd.Timestamp
    registry: CodeRegistry = field(default_factory=CodeRegistry.builtin)
    code_required: bool = False


def admit_job(
    request: JobRequest,
    tenant: str,
    now: pd.Timestamp,
    rules: FleetRules,
    job_id: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> JobRecord:
    """The job to store for ``request`` by ``tenant`` at fleet time ``now``.

    Raises
    ------
    PeriodOverError
        The fleet's period has ended.
    InputError
        The request breaks a rule; ``field`` names the request field.
    """
    if now >= rules.period_end:
        raise PeriodOverError(
            "deadline",
            f"the fleet's signals end at {rules.period_end.isoformat()} and it is "
            f"{now.isoformat()}: nothing more can be planned.",
            "the operator extends signals.end (or runs on live signals) and restarts.",
        )
    if (request.deadline is None) == (request.slack_h is None):
        raise InputError("deadline", "give exactly one of deadline or slack_h.", "drop one.")
    if request.min_accelerators > request.max_accelerators:
        raise InputError(
            "min_accelerators",
            f"{request.min_accelerators} exceeds max_accelerators={request.max_accelerators}.",
            "lower min_accelerators or raise max_accelerators.",
        )
    _check_code(request, tenant, rules)
    allowed = allowed_site_names(request.allowed_sites, list(rules.accelerators))
    biggest = max(rules.accelerators[s] for s in allowed)
    if request.min_accelerators > biggest:
        raise InputError(
            "min_accelerators",
            f"needs {request.min_accelerators} accelerators; the largest allowed site has "
            f"{biggest}.",
            f"lower min_accelerators to at most {biggest} or allow a larger site.",
        )
    shortest_h = request.work_accelerator_hours / request.max_accelerators
    if request.deadline is not None:
        deadline = request.deadline.tz_convert("UTC")
    else:
        assert request.slack_h is not None
        # floored to microseconds (as floor("us"), a fraction of its cost)
        deadline = (now + pd.Timedelta(hours=shortest_h + request.slack_h)).replace(nanosecond=0)
    available_h = (deadline - now).total_seconds() / 3600
    if available_h + ROUNDING < shortest_h:
        raise InputError(
            "deadline",
            f"the work needs {shortest_h:.2f} h at max_accelerators="
            f"{request.max_accelerators}; the deadline leaves {max(available_h, 0):.2f} h.",
            "raise max_accelerators or move the deadline later.",
        )
    if deadline > rules.period_end:
        raise InputError(
            "deadline",
            f"{deadline.isoformat()} is after the end of the planned period "
            f"({rules.period_end.isoformat()}).",
            "give an earlier deadline (or less slack).",
        )
    return JobRecord(
        id=job_id,
        tenant=tenant,
        name=request.name,
        submitted_at=now,
        deadline=deadline,
        work_accelerator_hours=request.work_accelerator_hours,
        min_accelerators=request.min_accelerators,
        max_accelerators=request.max_accelerators,
        checkpoint_overhead_h=request.checkpoint_overhead_h,
        migration_overhead_h=request.migration_overhead_h,
        allowed_sites=request.allowed_sites,
        function=request.function,
        args=dict(request.args),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


def _check_code(request: JobRequest, tenant: str, rules: FleetRules) -> None:
    if request.function is None:
        if rules.code_required:
            names = rules.registry.allowed("job", tenant)
            raise InputError(
                "function",
                "is required: the execution engine runs real code.",
                f"name a registered job function: {', '.join(names) or '(none registered)'}.",
            )
        return
    if rules.registry.lookup("job", request.function, tenant) is None:
        problem, fix = rules.registry.refusal("job", request.function, tenant)
        raise InputError("function", problem + ".", fix + ".")
