"""Executors: what enacts the controller's decisions.

An :class:`Executor` receives, every planning step, the allocation to run (after repair) and
the batch jobs' state, makes it so, advances the jobs' progress by what actually ran, and
reports the power each site drew by source. :class:`SimulatedExecutor` does this with the
simulator's own model — the same job progress, inference serving and merit-order dispatch as
``wattroute simulate`` — against the *actual* signals, while the controller may be planning
on stale ones. A real engine (Ray) implements the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from wattroute.model import costs
from wattroute.model.arrays import FleetSignals, FleetStatic, ServiceArrays
from wattroute.model.power import it_kw
from wattroute.sim.dispatch import GridTerms, check_energy_balance, dispatch
from wattroute.sim.inference import Served, route, serve
from wattroute.sim.jobs import JobTable


@dataclass(frozen=True, eq=False)
class Allocation:
    """A feasible decision for one step: per active job (aligned with the job table's ids) a
    site index (-1: not running) and accelerators; per service routing shares ``(P, S)``;
    battery and genset set-points (NaN: merit order); accelerators each site may power."""

    site: np.ndarray
    accelerators: np.ndarray
    routing: tuple[np.ndarray, ...]
    battery_kw: np.ndarray | None
    genset_kw: np.ndarray | None
    accelerator_limit: np.ndarray
    # What runs real work needs: per job id its code (module:function) and arguments, per
    # service its handler (module:function returning a model; None: the built-in one).
    code: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    handlers: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class StepReport:
    """What one step did: mean power flows per site (kW, the dispatch's fields), battery energy
    after it (kWh), cost (USD) and emissions (kg) per site, and request counts over all
    services (requests, within SLO, late, dropped)."""

    flows: dict[str, np.ndarray]
    soc_kwh: np.ndarray
    cost_usd: np.ndarray
    emissions_kg: np.ndarray
    requests: float
    within_slo: float
    late: float
    dropped: float
    batch_accelerators: np.ndarray
    inference_accelerators: np.ndarray
    failures: dict[str, str] = field(default_factory=dict)  # job id -> what its code raised


class Executor(Protocol):
    """Enacts allocations and reports what happened."""

    def execute(
        self,
        step: int,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> StepReport:
        """Run ``allocation`` for step ``step``, advancing ``jobs`` by what ran."""
        ...

    def enact(
        self,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> None:
        """Make ``allocation`` so now, between ticks (a correction: a grid event, a lost
        site), without accounting for energy; ``jobs`` shows what runs where afterwards."""
        ...

    def load_kw_now(self, pue: np.ndarray) -> np.ndarray:
        """Each site's facility load from what runs right now, kW."""
        ...

    def unavailable_sites(self) -> frozenset[str]:
        """Sites the engine cannot run anything at now (their nodes are gone)."""
        ...

    @property
    def soc_kwh(self) -> np.ndarray:
        """Battery energy per site now, kWh."""
        ...

    def restore(self, soc_kwh: np.ndarray) -> None:
        """Resume with this battery state (after a restart)."""
        ...

    def close(self) -> None:
        """Release what the executor holds."""
        ...


class SimulatedExecutor:
    """The simulator's model as an executor, one step at a time.

    Parameters
    ----------
    fleet
        The fleet's constants.
    actual
        The signals as they really are (the provider may differ).
    step_h
        Step length, hours.
    check_balance
        Verify the energy balance of every step.
    terms
        Where the grid pays to take power or exporting costs, from the actual prices
        (:meth:`GridTerms.from_signals`); ``None``: merit order regardless of prices.
    """

    def __init__(
        self,
        fleet: FleetStatic,
        actual: FleetSignals,
        step_h: float,
        check_balance: bool = True,
        terms: GridTerms | None = None,
    ) -> None:
        self.fleet = fleet
        self.actual = actual
        self.terms = terms
        self.step_h = step_h
        self.check_balance = check_balance
        self._soc = fleet.battery_initial_kwh.copy()
        self._enacted: Allocation | None = None
        self._enacted_services: tuple[ServiceArrays, ...] = ()

    @property
    def soc_kwh(self) -> np.ndarray:
        return self._soc.copy()

    def restore(self, soc_kwh: np.ndarray) -> None:
        self._soc = np.clip(
            np.asarray(soc_kwh, float), self.fleet.battery_min_kwh, self.fleet.battery_max_kwh
        )

    def close(self) -> None:
        """Nothing to release."""

    def execute(
        self,
        step: int,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> StepReport:
        fleet, dt = self.fleet, self.step_h
        jobs.apply_allocation(ids, allocation.site, allocation.accelerators, step)
        self._enacted, self._enacted_services = allocation, services
        running = ids[jobs.site[ids] >= 0]
        batch = np.bincount(
            jobs.site[running], weights=jobs.accelerators[running], minlength=fleet.n_sites
        ).astype(float)
        busy = batch.copy()
        hours_left = jobs.hours_to_completion(running)
        if running.size:  # jobs that finish within the step run only part of it
            unused = np.clip(dt - hours_left, 0.0, dt) / dt * jobs.accelerators[running]
            busy -= np.bincount(jobs.site[running], weights=unused, minlength=fleet.n_sites)
        report = self.account(
            step, busy, allocation, services, allocation.accelerator_limit - batch
        )
        jobs.advance(ids, step * dt, dt)
        return report

    def enact(
        self,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> None:
        """The model has no time between ticks: the allocation stands from now on."""
        jobs.place(ids, allocation.site, allocation.accelerators)
        self._enacted = allocation
        self._enacted_services = services

    def load_kw_now(self, pue: np.ndarray) -> np.ndarray:
        a = self._enacted
        if a is None:
            return np.zeros(self.fleet.n_sites)
        ok = a.site >= 0
        batch = np.bincount(a.site[ok], weights=a.accelerators[ok], minlength=self.fleet.n_sites)
        return self.it_kw(batch, a, self._enacted_services) * pue

    def unavailable_sites(self) -> frozenset[str]:
        return frozenset()

    def it_kw(
        self,
        batch_busy: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
        inference_capacity: np.ndarray | None = None,
    ) -> np.ndarray:
        """IT power per site (kW) with ``batch_busy`` accelerators of batch work and the
        allocation's inference served within ``inference_capacity`` accelerators (default:
        what the batch work leaves)."""
        capacity = (
            allocation.accelerator_limit - batch_busy
            if inference_capacity is None
            else inference_capacity
        )
        served = self._serve(allocation, services, capacity)
        inference_busy = (
            np.zeros(self.fleet.n_sites) if served is None else served.busy_equivalent[0]
        )
        return self._it_kw(batch_busy, inference_busy, allocation)

    def _it_kw(
        self, batch_busy: np.ndarray, inference_busy: np.ndarray, allocation: Allocation
    ) -> np.ndarray:
        return it_kw(self.fleet, batch_busy + inference_busy, allocation.accelerator_limit)

    def _serve(
        self, allocation: Allocation, services: tuple[ServiceArrays, ...], capacity: np.ndarray
    ) -> Served | None:
        if not services:
            return None
        load = route(services, allocation.routing, 0, 1)
        return serve(services, load, capacity, self.step_h * 3600.0)

    def account(
        self,
        step: int,
        batch_busy: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
        inference_capacity: np.ndarray,
    ) -> StepReport:
        """Power, cost and emissions of one step in which ``batch_busy`` accelerators (mean
        over the step) ran batch work and inference was served within
        ``inference_capacity`` accelerators per site; advances the battery."""
        fleet, dt = self.fleet, self.step_h
        inference_busy = np.zeros(fleet.n_sites)
        inference_acc = np.zeros(fleet.n_sites)
        counts = np.zeros(4)
        served = self._serve(allocation, services, inference_capacity)
        if served is not None:
            inference_busy = served.busy_equivalent[0]
            inference_acc = served.accelerators[0]
            counts = np.array(
                [
                    served.requests.sum(),
                    served.within_slo.sum(),
                    served.late.sum(),
                    served.dropped.sum(),
                ]
            )
        it_kw = self._it_kw(batch_busy, inference_busy, allocation)
        sig = self.actual
        row = min(step, sig.pue.shape[0] - 1)
        demand = (it_kw * sig.pue[row])[np.newaxis, :]
        result = dispatch(
            demand,
            sig.solar_kw[row : row + 1],
            sig.wind_kw[row : row + 1],
            fleet,
            self._soc,
            dt,
            allocation.battery_kw,
            allocation.genset_kw,
            None if self.terms is None else self.terms.rows(slice(row, row + 1)),
        )
        if self.check_balance:
            check_energy_balance(result, self._soc, fleet, dt, where=f"at step {step}")
        self._soc = result.soc_kwh[-1].copy()
        flows = {
            f.name: getattr(result, f.name)[0].copy() for f in fields(result) if f.name != "soc_kwh"
        }
        cost = costs.energy_cost_usd(
            fleet,
            dt,
            flows["grid_import_kw"],
            flows["export_kw"],
            flows["genset_kw"],
            sig.price_usd_per_mwh[row],
            sig.export_price_usd_per_mwh[row],
        )
        emissions = costs.emissions_kg(
            fleet, dt, flows["grid_import_kw"], flows["genset_kw"], sig.carbon_g_per_kwh[row]
        )
        return StepReport(
            flows=flows,
            soc_kwh=self._soc.copy(),
            cost_usd=cost,
            emissions_kg=emissions,
            requests=float(counts[0]),
            within_slo=float(counts[1]),
            late=float(counts[2]),
            dropped=float(counts[3]),
            batch_accelerators=batch_busy,
            inference_accelerators=inference_acc,
        )
