"""The HTTP API (FastAPI), versioned under ``/v1``, documented at ``/docs`` and
``/openapi.json``: one router per resource (``health``, ``fleet``, ``jobs``, ``inference``,
``plan``, ``grid_events``), the dependencies they share (``deps``: who is calling, paging),
and one error format (``problems``).

Every route but ``/healthz`` and ``/readyz`` takes ``Authorization: Bearer <token>``; missing,
unknown, expired or revoked tokens get 401, a token without the route's scope 403. A tenant
sees and acts on only its own workloads (an admin on all); another tenant's job or service is
404, not 403, so ids and names leak nothing.
"""

from wattroute.service.api.app import create_app
from wattroute.service.api.state import AppState

__all__ = ["AppState", "create_app"]
