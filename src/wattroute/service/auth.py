"""API tokens: random secrets stored only as hashes, with a tenant, scopes and an optional
expiry.

Scopes: ``read`` (see the fleet and your own workloads), ``submit`` (submit, change and cancel
your workloads; includes read), ``metrics`` (scrape ``/metrics``, which names every tenant's
services: for the operator's monitoring) and ``admin`` (change sites, declare grid events,
see and act on every tenant's workloads; includes all the others). A tenant sees and acts on
only its own workloads.

A token is shown once, when created; the store keeps its SHA-256 (tokens are 256-bit random,
so a plain hash is enough), and nothing logs it. A revocation (``wattroute token revoke``) or an
expiry takes effect at once in every API process: on SQLite every request looks its token up
in the database (a local read in WAL mode, which costs nothing measurable); on PostgreSQL each
process keeps the tokens it has seen in a :class:`TokenCache` that the database empties the
moment any token is created or revoked (``LISTEN``/``NOTIFY``), and that is off whenever that
channel is down.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass

import pandas as pd

from wattroute.errors import InputError

SCOPES = ("read", "submit", "metrics", "admin")
IMPLIED = {
    "read": {"read"},
    "submit": {"read", "submit"},
    "metrics": {"metrics"},
    "admin": {"read", "submit", "metrics", "admin"},
}
PREFIX = "wr_"
MAX_TOKEN_CHARS = 256
"""Longer credentials are refused unread: no token this service makes is near it."""
TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(w|weeks?|d|days?|h|hours?|min|minutes?|s)$")
SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "min": 60, "s": 1}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and what it may do."""

    tenant: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """Whether a granted scope covers ``scope`` (admin covers every other)."""
        return any(scope in IMPLIED.get(granted, ()) for granted in self.scopes)

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes


def parse_scopes(text: str) -> frozenset[str]:
    """``"submit"`` or ``"read,metrics"`` -> every scope granted (with the implied ones)."""
    granted: set[str] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part not in IMPLIED:
            raise InputError(
                "--scope", f"unknown scope {part!r}.", f"use one of: {', '.join(SCOPES)}."
            )
        granted |= IMPLIED[part]
    if not granted:
        raise InputError("--scope", "no scope given.", f"use one of: {', '.join(SCOPES)}.")
    return frozenset(granted)


def stored_scopes(text: str) -> frozenset[str]:
    """The scopes a stored token grants (as written by :func:`parse_scopes`)."""
    return frozenset(s for s in text.split(",") if s)


def check_tenant(tenant: str) -> str:
    """A tenant name: letters, digits, ``.``, ``_`` and ``-``, at most 64, starting with a
    letter or digit (it keys the tenant's services as ``tenant/name``)."""
    if not TENANT.match(tenant):
        raise InputError(
            "--tenant",
            f"{tenant!r} is not a tenant name.",
            "use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit.",
        )
    return tenant


def parse_expiry(text: str, now: pd.Timestamp) -> pd.Timestamp:
    """``--expires``: a duration from ``now`` (``90d``, ``12h``, ``30min``) or an ISO 8601
    time with a UTC offset; the expiry, UTC."""
    fix = "give a duration such as 90d or 12h, or a time such as 2027-01-01T00:00:00Z."
    duration = DURATION.match(text.strip())
    if duration:
        amount, unit = float(duration[1]), duration[2]
        span = pd.Timedelta(seconds=amount * SECONDS["min" if unit[:3] == "min" else unit[0]])
        if span <= pd.Timedelta(0):
            raise InputError("--expires", f"{text!r} is not a positive duration.", fix)
        return now + span
    try:
        when = pd.Timestamp(text)
    except (ValueError, OverflowError):
        raise InputError("--expires", f"cannot read {text!r}.", fix) from None
    if when.tzinfo is None:
        raise InputError("--expires", f"{text!r} has no UTC offset.", fix)
    when = when.tz_convert("UTC")
    if when <= now:
        raise InputError("--expires", f"{text!r} is in the past.", fix)
    return when


def new_token() -> str:
    """A fresh secret token."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenCache:
    """The principals of tokens seen lately, by hash, with their expiry (UTC), for as long as
    the database vouches for them: :meth:`clear` empties it (a token was created or revoked)
    and :meth:`disable` turns it off (the channel that says so is down).

    A lookup that raced a clear does not put back what it read: :meth:`put` takes the
    generation that :meth:`generation` gave before the lookup and drops the entry if a clear
    came since.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, pd.Timestamp | None]] = {}
        self._generation = 0
        self._enabled = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1
            self._enabled = True

    def disable(self) -> None:
        with self._lock:
            self._enabled = False
            self._entries.clear()
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def generation(self) -> int:
        return self._generation

    def get(self, digest: str, now: pd.Timestamp) -> Principal | None:
        """The cached principal of a token that has not expired at ``now``, if any."""
        if not self._enabled:
            return None
        entry = self._entries.get(digest)
        if entry is None or (entry[1] is not None and entry[1] <= now):
            return None
        return entry[0]

    def put(
        self,
        digest: str,
        principal: Principal,
        expires_at: pd.Timestamp | None,
        generation: int,
    ) -> None:
        with self._lock:
            if not self._enabled or generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (principal, expires_at)
