"""What routes share: the state, who is calling, paging, path and query parameters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from wattroute.service.api.problems import ProblemError
from wattroute.service.api.state import AppState
from wattroute.service.auth import (
    MAX_TOKEN_CHARS,
    TENANT,
    Principal,
    stored_scopes,
    token_hash,
)
from wattroute.service.schemas import PATH_TEXT

OPEN = Principal("public", frozenset({"read", "submit", "metrics", "admin"}))
CHALLENGE = {"WWW-Authenticate": "Bearer"}
BEARER = HTTPBearer(
    auto_error=False,
    description="a token an operator created with `wattroute token create`",
)


async def state_of(request: Request) -> AppState:
    """The app's state (async: a plain function would cost every request a trip through the
    thread pool)."""
    state: AppState = request.app.state.wattroute
    return state


State = Annotated[AppState, Depends(state_of)]


def authorize(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers whose token has ``scope``.

    The token is looked up in the database, or (on PostgreSQL) in the process's cache, which
    the database empties at once when any token is created or revoked; its expiry is checked
    at every request. A credential too long to be a token is refused without a lookup."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> Principal:
        state: AppState = request.app.state.wattroute
        if not state.auth_required:
            return OPEN
        token = None if credentials is None else credentials.credentials.strip()
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise ProblemError(
                401,
                "header.Authorization",
                "no bearer token"
                if "authorization" not in request.headers
                else "is not a bearer token",
                "send Authorization: Bearer <token> (an operator creates one with "
                "`wattroute token create`)",
                CHALLENGE,
            )
        digest = token_hash(token)
        who = state.tokens.get(digest, pd.Timestamp.now(tz="UTC"))
        if who is None:
            generation = state.tokens.generation()
            grant = (
                # A read of a local file in WAL mode never waits for a writer and takes tens
                # of microseconds: cheaper here than a trip through the thread pool.
                state.store.token(digest)
                if state.store.local
                else await run_in_threadpool(state.store.token, digest)
            )
            if grant is None:
                raise ProblemError(
                    401,
                    "header.Authorization",
                    "unknown, expired or revoked token",
                    "ask the operator for a valid token",
                    CHALLENGE,
                )
            who = Principal(grant.tenant, stored_scopes(grant.scopes))
            state.tokens.put(digest, who, grant.expires_at, generation)
        if not who.may(scope):
            raise ProblemError(
                403,
                "header.Authorization",
                f"this token lacks the {scope!r} scope",
                f"use a token with the {scope} scope",
            )
        return who

    return check


Reader = Annotated[Principal, Depends(authorize("read"))]
Submitter = Annotated[Principal, Depends(authorize("submit"))]
Admin = Annotated[Principal, Depends(authorize("admin"))]
Scraper = Annotated[Principal, Depends(authorize("metrics"))]

Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="skip this many items")]
SiteName = Annotated[str, Path(min_length=1, max_length=128, pattern=PATH_TEXT)]
ObjectId = Annotated[str, Path(min_length=1, max_length=128, pattern=PATH_TEXT)]
SiteFilter = Annotated[
    str | None, Query(min_length=1, max_length=128, pattern=PATH_TEXT, description="a site")
]
TenantParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=TENANT.pattern,
        description="admins: act on this tenant's service (default: your own)",
    ),
]


def _query_names(dependant: Any) -> frozenset[str]:
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


_QUERIES: dict[int, frozenset[str]] = {}


async def no_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not take (a misspelt filter such as
    ``?stat=queued`` would otherwise be ignored and list everything), and any given more than
    once (only one of the values would count)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _QUERIES.get(id(route))
    if known is None:
        known = _QUERIES[id(route)] = _query_names(dependant)
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = sorted(key for key, n in counts.items() if n > 1)
    if repeated:  # no parameter takes a list: which one would count?
        raise ProblemError(
            422,
            f"query.{repeated[0]}",
            f"is given {counts[repeated[0]]} times",
            "give each query parameter once",
        )
    unknown = sorted(set(counts) - known)
    if unknown:
        raise ProblemError(
            422,
            f"query.{unknown[0]}",
            f"is not a parameter of this route ({len(unknown)} unknown)"
            if len(unknown) > 1
            else "is not a parameter of this route",
            f"remove it; this route takes: {', '.join(sorted(known)) or 'no parameters'}",
        )


def workload_scope(who: Principal) -> Literal["tenant", "all"]:
    """Whose workloads ``who`` sees: its own, or (an admin) every tenant's."""
    return "all" if who.admin else "tenant"


def acting_tenant(who: Principal, tenant: str | None) -> str:
    """The tenant whose workload a route acts on: the caller's own, or (admins only) the one
    named by ``?tenant=``."""
    if tenant is None or tenant == who.tenant:
        return who.tenant
    if not who.admin:
        raise ProblemError(
            403,
            "query.tenant",
            "only an admin may act on another tenant's workloads",
            "leave out tenant",
        )
    return tenant
