"""Signal intake: what the controller knows of every signal, step by step.

Replayed files and live APIs feed the controller through the same
:class:`~wattroute.runtime.providers.SignalProvider`; the intake takes what the provider
gives for a step and keeps, per signal, an ``(N, S)`` array of what was received:

* the value of the step (a missing one — a feed down, a gap — is carried forward from the
  last good value, and the intake reports itself **degraded**, with reasons, until the
  feed is back);
* values **published** ahead (day-ahead prices): their rows, and per step and site the first
  step not yet known; what was published stays known whatever a feed says later;
* **forecasts** a provider gives (numerical weather forecasts turned into solar, wind and
  PUE; a carbon forecast): per step the rows after it, with the step they were received at,
  so that a forecast can never be read before it arrived;
* each signal's **provenance** per site: source, kind, the value's time and when it was
  fetched.

Policies read it through :meth:`SignalIntake.history`, which hands out only rows up to the
step asked for, published rows, and provider forecasts received by then.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wattroute.runtime.providers import SIGNAL_NAMES, SignalProvider
from wattroute.runtime.providers.values import Provenance
from wattroute.signals.forecast import History, KnownShape

log = logging.getLogger("wattroute.controller")

HISTORY_DAYS = 3
"""Days of the past taken in again when the controller resumes or skips ahead."""


@dataclass
class SignalIntake:
    """Every signal as received, per step and site.

    Parameters
    ----------
    provider
        Where values come from.
    sites
        Site names, in the fleet's order.
    start
        Time of step 0 (UTC).
    step
        Step length.
    n_steps
        Steps in the period.
    shapes
        Shapes known ahead (clear-sky solar) per signal
        (:func:`~wattroute.model.arrays.known_shapes`).
    """

    provider: SignalProvider
    sites: tuple[str, ...]
    start: pd.Timestamp
    step: pd.Timedelta
    n_steps: int
    shapes: Mapping[str, KnownShape] = field(default_factory=dict)
    received: dict[str, np.ndarray] = field(init=False)
    published: dict[str, np.ndarray] = field(init=False, default_factory=dict)
    forecasts: dict[str, np.ndarray] = field(init=False, default_factory=dict)
    forecast_received: dict[str, np.ndarray] = field(init=False, default_factory=dict)
    last_good: dict[str, np.ndarray] = field(init=False)
    missing_since: dict[tuple[str, int], pd.Timestamp] = field(init=False, default_factory=dict)
    provenance: dict[str, list[Provenance | None]] = field(init=False, default_factory=dict)
    degraded: bool = field(init=False, default=False)
    reasons: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        s = len(self.sites)
        self.received = {name: np.full((self.n_steps, s), np.nan) for name in SIGNAL_NAMES}
        self.last_good = {name: np.full(s, np.nan) for name in SIGNAL_NAMES}

    def time_of(self, k: int) -> pd.Timestamp:
        return self.start + k * self.step

    def history(self, k: int, extra: Mapping[str, np.ndarray] | None = None) -> History:
        """What is known at step ``k``: received rows, published rows, forecasts received by
        then; ``extra`` adds series (request rates) read the same way."""
        signals: dict[str, np.ndarray] = dict(self.received)
        if extra:
            signals.update(extra)
        return History(
            signals,
            k,
            self.published,
            self.shapes,
            forecasts={
                name: (rows, self.forecast_received[name]) for name, rows in self.forecasts.items()
            },
        )

    def restore_last_good(self, values: Mapping[str, Any]) -> None:
        """The last good values a committed tick saved (a restart carries on from them)."""
        for name, v in values.items():
            if name in self.last_good:
                self.last_good[name] = np.asarray(v, dtype=float)

    def receive(self, k: int, quiet: bool = False) -> None:
        """Take in step ``k``: its values (a missing one carried forward), what is published
        ahead, the provider's forecasts and provenance; unless ``quiet`` (re-reading the past
        after a restart), update the degraded state."""
        if k >= self.n_steps:
            return
        readings = self.provider.read(k)
        reasons = []
        now = self.time_of(k)
        for name in SIGNAL_NAMES:
            values = np.asarray(readings[name], dtype=float)
            known = self.published.get(name)
            if known is not None and k > 0:
                # a value published ahead stands in for a feed that is down now
                values = np.where(
                    np.isnan(values) & (known[k - 1] > k), self.received[name][k], values
                )
            missing = np.isnan(values)
            good = ~missing
            self.last_good[name] = np.where(good, values, self.last_good[name])
            for s in np.flatnonzero(good):
                self.missing_since.pop((name, int(s)), None)
            for s in np.flatnonzero(missing):
                since = self.missing_since.setdefault((name, int(s)), now)
                reasons.append(f"{name} at {self.sites[s]} missing since {since:%Y-%m-%dT%H:%MZ}")
            self.received[name][k] = np.nan_to_num(self.last_good[name], nan=0.0)
        for name, (until, ahead) in self.provider.read_ahead(k).items():
            self._publish(k, name, until, ahead)
        if k > 0:  # what was published stays known, whatever a feed says later
            for known in self.published.values():
                np.maximum(known[k], known[k - 1], out=known[k])
        for name, rows in self.provider.read_forecasts(k).items():
            self._take_forecast(k, name, rows)
        for name, per_site in self.provider.provenance(k).items():
            mine = self.provenance.setdefault(name, [None] * len(self.sites))
            for i, p in enumerate(per_site):
                if p is not None:
                    mine[i] = p
        if quiet:
            return
        degraded = bool(reasons)
        if degraded != self.degraded:
            event = "degraded" if degraded else "recovered"
            log.warning(event, extra={"fields": {"step": k, "reasons": reasons}})
        self.degraded = degraded
        self.reasons = tuple(reasons)

    def receive_past(self, until: int, since: int = 0) -> None:
        """Take in, quietly, the steps of the :data:`HISTORY_DAYS` days before ``until``
        (none before ``since``): the past the forecaster reads, after a restart or after
        skipping to the step in force."""
        per_day = round(pd.Timedelta(days=1) / self.step)
        for k in range(max(since, until - HISTORY_DAYS * per_day), until):
            self.receive(k, quiet=True)

    def _publish(self, k: int, name: str, until: np.ndarray, ahead: np.ndarray) -> None:
        """Take in what was published at step ``k`` for later steps: the rows into
        ``received``, the first unknown step per site into ``published``."""
        known = self.published.get(name)
        if known is None:
            steps = np.arange(1, self.n_steps + 1)[:, np.newaxis]
            known = self.published[name] = np.repeat(steps, len(self.sites), axis=1)
        rows = ahead[: max(self.n_steps - k - 1, 0)]
        target = self.received[name][k + 1 : k + 1 + rows.shape[0]]
        given = ~np.isnan(rows)
        target[given] = rows[given]
        known[k] = np.clip(until, k + 1, self.n_steps)

    def _take_forecast(self, k: int, name: str, rows: np.ndarray) -> None:
        """A provider's forecast at step ``k`` for steps ``k+1 ..``: replaces the rows it
        gives (NaN: none), marked as received at ``k``."""
        if name not in self.forecasts:
            shape = (self.n_steps, len(self.sites))
            self.forecasts[name] = np.full(shape, np.nan)
            self.forecast_received[name] = np.full(shape, np.iinfo(np.int64).max, dtype=np.int64)
        rows = np.asarray(rows, dtype=float)[: max(self.n_steps - k - 1, 0)]
        target = self.forecasts[name][k + 1 : k + 1 + rows.shape[0]]
        when = self.forecast_received[name][k + 1 : k + 1 + rows.shape[0]]
        given = np.isfinite(rows)
        target[given] = rows[given]
        when[given] = k

    def kinds(self) -> dict[str, list[str]]:
        """Per signal, the kinds of value received so far (over all sites), sorted."""
        out: dict[str, set[str]] = {}
        for name, per_site in self.provenance.items():
            for p in per_site:
                if p is not None:
                    out.setdefault(name, set()).add(p.kind)
        return {name: sorted(kinds) for name, kinds in out.items()}

    def describe(self, name: str, i: int, now: pd.Timestamp) -> dict[str, Any]:
        """Where site ``i``'s ``name`` came from, for the API: source, kind, time of the
        value, when fetched, age in seconds at ``now``."""
        per_site = self.provenance.get(name)
        p = per_site[i] if per_site is not None else None
        if p is None:
            return {}
        return {
            "source": p.source,
            "kind": p.kind,
            "time": p.time.isoformat() if p.time is not None else None,
            "fetched_at": p.fetched_at.isoformat() if p.fetched_at is not None else None,
            "age_s": None if p.time is None else round((now - p.time).total_seconds(), 3),
        }
