"""The policies benchmark's split of a missed target by signal: which signals' forecast error
it measures, and that forecasting one perfectly measures what that signal's error costs."""

from __future__ import annotations

import numpy as np

from benchmarks.policies import forecast_split, signal_groups
from tests.builders import job, scenario, site, small_fleet
from wattroute.optimise.oracle import capture_ratio
from wattroute.policies.mpc import MPCPolicy
from wattroute.signals.forecast import Blend, Clairvoyant, Forecaster
from wattroute.sim import SimulationOptions, simulate, summarize


def test_only_the_signals_a_scenario_has_are_measured() -> None:
    fleet = small_fleet(days=1)  # solar at site a; no wind, no inference
    assert signal_groups(fleet) == ["prices", "carbon", "solar"]


def test_a_perfect_forecast_of_the_one_signal_that_varies_is_a_perfect_forecast() -> None:
    """Prices swing within the day and nothing else varies: forecasting prices perfectly is
    forecasting everything perfectly, and forecasting the constant carbon perfectly is the
    default forecast."""
    n = 2 * 288
    hours = np.arange(n) / 12
    price = 60 + 50 * np.sin(2 * np.pi * (hours - 3) / 24) + 30 * np.sin(2 * np.pi * hours / 7)
    sc = scenario(
        [site("a", n=n, accelerators=8, price=price)],
        jobs=[job(f"j{i}", 2.0 * i, 6.0, 2, 2.0 * i + 20) for i in range(5)],
        n=n,
    )

    def objective(forecaster: Forecaster) -> float:
        options = SimulationOptions(forecaster=forecaster)
        return float(summarize(simulate(sc, MPCPolicy(), options))["objective_usd"])

    baseline, bound = 100.0, 10.0
    split = forecast_split(sc, baseline, bound)
    assert list(split) == ["prices", "carbon"]
    perfect, blend = objective(Clairvoyant()), objective(Blend())
    assert perfect != blend  # the price forecast matters here (the test can fail)
    assert split["prices"] == capture_ratio(baseline, perfect, bound)
    assert split["carbon"] == capture_ratio(baseline, blend, bound)
