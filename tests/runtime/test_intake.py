"""The signal intake: a provider's forecasts reach the forecaster once received (never
before), values carry their provenance, and a missing value degrades the intake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tests.builders import small_fleet
from wattroute.model.arrays import FleetSignals
from wattroute.runtime.intake import SignalIntake
from wattroute.runtime.providers import ReplayProvider
from wattroute.runtime.providers.values import Provenance
from wattroute.signals.forecast import Persistence


@dataclass
class ForecastingProvider:
    """Replayed signals, plus a weather forecast of solar given at ``given_at``: 42 kW for
    every later step."""

    inner: ReplayProvider
    given_at: int
    asked: list[int] = field(default_factory=list)

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        return self.inner.read(step)

    def read_ahead(self, step: int) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        return self.inner.read_ahead(step)

    def read_forecasts(self, step: int) -> Mapping[str, np.ndarray]:
        self.asked.append(step)
        if step != self.given_at:
            return {}
        return {"solar_kw": np.full((48, self.inner.signals.pue.shape[1]), 42.0)}

    def provenance(self, step: int) -> Mapping[str, Sequence[Provenance | None]]:
        return {"solar_kw": [Provenance("openmeteo", "weather-forecast"), None]}


def _intake(provider: ForecastingProvider) -> SignalIntake:
    sc = small_fleet()
    return SignalIntake(provider, ("a", "b"), sc.start, sc.step, sc.n_steps)


def test_a_provider_forecast_is_used_from_the_step_it_came_and_not_before():
    provider = ForecastingProvider(ReplayProvider(FleetSignals.from_scenario(small_fleet())), 10)
    intake = _intake(provider)
    for k in range(10):
        intake.receive(k)
    before = intake.history(9).forecast("solar_kw", 6, Persistence(), 288)
    assert not (before == 42.0).any()  # not yet received: the forecaster's guess
    intake.receive(10)
    after = intake.history(10).forecast("solar_kw", 6, Persistence(), 288)
    np.testing.assert_array_equal(after, np.full((6, 2), 42.0))
    # a history of an earlier step never sees it, though the rows are now filled in
    again = intake.history(9).forecast("solar_kw", 6, Persistence(), 288)
    np.testing.assert_array_equal(again, before)


def test_provenance_and_kinds_are_kept_per_site():
    provider = ForecastingProvider(ReplayProvider(FleetSignals.from_scenario(small_fleet())), 0)
    intake = _intake(provider)
    intake.receive(0)
    described = intake.describe("solar_kw", 0, intake.time_of(0))
    assert (described["source"], described["kind"]) == ("openmeteo", "weather-forecast")
    assert intake.describe("solar_kw", 1, intake.time_of(0)) == {}
    assert intake.kinds() == {"solar_kw": ["weather-forecast"]}
