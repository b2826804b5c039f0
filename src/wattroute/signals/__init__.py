"""Signals: time series on the step grid, resampling, renewables models and forecasts."""

from wattroute.signals.signal import Signal

__all__ = ["Signal"]
