"""The power ledger: facility demand waits here until it has to be dispatched.

Dispatch is causal and depends on nothing a policy decides later, so the simulator writes each
block's demand and set-points into the ledger and dispatches a whole run of blocks in one
vectorised call, only when something needs the result: the battery state at a step (a policy
asks for it, or a repair needs it), a block whose load might not be coverable without the
battery (then it is dispatched at once, to cut the block where load would go unserved), or
the end of the run.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from wattroute.model import costs
from wattroute.model.arrays import FleetSignals, FleetStatic, any_set
from wattroute.model.tolerances import ROUNDING
from wattroute.sim.dispatch import DispatchResult, GridTerms, check_energy_balance, dispatch
from wattroute.sim.record import SiteRecorder

CHUNK_STEPS = 4096
"""Steps dispatched per call when flushing: small enough for the arrays to stay in cache."""


class Ledger:
    """Pending demand and set-points, shape ``(N, S)``, and the dispatched record.

    Parameters
    ----------
    fleet, signals
        The fleet's limits and its time-varying inputs.
    record
        Where dispatched flows are written.
    step_h
        Step length, hours.
    check_balance
        Verify the energy balance of every dispatched step.
    terms
        Where the grid pays to take power or exporting costs (:class:`GridTerms`), if anywhere.
    """

    def __init__(
        self,
        fleet: FleetStatic,
        signals: FleetSignals,
        record: SiteRecorder,
        step_h: float,
        check_balance: bool,
        terms: GridTerms | None = None,
    ) -> None:
        self.fleet = fleet
        self.terms = terms
        self.signals = signals
        self.record = record
        self.step_h = step_h
        self.check_balance = check_balance
        self.demand_kw = record.demand_kw
        # Set-points per step (NaN: merit order), allocated when a policy first gives one.
        self.battery_kw: np.ndarray | None = None
        self.genset_kw: np.ndarray | None = None
        self.done = 0
        self.soc_kwh = fleet.battery_initial_kwh.copy()
        # Supply available without the battery: if demand stays below it, load is always served.
        # Read-only: policies see its rows (Observation.firm_kw).
        self.firm_kw = np.minimum(
            fleet.power_cap_kw,
            signals.solar_kw + signals.wind_kw + fleet.import_limit_kw + fleet.genset_kw,
        )
        self.firm_kw.setflags(write=False)

    def post(
        self,
        first: int,
        demand_kw: np.ndarray,
        battery_kw: np.ndarray | None,
        genset_kw: np.ndarray | None,
    ) -> None:
        """Enter a block's demand and set-points, starting at step ``first``."""
        rows = slice(first, first + demand_kw.shape[0])
        self.demand_kw[rows] = demand_kw
        if battery_kw is not None or genset_kw is not None:
            battery, genset = self._setpoints()
            if battery_kw is not None:
                battery[rows] = battery_kw
            if genset_kw is not None:
                genset[rows] = genset_kw

    def _setpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-step battery and genset set-points, allocated (all NaN: merit order) when a
        policy first gives one."""
        if self.battery_kw is None or self.genset_kw is None:
            self.battery_kw = np.full(self.demand_kw.shape, np.nan)
            self.genset_kw = np.full(self.demand_kw.shape, np.nan)
        return self.battery_kw, self.genset_kw

    def might_go_unserved(self, first: int, demand_kw: np.ndarray) -> bool:
        """Whether any step of the block needs more than the firm supply (it may need the
        battery, and the battery may be empty)."""
        firm = self.firm_kw[first : first + demand_kw.shape[0]]
        return any_set(demand_kw > firm + ROUNDING)

    def soc_at(self, step: int) -> np.ndarray:
        """Battery energy at the start of ``step``, kWh (dispatching up to it if needed)."""
        self.flush(step)
        return self.soc_kwh.copy()

    def flush(self, until: int) -> None:
        """Dispatch every pending step before ``until``."""
        while until > self.done:
            self._write(self._dispatch(self.done, min(until, self.done + CHUNK_STEPS)))

    def dispatch_block(self, first: int, length: int) -> DispatchResult:
        """Dispatch steps ``first .. first + length`` now, without committing them."""
        self.flush(first)
        return self._dispatch(first, first + length)

    def commit(self, result: DispatchResult) -> None:
        """Write a result from :meth:`dispatch_block` (possibly shortened) into the record."""
        self._write(result)

    def _dispatch(self, first: int, until: int) -> DispatchResult:
        rows = slice(first, until)
        sig = self.signals
        return dispatch(
            self.demand_kw[rows],
            sig.solar_kw[rows],
            sig.wind_kw[rows],
            self.fleet,
            self.soc_kwh,
            self.step_h,
            None if self.battery_kw is None else self.battery_kw[rows],
            None if self.genset_kw is None else self.genset_kw[rows],
            None if self.terms is None else self.terms.rows(rows),
        )

    def _write(self, result: DispatchResult) -> None:
        first = self.done
        length = result.load_kw.shape[0]
        rows = slice(first, first + length)
        if self.check_balance:
            check_energy_balance(
                result,
                self.soc_kwh,
                self.fleet,
                self.step_h,
                where=f"in steps {first}..{first + length}",
            )
        sig, fleet, dt = self.signals, self.fleet, self.step_h
        flows = {f.name: getattr(result, f.name) for f in fields(result)}
        self.record.write(first, **{k: v for k, v in flows.items() if k != "load_kw"})
        self.record.add_totals(
            flows,
            cost_usd=costs.energy_cost_usd(
                fleet,
                dt,
                result.grid_import_kw,
                result.export_kw,
                result.genset_kw,
                sig.price_usd_per_mwh[rows],
                sig.export_price_usd_per_mwh[rows],
            ),
            emissions_kg=costs.emissions_kg(
                fleet, dt, result.grid_import_kw, result.genset_kw, sig.carbon_g_per_kwh[rows]
            ),
        )
        self.soc_kwh = result.soc_kwh[-1].copy()
        self.done = first + length


def head(result: DispatchResult, length: int) -> DispatchResult:
    """The first ``length`` steps of a dispatch result."""
    return DispatchResult(**{f.name: getattr(result, f.name)[:length] for f in fields(result)})
