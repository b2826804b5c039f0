"""API tokens: random secrets stored only as hashes, with a tenant and scopes.

Scopes: ``read`` (see), ``submit`` (submit and cancel workloads; includes read) and ``admin``
(change sites, declare grid events, see every tenant's workloads; includes the others). A
tenant sees and cancels only its own workloads. A token is shown once, when created; the store
keeps its SHA-256 (tokens are 256-bit random, so a plain hash is enough), and nothing logs it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from wattroute.errors import InputError

SCOPES = ("read", "submit", "admin")
IMPLIED = {"read": {"read"}, "submit": {"read", "submit"}, "admin": {"read", "submit", "admin"}}
PREFIX = "wr_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and what it may do."""

    tenant: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """Whether a granted scope covers ``scope`` (admin covers submit, submit covers read)."""
        return any(scope in IMPLIED.get(granted, ()) for granted in self.scopes)

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes


def parse_scopes(text: str) -> frozenset[str]:
    """``"submit"`` or ``"read,submit"`` -> every scope granted (with the implied ones)."""
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


def new_token() -> str:
    """A fresh secret token."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenCache:
    """Principals by token hash, remembered for ``ttl_s`` seconds (revocation takes that long)."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return False, None
        return True, entry[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic(), principal)
