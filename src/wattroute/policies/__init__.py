"""Policies: given the state now and forecasts, decide where and when work runs.

Each policy is a small module behind the :class:`~wattroute.policies.base.Policy` interface;
:data:`POLICIES` maps names to factories. A policy's module is imported the first time its
factory is asked for, so naming or listing policies loads none of them (``mpc`` brings the LP
solver with it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from wattroute._lazy import lazy_exports
from wattroute.errors import InputError

if TYPE_CHECKING:
    from wattroute.policies.base import Decision, Observation, Policy

_FACTORIES = {
    "agnostic": "wattroute.policies.agnostic:AgnosticPolicy",
    "greedy": "wattroute.policies.greedy:GreedyPolicy",
    "mpc": "wattroute.policies.mpc:MPCPolicy",
}


class _Registry(Mapping[str, "Callable[[], Policy]"]):
    """Policy name -> factory, importing a policy's module when its factory is first asked for."""

    def __init__(self, factories: Mapping[str, str]) -> None:
        self._factories = dict(factories)

    def __getitem__(self, name: str) -> Callable[[], Policy]:
        module, _, attr = self._factories[name].partition(":")
        factory: Callable[[], Policy] = getattr(importlib.import_module(module), attr)
        return factory

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


POLICIES: Mapping[str, Callable[[], Policy]] = _Registry(_FACTORIES)

POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)
"""The names :func:`get_policy` knows."""


def describe_policies() -> dict[str, str]:
    """Policy name -> one-line description (imports every policy)."""
    return {name: str(getattr(factory, "description", "")) for name, factory in POLICIES.items()}


def get_policy(name: str, field: str = "--policy") -> Policy:
    """A fresh policy by name; an unknown name is an :class:`InputError` on ``field`` listing
    the known ones."""
    if name not in POLICIES:
        raise InputError(
            field,
            f"unknown policy {name!r}.",
            f"use one of: {', '.join(POLICIES)} (see `wattroute policies`).",
        )
    return POLICIES[name]()


__getattr__ = lazy_exports(
    __name__,
    {"wattroute.policies.base": ("Decision", "Observation", "Policy")},
)


__all__ = [
    "POLICIES",
    "POLICY_NAMES",
    "Decision",
    "Observation",
    "Policy",
    "describe_policies",
    "get_policy",
]
