"""Errors of the execution layer that callers handle without importing Ray."""

from __future__ import annotations


class NoReplicaError(Exception):
    """No site the routing allows has a live replica of the service."""
