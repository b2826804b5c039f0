"""Per-step, per-site time series of a run, written block by block."""

from __future__ import annotations

import numpy as np
import pandas as pd

SITE_FIELDS = (
    # power, kW (mean over the step)
    "demand_kw",
    "load_kw",
    "it_kw",
    "grid_import_kw",
    "export_kw",
    "solar_kw",
    "wind_kw",
    "genset_kw",
    "battery_charge_kw",
    "battery_discharge_kw",
    "curtailed_kw",
    "unserved_kw",
    # state at the end of the step
    "soc_kwh",
    # signals in effect
    "price_usd_per_mwh",
    "carbon_g_per_kwh",
    "pue",
    # work
    "batch_accelerators",
    "inference_accelerators",
    "powered_accelerators",
    "served_rps",
    # money and carbon over the step
    "cost_usd",
    "emissions_kg",
)


class SiteRecorder:
    """Arrays of shape ``(N, S)`` for each of :data:`SITE_FIELDS`."""

    def __init__(self, n_steps: int, site_names: tuple[str, ...]) -> None:
        self.site_names = site_names
        self.data = {name: np.zeros((n_steps, len(site_names))) for name in SITE_FIELDS}

    def write(self, first_step: int, **arrays: np.ndarray) -> None:
        """Store rows ``first_step .. first_step + len`` of the given fields."""
        for name, values in arrays.items():
            target = self.data[name]
            target[first_step : first_step + values.shape[0]] = values

    def to_frame(self, times: pd.DatetimeIndex) -> pd.DataFrame:
        """Long table: one row per step and site, columns ``time``, ``site`` and the fields."""
        n, s = len(times), len(self.site_names)
        frame = pd.DataFrame(
            {
                "time": np.repeat(times.to_numpy(), s),
                "site": pd.Categorical(np.tile(np.array(self.site_names, dtype=object), n)),
            }
        )
        for name, values in self.data.items():
            frame[name] = values.reshape(-1)
        return frame
