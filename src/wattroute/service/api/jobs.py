"""Batch jobs: submit (idempotently), read, list, cancel."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from wattroute.errors import InputError
from wattroute.model.tolerances import ROUNDING
from wattroute.runtime.records import JobRecord
from wattroute.runtime.submissions import JobRequest, PeriodOverError, admit_job
from wattroute.service.api.deps import Limit, ObjectId, Offset, Reader, SiteFilter, State, Submitter
from wattroute.service.api.problems import ProblemError, error_responses, not_found
from wattroute.service.api.state import AppState
from wattroute.service.auth import Principal
from wattroute.service.schemas import KEY_PATTERN, JobList, JobOut, JobSubmission

router = APIRouter(tags=["jobs"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=128,
        pattern=KEY_PATTERN,
        description="a key of yours (printable ASCII, at most 128) that makes retries safe: "
        "the same key with the same body is the same job",
    ),
]


JOB_LINKS = {
    "get": {"operationId": "get_job", "parameters": {"job_id": "$response.body#/id"}},
    "cancel": {"operationId": "cancel_job", "parameters": {"job_id": "$response.body#/id"}},
}
"""What a client can do with a job it submitted (OpenAPI links)."""


def _json(body: BaseModel, status: int = 200) -> Response:
    """``body`` as JSON, without FastAPI validating it a second time against the route's
    response model (the hot routes: a submission and a read of one job)."""
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")


class RandomIds:
    """Random (version 4) UUIDs, as hex, as ``uuid.uuid4().hex`` makes them, from
    ``os.urandom`` read ``batch`` ids at a time: reading it releases the GIL, and a request
    that gives the GIL up on the event loop waits to get it back behind every other thread."""

    def __init__(self, batch: int = 256) -> None:
        self.batch = batch
        self._random = bytearray()
        self._used = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            if self._used == len(self._random):
                self._random, self._used = bytearray(os.urandom(16 * self.batch)), 0
            one = self._random[self._used : self._used + 16]
            self._used += 16
        one[6] = (one[6] & 0x0F) | 0x40  # version 4
        one[8] = (one[8] & 0x3F) | 0x80  # the RFC 4122 variant
        return one.hex()


_JOB_IDS = RandomIds()


def job_out(job: JobRecord) -> JobOut:
    missed = (job.remaining_at_deadline or 0.0) > ROUNDING or (
        job.completed_at is not None and job.completed_at > job.deadline
    )
    return JobOut(
        id=job.id,
        tenant=job.tenant,
        name=job.name,
        state=job.state,  # type: ignore[arg-type]
        submitted_at=job.submitted_at.to_pydatetime(),
        deadline=job.deadline.to_pydatetime(),
        work_accelerator_hours=job.work_accelerator_hours,
        done_accelerator_hours=job.done_accelerator_hours,
        min_accelerators=job.min_accelerators,
        max_accelerators=job.max_accelerators,
        allowed_sites=list(job.allowed_sites) if job.allowed_sites is not None else None,
        function=job.function,
        args=job.args,
        error=job.error,
        site=job.site,
        accelerators=job.accelerators,
        moves=job.moves,
        stops=job.stops,
        completed_at=None if job.completed_at is None else job.completed_at.to_pydatetime(),
        deadline_missed=bool(missed),
    )


def request_hash(body: JobSubmission) -> str:
    """SHA-256 of the submission as validated, in a canonical form (sorted keys)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _repeat(existing: JobRecord, digest: str) -> Response:
    """The answer to a key used before: the job (200) if the body is the same, else 422."""
    if existing.request_hash is not None and existing.request_hash != digest:
        raise ProblemError(
            422,
            "header.Idempotency-Key",
            "was used before with a different request body",
            "use a new key for a new job, or resend the first request's body unchanged",
        )
    return _json(job_out(existing), 200)


@router.post(
    "/v1/jobs",
    response_model=JobOut,
    status_code=201,
    responses={
        201: {"description": "the job, accepted", "links": JOB_LINKS},
        200: {
            "model": JobOut,
            "description": "an earlier submission with the same Idempotency-Key and body",
            "links": JOB_LINKS,
        },
        **error_responses(400, 401, 403, 413, 422, 503),
    },
)
async def submit_job(
    body: JobSubmission,
    state: State,
    who: Submitter,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Submit a batch job; committed before the answer. Resubmitting with the same
    ``Idempotency-Key`` and body returns the first job (200) instead of creating another; the
    same key with a different body is refused (422)."""
    # Runs on the event loop (no trip through the thread pool): only the commit, which the
    # store's committer thread does for a group at a time, and the rare read of an earlier
    # job are waited for elsewhere.
    digest = request_hash(body)
    try:
        job = _admit(state, body, who, idempotency_key, digest)
    except ProblemError:
        # A retry of a job accepted before is answered with that job, even if the request
        # would not be admitted now (its deadline has come closer, the period has ended).
        existing = (
            None
            if idempotency_key is None
            else await run_in_threadpool(state.store.job_by_key, who.tenant, idempotency_key)
        )
        if existing is None:
            raise
        return _repeat(existing, digest)
    stored, created = await state.store.submit_job_async(job)
    if not created:  # the key was used before (or by a concurrent submission)
        return _repeat(stored, digest)
    return _json(job_out(stored), 201)


def _admit(
    state: AppState, body: JobSubmission, who: Principal, key: str | None, digest: str
) -> JobRecord:
    request = JobRequest(
        **{
            **dict(body),
            "deadline": None if body.deadline is None else pd.Timestamp(body.deadline),
            "allowed_sites": None if body.allowed_sites is None else tuple(body.allowed_sites),
        }
    )
    try:
        return admit_job(
            request, who.tenant, state.clock.now(), state.rules, _JOB_IDS.next(), key, digest
        )
    except PeriodOverError as exc:
        raise ProblemError(503, None, exc.problem.rstrip("."), exc.fix.rstrip(".")) from None
    except InputError as exc:
        raise ProblemError(
            422, f"body.{exc.field}", exc.problem.rstrip("."), exc.fix.rstrip(".")
        ) from None
    except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
        # a deadline beyond what timestamps represent (the schema's bounds should prevent it)
        raise ProblemError(
            422,
            "body.slack_h",
            "puts the deadline beyond the times this service plans",
            "give less slack or a deadline",
        ) from None


def _no_job(job_id: str) -> ProblemError:
    """The 404 for a job the caller has not (another tenant's looks the same)."""
    return not_found("path.job_id", f"job {job_id!r}", "list your jobs with GET /v1/jobs")


def own_job(state: AppState, job_id: str, who: Principal) -> JobRecord:
    """The caller's job (an admin's: anyone's), or 404: another tenant's job does not exist
    as far as the caller can tell."""
    job = state.store.job(job_id)
    if job is None or (job.tenant != who.tenant and not who.admin):
        raise _no_job(job_id)
    return job


@router.get(
    "/v1/jobs/{job_id}", response_model=JobOut, responses=error_responses(401, 403, 404, 422, 503)
)
def get_job(job_id: ObjectId, state: State, who: Reader) -> Response:
    """One of your jobs with its progress."""
    return _json(job_out(own_job(state, job_id, who)))


@router.get("/v1/jobs", response_model=JobList, responses=error_responses(401, 403, 422, 503))
def list_jobs(
    state: State,
    who: Reader,
    state_: Annotated[
        str | None,
        Query(alias="state", pattern="^(queued|running|paused|completed|cancelled|failed)$"),
    ] = None,
    site: SiteFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JobList:
    """Your jobs (an admin's: everyone's), newest first, a page at a time."""
    jobs, total = state.store.jobs(None if who.admin else who.tenant, state_, site, limit, offset)
    return JobList(jobs=[job_out(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=error_responses(401, 403, 404, 422, 503),
)
def cancel_job(job_id: ObjectId, state: State, who: Submitter) -> JobOut:
    """Cancel one of your jobs (an admin: anyone's); a job that has ended stays as it is."""
    own_job(state, job_id, who)
    job = state.store.cancel_job(job_id)
    if job is None:  # pragma: no cover - jobs are never deleted
        raise _no_job(job_id)
    return job_out(job)
