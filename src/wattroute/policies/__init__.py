"""Policies: given the state now and forecasts, decide where and when work runs.

Each policy is a small module behind the :class:`~wattroute.policies.base.Policy` interface;
:data:`POLICIES` maps names to factories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wattroute.errors import InputError
from wattroute.policies.agnostic import AgnosticPolicy
from wattroute.policies.base import Decision, Observation, Policy
from wattroute.policies.greedy import GreedyPolicy
from wattroute.policies.mpc import MPCPolicy

POLICIES: Mapping[str, Callable[[], Policy]] = {
    AgnosticPolicy.name: AgnosticPolicy,
    GreedyPolicy.name: GreedyPolicy,
    MPCPolicy.name: MPCPolicy,
}


def describe_policies() -> dict[str, str]:
    """Policy name -> one-line description."""
    return {name: str(getattr(factory, "description", "")) for name, factory in POLICIES.items()}


def get_policy(name: str) -> Policy:
    """A fresh policy by name; an unknown name is an :class:`InputError` listing the known ones."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise InputError(
            "--policy",
            f"unknown policy {name!r}.",
            f"use one of: {', '.join(POLICIES)} (see `wattroute policies`).",
        ) from None


__all__ = ["POLICIES", "Decision", "Observation", "Policy", "describe_policies", "get_policy"]
