"""The time-stepped simulator.

The run proceeds in *blocks*. At the first step of a block the policy decides, the decision
is checked and repaired (:mod:`wattroute.sim.repair`), and then held for as long as nothing
changes: the block ends at the policy's ``hold_steps``, at the next job arrival, at the step
in which a running job finishes, at the first step where inference needs accelerators that
batch work holds, or at the first step where some load could not be powered. Inside a block
every step is computed at once over arrays (inference, IT load, dispatch, battery), so a
policy that holds its decisions costs almost nothing per step, while one that decides every
step (``hold_steps=1``) is simulated exactly as a step-by-step loop would.

Everything is deterministic for a given scenario and policy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from wattroute.model.arrays import (
    FleetSignals,
    FleetStatic,
    JobArrays,
    ServiceArrays,
    steps_per_day,
)
from wattroute.model.scenario import Scenario
from wattroute.policies.base import ActiveJobs, Observation, Policy, ServiceState
from wattroute.signals.forecast import Blend, Forecaster, History
from wattroute.sim.dispatch import DispatchResult, check_energy_balance, dispatch
from wattroute.sim.inference import busy_equivalent, route, serve
from wattroute.sim.jobs import JobTable
from wattroute.sim.record import SiteRecorder
from wattroute.sim.repair import RepairCounts, check_shapes, clean_routing, repair

UNSERVED_TOLERANCE_KW = 1e-6


def _balance_check_from_env() -> bool:
    return os.environ.get("WATTROUTE_CHECK_BALANCE", "") not in ("", "0", "false", "no")


@dataclass
class SimulationOptions:
    """How to run.

    Parameters
    ----------
    check_energy_balance
        Verify energy in = energy out, limits and battery bookkeeping at every site and step
        (:func:`wattroute.sim.dispatch.check_energy_balance`); on by default when the
        environment variable ``WATTROUTE_CHECK_BALANCE`` is set. Tests switch it on.
    forecaster
        What policies forecast with.
    progress
        Called with (steps done, steps in all) after each block, e.g. to draw a progress bar.
    """

    check_energy_balance: bool = field(default_factory=_balance_check_from_env)
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
        self._arrival_steps = np.unique(self.job_spec.arrival_step)

    # -- observation -------------------------------------------------------------------------

    def _observe(self, k: int, jobs: JobTable, ids: np.ndarray, soc: np.ndarray) -> Observation:
        spec = jobs.spec
        now_h = k * self.step_h
        active = ActiveJobs(
            ids=ids,
            remaining_accelerator_hours=jobs.remaining[ids],
            deadline_h=spec.deadline_h[ids] - now_h,
            min_accelerators=spec.min_accelerators[ids],
            max_accelerators=spec.max_accelerators[ids],
            site=jobs.site[ids],
            accelerators=jobs.accelerators[ids],
            allowed=spec.allowed[ids],
            pending_overhead_h=jobs.pending_overhead_h[ids],
            checkpoint_overhead_h=spec.checkpoint_overhead_h[ids],
            migration_overhead_h=spec.migration_overhead_h[ids],
        )
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
            fleet=self.fleet,
            jobs=active,
            services=services,
            soc_kwh=soc.copy(),
            price_now=np.array(sig.price_usd_per_mwh[k]),
            carbon_now=np.array(sig.carbon_g_per_kwh[k]),
            solar_now=np.array(sig.solar_kw[k]),
            wind_now=np.array(sig.wind_kw[k]),
            pue_now=np.array(sig.pue[k]),
            history=History(self._history_arrays, k),
            forecaster=self.options.forecaster,
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self, policy: Policy) -> RunRecord:
        started = time.perf_counter()
        fleet, sig, n, dt = self.fleet, self.signals, self.n_steps, self.step_h
        step_s = dt * 3600.0
        n_sites = fleet.n_sites
        jobs = JobTable(self.job_spec)
        soc = fleet.battery_initial_kwh.copy()
        record = SiteRecorder(n, fleet.names)
        n_services = len(self.services)
        totals = InferenceTotals(*(np.zeros(n_services) for _ in range(4)))
        repairs = RepairCounts()
        decision_s: list[float] = []
        shapes = [(len(s.points), n_sites) for s in self.services]
        delta_kw = fleet.busy_kw - fleet.idle_kw
        count = fleet.accelerators.astype(np.float64)
        policy.reset()
        blocks = 0
        k = 0
        while k < n:
            jobs.arrive_until(k)
            ids = jobs.active_ids()
            observation = self._observe(k, jobs, ids, soc)
            t0 = time.perf_counter()
            decision = policy.decide(observation)
            decision_s.append(time.perf_counter() - t0)
            check_shapes(decision, len(ids), shapes, n_sites)

            # What the routing needs now, and what each site can draw now.
            routing = clean_routing(decision.routing, repairs)
            now_load = route(self.services, routing, k, 1, n_sites)
            need_now = now_load.need[0] if now_load else np.zeros(n_sites)
            busy_now = (
                busy_equivalent(self.services, now_load)[0] if now_load else np.zeros(n_sites)
            )
            battery_room = np.minimum(
                fleet.battery_discharge_kw,
                np.maximum(soc - fleet.battery_min_kwh, 0.0) * fleet.battery_discharge_eff / dt,
            )
            supply_kw = np.minimum(
                fleet.power_cap_kw,
                sig.solar_kw[k]
                + sig.wind_kw[k]
                + battery_room
                + fleet.import_limit_kw
                + fleet.genset_kw,
            )
            fixed = repair(
                decision,
                routing,
                observation.jobs,
                fleet,
                np.minimum(need_now, count),
                busy_now,
                sig.pue[k],
                supply_kw,
                repairs,
            )
            jobs.apply_allocation(ids, fixed.job_site, fixed.job_accelerators)

            # How long the decision stands. A repaired decision stands for one step only, so
            # that the policy sees what the repair did (e.g. a stopped job) at the next step.
            hold = 1 if fixed.changed else fixed.hold_steps
            length = min(hold, n - k)
            nxt = np.searchsorted(self._arrival_steps, k, side="right")
            if nxt < self._arrival_steps.size:
                length = min(length, int(self._arrival_steps[nxt]) - k)
            hours_left = jobs.hours_to_completion(ids)
            if hours_left.size and np.isfinite(hours_left).any():
                first_done = float(np.min(hours_left))
                length = min(length, max(1, math.ceil(first_done / dt - 1e-9)))

            running = jobs.site[ids] >= 0
            batch_acc = np.bincount(
                jobs.site[ids][running], weights=jobs.accelerators[ids][running], minlength=n_sites
            ).astype(np.float64)
            inference_room = fixed.accelerator_limit - batch_acc
            load = route(self.services, fixed.routing, k, length, n_sites)
            if load is not None:
                short = load.need > inference_room + 1e-9
                # Cut where inference would need accelerators that batch work or powered-down
                # capacity holds: the policy (and repair) must look again there.
                reclaimable = (batch_acc > 0) | (fixed.accelerator_limit < count)
                short &= reclaimable[np.newaxis, :]
                short[0] = False
                rows = np.flatnonzero(short.any(axis=1))
                if rows.size:
                    length = int(rows[0])
                    load = route(self.services, fixed.routing, k, length, n_sites)

            # Batch accelerators busy per step; jobs finishing in the last step run part of it.
            batch_busy = np.broadcast_to(batch_acc, (length, n_sites)).copy()
            block_start_h, block_end_h = k * dt, (k + length) * dt
            if running.any():
                run_ids = ids[running]
                frac = jobs.busy_fraction_last_step(run_ids, block_start_h, block_end_h, dt)
                finishing = (jobs.hours_to_completion(run_ids) <= length * dt + 1e-9) & (frac < 1)
                if finishing.any():
                    unused = (1.0 - frac[finishing]) * jobs.accelerators[run_ids[finishing]]
                    batch_busy[-1] -= np.bincount(
                        jobs.site[run_ids[finishing]], weights=unused, minlength=n_sites
                    )

            if load is not None:
                served = serve(self.services, load, inference_room, step_s)
                inference_busy = served.busy_equivalent
                inference_acc = served.accelerators
            else:
                served = None
                inference_busy = np.zeros((length, n_sites))
                inference_acc = inference_busy
            it_kw = (
                fleet.base_it_kw
                + fleet.idle_kw * fixed.accelerator_limit
                + delta_kw * (batch_busy + inference_busy)
            )
            pue = sig.pue[k : k + length]
            demand = it_kw * pue
            rows_slice = slice(k, k + length)
            result = dispatch(
                demand,
                sig.solar_kw[rows_slice],
                sig.wind_kw[rows_slice],
                fleet,
                soc,
                dt,
                fixed.battery_kw,
                fixed.genset_kw,
            )
            unserved_rows = np.flatnonzero(
                (result.unserved_kw[1:] > UNSERVED_TOLERANCE_KW).any(axis=1)
            )
            if unserved_rows.size:
                # The next step needs a repaired decision: stop the block before it.
                cut = int(unserved_rows[0]) + 1
                length = cut
                rows_slice = slice(k, k + length)
                result = _slice_result(result, length)
                it_kw, demand, pue = it_kw[:length], demand[:length], pue[:length]
                batch_busy = batch_busy[:length]
                inference_acc = inference_acc[:length]
                if served is not None and load is not None:
                    load = route(self.services, fixed.routing, k, length, n_sites)
                    assert load is not None
                    served = serve(self.services, load, inference_room, step_s)

            if self.options.check_energy_balance:
                check_energy_balance(result, soc, fleet, dt, where=f"in the block at step {k}")

            price = sig.price_usd_per_mwh[rows_slice]
            carbon = sig.carbon_g_per_kwh[rows_slice]
            cost = dt * (
                result.grid_import_kw * price / 1000.0
                + result.genset_kw * fleet.genset_cost_usd_per_kwh
                - result.export_kw * sig.export_price_usd_per_mwh[rows_slice] / 1000.0
            )
            emissions = (
                dt
                * (result.grid_import_kw * carbon + result.genset_kw * fleet.genset_g_per_kwh)
                / 1000.0
            )
            record.write(
                k,
                demand_kw=demand,
                load_kw=result.load_kw,
                it_kw=it_kw,
                grid_import_kw=result.grid_import_kw,
                export_kw=result.export_kw,
                solar_kw=result.solar_kw,
                wind_kw=result.wind_kw,
                genset_kw=result.genset_kw,
                battery_charge_kw=result.battery_charge_kw,
                battery_discharge_kw=result.battery_discharge_kw,
                curtailed_kw=result.curtailed_kw,
                unserved_kw=result.unserved_kw,
                soc_kwh=result.soc_kwh,
                price_usd_per_mwh=price,
                carbon_g_per_kwh=carbon,
                pue=pue,
                batch_accelerators=batch_busy,
                inference_accelerators=inference_acc,
                powered_accelerators=np.broadcast_to(fixed.accelerator_limit, (length, n_sites)),
                served_rps=served.served_rps if served is not None else np.zeros((length, n_sites)),
                cost_usd=cost,
                emissions_kg=emissions,
            )
            if served is not None:
                totals.requests += served.requests
                totals.within_slo += served.within_slo
                totals.late += served.late
                totals.dropped += served.dropped
            jobs.advance(ids, block_start_h, length * dt)
            soc = result.soc_kwh[-1].copy()
            k += length
            blocks += 1
            if self.options.progress is not None:
                self.options.progress(k, n)
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
        )


def _slice_result(result: DispatchResult, length: int) -> DispatchResult:
    """The first ``length`` rows of every array of a dispatch result."""
    return DispatchResult(**{f.name: getattr(result, f.name)[:length] for f in fields(result)})


def simulate(
    scenario: Scenario, policy: Policy, options: SimulationOptions | None = None
) -> RunRecord:
    """Simulate ``policy`` on ``scenario`` and return everything the run produced."""
    return Simulator(scenario, options).run(policy)
