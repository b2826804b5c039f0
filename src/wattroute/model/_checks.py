"""The checks the model classes run on their values in ``__post_init__``.

Each raises :class:`~wattroute.errors.ScenarioError` with the field's path (the convention is
in the :mod:`wattroute.model` docstring), what is wrong with the value, and the fix. They are
meant for a handful of objects per site or service; per-job checks compare inline first and
call these only to explain a failure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import NoReturn

import numpy as np

from wattroute.errors import ScenarioError


def fail(field: str, problem: str, fix: str) -> NoReturn:
    """Raise the error; ``fix`` is a sentence without its full stop."""
    raise ScenarioError(field, problem, f"{fix}.")


def _g(bound: float) -> str:
    return f"{bound:g}"


def _range(least: float | None, above: float | None, most: float | None) -> str:
    low = f"[{_g(least)}" if least is not None else f"({_g(above)}" if above is not None else ""
    if low and most is not None:
        return f" in {low}, {_g(most)}]"
    if least is not None:
        return f" >= {_g(least)}"
    if above is not None:
        return f" > {_g(above)}"
    return f" <= {_g(most)}" if most is not None else ""


def number(
    field: str,
    value: object,
    fix: str,
    *,
    least: float | None = None,
    above: float | None = None,
    most: float | None = None,
    infinite: bool = False,
) -> None:
    """A real number, not NaN, finite unless ``infinite`` (then ``math.inf`` is allowed), and
    ``>= least``, ``> above``, ``<= most`` where given."""
    ok = (
        isinstance(value, int | float | np.integer | np.floating)
        and not math.isnan(value)
        and (infinite or not math.isinf(value))
        and (least is None or value >= least)
        and (above is None or value > above)
        and (most is None or value <= most)
    )
    if not ok:
        kind = "a number" if infinite else "a finite number"
        allowed = " (math.inf allowed)" if infinite else ""
        fail(field, f"must be {kind}{_range(least, above, most)}{allowed}, got {value!r}.", fix)


def whole(field: str, value: object, fix: str, least: int = 0) -> None:
    """A whole number (an int, not a bool or a float) ``>= least``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        fail(field, f"must be a whole number >= {least}, got {value!r}.", fix)


def name(field: str, value: object, fix: str) -> None:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        fail(field, f"must be a non-empty string, got {value!r}.", fix)


def place(at: str, label: object, latitude: object, longitude: object, what: str) -> None:
    """A named place: ``{at}.name`` a non-empty string, ``{at}.latitude`` and
    ``{at}.longitude`` in decimal degrees; ``what`` is what the place is, e.g. ``"site"``."""
    name(f"{at}.name", label, f"give the {what} a name")
    number(f"{at}.latitude", latitude, "give decimal degrees", least=-90, most=90)
    number(f"{at}.longitude", longitude, "give decimal degrees", least=-180, most=180)


def aware_time(field: str, value: object, fix: str) -> None:
    """A timezone-aware time (a ``pandas.Timestamp`` or ``datetime``), not NaT."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        fail(field, f"must be a timezone-aware time, got {value!r}.", fix)


def series(
    field: str,
    signal: object,
    fix: str,
    *,
    least: float | None = None,
    most: float | None = None,
) -> None:
    """A :class:`~wattroute.signals.signal.Signal` whose every value is finite, ``>= least``
    and ``<= most`` where given."""
    values = getattr(signal, "values", None)
    if not isinstance(values, np.ndarray):
        fail(field, f"must be a Signal (one value per step), got {type(signal).__name__}.", fix)
    values_in_range(field, values, fix, least=least, most=most)


def values_in_range(
    field: str,
    values: np.ndarray,
    fix: str,
    *,
    least: float | None = None,
    most: float | None = None,
) -> None:
    """Every value of an array finite, ``>= least`` and ``<= most`` where given."""
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array)
    if least is not None:
        bad |= array < least
    if most is not None:
        bad |= array > most
    if bad.any():
        k = int(np.argmax(bad))
        fail(
            field,
            f"must be a finite number{_range(least, None, most)} at every step, got "
            f"{float(array[k])!r} at step {k}.",
            fix,
        )


def unique(field: str, names: Iterable[str], fix: str) -> None:
    """No name twice; ``field`` is the list's name, e.g. ``sites``."""
    seen: set[str] = set()
    for i, item in enumerate(names):
        if item in seen:
            fail(f"{field}[{i}].name", f"{item!r} is used twice.", fix)
        seen.add(item)
