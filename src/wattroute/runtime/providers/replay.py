"""The provider interface, and replayed signals.

A provider answers, for a simulation step, the value of every signal at every site, with NaN
where it has nothing (a feed is down, a file has a hole), and the values already published for
later steps (a day-ahead market's prices, :mod:`wattroute.signals.publication`).
:class:`ReplayProvider` replays recorded signals (the files a scenario names); live
providers (:mod:`wattroute.runtime.providers.live`) implement the same interface.
:class:`WithholdingProvider` wraps another and hides a signal for a while: the test double
that proves the controller survives missing data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from wattroute.model.arrays import FleetSignals
from wattroute.runtime.providers.values import Provenance

SIGNAL_NAMES = FleetSignals.NAMES


class SignalProvider(Protocol):
    """Signal values per step."""

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        """Each signal's value at every site at ``step``, ``(S,)``; NaN where missing."""
        ...

    def read_ahead(self, step: int) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        """Values published by ``step`` for the steps after it: per signal published ahead,
        the first step not yet known per site, ``(S,)``, and the rows from ``step + 1`` on,
        ``(m, S)``, NaN where a site's value is not known. Empty if nothing is published."""
        ...

    def read_forecasts(self, step: int) -> Mapping[str, np.ndarray]:
        """Forecasts the provider holds as of ``step`` (a numerical weather forecast turned
        into solar output, a carbon forecast): per signal the rows for steps ``step + 1 ..``,
        ``(m, S)``, NaN where it has none. Empty if it gives none."""
        ...

    def provenance(self, step: int) -> Mapping[str, Sequence[Provenance | None]]:
        """Per signal and site, where the value of ``step`` came from (``None``: unchanged
        or unknown)."""
        ...


@dataclass
class ReplayProvider:
    """Recorded signals, handed out one step at a time (never ahead of the step asked for,
    but for what is published ahead).

    Parameters
    ----------
    signals
        The recorded series, ``(N, S)`` per signal.
    published
        For signals published ahead, the first step not yet known at each step and site,
        ``(N, S)`` (:func:`wattroute.model.arrays.published_ahead`); none by default.
    """

    signals: FleetSignals
    published: Mapping[str, np.ndarray] = field(default_factory=dict)
    kinds: Mapping[str, str] = field(default_factory=dict)

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        n = self.signals.pue.shape[0]
        if not 0 <= step < n:
            s = self.signals.pue.shape[1]
            return {name: np.full(s, np.nan) for name in SIGNAL_NAMES}
        return {name: np.array(getattr(self.signals, name)[step]) for name in SIGNAL_NAMES}

    def read_ahead(self, step: int) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for name, known in self.published.items():
            if not 0 <= step < known.shape[0]:
                continue
            until = known[step]
            values = np.array(getattr(self.signals, name)[step + 1 : int(until.max())])
            rows = step + 1 + np.arange(values.shape[0])
            values[rows[:, np.newaxis] >= until[np.newaxis, :]] = np.nan
            out[name] = (until.copy(), values)
        return out

    def read_forecasts(self, step: int) -> Mapping[str, np.ndarray]:
        """Recorded signals come with no forecast: the controller's forecaster makes one."""
        return {}

    def provenance(self, step: int) -> Mapping[str, Sequence[Provenance | None]]:
        """Every value is a replay of the scenario's files, for the time it is read at."""
        s = self.signals.pue.shape[1]
        return {
            name: [Provenance("replay", self.kinds.get(name, "recorded"))] * s
            for name in SIGNAL_NAMES
        }


@dataclass
class WithholdingProvider:
    """Another provider with ``name`` at ``site`` (index, or all sites if ``None``) missing
    for steps ``first`` to ``last`` (inclusive)."""

    inner: SignalProvider
    name: str
    first: int
    last: int
    site: int | None = None
    withheld: int = field(default=0, init=False)

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        values = {k: np.array(v) for k, v in self.inner.read(step).items()}
        if self.first <= step <= self.last:
            self.withheld += 1
            if self.site is None:
                values[self.name][:] = np.nan
            else:
                values[self.name][self.site] = np.nan
        return values

    def read_ahead(self, step: int) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        ahead = dict(self.inner.read_ahead(step))
        if self.first <= step <= self.last and self.name in ahead:
            # the feed that is down publishes nothing either
            until, values = (np.array(a) for a in ahead[self.name])
            hidden = slice(None) if self.site is None else self.site
            until[hidden] = step + 1
            values[:, hidden] = np.nan
            ahead[self.name] = (until, values)
        return ahead

    def read_forecasts(self, step: int) -> Mapping[str, np.ndarray]:
        forecasts = dict(self.inner.read_forecasts(step))
        if self.first <= step <= self.last and self.name in forecasts:
            rows = np.array(forecasts[self.name])
            rows[:, slice(None) if self.site is None else self.site] = np.nan
            forecasts[self.name] = rows
        return forecasts

    def provenance(self, step: int) -> Mapping[str, Sequence[Provenance | None]]:
        return self.inner.provenance(step)
