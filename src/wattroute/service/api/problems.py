"""Error answers: one format for every 4xx and 5xx, RFC 9457 problem details.

Every error is ``application/problem+json``::

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "body.deadline: the work needs 2.00 h ...",
     "instance": "/v1/jobs",
     "errors": [{"field": "body.deadline", "problem": "...", "fix": "..."}]}

``errors`` names each field (``body.<name>``, ``query.<name>``, ``path.<name>``,
``header.<Name>``) with what is wrong and how to fix it; nothing in an answer is a Python repr
or a traceback. Routes raise :class:`ProblemError`; request validation errors, Starlette's
own errors (404 for an unknown route, 405), database errors and bugs are turned into the same
format by the handlers :func:`install` registers.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from wattroute.service.schemas import PATTERNS, FieldError, Problem

log = logging.getLogger("wattroute.api")
MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """An error answer: ``status`` and the field errors behind it."""

    def __init__(
        self,
        status: int,
        field: str | None,
        problem: str,
        fix: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(problem)
        self.status = status
        self.errors = [FieldError(field=field, problem=problem, fix=fix)]
        self.headers = dict(headers or {})


def not_found(field: str, what: str, fix: str) -> ProblemError:
    return ProblemError(404, field, f"no {what}", fix)


def unprocessable(field: str, problem: str, fix: str) -> ProblemError:
    return ProblemError(422, field, problem, fix)


def response(
    status: int,
    errors: Sequence[FieldError],
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem answer for ``errors``."""
    detail = "; ".join(f"{e.field}: {e.problem}" if e.field else e.problem for e in errors)
    body = Problem(
        title=_title(status),
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors),
    )
    return JSONResponse(
        body.model_dump(), status_code=status, headers=dict(headers or {}), media_type=MEDIA_TYPE
    )


_RFC9110 = {413: "Content Too Large", 422: "Unprocessable Content"}
"""Reason phrases RFC 9110 renamed (Python's http module keeps the older ones)."""


def _title(status: int) -> str:
    if status in _RFC9110:
        return _RFC9110[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# -- request validation: pydantic's errors as field, problem, fix ------------------------------

_FIXES: dict[str, str] = {
    "missing": "add it",
    "int_type": "give a JSON integer such as 4 (not a string or a fraction)",
    "int_parsing": "give an integer such as 4",
    "int_from_float": "give a whole number",
    "float_type": "give a JSON number such as 2.5 (not a string)",
    "float_parsing": "give a number such as 2.5",
    "finite_number": "give a finite number: NaN and Infinity are not JSON numbers",
    "bool_type": "give true or false",
    "bool_parsing": "give true or false",
    "string_type": "give a JSON string",
    "dict_type": "give a JSON object",
    "model_type": "give a JSON object",
    "model_attributes_type": "give a JSON object",
    "list_type": "give a JSON array",
    "datetime_type": "give an ISO 8601 time with a UTC offset, e.g. 2026-12-01T12:00:00Z",
    "datetime_parsing": "give an ISO 8601 time with a UTC offset, e.g. 2026-12-01T12:00:00Z",
    "datetime_from_date_parsing": "give an ISO 8601 time with a UTC offset, "
    "e.g. 2026-12-01T12:00:00Z",
    "timezone_aware": "add the UTC offset, e.g. 2026-12-01T12:00:00Z",
    "json_invalid": "send a JSON object (Content-Type: application/json)",
    "json_type": "send a JSON object",
}


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "header":  # FastAPI lower-cases header names
        parts[1] = "-".join(w.capitalize() for w in parts[1].split("-"))
    return ".".join(parts)


def field_errors(errors: Sequence[Mapping[str, Any]], request: Request) -> list[FieldError]:
    """Each of pydantic's errors as field, problem and fix."""
    out = []
    for e in errors:
        loc = list(e.get("loc", ()))
        kind = str(e.get("type", ""))
        ctx = e.get("ctx") or {}
        message = str(e.get("msg", "is invalid"))
        if kind == "json_invalid":
            # loc ends with the character position, not a field
            position = loc[1] if len(loc) > 1 else None
            at = f" at character {position}" if isinstance(position, int) else ""
            out.append(
                FieldError(
                    field="body",
                    problem=f"is not valid JSON ({ctx.get('error', 'cannot be parsed')}{at})",
                    fix=_FIXES[kind],
                )
            )
            continue
        if kind == "invalid" and "problem" in ctx:
            if "field" in ctx:
                loc = [*loc, ctx["field"]]
            out.append(FieldError(field=_where(loc), problem=ctx["problem"], fix=ctx["fix"]))
            continue
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if kind == "extra_forbidden":
            allowed = _fields_at(request, loc[:-1])
            fix = "remove it" + (f"; the fields are: {', '.join(allowed)}" if allowed else "")
            out.append(FieldError(field=_where(loc), problem="is not a field here", fix=fix))
            continue
        if kind == "missing":
            problem = "is required" if loc[0] != "body" or len(loc) > 1 else "a body is required"
            out.append(
                FieldError(
                    field=_where(loc),
                    problem=problem,
                    fix="add it" if len(loc) > 1 else "send a JSON object",
                )
            )
            continue
        problem = message[0].lower() + message[1:] if message else "is invalid"
        problem = problem.replace("input should", "should")
        fix = _FIXES.get(kind) or _fix_from_context(kind, ctx)
        if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERNS:
            problem, fix = PATTERNS[ctx["pattern"]]
        out.append(FieldError(field=_where(loc) or None, problem=problem, fix=fix))
    return out


def _fix_from_context(kind: str, ctx: Mapping[str, Any]) -> str:
    if kind == "string_pattern_mismatch":
        return f"match the pattern {ctx.get('pattern')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "give a value in range (see the API reference at /docs)"
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        return "change its length (see the API reference at /docs)"
    if kind in ("literal_error", "enum"):
        return f"use one of {ctx.get('expected', 'the values listed in /docs')}"
    return "see the API reference at /docs"


def _fields_at(request: Request, loc: Sequence[Any]) -> list[str]:
    """The fields the route's body model accepts at ``loc`` (``["body"]``: its top level)."""
    if list(loc) != ["body"]:
        return []
    route = request.scope.get("route")
    body = getattr(route, "body_field", None)
    model = getattr(getattr(body, "field_info", None), "annotation", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


# -- the handlers -------------------------------------------------------------------------------


def _methods(request: Request) -> list[str]:
    """Every method some route takes on the request's path."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


_HTTP_ERRORS = {
    400: ("body", None, "send a JSON object encoded as UTF-8 (Content-Type: application/json)"),
    404: (None, "no such route", "check the path against the API reference at /docs"),
    405: (
        None,
        "this route does not take this method",
        "use a method it allows (the Allow header lists them)",
    ),
}


def install(app: FastAPI) -> None:
    """Answer every error on ``app`` with problem details."""

    @app.exception_handler(ProblemError)
    async def problem(request: Request, exc: ProblemError) -> JSONResponse:
        return response(exc.status, exc.errors, request.url.path, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return response(422, field_errors(exc.errors(), request), request.url.path)

    @app.exception_handler(HTTPException)
    async def starlette_error(request: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI's own (a body it cannot parse: 400) and Starlette's (unknown route: 404,
        # method not allowed: 405).
        field, problem, fix = _HTTP_ERRORS.get(
            exc.status_code, (None, None, "see the API reference at /docs")
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; there may be more.
            headers["Allow"] = ", ".join(_methods(request))
        if problem is None:
            text = exc.detail if isinstance(exc.detail, str) else ""
            problem = (text or _title(exc.status_code)).lower()
        return response(
            exc.status_code,
            [FieldError(field=field, problem=problem, fix=fix)],
            request.url.path,
            headers,
        )

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # Lost connection, a locked SQLite file past its timeout: nothing was accepted, and a
        # retry (with the same Idempotency-Key) is safe.
        log.warning("database unavailable", extra={"fields": {"error": type(exc.orig).__name__}})
        return response(
            503,
            [
                FieldError(
                    field=None,
                    problem="the database is unavailable; nothing was changed",
                    fix="retry shortly (with the same Idempotency-Key)",
                )
            ],
            request.url.path,
            {"Retry-After": "1"},
        )

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # Every value is checked before it reaches the database; this answers anything that
        # slips through with a 4xx rather than a 500, and logs it as the bug it is.
        log.error("value the database refused", extra={"fields": {"error": str(exc.orig)}})
        return response(
            422,
            [
                FieldError(
                    field=None,
                    problem="a value of the request cannot be stored",
                    fix="send printable text and numbers within the documented ranges",
                )
            ],
            request.url.path,
        )

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", extra={"fields": {"path": request.url.path}})
        return response(
            500,
            [
                FieldError(
                    field=None,
                    problem="the service failed on this request (logged)",
                    fix="retry; if it persists, report it with the time of the request",
                )
            ],
            request.url.path,
        )


_DESCRIPTIONS = {
    400: "the body cannot be parsed (not UTF-8 JSON)",
    401: "no bearer token, or an unknown, expired or revoked one",
    403: "the token lacks the scope this route needs",
    404: "no such object, or one that belongs to another tenant",
    409: "the object exists already",
    413: "the request body is over the size limit",
    422: "a field is invalid: each is named with the problem and the fix",
    503: "the database is unavailable (nothing was changed; retry with the same "
    "Idempotency-Key), or the fleet's period is over",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the error answers ``codes`` a route can give."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


READ = error_responses(401, 403, 422, 503)
"""The errors a read of a list or of the fleet can give."""
READ_ONE = error_responses(401, 403, 404, 422, 503)
"""The errors a read of one object can give."""
WRITE_ONE = error_responses(400, 401, 403, 404, 413, 422, 503)
"""The errors a change to one object can give."""
