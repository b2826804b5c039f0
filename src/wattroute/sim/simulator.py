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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from wattroute.model.arrays import (
    FleetSignals,
    FleetStatic,
    JobArrays,
    ServiceArrays,
    known_shapes,
    published_ahead,
    steps_per_day,
)
from wattroute.model.power import battery_discharge_room_kw, facility_kw, it_kw
from wattroute.model.scenario import Scenario
from wattroute.policies.base import ActiveJobs, Observation, Policy, ServiceState
from wattroute.signals.forecast import Blend, Forecaster, History
from wattroute.sim.dispatch import GridTerms
from wattroute.sim.inference import Router
from wattroute.sim.jobs import JobTable
from wattroute.sim.ledger import Ledger, head
from wattroute.sim.record import SiteRecorder
from wattroute.sim.repair import RepairCounts, check_shapes, clean_routing, repair

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
        self._arrival_steps = np.unique(self.job_spec.arrival_step)

    # -- observation -------------------------------------------------------------------------

    def _observe(
        self, k: int, jobs: JobTable, ids: np.ndarray, soc: Callable[[], np.ndarray]
    ) -> Observation:
        active = ActiveJobs(ids, partial(jobs.column, ids, k * self.step_h))
        services = tuple(
            ServiceState(
                name=s.name,
                rate_rps=np.array(s.rate_rps[k]),
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
            price_now=np.array(sig.price_usd_per_mwh[k]),
            carbon_now=np.array(sig.carbon_g_per_kwh[k]),
            solar_now=np.array(sig.solar_kw[k]),
            wind_now=np.array(sig.wind_kw[k]),
            pue_now=np.array(sig.pue[k]),
            history=History(self._history_arrays, k, self._published, self._shapes),
            forecaster=self.options.forecaster,
        )

    # -- the run -----------------------------------------------------------------------------

    def _supply_now(self, k: int, ledger: Ledger, demand_bound_kw: np.ndarray) -> np.ndarray:
        """Facility power each site can draw at step ``k``, kW.

        The battery's part needs its state now, which may mean dispatching pending steps;
        that is only done where the demand could exceed the supply without the battery.
        """
        fleet = self.fleet
        firm = ledger.firm_kw[k]
        short = (demand_bound_kw > firm + 1e-9) & (fleet.battery_discharge_kw > 0)
        if not short.any():
            return firm
        soc = ledger.soc_at(k)
        room = battery_discharge_room_kw(fleet, soc, self.step_h)
        return np.minimum(fleet.power_cap_kw, firm + room)

    def run(self, policy: Policy) -> RunRecord:
        started = time.perf_counter()
        fleet, sig, n, dt = self.fleet, self.signals, self.n_steps, self.step_h
        step_s = dt * 3600.0
        n_sites = fleet.n_sites
        jobs = JobTable(self.job_spec)
        record = SiteRecorder(fleet, sig, dt)
        terms = GridTerms.from_signals(sig, self.scenario.carbon_price_usd_per_tonne)
        ledger = Ledger(fleet, sig, record, dt, self.options.check_energy_balance, terms)
        router = Router(self.services, n, step_s) if self.services else None
        n_services = len(self.services)
        totals = InferenceTotals(*(np.zeros(n_services) for _ in range(4)))
        repairs = RepairCounts()
        decision_s: list[float] = []
        shapes = [(len(s.points), n_sites) for s in self.services]
        count = fleet.accelerators.astype(np.float64)
        no_load = np.zeros(n_sites)
        # Steps where every site could power all its accelerators busy without its battery.
        worst_kw = facility_kw(fleet, sig.pue, count)
        firm_everywhere = (worst_kw <= ledger.firm_kw + 1e-9).all(axis=1)
        raw_routing: tuple[np.ndarray, ...] | None = None
        routing: tuple[np.ndarray, ...] = ()
        policy.reset()
        blocks = 0
        k = 0
        while k < n:
            jobs.arrive_until(k)
            ids = jobs.active_ids()
            observation = self._observe(k, jobs, ids, partial(ledger.soc_at, k))
            t0 = time.perf_counter()
            decision = policy.decide(observation)
            decision_s.append(time.perf_counter() - t0)
            check_shapes(decision, len(ids), shapes, n_sites)

            # The longest the decision can stand: its hold, up to the next arrival.
            longest = min(decision.hold_steps, n - k)
            nxt = np.searchsorted(self._arrival_steps, k, side="right")
            if nxt < self._arrival_steps.size:
                longest = min(longest, int(self._arrival_steps[nxt]) - k)

            # What the decision would need now, and what each site can draw now.
            if decision.routing is not raw_routing:
                raw_routing = decision.routing
                routing = clean_routing(raw_routing, repairs)
            load = router.load(routing, k, longest) if router else None
            need_now = np.minimum(load.need[0], count) if load else no_load
            busy_now = load.busy[0] if load else no_load
            if firm_everywhere[k]:
                supply = ledger.firm_kw[k]  # no load this site can draw exceeds its firm supply
            else:
                asked = np.asarray(decision.job_site)
                ok = (asked >= 0) & (asked < n_sites)
                batch_asked = np.bincount(
                    asked[ok], weights=np.asarray(decision.job_accelerators)[ok], minlength=n_sites
                )
                demand_bound = facility_kw(
                    fleet, sig.pue[k], np.maximum(batch_asked, 0.0) + busy_now
                )
                supply = self._supply_now(k, ledger, demand_bound)
            fixed = repair(
                decision,
                routing,
                observation.jobs,
                fleet,
                need_now,
                busy_now,
                sig.pue[k],
                supply,
                repairs,
            )
            jobs.apply_allocation(ids, fixed.job_site, fixed.job_accelerators, k)

            # How long the decision stands: until a running job finishes, unless the policy
            # says a completion changes nothing. A repaired decision stands for one step only,
            # so that the policy sees what the repair did.
            length = 1 if fixed.changed else longest
            running = ids[jobs.site[ids] >= 0]
            hours_left = jobs.hours_to_completion(running)
            if hours_left.size and decision.revisit_on_completion:
                length = min(length, max(1, math.ceil(float(hours_left.min()) / dt - 1e-9)))

            batch_acc = np.bincount(
                jobs.site[running], weights=jobs.accelerators[running], minlength=n_sites
            ).astype(np.float64)
            inference_room = fixed.accelerator_limit - batch_acc
            if load is not None:
                load = load.head(length)
                # Cut where inference would need accelerators that batch work or powered-down
                # capacity holds: the policy (and repair) must look again there.
                reclaimable = (batch_acc > 0) | (fixed.accelerator_limit < count)
                short = (load.need > inference_room + 1e-9) & reclaimable
                short[0] = False
                rows = np.flatnonzero(short.any(axis=1))
                if rows.size:
                    length = int(rows[0])
                    load = load.head(length)

            batch_busy = self._batch_busy(jobs, running, hours_left, batch_acc, length)
            served = router.serve(load, inference_room, k) if router and load else None
            inference_busy = served.busy_equivalent if served else 0.0
            it = it_kw(fleet, batch_busy + inference_busy, fixed.accelerator_limit)
            demand = it * sig.pue[k : k + length]
            battery_sp = _held(fixed.battery_kw, length)
            genset_sp = _held(fixed.genset_kw, length)
            ledger.post(k, demand, battery_sp, genset_sp)
            if ledger.might_go_unserved(k, demand):
                result = ledger.dispatch_block(k, length)
                late = np.flatnonzero((result.unserved_kw[1:] > UNSERVED_TOLERANCE_KW).any(axis=1))
                if late.size:
                    # The next step needs a repaired decision: end the block before it.
                    length = int(late[0]) + 1
                    result = head(result, length)
                    it, batch_busy = it[:length], batch_busy[:length]
                    if router is not None and load is not None:
                        load = load.head(length)
                        served = router.serve(load, inference_room, k)
                ledger.commit(result)

            record.write(k, batch_accelerators=batch_busy)
            if served is not None:
                record.write(
                    k, inference_accelerators=served.accelerators, served_rps=served.served_rps
                )
            if (fixed.accelerator_limit < count).any():
                record.write(
                    k,
                    powered_accelerators=np.broadcast_to(fixed.accelerator_limit, it.shape),
                )
            if served is not None:
                totals.requests += served.requests
                totals.within_slo += served.within_slo
                totals.late += served.late
                totals.dropped += served.dropped
            jobs.advance(ids, k * dt, length * dt)
            k += length
            blocks += 1
            if self.options.progress is not None:
                self.options.progress(k, n)
        ledger.flush(n)
        jobs.close_deadlines(n * dt)
        return RunRecord(
            scenario=self.scenario,
            policy=policy.name,
            forecaster=self.options.forecaster.name,
            fleet=fleet,
            services=self.services,
            sites=record,
            jobs=jobs,
            inference=totals,
            decision_s=decision_s,
            blocks=blocks,
            repairs=repairs,
            wall_s=time.perf_counter() - started,
            policy_stats=dict(policy.stats()),
        )

    def _batch_busy(
        self,
        jobs: JobTable,
        running: np.ndarray,
        hours_left: np.ndarray,
        batch_acc: np.ndarray,
        length: int,
    ) -> np.ndarray:
        """Batch accelerators busy per step, ``(length, S)``. A job that finishes inside the
        block draws busy power for the part of its last step it runs, and none after."""
        busy = np.empty((length, batch_acc.size))
        busy[:] = batch_acc
        if running.size:
            end = hours_left / self.step_h  # steps from the block's start to each finish
            finishing = np.flatnonzero(end < length - 1e-12)
            # Few jobs finish in a block: each leaves the busy count in the step it ends in,
            # for the part of that step it no longer runs.
            for j, job_end in zip(running[finishing], end[finishing], strict=True):
                last = int(job_end)
                site, acc = jobs.site[j], float(jobs.accelerators[j])
                busy[last, site] -= acc * (1.0 - (job_end - last))
                busy[last + 1 :, site] -= acc
        return busy


def _held(setpoint: np.ndarray | None, length: int) -> np.ndarray | None:
    """A per-site set-point held over ``length`` steps, or ``None`` (merit order)."""
    return None if setpoint is None else np.broadcast_to(setpoint, (length, setpoint.size))


def simulate(
    scenario: Scenario, policy: Policy, options: SimulationOptions | None = None
) -> RunRecord:
    """Simulate ``policy`` on ``scenario`` and return everything the run produced."""
    return Simulator(scenario, options).run(policy)
