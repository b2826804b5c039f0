"""Signal providers: where the live controller gets prices, carbon and renewables from.

A provider answers, for a simulation step, the value of every signal at every site, with NaN
where it has nothing (a feed is down, a file has a hole). :class:`ReplayProvider` replays
recorded signals (the files a scenario names); live providers (market and carbon APIs) will
implement the same interface. :class:`WithholdingProvider` wraps another and hides a signal
for a while: the test double that proves the controller survives missing data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from wattroute.model.arrays import FleetSignals

SIGNAL_NAMES = FleetSignals.NAMES


class SignalProvider(Protocol):
    """Signal values per step."""

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        """Each signal's value at every site at ``step``, ``(S,)``; NaN where missing."""
        ...


@dataclass
class ReplayProvider:
    """Recorded signals, handed out one step at a time (never ahead of the step asked for).

    Parameters
    ----------
    signals
        The recorded series, ``(N, S)`` per signal.
    """

    signals: FleetSignals

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        n = self.signals.pue.shape[0]
        if not 0 <= step < n:
            s = self.signals.pue.shape[1]
            return {name: np.full(s, np.nan) for name in SIGNAL_NAMES}
        return {name: np.array(getattr(self.signals, name)[step]) for name in SIGNAL_NAMES}


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
