"""ASGI middleware of the API: a body size limit and request timing (plain ASGI: Starlette's
``BaseHTTPMiddleware`` costs more than a submission's commit)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wattroute.service.api import problems
from wattroute.service.metrics import ServiceMetrics
from wattroute.service.schemas import FieldError


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether their length is announced
    (``Content-Length``) or not (chunked): the body is read, up to the limit, before the app
    sees it, so an oversized one never reaches a route (which would call it unparseable)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = problems.response(
            413,
            [
                FieldError(
                    field="body",
                    problem=f"is over {self.limit} bytes",
                    fix=f"send at most {self.limit} bytes (api.max_body_bytes)",
                )
            ],
            scope.get("path"),
            {"Connection": "close"},
        )
        await answer(scope, receive, send)


class Timing:
    """Observe each request's latency by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = scope.get("route")
            self.metrics.http.labels(
                scope["method"], getattr(route, "path", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)
