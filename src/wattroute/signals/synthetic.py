"""A documented model of grid price and carbon intensity, for scenarios without grid data.

Used by the built-in default scenario; everything it produces is *modelled, not measured*.
The shape follows what real grids with much solar show (the "duck curve"):

``price(t)  = mean_price  x (1 + evening_peak x e(t) - solar_dip x s(t)) x (1 + noise(t))``
``carbon(t) = mean_carbon x (1 + evening_peak x e(t) - solar_dip x s(t)) x (1 + noise(t))``

* ``s(t)`` is the clear-sky global horizontal irradiance at the site (pvlib, Ineichen model)
  divided by 1000 W/m^2: solar on the grid pushes price and intensity down around noon;
* ``e(t) = exp(-((h - 19) / 2.5)^2 / 2)`` with ``h`` the local solar hour: the evening ramp,
  when solar fades and demand peaks;
* ``noise(t)`` is an AR(1) process (hourly coefficient 0.9, standard deviation ``noise``),
  from a seeded generator, so forecasts are not perfect and runs are reproducible.

Each series is then rescaled to the requested mean. Prices are USD/MWh, intensities
gCO2eq/kWh (average, not marginal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

from wattroute.model.tolerances import ROUNDING


@dataclass(frozen=True)
class DiurnalGridModel:
    """Parameters of the duck-curve model (see the module docstring).

    Parameters
    ----------
    mean_price_usd_per_mwh
        Mean price over the period, USD/MWh.
    mean_carbon_g_per_kwh
        Mean carbon intensity over the period, gCO2eq/kWh.
    evening_peak
        Relative height of the evening peak.
    solar_dip
        Relative depth of the midday dip at full clear-sky sun.
    noise
        Standard deviation of the relative AR(1) noise.
    seed
        Seed of the noise generator.
    """

    mean_price_usd_per_mwh: float = 70.0
    mean_carbon_g_per_kwh: float = 350.0
    evening_peak: float = 0.5
    solar_dip: float = 0.6
    noise: float = 0.08
    seed: int = 0

    def shape(self, times: pd.DatetimeIndex, latitude: float, longitude: float) -> np.ndarray:
        """Relative level (mean about 1) at each instant in ``times`` (tz-aware)."""
        location = pvlib.location.Location(latitude, longitude, tz="UTC")
        ghi = location.get_clearsky(times, model="ineichen")["ghi"].to_numpy()
        solar = np.clip(ghi / 1000.0, 0.0, 1.2)
        hours = (times.hour.to_numpy() + times.minute.to_numpy() / 60.0 + longitude / 15.0) % 24.0
        evening = np.exp(-(((hours - 19.0) / 2.5) ** 2) / 2.0)
        return np.maximum(1.0 + self.evening_peak * evening - self.solar_dip * solar, 0.05)

    def noise_series(self, times: pd.DatetimeIndex, salt: int) -> np.ndarray:
        """AR(1) relative noise with hourly coefficient 0.9, one value per instant."""
        from scipy.signal import lfilter  # scipy.signal takes long to import: only when used

        rng = np.random.default_rng([self.seed, salt])
        if len(times) < 2:
            return np.zeros(len(times))
        step_h = (times[1] - times[0]).total_seconds() / 3600.0
        phi = 0.9**step_h
        shocks = rng.normal(0.0, self.noise * np.sqrt(1.0 - phi**2), size=len(times))
        out = np.empty(len(times))
        out[0] = rng.normal(0.0, self.noise)
        # An AR(1) recursion is a linear filter: x[t] = phi x[t-1] + e[t].
        out[1:] = lfilter([1.0], [1.0, -phi], shocks[1:], zi=[phi * out[0]])[0]
        return out

    def price_and_carbon(
        self, times: pd.DatetimeIndex, latitude: float, longitude: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Price (USD/MWh) and carbon intensity (gCO2eq/kWh) at each instant in ``times``."""
        base = self.shape(times, latitude, longitude)
        price = base * (1.0 + self.noise_series(times, 1))
        carbon = base * (1.0 + self.noise_series(times, 2))
        price *= self.mean_price_usd_per_mwh / max(float(price.mean()), ROUNDING)
        carbon *= self.mean_carbon_g_per_kwh / max(float(carbon.mean()), ROUNDING)
        return price, np.maximum(carbon, 0.0)
