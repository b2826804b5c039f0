"""What a run records: per-step, per-site time series and exact per-site totals.

Totals (energy by source, cost, emissions) are accumulated in float64 from the dispatched
flows as they are produced. The time series are kept for reports and files in float32 (seven
significant digits), which halves the memory a year-long fleet run touches; facility demand,
which the dispatch reads back, stays float64. Columns derivable from others (served load,
IT power, price, intensity, PUE, cost and emissions per step) are derived when the table is
built.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wattroute.model import costs
from wattroute.model.arrays import FleetSignals, FleetStatic

SERIES = (
    # power, kW (mean over the step)
    "grid_import_kw",
    "export_kw",
    "solar_kw",
    "wind_kw",
    "genset_kw",
    "battery_charge_kw",
    "battery_discharge_kw",
    "curtailed_kw",
    "unserved_kw",
    # battery energy at the end of the step, kWh
    "soc_kwh",
    # accelerators in use (batch, inference replicas, powered) and requests served per second
    "batch_accelerators",
    "inference_accelerators",
    "powered_accelerators",
    "served_rps",
)

ENERGY = {
    "grid": "grid_import_kw",
    "solar": "solar_kw",
    "wind": "wind_kw",
    "genset": "genset_kw",
    "battery_charge": "battery_charge_kw",
    "battery_discharge": "battery_discharge_kw",
    "curtailed": "curtailed_kw",
    "export": "export_kw",
    "load": "load_kw",
    "unserved": "unserved_kw",
}
"""Summary energy keys and the flow each integrates."""


class SiteRecorder:
    """Time series of shape ``(N, S)`` and running totals of shape ``(S,)``.

    Parameters
    ----------
    fleet, signals
        The fleet and its inputs, for the derived columns.
    step_h
        Step length, hours.
    """

    def __init__(self, fleet: FleetStatic, signals: FleetSignals, step_h: float) -> None:
        n, s = signals.solar_kw.shape
        self.fleet = fleet
        self.signals = signals
        self.step_h = step_h
        self.demand_kw = np.zeros((n, s))
        self.data = {name: np.zeros((n, s), dtype=np.float32) for name in SERIES}
        self.data["powered_accelerators"][:] = (
            fleet.accelerators
        )  # all, unless a repair powers some down
        self.energy_kwh = {key: np.zeros(s) for key in ENERGY}
        self.cost_usd = np.zeros(s)
        self.emissions_kg = np.zeros(s)
        self.peak_load_kw = np.zeros(s)

    @property
    def site_names(self) -> tuple[str, ...]:
        return self.fleet.names

    def write(self, first: int, **arrays: np.ndarray) -> None:
        """Store rows ``first .. first + len`` of the given series."""
        for name, values in arrays.items():
            self.data[name][first : first + values.shape[0]] = values

    def add_totals(
        self, flows: dict[str, np.ndarray], cost_usd: np.ndarray, emissions_kg: np.ndarray
    ) -> None:
        """Add dispatched flows (kW, ``(T, S)``, keyed as :data:`ENERGY` values) to the totals."""
        for key, name in ENERGY.items():
            self.energy_kwh[key] += flows[name].sum(axis=0) * self.step_h
        self.cost_usd += cost_usd.sum(axis=0)
        self.emissions_kg += emissions_kg.sum(axis=0)
        if flows["load_kw"].shape[0]:
            self.peak_load_kw = np.maximum(self.peak_load_kw, flows["load_kw"].max(axis=0))

    def series(self, name: str) -> np.ndarray:
        """One time series by name, including the derived ones, ``(N, S)``."""
        sig = self.signals
        if name == "demand_kw":
            return self.demand_kw
        if name == "load_kw":
            return self.demand_kw - self.data["unserved_kw"]
        if name == "it_kw":
            return self.demand_kw / sig.pue
        if name in ("price_usd_per_mwh", "carbon_g_per_kwh", "pue"):
            return np.asarray(getattr(sig, name))
        if name == "cost_usd":
            d = self.data
            return costs.energy_cost_usd(
                self.fleet,
                self.step_h,
                d["grid_import_kw"],
                d["export_kw"],
                d["genset_kw"],
                sig.price_usd_per_mwh,
                sig.export_price_usd_per_mwh,
            )
        if name == "emissions_kg":
            d = self.data
            return costs.emissions_kg(
                self.fleet, self.step_h, d["grid_import_kw"], d["genset_kw"], sig.carbon_g_per_kwh
            )
        return self.data[name]

    COLUMNS = (
        "demand_kw",
        "load_kw",
        "it_kw",
        *SERIES,
        "price_usd_per_mwh",
        "carbon_g_per_kwh",
        "pue",
        "cost_usd",
        "emissions_kg",
    )

    def to_frame(self, times: pd.DatetimeIndex) -> pd.DataFrame:
        """Long table: one row per step and site, columns ``time``, ``site`` and the series."""
        n, s = len(times), len(self.site_names)
        frame = pd.DataFrame(
            {
                "time": np.repeat(times.to_numpy(), s),
                "site": pd.Categorical(np.tile(np.array(self.site_names, dtype=object), n)),
            }
        )
        for name in self.COLUMNS:
            frame[name] = self.series(name).reshape(-1)
        return frame
