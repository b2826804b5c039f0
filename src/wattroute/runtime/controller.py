"""The live controller: every planning step, read signals, decide, enact, commit.

Each tick, for the step the clock has reached:

1. read every signal for the step from the provider; a value that is missing is carried
   forward from the last good one and the controller reports itself **degraded** (with the
   reasons) until data returns; while degraded it holds back ``power_safety_margin`` of every
   import limit and power cap;
2. load the active jobs (those submitted or cancelled since the last tick: the controller keeps
   the active jobs in memory and reads the whole set only when it starts), the services and
   their demand, the operator's site overrides, the
   grid events in force (a demand-response event caps the site's power) and the sites' meter
   readings of their solar and wind output (a reading stands in for the provider's value for
   one step);
3. ask the policy for a decision (the same policies, observations and forecasts as the
   simulator: the forecasts only ever see what was received), and repair it as the simulator
   does;
4. hand it to the executor, which enacts it and advances the jobs;
5. commit the tick, the jobs it changed and the grid events' compliance, all or nothing.

Between ticks it watches, every ``watch_s``, what bounds the fleet — grid events, overrides,
sites the engine lost, meter readings — and re-decides the step in force at once when that
changes (a *correction*), timing how long each grid event or power drop took to be met.

A restarted controller resumes after the last committed tick, with the battery state and
running totals it had then: nothing is replayed twice and nothing committed is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from wattroute.model.arrays import (
    FleetSignals,
    FleetStatic,
    ServiceArrays,
    known_shapes,
    published_ahead,
    slo_feasible,
    steps_per_day,
)
from wattroute.model.scenario import Scenario
from wattroute.model.summary import RunningTotals
from wattroute.model.tolerances import within_kw
from wattroute.policies.base import ActiveJobs, Observation, Policy, ServiceState
from wattroute.policies.greedy import GreedyPolicy
from wattroute.runtime.baseline import Baseline, BaselineSource
from wattroute.runtime.clock import Clock
from wattroute.runtime.executor import Allocation, Executor, StepReport
from wattroute.runtime.intake import SignalIntake
from wattroute.runtime.jobs import changed, load_table, moved, progress_snapshot, store_table
from wattroute.runtime.providers import SignalProvider
from wattroute.runtime.records import (
    GridEventRecord,
    Heartbeat,
    JobRecord,
    ServiceRecord,
    SiteReading,
    Store,
    TickRecord,
)
from wattroute.runtime.registry import CodeRegistry
from wattroute.signals.forecast import Blend, Forecaster
from wattroute.sim.dispatch import GridTerms
from wattroute.sim.inference import route
from wattroute.sim.record import ENERGY
from wattroute.sim.repair import RepairCounts, check_shapes, clean_routing, repair

log = logging.getLogger("wattroute.controller")


@dataclass
class ControllerOptions:
    """How the controller behaves.

    Parameters
    ----------
    power_safety_margin
        Share of each import limit and power cap held back while degraded.
    forecaster
        What the policy forecasts with.
    check_balance
        Verify the executor's energy balance every step.
    heartbeat_s
        Wall-clock seconds between heartbeats while waiting for the next step.
    signal_horizon_h
        How far ahead the forecast in the heartbeat reaches, hours.
    watch_s
        Wall-clock seconds between looks, while waiting, at what bounds the fleet (grid events,
        overrides, lost sites, meter readings) and at compliance.
    latency_margin_ms
        Milliseconds the request path adds beyond the network round trip and the service's
        own time (a gateway's overhead), counted in the test of which sites can serve a demand
        point within its SLO.
    reading_threshold
        How far a meter reading must move a site's solar or wind from the value in force to
        re-decide at once, as a share of the site's IT power with every accelerator busy
        (smaller moves wait for the next tick).
    registry
        The job functions and inference handlers the operator registered: a job or service
        names one, and the controller hands the executor its entry point. A job whose name is
        no longer registered for its tenant fails instead of running; a service whose handler
        is not is left unplanned (logged).
    baseline
        Run the carbon-agnostic baseline beside the fleet
        (:class:`~wattroute.runtime.baseline.Baseline`) and keep its totals in every tick
        (``state["baseline"]``); on replayed signals only.
    skip_missed_steps
        On real time: when the controller comes to a step more than one step in the past (it
        was down, or started after the period began), go straight to the step in force instead
        of deciding every missed step in a burst. Steps skipped are logged and accounted for
        nothing.
    """

    power_safety_margin: float = 0.1
    forecaster: Forecaster = field(default_factory=Blend)
    check_balance: bool = True
    heartbeat_s: float = 5.0
    signal_horizon_h: float = 24.0
    watch_s: float = 0.25
    reading_threshold: float = 0.02
    latency_margin_ms: float = 0.0
    registry: CodeRegistry = field(default_factory=CodeRegistry.builtin)
    skip_missed_steps: bool = False
    baseline: bool = False


@dataclass
class ControllerStatus:
    """What the controller is doing, for health checks and metrics."""

    step: int = -1
    time: pd.Timestamp | None = None
    degraded: bool = False
    reasons: tuple[str, ...] = ()
    ticks: int = 0
    lag_s: float = 0.0
    last_decision_s: float = 0.0
    finished: bool = False
    policy_failures: int = 0
    # Wall seconds of each phase of the last tick: load (the jobs that changed), observe
    # (signals, fleet envelope, services, the observation), decide (the policy and the
    # repair), enact, persist (write back and commit), baseline, report (heartbeat).
    phases: dict[str, float] = field(default_factory=dict)


class Controller:
    """The control loop over a fleet.

    Parameters
    ----------
    scenario
        The fleet (sites, demand points, network), its period and step, penalties and carbon
        price; its signals are not read (the provider is).
    store
        Durable state.
    policy
        The policy to decide with.
    provider
        Where signals come from.
    executor
        What enacts decisions.
    clock
        The fleet's time.
    options
        Safety margin, forecaster.
    """

    def __init__(
        self,
        scenario: Scenario,
        store: Store,
        policy: Policy,
        provider: SignalProvider,
        executor: Executor,
        clock: Clock,
        options: ControllerOptions | None = None,
    ) -> None:
        self.scenario = scenario
        self.store = store
        self.policy = policy
        # A policy that can keep long computations off the tick (mpc solves its re-plans on a
        # worker thread) is asked to: a tick must not wait for a solver.
        live = getattr(policy, "for_live_control", None)
        if callable(live):
            live()
        self.provider = provider
        self.executor = executor
        self.clock = clock
        self.options = options or ControllerOptions()
        self.fleet = FleetStatic.from_scenario(scenario)
        self._site_index = {name: i for i, name in enumerate(self.fleet.names)}
        self.step_h = scenario.step_h
        self.n_steps = scenario.n_steps
        s = self.fleet.n_sites
        self.intake = SignalIntake(
            provider,
            self.fleet.names,
            scenario.start,
            scenario.step,
            self.n_steps,
            known_shapes(scenario),  # clear-sky solar, computable ahead
        )
        self.rates: dict[str, dict[str, np.ndarray]] = {}
        self.repairs = RepairCounts()
        self.status = ControllerStatus()
        self.listeners: list[Callable[[TickRecord, StepReport | None], None]] = []
        self._service_cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._next_step = 0
        self._totals = RunningTotals()
        self._job_numbers: dict[str, int] = {}
        # The active jobs as of the last tick, by id in planning order (submission time, id),
        # and the store's mark to ask for changes from (None: read them all).
        self._active: dict[str, JobRecord] = {}
        self._changes_since: int | None = None
        self._signals: dict[str, Any] = {}
        self._handlers: dict[str, str | None] = {}  # service key -> handler entry point
        self._unplanned: set[str] = set()  # services left out for an unregistered handler
        self._envelope: tuple[Any, ...] = ((), (), ())
        self._in_force_since: dict[str, float] = {}
        # Readings that lowered a site's supply, until its load fits (site -> reading).
        self._drops: dict[str, SiteReading] = {}
        self._supply_kw = np.full(s, np.inf)  # what each site could draw, last decision
        self._reading_kw = np.maximum(
            self.options.reading_threshold
            * (self.fleet.base_it_kw + self.fleet.busy_kw * self.fleet.accelerators),
            1e-3,
        )
        self.notices: list[Callable[[str, dict[str, Any]], None]] = []
        self._fallback = GreedyPolicy()
        self.baseline: Baseline | None = None
        self.policy.reset()
        self._resume()

    @property
    def active_jobs(self) -> list[JobRecord]:
        """The active jobs as the controller last loaded and advanced them, in planning
        order (what it plans the next tick with, before it asks the store what changed)."""
        return list(self._active.values())

    @property
    def received(self) -> dict[str, np.ndarray]:
        """Every signal as received, ``(N, S)`` per name (the intake's)."""
        return self.intake.received

    @property
    def published(self) -> dict[str, np.ndarray]:
        """Per signal published ahead, the first step not yet known, ``(N, S)``."""
        return self.intake.published

    # -- time --------------------------------------------------------------------------------

    def time_of(self, step: int) -> pd.Timestamp:
        return self.scenario.start + step * self.scenario.step

    def step_of(self, when: pd.Timestamp) -> int:
        return int(np.floor((when - self.scenario.start) / self.scenario.step))

    @property
    def next_step(self) -> int:
        return self._next_step

    def _resume(self) -> None:
        last = self.store.last_tick()
        if last is None:
            return
        self._next_step = last.step + 1
        self.executor.restore(np.asarray(last.state.get("soc_kwh", self.executor.soc_kwh)))
        self._totals = RunningTotals.from_json(last.state.get("totals", {}))
        self.intake.restore_last_good(last.state.get("last_good", {}))
        # The received history before the restart: read it again, so forecasts have a past.
        self.intake.receive_past(self._next_step)
        self.status.step = last.step
        self.status.time = last.time
        self.status.ticks = 0
        self._signals = self._signal_snapshot(last.step)
        log.info("resumed", extra={"fields": {"after_step": last.step, "time": str(last.time)}})

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick at every step until ``stop`` is set or the period ends, with a heartbeat at
        least every ``heartbeat_s`` of wall time while waiting."""
        self._beat()
        while not stop.is_set() and self._next_step < self.n_steps:
            if self.options.skip_missed_steps:
                self._skip_missed()
                if self._next_step >= self.n_steps:
                    break
            due = self.time_of(self._next_step)
            if not self._wait(due, stop):
                break
            self.status.lag_s = max((self.clock.now() - due).total_seconds(), 0.0)
            try:
                self.tick()
            except Exception:
                log.exception("tick failed", extra={"fields": {"step": self._next_step}})
                if stop.wait(1.0):
                    break
        self.status.finished = self._next_step >= self.n_steps
        self._beat()

    def _skip_missed(self) -> None:
        """Move on to the step in force if the next step is more than one step past."""
        behind = self.step_of(self.clock.now()) - self._next_step
        if behind < 2:
            return
        to = min(self._next_step + behind, self.n_steps)
        log.warning(
            "skipping missed steps",
            extra={
                "fields": {
                    "from": str(self.time_of(self._next_step)),
                    "to": str(self.time_of(to)),
                    "steps": to - self._next_step,
                }
            },
        )
        # The forecaster reads the past days: take in what the provider has of them.
        self.advance_to(to)

    def advance_to(self, step: int) -> None:
        """Go on at ``step`` (later than the next), taking in the signals of the steps
        passed over so that forecasts have a past; those steps are accounted for nothing."""
        self.intake.receive_past(step, since=self._next_step)
        self._next_step = step

    def _wait(self, due: pd.Timestamp, stop: threading.Event) -> bool:
        """Wait for ``due``, watching the envelope every ``watch_s`` and writing a heartbeat
        every ``heartbeat_s``; ``False`` if stopped."""
        last_beat = time.monotonic()
        while (remaining := self.clock.seconds_until(due)) > 0:
            if stop.wait(min(remaining, self.options.watch_s, self.options.heartbeat_s)):
                return False
            try:
                self.watch()
            except Exception:
                log.exception("watch failed")
            if time.monotonic() - last_beat >= self.options.heartbeat_s:
                self._beat()
                last_beat = time.monotonic()
        return self.clock.wait_until(due, stop)

    def _decide(
        self, k: int, now: pd.Timestamp, phases: dict[str, float] | None = None
    ) -> _Decided:
        """Ask the policy for step ``k`` with the fleet as it stands at ``now``, and repair
        the decision to fit; the seconds of loading, observing and deciding go in
        ``phases``."""
        phases = {} if phases is None else phases
        t0 = time.perf_counter()
        records, refused, entry_points = self._registered(self._load_jobs())
        t1 = time.perf_counter()
        phases["load"] = phases.get("load", 0.0) + t1 - t0
        fleet = self._effective_fleet(now)
        table, ids = load_table(records, fleet.names, self.scenario.start)
        services = self._services(k)
        observation = self._observe(k, now, fleet, table, ids, services)
        phases["observe"] = phases.get("observe", 0.0) + time.perf_counter() - t1
        started = time.perf_counter()
        shapes = [(len(s.points), fleet.n_sites) for s in services]
        try:
            decision = self.policy.decide(observation)
            check_shapes(decision, len(ids), shapes, fleet.n_sites)
        except Exception:
            # A live fleet must not stall on a policy's bug: greedy decides this step.
            log.exception("policy failed: greedy decides this step", extra={"fields": {"step": k}})
            self.status.policy_failures += 1
            decision = self._fallback.decide(observation)
            check_shapes(decision, len(ids), shapes, fleet.n_sites)
        decision_s = time.perf_counter() - started
        routing = clean_routing(decision.routing, self.repairs)
        service_arrays = tuple(services)
        need = np.zeros(fleet.n_sites)
        busy = np.zeros(fleet.n_sites)
        if service_arrays:
            load = route(service_arrays, routing, 0, 1)
            need, busy = np.minimum(load.need[0], fleet.accelerators), load.busy[0]
        supply = observation.supply_kw()
        self._supply_kw = supply
        fixed = repair(
            decision,
            routing,
            observation.jobs,
            fleet,
            need,
            busy,
            observation.pue_now,
            supply,
            self.repairs,
        )
        allocation = Allocation(
            fixed.job_site,
            fixed.job_accelerators,
            fixed.routing,
            fixed.battery_kw,
            fixed.genset_kw,
            fixed.accelerator_limit,
            code={r.id: (entry_points[r.id], dict(r.args)) for r in records if r.function},
            handlers={s.name: self._handlers.get(s.name) for s in services},
        )
        phases["decide"] = time.perf_counter() - started
        return _Decided(
            fleet, records, table, ids, service_arrays, fixed, allocation, decision_s, refused
        )

    def _load_jobs(self) -> list[JobRecord]:
        """The active jobs now: those kept from the last tick, with what the store says was
        submitted or cancelled since (by this process or any other) applied."""
        changes = self.store.job_changes(self._changes_since)
        if changes.complete:
            self._active = {r.id: r for r in changes.jobs}
        else:
            active = self._active
            new = []
            for r in changes.jobs:
                if not r.active:
                    active.pop(r.id, None)
                elif r.id in active:
                    active[r.id] = r
                else:
                    new.append(r)
            if new:
                self._add_in_order(new)
        self._changes_since = changes.since
        return list(self._active.values())

    def _add_in_order(self, new: list[JobRecord]) -> None:
        """Add jobs new to the controller, keeping the order by submission time and id."""

        def key(r: JobRecord) -> tuple[int, str]:
            return r.submitted_at.value, r.id

        new.sort(key=key)
        active = self._active
        last = next(reversed(active.values()), None)
        if last is not None and key(new[0]) < key(last):  # one came in out of order
            merged = sorted([*active.values(), *new], key=key)
            self._active = {r.id: r for r in merged}
            return
        for r in new:
            active[r.id] = r

    def _keep(self, records: list[JobRecord]) -> None:
        """Take in what a tick or a correction wrote of ``records``: the ended ones leave."""
        active = self._active
        for r in records:
            if r.active:
                if r.id in active:
                    active[r.id] = r
            else:
                active.pop(r.id, None)

    def _registered(
        self, records: list[JobRecord]
    ) -> tuple[list[JobRecord], list[JobRecord], dict[str, str]]:
        """The jobs whose code is registered for their tenant (or that name none); the others,
        failed: the operator withdrew their code after they were accepted; and the entry
        point of each kept job that names code, by job id."""
        registry = self.options.registry
        kept, refused, entry_points = [], [], {}
        for r in records:
            entry = None if r.function is None else registry.lookup("job", r.function, r.tenant)
            if r.function is None or entry is not None:
                kept.append(r)
                if entry is not None:
                    entry_points[r.id] = entry.entry_point
                continue
            r = dataclasses.replace(
                r,
                state="failed",
                site=None,
                accelerators=0,
                error=f"job function {r.function!r} is no longer registered for tenant "
                f"{r.tenant!r}; it is not run any further",
            )
            log.warning("job refused", extra={"fields": {"job": r.id, "function": r.function}})
            refused.append(r)
        return kept, refused, entry_points

    def tick(self) -> TickRecord:
        """Plan, enact and commit the next step (the wall seconds of each phase go in
        ``status.phases``)."""
        k = self._next_step
        now = self.time_of(k)
        phases: dict[str, float] = {}
        t0 = time.perf_counter()
        self._receive(k)
        self._apply_readings(k, now)
        phases["observe"] = time.perf_counter() - t0
        d = self._decide(k, now, phases)
        fleet, records, table, ids = d.fleet, d.records, d.table, d.ids
        services, fixed, allocation, decision_s = d.services, d.fixed, d.allocation, d.decision_s
        service_arrays = services
        t0 = time.perf_counter()
        before = progress_snapshot(table)
        report = self.executor.execute(k, table, ids, allocation, service_arrays)
        t1 = time.perf_counter()
        phases["enact"] = t1 - t0
        # Only the jobs the step moved (or whose code failed) can have changed.
        rows = moved(table, before)
        if report.failures:
            failed = [i for i, r in enumerate(records) if r.id in report.failures]
            rows = np.union1d(rows, np.array(failed, dtype=np.int64))
        touched = [records[i] for i in rows.tolist()]
        updated = store_table(touched, table, fleet.names, self.scenario.start, rows)
        _mark_failed(updated, report.failures)
        events = self._grid_events(now, report, fleet.names)
        self._accumulate(report)
        t2 = time.perf_counter()
        baseline = self._baseline_step(k, [*records, *d.refused])
        t3 = time.perf_counter()
        phases["baseline"] = t3 - t2
        tick = TickRecord(
            time=now,
            step=k,
            decision_s=decision_s,
            degraded=self.status.degraded,
            reasons=self.status.reasons,
            plan=self._plan_payload(records, fixed, services, fleet.names),
            outcome=self._outcome_payload(report, fleet.names, k),
            state={
                "soc_kwh": report.soc_kwh.tolist(),
                "totals": self._totals.to_json(),
                "signal_kinds": self.intake.kinds(),
                "last_good": {
                    n: np.nan_to_num(v, nan=0.0).tolist() for n, v in self.intake.last_good.items()
                },
                **({} if baseline is None else {"baseline": baseline}),
            },
        )
        self.store.commit_tick(tick, [*changed(touched, updated), *d.refused], events)
        self._keep([*updated, *d.refused])
        t4 = time.perf_counter()
        phases["persist"] = (t2 - t1) + (t4 - t3)
        self._next_step = k + 1
        self.status.step, self.status.time = k, now
        self.status.ticks += 1
        self.status.last_decision_s = decision_s
        self._signals = self._signal_snapshot(k)
        self._envelope = self._envelope_at(now)
        self._beat()
        for listener in self.listeners:
            listener(tick, report)
        phases["report"] = time.perf_counter() - t4
        self.status.phases = phases
        return tick

    def _baseline_step(self, k: int, live: list[JobRecord]) -> dict[str, Any] | None:
        """Step the baseline, if there is one; a failure there is logged and the baseline
        is dropped, never the tick."""
        if self.baseline is None:
            return None
        try:
            return self.baseline.step(k, live)
        except Exception:
            log.exception("baseline failed: no longer tracked", extra={"fields": {"step": k}})
            self.baseline = None
            return None

    # -- between ticks: corrections and compliance --------------------------------------------

    def _envelope_at(self, now: pd.Timestamp) -> tuple[Any, ...]:
        """What bounds the fleet at ``now`` besides the signals: grid events in force,
        operator overrides, sites the engine has lost."""
        events = tuple(
            sorted(
                (e.id, e.site, e.max_kw)
                for e in self.store.grid_events(now, now + self.scenario.step)
                if e.start <= now < e.end
            )
        )
        overrides = tuple(
            sorted(
                (name, o.import_limit_kw, o.power_cap_kw, o.offline)
                for name, o in self.store.site_overrides().items()
            )
        )
        return events, overrides, tuple(sorted(self.executor.unavailable_sites()))

    def _apply_readings(self, k: int, now: pd.Timestamp) -> tuple[list[str], list[SiteReading]]:
        """Put the meter readings in force at ``now`` into step ``k``'s received signals.

        Returns what moved a site's solar or wind by more than the threshold, in words, and
        the readings among those that lowered it."""
        index = self._site_index
        changes: list[str] = []
        drops: list[SiteReading] = []
        for reading in self.store.site_readings().values():
            i = index.get(reading.site)
            if i is None or not reading.time <= now < reading.time + self.scenario.step:
                continue
            moved, lowered = [], False
            for name, value in (("solar_kw", reading.solar_kw), ("wind_kw", reading.wind_kw)):
                if value is None:
                    continue
                before = float(self.received[name][k, i])
                self.received[name][k, i] = value
                if abs(value - before) > self._reading_kw[i]:
                    moved.append(f"{name.removesuffix('_kw')} {before:.1f} -> {value:.1f} kW")
                    lowered = lowered or value < before
            if moved:
                changes.append(f"reading at {reading.site}: {', '.join(moved)}")
                if lowered:
                    drops.append(reading)
        return changes, drops

    def watch(self) -> None:
        """Between ticks: re-decide at once when the envelope changed (a grid event came into
        force or ended, an operator changed a site, the engine lost or regained a site, a
        meter reading moved a site's generation), and time how long each grid event in force
        and each power drop took to be met."""
        if self._next_step == 0:
            return
        now = self.clock.now()
        k = self._next_step - 1
        readings, drops = self._apply_readings(k, now)
        envelope = self._envelope_at(now)
        if envelope != self._envelope or readings:
            reasons = readings
            if envelope != self._envelope:
                reasons = [_what_changed(self._envelope, envelope), *readings]
            self.correct("; ".join(reasons), now)
        for reading in drops:
            self._drops[reading.site] = reading
        self._check_compliance(now)

    def correct(self, reason: str, now: pd.Timestamp | None = None) -> None:
        """Re-decide the step in force under the fleet as it stands now, enact it at once and
        commit it; energy is still accounted for at the next tick."""
        k = self._next_step - 1
        if k < 0:
            return
        now = self.clock.now() if now is None else now
        d = self._decide(k, now)
        log.info("correcting", extra={"fields": {"step": k, "reason": reason}})
        for notify in self.notices:
            notify("correction", {"reason": reason})
        self.executor.enact(d.table, d.ids, d.allocation, d.services)
        updated = store_table(d.records, d.table, d.fleet.names, self.scenario.start)
        plan = self._plan_payload(d.records, d.fixed, d.services, d.fleet.names)
        plan["correction"] = {"reason": reason, "at": now.isoformat()}
        self.store.commit_correction(k, plan, [*changed(d.records, updated), *d.refused])
        self._keep([*updated, *d.refused])
        self._envelope = self._envelope_at(now)

    def _check_compliance(self, now: pd.Timestamp) -> None:
        self._check_power_drops(now)
        k = max(self._next_step - 1, 0)
        pending = [
            e
            for e in self.store.grid_events(now, now + self.scenario.step)
            if e.start <= now < e.end and e.compliance_s is None
        ]
        if not pending:
            return
        load = self.executor.load_kw_now(np.maximum(self.received["pue"][k], 1.0))
        index = self._site_index
        wall = self.clock.wall_s()
        for e in pending:
            i = index.get(e.site)
            if i is None:
                continue
            seen = self._in_force_since.setdefault(e.id, wall)
            # Measured from acceptance for an event already in force when it came in, from
            # when it came into force otherwise.
            created = e.created_at.timestamp() if e.created_at is not None else seen
            since = created if seen - created <= self.options.watch_s + 1.0 else seen
            if within_kw(load[i], e.max_kw):
                seconds = max(wall - since, 0.0)
                self.store.record_compliance(e.id, seconds)
                log.info(
                    "grid event complied",
                    extra={"fields": {"event": e.id, "site": e.site, "seconds": seconds}},
                )
                for notify in self.notices:
                    fields = {"site": e.site, "seconds": seconds, "cause": "grid event"}
                    notify("compliance", fields)

    def _check_power_drops(self, now: pd.Timestamp) -> None:
        """Time each power drop a reading reported: from its receipt until the site's load
        fits what the site can draw now. A drop still unmet when its reading goes out of
        force is left unmet (``compliance_s`` stays null)."""
        for site, r in list(self._drops.items()):
            if now >= r.time + self.scenario.step:
                del self._drops[site]
        if not self._drops:
            return
        k = max(self._next_step - 1, 0)
        load = self.executor.load_kw_now(np.maximum(self.received["pue"][k], 1.0))
        index = self._site_index
        for site, r in list(self._drops.items()):
            i = index[site]
            if within_kw(load[i], self._supply_kw[i]):
                seconds = max(self.clock.wall_s() - r.received_at.timestamp(), 0.0)
                self.store.record_reading_compliance(site, r.time, seconds)
                del self._drops[site]
                log.info("power drop met", extra={"fields": {"site": site, "seconds": seconds}})
                for notify in self.notices:
                    notify("compliance", {"site": site, "seconds": seconds, "cause": "power drop"})

    # -- the heartbeat -----------------------------------------------------------------------

    def _signal_snapshot(self, k: int) -> dict[str, Any]:
        """The latest received value and the forecast of every signal per site, as of step
        ``k`` (what ``GET /v1/signals`` serves)."""
        history = self.intake.history(k)
        steps = max(1, round(self.options.signal_horizon_h / self.step_h))
        season = max(1, round(24 / self.step_h))
        sites: dict[str, dict[str, Any]] = {name: {} for name in self.fleet.names}
        for signal_name in self.received:
            latest = history.now(signal_name)
            forecast = history.forecast(signal_name, steps, self.options.forecaster, season)
            for i, name in enumerate(self.fleet.names):
                sites[name][signal_name] = {
                    "latest": float(latest[i]),
                    "forecast": np.round(forecast[:, i], 4).tolist(),
                    **self.intake.describe(signal_name, i, self.time_of(k)),
                }
        return {
            "time": self.time_of(k).isoformat(),
            "step_minutes": self.step_h * 60,
            "kinds": self.intake.kinds(),
            "sites": sites,
        }

    def _beat(self) -> None:
        """Report on itself through the store; a failure is logged, not raised."""
        beat = Heartbeat(
            at=pd.Timestamp(self.clock.wall_s(), unit="s", tz="UTC").floor("us"),
            step=self.status.step,
            time=self.status.time,
            degraded=self.status.degraded,
            reasons=self.status.reasons,
            lag_s=self.status.lag_s,
            finished=self.status.finished,
            signals=self._signals,
        )
        try:
            self.store.heartbeat(beat)
        except Exception:
            log.exception("heartbeat failed")

    # -- signals -----------------------------------------------------------------------------

    def _receive(self, k: int) -> None:
        """Take in step ``k``'s signals; the controller is degraded while the intake is."""
        self.intake.receive(k)
        self.status.degraded = self.intake.degraded
        self.status.reasons = self.intake.reasons

    def _effective_fleet(self, now: pd.Timestamp) -> FleetStatic:
        """The fleet with operator overrides, grid events in force and, while degraded, the
        safety margin applied."""
        f = self.fleet
        imports = f.import_limit_kw.copy()
        caps = f.power_cap_kw.copy()
        count = f.accelerators.copy()
        idle = f.idle_kw.copy()
        base = f.base_it_kw.copy()
        index = self._site_index
        for name, override in self.store.site_overrides().items():
            i = index.get(name)
            if i is None:
                continue
            if override.import_limit_kw is not None:
                imports[i] = min(imports[i], override.import_limit_kw)
            if override.power_cap_kw is not None:
                caps[i] = min(caps[i], override.power_cap_kw)
            if override.offline:
                count[i], idle[i], base[i], caps[i] = 0, 0.0, 0.0, 0.0
        for name in self.executor.unavailable_sites():
            i = index.get(name)
            if i is not None:  # the engine lost the site: nothing runs there
                count[i], idle[i], base[i], caps[i] = 0, 0.0, 0.0, 0.0
        for event in self.store.grid_events(now, now + self.scenario.step):
            i = index.get(event.site)
            if i is not None and event.start <= now < event.end:
                caps[i] = min(caps[i], event.max_kw)
        if self.status.degraded:
            keep = 1.0 - self.options.power_safety_margin
            imports, caps = imports * keep, caps * keep
        return dataclasses.replace(
            f,
            import_limit_kw=imports,
            power_cap_kw=caps,
            accelerators=count,
            idle_kw=idle,
            base_it_kw=base,
        )

    # -- services ----------------------------------------------------------------------------

    def _services(self, k: int) -> list[ServiceArrays]:
        out = []
        points = {p.name: p for p in self.scenario.demand_points}
        sites = [(s.latitude, s.longitude, s.zone) for s in self.scenario.sites]
        for record in self.store.services():
            if not self._resolve_handler(record):
                continue
            names = tuple(p for p in record.demand_rps if p in points)
            key = (record.key, names, record.latency_slo_ms, record.service_time_ms)
            if key not in self._service_cache:
                rtt = self.scenario.network.rtt_matrix_ms(
                    [(points[p].latitude, points[p].longitude, points[p].zone) for p in names],
                    sites,
                )
                feasible = slo_feasible(
                    rtt,
                    record.service_time_ms,
                    record.latency_slo_ms,
                    self.options.latency_margin_ms,
                )
                self._service_cache[key] = (rtt, feasible)
            rtt, feasible = self._service_cache[key]
            rate = np.array([[record.demand_rps[p] for p in names]], dtype=float)
            history = self.rates.setdefault(record.key, {})
            for p in names:
                series = history.setdefault(p, np.zeros(self.n_steps))
                series[k] = record.demand_rps[p]
            out.append(_service_arrays(record, names, rate, rtt, feasible))
        return out

    def _resolve_handler(self, record: ServiceRecord) -> bool:
        """Note the entry point of the service's handler; ``False`` (logged once) if it names
        one not registered for its tenant, which leaves the service unplanned."""
        if record.handler is None:
            self._handlers[record.key] = None
            return True
        entry = self.options.registry.lookup("handler", record.handler, record.tenant)
        if entry is None:
            if record.key not in self._unplanned:
                self._unplanned.add(record.key)
                log.warning(
                    "service left unplanned: its handler is not registered",
                    extra={"fields": {"service": record.key, "handler": record.handler}},
                )
            return False
        self._unplanned.discard(record.key)
        self._handlers[record.key] = entry.entry_point
        return True

    # -- the observation ---------------------------------------------------------------------

    def _observe(
        self,
        k: int,
        now: pd.Timestamp,
        fleet: FleetStatic,
        table: Any,
        ids: np.ndarray,
        services: list[ServiceArrays],
    ) -> Observation:
        signals: dict[str, np.ndarray] = {}
        for s in services:
            history = self.rates.get(s.name, {})
            signals[f"rate_rps:{s.name}"] = (
                np.column_stack([history.get(p, np.zeros(self.n_steps)) for p in s.points])
                if s.points
                else np.zeros((self.n_steps, 0))
            )
        now_h = k * self.step_h
        return Observation(
            step=k,
            time=now,
            step_h=self.step_h,
            steps_per_day=steps_per_day(self.step_h),
            carbon_price_usd_per_tonne=self.scenario.carbon_price_usd_per_tonne,
            penalties=self.scenario.penalties,
            fleet=fleet,
            # Stable numbers, so that a policy can follow a job from tick to tick.
            jobs=ActiveJobs(self._numbers(table), partial(table.column, ids, now_h)),
            services=tuple(
                ServiceState(
                    s.name,
                    np.array(s.rate_rps[0]),
                    s.rtt_ms,
                    s.feasible,
                    s.replica_throughput_rps,
                    s.accelerators_per_replica,
                )
                for s in services
            ),
            soc_source=lambda: self.executor.soc_kwh,
            price_now=self.received["price_usd_per_mwh"][k].copy(),
            carbon_now=self.received["carbon_g_per_kwh"][k].copy(),
            solar_now=self.received["solar_kw"][k].copy(),
            wind_now=self.received["wind_kw"][k].copy(),
            pue_now=np.maximum(self.received["pue"][k], 1.0),
            history=self.intake.history(k, signals),
            forecaster=self.options.forecaster,
        )

    def _numbers(self, table: Any) -> np.ndarray:
        numbers = self._job_numbers
        return np.array(
            [numbers.setdefault(job_id, len(numbers)) for job_id in table.spec.names],
            dtype=np.int64,
        )

    # -- outcome -----------------------------------------------------------------------------

    def _accumulate(self, report: StepReport) -> None:
        self._totals.add(
            float(report.cost_usd.sum()),
            float(report.emissions_kg.sum()),
            {key: float(report.flows[flow].sum()) * self.step_h for key, flow in ENERGY.items()},
            {
                "requests": report.requests,
                "served_within_slo": report.within_slo,
                "served_late": report.late,
                "dropped": report.dropped,
            },
        )

    def _grid_events(
        self, now: pd.Timestamp, report: StepReport, sites: tuple[str, ...]
    ) -> list[GridEventRecord]:
        changed = []
        index = {name: i for i, name in enumerate(sites)}
        for event in self.store.grid_events(now - self.scenario.step, now + self.scenario.step):
            i = index.get(event.site)
            if i is None:
                continue
            if event.start <= now < event.end:
                event.peak_kw = max(event.peak_kw, float(report.flows["load_kw"][i]))
                changed.append(event)
            elif now >= event.end and event.complied is None:
                event.complied = within_kw(event.peak_kw, event.max_kw)
                changed.append(event)
        return changed

    @staticmethod
    def _plan_payload(
        records: list[Any], fixed: Any, services: Sequence[ServiceArrays], sites: tuple[str, ...]
    ) -> dict[str, Any]:
        jobs = {
            r.id: {"site": sites[int(s)], "accelerators": int(a), "tenant": r.tenant}
            for r, s, a in zip(records, fixed.job_site, fixed.job_accelerators, strict=True)
            if s >= 0 and a > 0
        }
        routing = {
            svc.name: {
                p: dict(zip(sites, map(float, row), strict=True))
                for p, row in zip(svc.points, shares, strict=True)
            }
            for svc, shares in zip(services, fixed.routing, strict=True)
        }
        setpoints = {
            "battery_kw": None
            if fixed.battery_kw is None
            else np.nan_to_num(fixed.battery_kw, nan=-0.0).tolist(),
            "genset_kw": None
            if fixed.genset_kw is None
            else np.nan_to_num(fixed.genset_kw, nan=-0.0).tolist(),
        }
        return {
            "jobs": jobs,
            "routing": routing,
            "setpoints": setpoints,
            "changed": list(fixed.changed),
        }

    def _outcome_payload(
        self, report: StepReport, sites: tuple[str, ...], k: int
    ) -> dict[str, Any]:
        per_site = {}
        for i, name in enumerate(sites):
            per_site[name] = {
                **{flow: float(values[i]) for flow, values in report.flows.items()},
                "soc_kwh": float(report.soc_kwh[i]),
                "cost_usd": float(report.cost_usd[i]),
                "emissions_kg": float(report.emissions_kg[i]),
                "batch_accelerators": float(report.batch_accelerators[i]),
                "inference_accelerators": float(report.inference_accelerators[i]),
                "price_usd_per_mwh": float(self.received["price_usd_per_mwh"][k][i]),
                "carbon_g_per_kwh": float(self.received["carbon_g_per_kwh"][k][i]),
            }
        return {
            "sites": per_site,
            "requests": report.requests,
            "within_slo": report.within_slo,
            "late": report.late,
            "dropped": report.dropped,
        }


@dataclass
class _Decided:
    fleet: FleetStatic
    records: list[JobRecord]
    table: Any
    ids: np.ndarray
    services: tuple[ServiceArrays, ...]
    fixed: Any
    allocation: Allocation
    decision_s: float
    refused: list[JobRecord]  # failed at loading: their code is no longer registered


def _mark_failed(records: list[JobRecord], failures: dict[str, str]) -> None:
    """Jobs whose code raised: failed, with the error, and no longer placed."""
    for record in records:
        error = failures.get(record.id)
        if error is not None:
            record.state, record.error = "failed", error
            record.site, record.accelerators = None, 0


def _what_changed(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    """In words: which grid events began or ended, which sites an operator changed, which
    sites the engine lost or got back."""
    parts = []
    events_before = {e[0]: e for e in before[0]}
    events_after = {e[0]: e for e in after[0]}
    for key in events_after.keys() - events_before.keys():
        _, site, max_kw = events_after[key]
        parts.append(f"grid event in force: {site} at most {max_kw:.2f} kW")
    for key in events_before.keys() - events_after.keys():
        parts.append(f"grid event over at {events_before[key][1]}")
    if before[1] != after[1]:
        changed = sorted({o[0] for o in set(before[1]) ^ set(after[1])})
        parts.append(f"operator changed {', '.join(changed)}")
    lost, back = set(after[2]) - set(before[2]), set(before[2]) - set(after[2])
    if lost:
        parts.append(f"site lost: {', '.join(sorted(lost))}")
    if back:
        parts.append(f"site back: {', '.join(sorted(back))}")
    return "; ".join(parts) or "envelope changed"


def _service_arrays(
    record: ServiceRecord,
    names: tuple[str, ...],
    rate: np.ndarray,
    rtt: np.ndarray,
    feasible: np.ndarray,
) -> ServiceArrays:
    return ServiceArrays(
        name=record.key,
        points=names,
        rate_rps=rate,
        rtt_ms=rtt,
        feasible=feasible,
        latency_slo_ms=record.latency_slo_ms,
        service_time_ms=record.service_time_ms,
        replica_throughput_rps=record.replica_throughput_rps,
        accelerators_per_replica=record.accelerators_per_replica,
    )


def build_controller(
    scenario: Scenario,
    store: Store,
    policy: Policy,
    clock: Clock,
    provider: SignalProvider | None = None,
    executor: Executor | None = None,
    options: ControllerOptions | None = None,
) -> Controller:
    """A controller replaying ``scenario``'s signals on the simulated executor by default.

    With a ``provider`` of live values and no ``executor``, the simulated executor meters
    what the provider gave (the controller's received signals), not the scenario's
    placeholders."""
    from wattroute.runtime.executor import SimulatedExecutor
    from wattroute.runtime.providers import ReplayProvider
    from wattroute.runtime.providers.live import LiveProvider

    signals = FleetSignals.from_scenario(scenario)
    options = options or ControllerOptions()
    live = isinstance(provider, LiveProvider)
    simulated = executor is None
    controller = Controller(
        scenario,
        store,
        policy,
        provider
        or ReplayProvider(
            signals,
            published_ahead(scenario),
            kinds={"carbon_g_per_kwh": scenario.carbon_intensity_kind},
        ),
        executor
        or SimulatedExecutor(
            FleetStatic.from_scenario(scenario),
            signals,
            scenario.step_h,
            options.check_balance,
            None if live else GridTerms.from_signals(signals, scenario.carbon_price_usd_per_tonne),
        ),
        clock,
        options,
    )
    if simulated and live:
        assert isinstance(controller.executor, SimulatedExecutor)
        controller.executor.actual = FleetSignals(
            **{name: controller.received[name] for name in FleetSignals.NAMES}
        )
    # On replayed signals only: the baseline replays them too.
    if options.baseline and provider is None and isinstance(store, BaselineSource):
        controller.baseline = Baseline(scenario, store, clock)
    return controller
