"""Signals: time series on the step grid, resampling, renewables models and forecasts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wattroute._lazy import lazy_exports

if TYPE_CHECKING:
    from wattroute.signals.signal import Signal

__getattr__ = lazy_exports(__name__, {"wattroute.signals.signal": ("Signal",)})

__all__ = ["Signal"]
