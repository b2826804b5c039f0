"""The time-stepped simulator.

The run proceeds in *blocks*. At the first step of a block the policy decides, the decision
is checked and repaired (:mod:`wattroute.sim.repair`), and then held for as long as nothing
changes: the block ends at the policy's ``hold_steps``, at the next job arrival, at the step
in which a running job finishes (unless the policy says that changes nothing), at the first
step where inference needs accelerators that batch work holds, or at the first step where
some load could not be powered. Inside a block every step is computed at once over arrays
(inference, IT load, dispatch, battery), so a policy that holds its decisions costs almost
nothing per step, while one that decides every step (``hold_steps=1``) is simulated exactly
as a step-by-step loop would.

Everything is deterministic for a given scenario and policy.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from wattroute.model.arrays import (
    FleetSignals,
    FleetStatic,
    JobArrays,
    ServiceArrays,
    any_set,
    known_shapes,
    published_ahead,
    steps_per_day,
)
from wattroute.model.power import battery_discharge_room_kw, facility_kw, it_kw
from wattroute.model.scenario import Scenario
from wattroute.model.tolerances import ROUNDING
from wattroute.policies.base import ActiveJobs, Decision, Observation, Policy, ServiceState
from wattroute.signals.forecast import Blend, Forecaster, History
from wattroute.sim.dispatch import GridTerms
from wattroute.sim.inference import RoutedLoad, Router, Served
from wattroute.sim.jobs import JobTable
from wattroute.sim.ledger import Ledger, head
from wattroute.sim.record import SiteRecorder
from wattroute.sim.repair import RepairCounts, Repaired, check_shapes, clean_routing, repair

UNSERVED_TOLERANCE_KW = 1e-6


@dataclass
class SimulationOptions:
    """How to run.

    Parameters
    ----------
    check_energy_balance
        Verify energy in = energy out, limits and battery bookkeeping at every site and step
        (:func:`wattroute.sim.dispatch.check_energy_balance`). On by default: a result that
        breaks conservation is refused, not reported. Measurements of raw simulator speed
        switch it off (it adds up to about half to runs with many short blocks).
    forecaster
        What policies forecast with.
    progress
        Called with (steps done, steps in all) after each block, e.g. to draw a progress bar.
    """

    check_energy_balance: bool = True
    forecaster: Forecaster = field(default_factory=Blend)
    progress: Callable[[int, int], None] | None = None


@dataclass
class InferenceTotals:
    """Request counts per service over the run."""

    requests: np.ndarray
    within_slo: np.ndarray
    late: np.ndarray
    dropped: np.ndarray


@dataclass
class RunRecord:
    """Everything a run produced, before it is summarised."""

    scenario: Scenario
    policy: str
    forecaster: str
    fleet: FleetStatic
    services: tuple[ServiceArrays, ...]
    sites: SiteRecorder
    jobs: JobTable
    inference: InferenceTotals
    decision_s: list[float]
    blocks: int
    repairs: RepairCounts
    wall_s: float
    policy_stats: dict[str, float] = field(default_factory=dict)


class Simulator:
    """Simulates one policy on one scenario. Use :func:`simulate`."""

    def __init__(self, scenario: Scenario, options: SimulationOptions | None = None) -> None:
        self.scenario = scenario
        self.options = options or SimulationOptions()
        self.fleet = FleetStatic.from_scenario(scenario)
        self.signals = FleetSignals.from_scenario(scenario)
        self.services = ServiceArrays.from_scenario(scenario)
        self.job_spec = JobArrays.from_scenario(scenario)
        self.n_steps = scenario.n_steps
        self.step_h = scenario.step_h
        self.steps_per_day = steps_per_day(self.step_h)
        self._history_arrays = {name: getattr(self.signals, name) for name in FleetSignals.NAMES}
        for service in self.services:  # request rates, so that policies can forecast them
            self._history_arrays[f"rate_rps:{service.name}"] = service.rate_rps
        self._published = published_ahead(scenario)  # day-ahead prices
        self._shapes = known_shapes(scenario)  # clear-sky solar
        # Steps where jobs arrive, ascending.
        self.arrival_steps: list[int] = np.unique(self.job_spec.arrival_step).tolist()

    # -- observation -------------------------------------------------------------------------

    def observe(
        self,
        k: int,
        jobs: JobTable,
        ids: np.ndarray,
        soc: Callable[[], np.ndarray],
        firm_kw: np.ndarray | None = None,
    ) -> Observation:
        """What a policy sees at step ``k``: the active jobs ``ids``, the services, the signals
        now and their history, and the battery state through ``soc`` (read on demand); and
        ``firm_kw``, the supply without the battery now (:attr:`Observation.firm_kw`), if
        known."""
        active = ActiveJobs(ids, partial(jobs.column, ids, k * self.step_h))
        services = tuple(
            ServiceState(
                name=s.name,
                rate_rps=s.rate_rps[k].copy(),
                rtt_ms=s.rtt_ms,
                feasible=s.feasible,
                replica_throughput_rps=s.replica_throughput_rps,
                accelerators_per_replica=s.accelerators_per_replica,
            )
            for s in self.services
        )
        sig = self.signals
        return Observation(
            step=k,
            time=self.scenario.start + k * self.scenario.step,
            step_h=self.step_h,
            steps_per_day=self.steps_per_day,
            carbon_price_usd_per_tonne=self.scenario.carbon_price_usd_per_tonne,
            penalties=self.scenario.penalties,
            fleet=self.fleet,
            jobs=active,
            services=services,
            soc_source=soc,
            price_now=sig.price_usd_per_mwh[k].copy(),
            carbon_now=sig.carbon_g_per_kwh[k].copy(),
            solar_now=sig.solar_kw[k].copy(),
            wind_now=sig.wind_kw[k].copy(),
            pue_now=sig.pue[k].copy(),
            history=History(self._history_arrays, k, self._published, self._shapes),
            forecaster=self.options.forecaster,
            firm_kw=firm_kw,
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self, policy: Policy) -> RunRecord:
        """Simulate ``policy`` block by block (see the module docstring)."""
        started = time.perf_counter()
        run = _Run(self, policy)
        policy.reset()
        k = 0
        while k < self.n_steps:
            k = run.block(k)
            if self.options.progress is not None:
                self.options.progress(k, self.n_steps)
        return run.finish(time.perf_counter() - started)


@dataclass
class _Decided:
    """A policy's decision at step ``k``, repaired, and what it implies now."""

    ids: np.ndarray  # active job ids
    decision: Decision
    fixed: Repaired
    load: RoutedLoad | None  # inference demand over the longest the decision can stand
    longest: int  # steps the decision can stand at most (its hold, up to the next arrival)


class _Run:
    """One run of a policy: its state, and the phases of a block — decide, repair, how long
    the decision stands, power and dispatch, record."""

    def __init__(self, sim: Simulator, policy: Policy) -> None:
        self.sim, self.policy = sim, policy
        fleet, sig, dt = sim.fleet, sim.signals, sim.step_h
        self.jobs = JobTable(sim.job_spec)
        self.record = SiteRecorder(fleet, sig, dt)
        terms = GridTerms.from_signals(sig, sim.scenario.carbon_price_usd_per_tonne)
        self.ledger = Ledger(fleet, sig, self.record, dt, sim.options.check_energy_balance, terms)
        self.router = Router(sim.services, sim.n_steps, dt * 3600.0) if sim.services else None
        self.totals = InferenceTotals(*(np.zeros(len(sim.services)) for _ in range(4)))
        self.repairs = RepairCounts()
        self.decision_s: list[float] = []
        self.blocks = 0
        self.shapes = [(len(s.points), fleet.n_sites) for s in sim.services]
        self.count = fleet.accelerator_count
        self.no_load = np.zeros(fleet.n_sites)
        # Steps where every site could power all its accelerators busy without its battery.
        worst_kw = facility_kw(fleet, sig.pue, self.count)
        self.firm_everywhere = (worst_kw <= self.ledger.firm_kw + ROUNDING).all(axis=1)
        self._raw_routing: tuple[np.ndarray, ...] | None = None
        self._routing: tuple[np.ndarray, ...] = ()

    def block(self, k: int) -> int:
        """Simulate the block starting at step ``k``; the step after it."""
        decided = self._decide(k)
        jobs, ids = self.jobs, decided.ids
        state = jobs.state(ids)  # the allocation holds for the block: read the jobs once
        hours_left = jobs.hours_to_completion(ids, state)
        length = self._length(decided, hours_left)
        batch_acc = decided.fixed.batch_accelerators
        inference_room = decided.fixed.accelerator_limit - batch_acc
        length, load = self._cut_for_inference(decided, batch_acc, inference_room, length)
        batch_busy = self._batch_busy(jobs, ids, hours_left, batch_acc, length)
        length, served = self._power(k, decided.fixed, load, inference_room, batch_busy, length)
        self._write(k, decided.fixed, batch_busy[:length], served)
        jobs.advance(ids, k * self.sim.step_h, length * self.sim.step_h, state)
        self.blocks += 1
        return k + length

    # -- decide and repair -------------------------------------------------------------------

    def _decide(self, k: int) -> _Decided:
        """Ask the policy, check the decision's shapes, and repair it to what the fleet can
        do now (:func:`wattroute.sim.repair.repair`)."""
        sim, jobs, fleet = self.sim, self.jobs, self.sim.fleet
        jobs.arrive_until(k)
        ids = jobs.active_ids()
        ledger = self.ledger
        observation = sim.observe(k, jobs, ids, partial(ledger.soc_at, k), ledger.firm_kw[k])
        t0 = time.perf_counter()
        decision = self.policy.decide(observation)
        self.decision_s.append(time.perf_counter() - t0)
        # A routing seen before (the same tuple) was checked and cleaned then.
        same_routing = decision.routing is self._raw_routing
        check_shapes(decision, len(ids), self.shapes, fleet.n_sites, same_routing)

        # The longest the decision can stand: its hold, up to the next arrival.
        longest = min(decision.hold_steps, sim.n_steps - k)
        nxt = bisect_right(sim.arrival_steps, k)
        if nxt < len(sim.arrival_steps):
            longest = min(longest, sim.arrival_steps[nxt] - k)

        # What the decision would need now, and what each site can draw now.
        if not same_routing:
            self._raw_routing = decision.routing
            self._routing = clean_routing(decision.routing, self.repairs)
        router = self.router
        load = router.load(self._routing, k, longest) if router else None
        need_now = np.minimum(load.need[0], self.count) if load else self.no_load
        busy_now = load.busy[0] if load else self.no_load
        supply = self._supply_now(k, decision, busy_now)
        fixed = repair(
            decision,
            self._routing,
            observation.jobs,
            fleet,
            need_now,
            busy_now,
            sim.signals.pue[k],
            supply,
            self.repairs,
        )
        jobs.apply_allocation(ids, fixed.job_site, fixed.job_accelerators, k)
        return _Decided(ids, decision, fixed, load, longest)

    def _supply_now(self, k: int, decision: Decision, inference_busy: np.ndarray) -> np.ndarray:
        """Facility power each site can draw at step ``k``, kW.

        The battery's part needs its state now, which may mean dispatching pending steps;
        that is only done where the decision's demand could exceed the supply without it.
        """
        ledger, fleet = self.ledger, self.sim.fleet
        firm = ledger.firm_kw[k]
        if self.firm_everywhere[k]:
            return firm  # no load any site can draw exceeds its firm supply
        asked = np.asarray(decision.job_site)
        ok = (asked >= 0) & (asked < fleet.n_sites)
        batch_asked = np.bincount(
            asked[ok], weights=np.asarray(decision.job_accelerators)[ok], minlength=fleet.n_sites
        )
        demand_bound = facility_kw(
            fleet, self.sim.signals.pue[k], np.maximum(batch_asked, 0.0) + inference_busy
        )
        short = (demand_bound > firm + ROUNDING) & (fleet.battery_discharge_kw > 0)
        if not any_set(short):
            return firm
        room = battery_discharge_room_kw(fleet, ledger.soc_at(k), self.sim.step_h)
        return np.minimum(fleet.power_cap_kw, firm + room)

    # -- how long the decision stands --------------------------------------------------------

    def _length(self, decided: _Decided, hours_left: np.ndarray) -> int:
        """Steps the decision stands — until a running job finishes (``hours_left``: hours to
        completion of the active jobs, inf if not running), unless the policy says a
        completion changes nothing; one step if it was repaired, so that the policy sees what
        the repair did."""
        length = 1 if decided.fixed.changed else decided.longest
        if hours_left.size and decided.decision.revisit_on_completion:
            soonest = float(hours_left.min())
            if soonest < math.inf:
                steps = math.ceil(soonest / self.sim.step_h - ROUNDING)
                length = min(length, max(1, steps))
        return length

    def _cut_for_inference(
        self, decided: _Decided, batch_acc: np.ndarray, inference_room: np.ndarray, length: int
    ) -> tuple[int, RoutedLoad | None]:
        """End the block where inference would need accelerators that batch work or
        powered-down capacity holds: the policy (and repair) must look again there."""
        load = decided.load
        if load is None:
            return length, None
        if length > 1:  # the first step was repaired for
            fixed = decided.fixed
            reclaimable = batch_acc > 0
            if fixed.powered_down:
                reclaimable |= fixed.accelerator_limit < self.count
            short = (load.need[1:length] > inference_room + ROUNDING) & reclaimable
            rows = short.nonzero()[0]  # row of each true element, ascending
            if rows.size:
                length = int(rows[0]) + 1
        return length, load if length == load.need.shape[0] else load.head(length)

    def _batch_busy(
        self,
        jobs: JobTable,
        ids: np.ndarray,
        hours_left: np.ndarray,
        batch_acc: np.ndarray,
        length: int,
    ) -> np.ndarray:
        """Batch accelerators busy per step, ``(length, S)``, for active jobs ``ids`` with
        ``hours_left`` to completion (inf if not running). A job that finishes inside the
        block draws busy power for the part of its last step it runs, and none after."""
        busy = np.empty((length, batch_acc.size))
        busy[:] = batch_acc
        if ids.size:
            end = hours_left / self.sim.step_h  # steps from the block's start to each finish
            finishing = (end < length - 1e-12).nonzero()[0]
            # Few jobs finish in a block: each leaves the busy count in the step it ends in,
            # for the part of that step it no longer runs.
            for j, job_end in zip(ids[finishing], end[finishing], strict=True):
                last = int(job_end)
                site, acc = jobs.site[j], float(jobs.accelerators[j])
                busy[last, site] -= acc * (1.0 - (job_end - last))
                busy[last + 1 :, site] -= acc
        return busy

    # -- power and dispatch ------------------------------------------------------------------

    def _power(
        self,
        k: int,
        fixed: Repaired,
        load: RoutedLoad | None,
        inference_room: np.ndarray,
        batch_busy: np.ndarray,
        length: int,
    ) -> tuple[int, Served | None]:
        """Serve inference, post the block's facility demand and set-points to the ledger, and
        dispatch now if some load might go unserved — ending the block before the first step
        that would, so that a repaired decision takes over there."""
        sim, router, ledger = self.sim, self.router, self.ledger
        served = router.serve(load, inference_room, k) if router and load else None
        inference_busy = served.busy_equivalent if served else 0.0
        powered = fixed.accelerator_limit if fixed.powered_down else None  # None: all
        it = it_kw(sim.fleet, batch_busy + inference_busy, powered)
        demand = it * sim.signals.pue[k : k + length]
        ledger.post(k, demand, _held(fixed.battery_kw, length), _held(fixed.genset_kw, length))
        if not ledger.might_go_unserved(k, demand):
            return length, served
        result = ledger.dispatch_block(k, length)
        late = np.flatnonzero((result.unserved_kw[1:] > UNSERVED_TOLERANCE_KW).any(axis=1))
        if late.size:
            length = int(late[0]) + 1
            result = head(result, length)
            if router is not None and load is not None:
                served = router.serve(load.head(length), inference_room, k)
        ledger.commit(result)
        return length, served

    # -- record ------------------------------------------------------------------------------

    def _write(
        self, k: int, fixed: Repaired, batch_busy: np.ndarray, served: Served | None
    ) -> None:
        """Record the block's accelerators and requests."""
        record = self.record
        record.write(k, batch_accelerators=batch_busy)
        if fixed.powered_down:
            powered = np.broadcast_to(fixed.accelerator_limit, batch_busy.shape)
            record.write(k, powered_accelerators=powered)
        if served is None:
            return
        record.write(k, inference_accelerators=served.accelerators, served_rps=served.served_rps)
        self.totals.requests += served.requests
        self.totals.within_slo += served.within_slo
        self.totals.late += served.late
        self.totals.dropped += served.dropped

    def finish(self, wall_s: float) -> RunRecord:
        """Dispatch what is pending, close the deadlines, and return what the run produced."""
        sim = self.sim
        self.ledger.flush(sim.n_steps)
        self.jobs.close_deadlines(sim.n_steps * sim.step_h)
        return RunRecord(
            scenario=sim.scenario,
            policy=self.policy.name,
            forecaster=sim.options.forecaster.name,
            fleet=sim.fleet,
            services=sim.services,
            sites=self.record,
            jobs=self.jobs,
            inference=self.totals,
            decision_s=self.decision_s,
            blocks=self.blocks,
            repairs=self.repairs,
            wall_s=wall_s,
            policy_stats=dict(self.policy.stats()),
        )


def _held(setpoint: np.ndarray | None, length: int) -> np.ndarray | None:
    """A per-site set-point held over ``length`` steps, or ``None`` (merit order)."""
    return None if setpoint is None else np.broadcast_to(setpoint, (length, setpoint.size))


def simulate(
    scenario: Scenario, policy: Policy, options: SimulationOptions | None = None
) -> RunRecord:
    """Simulate ``policy`` on ``scenario`` and return everything the run produced."""
    return Simulator(scenario, options).run(policy)
