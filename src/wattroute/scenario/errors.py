"""Turn pydantic's validation errors into messages that name the field and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError

from wattroute.errors import ScenarioError


def field_path(loc: Iterable[int | str]) -> str:
    """``("sites", 2, "battery", "capacity_kwh")`` -> ``"sites[2].battery.capacity_kwh"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<file>"


def _all_field_names(models: Iterable[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    stack = list(models)
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            for arg in _model_args(info.annotation):
                stack.append(arg)
    return names


def _model_args(annotation: object) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_args(arg))
    return found


def _clean_loc(error: dict[str, object], known: set[str]) -> list[int | str]:
    """The error location without the union branches pydantic inserts (``FileSignal``...)."""
    loc = list(error.get("loc", ()))  # type: ignore[call-overload]
    last = len(loc) - 1
    return [
        part
        for i, part in enumerate(loc)
        if isinstance(part, int)
        or part in known
        or (i == last and error.get("type") == "extra_forbidden")
    ]


def _problem(error: dict[str, object], known: set[str]) -> tuple[str, str]:
    kind = str(error.get("type", ""))
    loc = _clean_loc(error, known)
    msg = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
        fix = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "remove it."
        return "unknown field.", fix
    if kind == "missing":
        return "required field is missing.", "add it."
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return f"{msg}{shown}.", ""


def scenario_error(exc: ValidationError, root: type[BaseModel], source: str) -> ScenarioError:
    """One :class:`ScenarioError` describing every problem pydantic found, first one first."""
    known = _all_field_names([root])
    lines = []
    first_field = source
    seen: set[tuple[str, str]] = set()
    for i, error in enumerate(exc.errors()):
        path = field_path(_clean_loc(dict(error), known))
        problem, fix = _problem(dict(error), known)
        if (path, problem) in seen:
            continue
        seen.add((path, problem))
        if i == 0:
            first_field = f"{source}: {path}"
        lines.append(f"{path}: {problem}" + (f" Fix: {fix}" if fix else ""))
    head, *rest = lines
    problem = head.split(": ", 1)[1] if ": " in head else head
    if rest:
        problem += "\n  also:\n    " + "\n    ".join(rest)
    return ScenarioError(first_field, problem)
