"""The :class:`Signal`: one value per simulation step, held over the step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from wattroute.errors import SignalError


@dataclass(frozen=True, eq=False)
class Signal:
    """A time series on a regular grid of steps, each value held over its step.

    Parameters
    ----------
    values
        One float per step; copied into a read-only float64 array.
    start
        Timezone-aware start of the first step (converted to UTC).
    step
        Length of a step.
    name, unit
        What the values are and their unit, e.g. ``"price"``, ``"USD/MWh"``.
    """

    values: np.ndarray
    start: pd.Timestamp
    step: pd.Timedelta
    name: str = ""
    unit: str = ""
    _step_s: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64)
        values.setflags(write=False)
        start = pd.Timestamp(self.start)
        if start.tzinfo is None:
            raise SignalError(
                f"signal {self.name or '<unnamed>'}",
                "start has no timezone.",
                "pass a timezone-aware UTC timestamp, e.g. '2023-06-01T00:00Z'.",
            )
        step = pd.Timedelta(self.step)
        if step <= pd.Timedelta(0):
            raise SignalError(f"signal {self.name}", "step must be positive.", "use e.g. '5min'.")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "start", start.tz_convert("UTC"))
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "_step_s", step.total_seconds())

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def end(self) -> pd.Timestamp:
        """End of the last step (exclusive)."""
        return self.start + self.step * len(self)

    @property
    def times(self) -> pd.DatetimeIndex:
        """Start of every step, UTC."""
        return pd.date_range(self.start, periods=len(self), freq=self.step)

    def index_at(self, t: datetime | pd.Timestamp) -> int:
        """Index of the step that contains ``t`` (steps are half-open: [start, start + step))."""
        offset_s = (pd.Timestamp(t) - self.start).total_seconds()
        k = int(np.floor(offset_s / self._step_s))
        if k < 0 or k >= len(self):
            raise SignalError(
                f"signal {self.name or '<unnamed>'}",
                f"{pd.Timestamp(t)} is outside its period {self.start} .. {self.end}.",
                "ask for a time within the scenario period.",
            )
        return k

    def at(self, t: datetime | pd.Timestamp) -> float:
        """Value in effect at time ``t``."""
        return float(self.values[self.index_at(t)])

    def to_series(self) -> pd.Series:
        """The signal as a pandas Series indexed by step start."""
        return pd.Series(np.asarray(self.values), index=self.times, name=self.name)

    @classmethod
    def constant(
        cls,
        value: float,
        start: pd.Timestamp,
        step: pd.Timedelta,
        n_steps: int,
        name: str = "",
        unit: str = "",
    ) -> Signal:
        """A signal that holds ``value`` over ``n_steps`` steps."""
        return cls(np.full(n_steps, float(value)), start, step, name, unit)
