"""The code a tenant may run: job functions and inference handlers the operator registered.

A tenant never names a Python object. It names an entry of this registry (``train-resnet``),
and the operator's entry says which function that is (``acme_models.train:main``) and, if
given, which tenants may use it. A name that is not registered, or not open to the calling
tenant, is refused at submission with the list of names that are; a job whose name is
withdrawn from the registry before it runs fails with that reason instead of running.

Entry points are ``module.path:function`` and are imported only where the work runs (on the
execution engine's nodes), never by the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["job", "handler"]

ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
"""``module.path:function``."""

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""A registered name: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit."""

BUILTIN_JOBS = {
    "train-logistic-regression": "wattroute.execution.examples:train_logistic_regression",
}
BUILTIN_HANDLERS = {"mlp": "wattroute.execution.examples:mlp_model"}


@dataclass(frozen=True)
class CodeEntry:
    """One registered piece of code.

    Parameters
    ----------
    name
        What tenants ask for.
    entry_point
        ``module.path:function``: a job function called as ``function(ctx, **args)``, or an
        inference handler factory returning the model callable.
    tenants
        The tenants that may use it; ``None``: every tenant.
    """

    name: str
    entry_point: str
    tenants: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(
                f"registered name {self.name!r}: use letters, digits, '.', '_' or '-' "
                "(at most 128), starting with a letter or digit"
            )
        if not ENTRY_POINT.match(self.entry_point):
            raise ValueError(
                f"entry point {self.entry_point!r} of {self.name!r}: write it as "
                "module.path:function"
            )

    def open_to(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants


@dataclass(frozen=True)
class CodeRegistry:
    """Job functions and inference handlers by registered name."""

    jobs: Mapping[str, CodeEntry] = field(default_factory=dict)
    handlers: Mapping[str, CodeEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, jobs: Iterable[CodeEntry] = (), handlers: Iterable[CodeEntry] = ()) -> CodeRegistry:
        return cls({e.name: e for e in jobs}, {e.name: e for e in handlers})

    @classmethod
    def builtin(cls) -> CodeRegistry:
        """The examples that ship with wattroute: a checkpointing training job
        (``train-logistic-regression``) and a small perceptron (``mlp``), open to every
        tenant."""
        return cls.of(
            (CodeEntry(n, e) for n, e in BUILTIN_JOBS.items()),
            (CodeEntry(n, e) for n, e in BUILTIN_HANDLERS.items()),
        )

    def _entries(self, kind: Kind) -> Mapping[str, CodeEntry]:
        return self.jobs if kind == "job" else self.handlers

    def lookup(self, kind: Kind, name: str, tenant: str) -> CodeEntry | None:
        """The entry ``tenant`` may run under ``name``, or ``None``."""
        entry = self._entries(kind).get(name)
        return entry if entry is not None and entry.open_to(tenant) else None

    def allowed(self, kind: Kind, tenant: str) -> list[str]:
        """The names ``tenant`` may use, sorted."""
        return sorted(n for n, e in self._entries(kind).items() if e.open_to(tenant))

    def refusal(self, kind: Kind, name: str, tenant: str) -> tuple[str, str]:
        """(problem, fix) for a name ``tenant`` may not use."""
        what = "job function" if kind == "job" else "inference handler"
        names = self.allowed(kind, tenant)
        return (
            f"{name!r} is not a registered {what}",
            f"use one of: {', '.join(names)}"
            if names
            else f"no {what} is registered for you; ask the operator to register one",
        )
