"""``mpc``: rolling-horizon model-predictive control on the planning LP (HiGHS).

Every planning period (default 1 h) the policy forecasts the next ``horizon_h`` hours (prices,
carbon, renewables, PUE, request rates) from the past, builds the planning problem from the
state now (active jobs and their remaining work, the battery), solves it, and commits the
first period. Within the period a fast dispatcher turns the plan into integer allocations every
step and corrects it against what actually happens:

* jobs get the plan's accelerators per site by largest remainder, most urgent first, within
  their parallelism bounds;
* a site that cannot power what the plan puts there now (less sun than forecast, say) sheds the
  most flexible batch work first — never inference, which the plan routes only to sites within
  its SLO;
* a site with renewable power to spare now starts work that is waiting, to soak it up;
* a job that arrives between re-plans runs at once only if its deadline cannot wait for the
  next plan (or where power would otherwise be curtailed);
* last, the deadline reserve (:mod:`wattroute.policies.deadlines`) overrules the plan wherever
  following it would leave a job without the slack to finish in time: the LP's deadline
  penalty prices a miss, but no saving buys one.

Battery and genset follow merit order unless the plan charges from the grid (arbitrage),
exports (selling surplus before storing it, or selling a price peak from the battery), or runs
the genset ahead of the grid; then the plan's set-point is used (the dispatch still stores
surplus the export link cannot take). Holding the battery back for a later peak, the plan's
other departure from merit order, is left to merit order: on the multi-site fleet it gained
1 USD with perfect forecasts and lost 7 with forecasts from the past.

Work whose deadline lies beyond the horizon may be left for later at the horizon's mean energy
cost; battery energy left at the horizon's end is worth its median cost; moving a running job
costs its checkpoint and migration time. With more than ``max_job_rows`` jobs, jobs with the
same sites, current site, deadline period and (roughly) run time are planned as one class
(:mod:`wattroute.optimise.classes`) and shared out, earliest deadline first. When the solver
fails or runs out of time the period falls back to ``greedy``; fallbacks are counted in
``policy_stats``.

Live control solves re-plans on a worker thread (:meth:`MPCPolicy.for_live_control`): a tick
builds the planning problem from its observation and hands the solve to HiGHS, which releases
the interpreter while it works, and decides at once against the plan in force; the new plan is
followed from the first tick after it is solved, at the period of the step it was made for. So a
tick never waits for the solver; at 10,000 jobs over 100 sites a solve takes about a second, so
with 5-minute ticks the plan is followed from the next tick. Simulation solves in line, so runs
stay reproducible.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from wattroute.errors import OptimisationError
from wattroute.model.arrays import FleetSignals, any_set
from wattroute.model.costs import (
    bought_power_cost_usd_per_kwh,
    busy_accelerator_hour_usd,
    genset_cost_usd_per_kwh,
    import_cost_usd_per_kwh,
)
from wattroute.model.power import busy_accelerator_kw
from wattroute.model.tolerances import PLAN_FLOW_TOLERANCE_KW, ROUNDING
from wattroute.optimise.classes import ClassRules, job_classes
from wattroute.optimise.plan import Plan, optimise
from wattroute.optimise.problem import (
    JobBlock,
    PlanningProblem,
    ServiceBlock,
    deferral_cost,
    window_shares,
)
from wattroute.policies.agnostic import nearest_feasible_routing
from wattroute.policies.base import Decision, Observation, accelerators_by_site
from wattroute.policies.deadlines import (
    DEADLINES,
    ReserveStarts,
    cheapest_first,
    keep_where_it_runs,
)
from wattroute.policies.greedy import GreedyPolicy
from wattroute.policies.serving import fit_routing

SIGNALS = FleetSignals.NAMES
RENEWABLES = ("solar_kw", "wind_kw")
"""Signals of on-site renewable output, kW."""

CLASS_PLAN_RESTART_PERIODS = 2
"""Periods over which plans of job classes price restarts (with ``fast_class_plans``; single
jobs are planned with :attr:`PlanningProblem.restart_periods`): the one committed now and the
next, so that pausing a job now and resuming it an hour later costs its restart. (Over the
first alone that pause was free: on the benchmark scenarios with classes forced, runs cost
up to 2.7 % more than with six, with up to 35 % more stops; over two, -0.6 to +1.1 %.)"""


@dataclass
class _Stats:
    replans: int = 0
    fallbacks: int = 0
    solve_s: list[float] = field(default_factory=list)
    columns: int = 0
    classes: int = 0
    shed_for_power: int = 0
    started_for_surplus: int = 0
    kept_for_deadlines: int = 0
    in_background: int = 0
    busy: int = 0

    def as_dict(self) -> dict[str, float]:
        solves = np.array(self.solve_s) if self.solve_s else np.zeros(1)
        return {
            "replans": self.replans,
            "fallbacks_to_greedy": self.fallbacks,
            "solve_s_total": float(solves.sum()),
            "solve_s_p99": float(np.percentile(solves, 99)),
            "solve_s_max": float(solves.max()),
            "largest_lp_columns": self.columns,
            "replans_with_job_classes": self.classes,
            "jobs_shed_for_power": self.shed_for_power,
            "jobs_started_for_surplus": self.started_for_surplus,
            "jobs_kept_for_deadlines": self.kept_for_deadlines,
            "replans_in_background": self.in_background,
            "replans_skipped_while_solving": self.busy,
        }


@dataclass(frozen=True, eq=False)
class _Made:
    """The state a plan is made from: the step, the services and the active jobs then."""

    step: int
    services: tuple[tuple[str, int], ...]
    job_ids: np.ndarray
    row_of: np.ndarray
    remaining: np.ndarray

    @classmethod
    def of(cls, obs: Observation, row_of: np.ndarray) -> _Made:
        """What ``obs`` says of the state, with the plan row of each active job."""
        jobs = obs.jobs
        return cls(
            obs.step,
            _service_key(obs),
            jobs.ids.copy(),
            row_of,
            jobs.remaining_accelerator_hours.copy(),
        )


@dataclass(frozen=True, eq=False)
class _Committed:
    """A solved plan and how its job rows map to the jobs active when it was made."""

    plan: Plan
    made: _Made

    @property
    def step(self) -> int:
        """The step the plan was made for."""
        return self.made.step

    @cached_property
    def _position(self) -> dict[int, int]:
        """Index of each job id in ``made.job_ids``."""
        return {int(j): i for i, j in enumerate(self.made.job_ids)}

    @cached_property
    def _sizes(self) -> np.ndarray:
        """Jobs per plan row."""
        if not self.made.row_of.size:
            return np.zeros(0)
        return np.bincount(self.made.row_of, minlength=self.plan.work.shape[0])

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Plan row of each job (-1 for jobs that arrived after the plan was made)."""
        position, row_of = self._position, self.made.row_of
        return np.array(
            [row_of[position[j]] if j in position else -1 for j in ids.tolist()],
            dtype=np.int64,
        )

    def start_remaining(self, ids: np.ndarray) -> np.ndarray:
        """Remaining work of each job when the plan was made (its current one if unplanned)."""
        position, remaining = self._position, self.made.remaining
        return np.array([remaining[position[j]] if j in position else np.inf for j in ids.tolist()])

    def is_single(self, row: int) -> bool:
        """Whether a plan row is one job (not a class)."""
        return bool(self._sizes[row] == 1)


@dataclass(frozen=True, eq=False)
class _Pending:
    """A re-plan solving on the worker thread, and the state it was made from."""

    future: Future[Plan | OptimisationError]
    made: _Made


class MPCPolicy:
    """Re-plan every period over a horizon with the planning LP; commit the first period.

    Parameters
    ----------
    horizon_h
        Planning horizon, hours.
    period_h
        Planning period (and re-planning interval), hours; a whole number of simulation steps.
    time_limit_s
        Solver time limit per re-plan; on timeout the period falls back to ``greedy``.
    max_job_rows
        Most job rows in a plan before jobs are grouped into classes.
    run_time_growth
        Spacing of the run-time buckets of job classes
        (:class:`~wattroute.optimise.classes.ClassRules`); 1.0 groups run times of 1, 2, 3-4,
        5-8, ... periods.
    deadline_margin
        Share of a job's remaining run time it plans to finish before its deadline, on top of
        two checkpoints and a migration.
    candidate_sites
        In large fleets a job is planned at no more than this many of its allowed sites: the
        cheapest on average over its window, and the one it runs at.
    move_cost_factor
        Multiplier on the energy cost of a move's checkpoint and migration time, for what the
        LP does not see of it (the accelerators it blocks, the deadline it risks).
    fast_class_plans
        Plans of job classes price restarts over the first two periods only
        (:data:`CLASS_PLAN_RESTART_PERIODS`) and drop the tie-break towards earlier work: on
        100 sites and 10,000 jobs a third of the simplex iterations, for a plan that costs a
        little more under the full objective (``docs/optimiser.md``). ``False`` plans classes
        with the objective of single jobs.
    background_replans
        Solve re-plans on a worker thread and decide against the plan in force meanwhile (for
        live control, :meth:`for_live_control`); ``False`` solves each in line.
    """

    name = "mpc"
    description = "re-plan each hour over 24 h with an LP on HiGHS, commit the first hour"

    def __init__(
        self,
        horizon_h: float = 24.0,
        period_h: float = 1.0,
        time_limit_s: float = 10.0,
        max_job_rows: int = 300,
        deadline_margin: float = 0.1,
        candidate_sites: int = 4,
        move_cost_factor: float = 1.0,
        run_time_growth: float = 1.0,
        fast_class_plans: bool = True,
        background_replans: bool = False,
    ) -> None:
        self.horizon_h = horizon_h
        self.deadline_margin = deadline_margin
        self.candidate_sites = candidate_sites
        self.move_cost_factor = move_cost_factor
        self.period_h = period_h
        self.time_limit_s = time_limit_s
        self.max_job_rows = max_job_rows
        self.run_time_growth = run_time_growth
        self.fast_class_plans = fast_class_plans
        self.background_replans = background_replans
        self._greedy = GreedyPolicy()
        self._solver: ThreadPoolExecutor | None = None
        self.reset()

    def reset(self) -> None:
        """Forget plans and counters (a re-plan still solving is left to finish, unused)."""
        self._committed: _Committed | None = None
        self._pending: _Pending | None = None
        self._last_attempt: int | None = None
        self._stats = _Stats()
        self._reserve_starts = ReserveStarts()
        self._greedy.reset()

    @property
    def replans(self) -> int:
        """Re-plans begun so far (:meth:`stats` has it too, with percentiles it works out)."""
        return self._stats.replans

    @property
    def plan_step(self) -> int | None:
        """The step the plan in force was made for (``None``: none is, greedy decides)."""
        return None if self._committed is None else self._committed.step

    @property
    def replanning(self) -> bool:
        """Whether a re-plan is solving in the background."""
        return self._pending is not None and not self._pending.future.done()

    def for_live_control(self) -> None:
        """Solve re-plans on a worker thread from now on (see the module docstring): what the
        live controller asks of a policy before its first tick."""
        self.background_replans = True

    def stats(self) -> dict[str, float]:
        """Re-plans, solver time and fallbacks, for the run's summary."""
        return self._stats.as_dict()

    # -- deciding ----------------------------------------------------------------------------

    def decide(self, observation: Observation) -> Decision:
        k = self._steps_per_period(observation)
        last = self._last_attempt
        self._collect()
        # A service created, changed or deleted since the plan was made (live control):
        # the plan has no routing for it, so plan again now.
        services_changed = self._committed is not None and self._committed.made.services != (
            _service_key(observation)
        )
        if (
            last is None
            or observation.step - last >= k
            or observation.step % k == 0
            or services_changed
        ):
            self._last_attempt = observation.step
            # The first plan, and one for changed services (the plan in force has no routing
            # for them), are waited for; the others are followed once solved.
            if self.background_replans and self._committed is not None and not services_changed:
                self._replan_in_background(observation, k)
            else:
                self._pending = None  # whatever it plans, this one is newer
                self._replan(observation, k)
        if self._committed is None:  # the last re-plan failed: greedy until the next one
            return self._greedy.decide(observation)
        return self._dispatch(observation, self._committed)

    def _steps_per_period(self, obs: Observation) -> int:
        return max(1, round(self.period_h / obs.step_h))

    # -- planning ----------------------------------------------------------------------------

    def _replan(self, obs: Observation, k: int) -> None:
        self._stats.replans += 1
        problem, row_of = self._problem(obs, k)
        self._commit(self._solve(problem, row_of), _Made.of(obs, row_of))

    def _replan_in_background(self, obs: Observation, k: int) -> None:
        """Build the plan's problem now and solve it on the worker thread, unless the last
        re-plan is still solving (then that one is followed once solved)."""
        if self._pending is not None:
            self._stats.busy += 1
            return
        self._stats.replans += 1
        self._stats.in_background += 1
        problem, row_of = self._problem(obs, k)
        if self._solver is None:
            self._solver = ThreadPoolExecutor(1, thread_name_prefix="mpc-replan")
        future = self._solver.submit(self._solve, problem, row_of)
        self._pending = _Pending(future, _Made.of(obs, row_of))

    def _collect(self) -> None:
        """Follow the re-plan solved in the background, once it is."""
        pending = self._pending
        if pending is None or not pending.future.done():
            return
        self._pending = None
        self._commit(pending.future.result(), pending.made)

    def _solve(self, problem: PlanningProblem, row_of: np.ndarray) -> Plan | OptimisationError:
        """The plan of ``problem``, or why HiGHS found none in time."""
        try:
            # Job classes: start from the crash basis (the same optimum, faster on large LPs);
            # plans of at most max_job_rows jobs are solved as they always were.
            return optimise(problem, self.time_limit_s, crash=row_of.size > self.max_job_rows)
        except OptimisationError as failure:
            return failure

    def _commit(self, plan: Plan | OptimisationError, made: _Made) -> None:
        """Follow ``plan`` from now on (greedy until the next re-plan where it failed)."""
        if isinstance(plan, OptimisationError):
            self._stats.fallbacks += 1
            self._stats.solve_s.append(plan.seconds)
            self._committed = None
            return
        self._stats.solve_s.append(plan.solution.seconds)
        self._stats.columns = max(self._stats.columns, plan.solution.x.size)
        self._committed = _Committed(plan, made)

    def _horizon_signals(self, obs: Observation, k: int, h_n: int) -> dict[str, np.ndarray]:
        """Per-period values over the horizon from the value now and the forecast: means of
        prices, intensity and renewable output, but the *highest* PUE within each period.
        (Planning on the least renewable output of each period, so that a plan could be
        powered at every step, left the sun of every morning ramp unplanned: the dispatcher
        sheds work at the steps short of power instead.)

        Except at sites with a genset: there the steps of a period short of renewables run
        the genset, at several times the grid's price, so plans count only on the *least*
        renewable output of each period."""
        backed = obs.fleet.genset_kw > 0
        out = {}
        for name in SIGNALS:
            now = obs.history.now(name)[np.newaxis, :]
            ahead = obs.forecast(name, h_n * k - 1) if h_n * k > 1 else now[:0]
            series = np.concatenate([now, ahead]).reshape(h_n, k, -1)
            how = "max" if name == "pue" else "mean"
            out[name] = getattr(series, how)(axis=1)
            if name in RENEWABLES and any_set(backed):
                out[name] = np.where(backed, series.min(axis=1), out[name])
        return out

    def _rates(self, obs: Observation, k: int, h_n: int) -> list[np.ndarray]:
        rates = []
        for service in obs.services:
            now = service.rate_rps[np.newaxis, :]
            ahead = (
                obs.forecast(f"rate_rps:{service.name}", h_n * k - 1) if h_n * k > 1 else now[:0]
            )
            rates.append(np.concatenate([now, ahead]).reshape(h_n, k, -1).mean(axis=1))
        return rates

    def _problem(self, obs: Observation, k: int) -> tuple[PlanningProblem, np.ndarray]:
        period_h = k * obs.step_h
        h_n = max(1, round(self.horizon_h / period_h))
        fleet = obs.fleet
        sig = self._horizon_signals(obs, k, h_n)
        import_cost = import_cost_usd_per_kwh(
            sig["price_usd_per_mwh"], sig["carbon_g_per_kwh"], obs.carbon_price_usd_per_tonne
        )
        genset_cost = genset_cost_usd_per_kwh(fleet, obs.carbon_price_usd_per_tonne)
        energy_cost = bought_power_cost_usd_per_kwh(fleet, import_cost, genset_cost)  # (H, S)
        acc_cost = busy_accelerator_hour_usd(fleet, sig["pue"], energy_cost)  # (H, S)
        jobs, row_of = self._jobs(obs, h_n, period_h, acc_cost)
        rates = self._rates(obs, k, h_n)
        services = tuple(
            ServiceBlock(rate, s.feasible, s.replica_throughput_rps, s.accelerators_per_replica)
            for rate, s in zip(rates, obs.services, strict=True)
        )
        terminal = np.median(energy_cost, axis=0) * fleet.battery_discharge_eff
        problem = PlanningProblem(
            period_h=period_h,
            fleet=fleet,
            price_usd_per_mwh=sig["price_usd_per_mwh"],
            carbon_g_per_kwh=np.maximum(sig["carbon_g_per_kwh"], 0.0),
            export_price_usd_per_mwh=sig["export_price_usd_per_mwh"],
            solar_kw=np.maximum(sig["solar_kw"], 0.0),
            wind_kw=np.maximum(sig["wind_kw"], 0.0),
            pue=np.maximum(sig["pue"], 1.0),
            carbon_price_usd_per_tonne=obs.carbon_price_usd_per_tonne,
            soc_kwh=np.clip(obs.soc_kwh, fleet.battery_min_kwh, fleet.battery_max_kwh),
            terminal_value_usd_per_kwh=terminal,
            jobs=jobs,
            services=services,
            deadline_penalty_usd_per_accelerator_hour=obs.penalties.deadline_miss_usd_per_accelerator_hour,
            slo_penalty_usd_per_request=obs.penalties.slo_violation_usd_per_request,
        )
        if self.fast_class_plans and row_of.size > self.max_job_rows:
            # Large plans: restarts priced over the first two periods only, and no tie-break
            # towards earlier work; each took many simplex iterations.
            problem = replace(
                problem,
                restart_periods=CLASS_PLAN_RESTART_PERIODS,
                early_bias_usd_per_accelerator_hour=0.0,
            )
        return problem, row_of

    def _jobs(
        self, obs: Observation, h_n: int, period_h: float, acc_cost: np.ndarray
    ) -> tuple[JobBlock, np.ndarray]:
        jobs = obs.jobs
        n = len(jobs)
        if n == 0:
            return JobBlock.empty(h_n, obs.fleet.n_sites), np.zeros(0, np.int64)
        max_acc = jobs.max_accelerators.astype(float)
        work = jobs.remaining_accelerator_hours + jobs.pending_overhead_h * max_acc
        need_h = work / max_acc
        # Plan to finish a margin before the deadline: each pause the plan implies costs a
        # checkpoint, which the LP does not see. A job with no time to spare runs at once.
        margin = (
            2 * jobs.checkpoint_overhead_h
            + jobs.migration_overhead_h
            + self.deadline_margin * need_h
        )
        deadline = np.maximum(jobs.deadline_h - margin, need_h)
        end_h = h_n * period_h
        available = window_shares(np.zeros(n), deadline, period_h, h_n)
        deferrable = np.minimum(work, max_acc * np.maximum(deadline - end_h, 0.0))
        allowed = self._candidates(jobs.allowed, available, acc_cost, jobs.site)
        # A running job too tight to move is kept where it runs by the deadline reserve: the
        # plan must not count on moving it (it would keep its site's accelerators free for
        # nothing and fill another site's with work that never comes).
        tied = np.flatnonzero(DEADLINES.tied(jobs, obs.step_h))
        if tied.size:
            allowed = allowed.copy()  # may be the observation's own
            allowed[tied] = False
            allowed[tied, jobs.site[tied]] = True
        deferral = deferral_cost(allowed, acc_cost)
        current = np.where(jobs.site >= 0, jobs.site, jobs.last_site)
        moving_h = jobs.checkpoint_overhead_h + jobs.migration_overhead_h
        # Overheads are accelerator-hours that do no work, priced at what an accelerator-hour
        # is expected to cost, but never below zero: where power has a negative price the
        # same energy could be used doing work, so an overhead never earns. (Priced below
        # zero, a restart's rise is a column the plan gains by raising without end: on the
        # 100-site fleet, DE-LU's negative prices of 2 July 2023 made 25 plans in a row
        # unbounded, and those hours ran on greedy.)
        overhead = np.maximum(deferral, 0.0)
        switch = self.move_cost_factor * moving_h * max_acc * overhead / np.maximum(work, ROUNDING)
        # A pause and resume costs a checkpoint's run time on each accelerator; a fresh start
        # costs it too in the plan, so deferring a job past the horizon carries the same cost.
        restart = jobs.checkpoint_overhead_h * overhead
        deferral = deferral + restart * max_acc / np.maximum(work, ROUNDING)
        block = JobBlock(
            work,
            max_acc,
            available,
            allowed,
            current,
            switch,
            deferrable,
            deferral,
            restart_cost_usd_per_accelerator=restart,
            accelerators_now=jobs.accelerators.astype(float),
        )
        if n <= self.max_job_rows:
            return block, np.arange(n)
        self._stats.classes += 1
        return job_classes(block, period_h, ClassRules(self.run_time_growth))

    def _candidates(
        self, allowed: np.ndarray, available: np.ndarray, acc_cost: np.ndarray, site: np.ndarray
    ) -> np.ndarray:
        """At most ``candidate_sites`` sites per job: its cheapest allowed ones over its
        window, and the one it runs at (keeps large fleets' plans small)."""
        if allowed.shape[1] <= self.candidate_sites:
            return allowed
        weights = available / np.maximum(available.sum(axis=1, keepdims=True), ROUNDING)
        mean_cost = np.where(allowed, weights @ acc_cost, np.inf)  # (J, S)
        cheapest = np.argsort(mean_cost, axis=1, kind="stable")[:, : self.candidate_sites]
        keep = np.zeros_like(allowed)
        np.put_along_axis(keep, cheapest, True, axis=1)
        keep &= allowed
        running = site >= 0
        keep[np.flatnonzero(running), site[running]] = True
        return keep

    # -- dispatching -------------------------------------------------------------------------

    def _dispatch(self, obs: Observation, committed: _Committed) -> Decision:
        plan = committed.plan
        k = self._steps_per_period(obs)
        period = min((obs.step - committed.step) // k, plan.problem.n_periods - 1)
        fleet = obs.fleet
        routing = self._routing(obs, plan, period)
        jobs = obs.jobs
        site_of = np.full(len(jobs), -1, dtype=np.int64)
        acc_of = np.zeros(len(jobs), dtype=np.int64)
        rows = committed.rows_of(jobs.ids)
        period_left_h = (k - (obs.step - committed.step) % k) * obs.step_h
        battery, genset = self._setpoints(plan, period, fleet.n_sites)
        # Accelerators each site can both hold and power now, beyond its idle load and inference.
        room = obs.room(site_of, acc_of, routing, battery)
        self._follow_plan(obs, committed, rows, period, period_left_h, room, site_of, acc_of)
        self._wait_for_sun(obs, plan, period, site_of, acc_of, routing, battery)
        planned_site = np.full(len(jobs), -1)
        if len(jobs) and plan.work.shape[0]:
            target = plan.work[np.maximum(rows, 0), :, period]
            planned_site = np.where(
                (rows >= 0) & (target.max(axis=1) > ROUNDING), target.argmax(axis=1), -1
            )
        self._run_urgent(obs, rows, planned_site, site_of, acc_of, room, routing)
        self._reserve_starts.keep_running(jobs, site_of, acc_of, room)
        self._fit_power(obs, site_of, acc_of, routing, battery)
        self._soak_surplus(obs, site_of, acc_of, routing)
        proposed = site_of.copy()
        self._stats.kept_for_deadlines += DEADLINES.keep_deadlines(
            obs, site_of, acc_of, routing, battery
        )
        self._reserve_starts.note(jobs, proposed, site_of)
        return Decision(
            site_of, acc_of, routing, battery_kw=battery, genset_kw=genset, hold_steps=1
        )

    def _follow_plan(
        self,
        obs: Observation,
        committed: _Committed,
        rows: np.ndarray,
        period: int,
        period_left_h: float,
        room: np.ndarray,
        site_of: np.ndarray,
        acc_of: np.ndarray,
    ) -> None:
        """Run each planned job row until it has done the work the plan gives it this period,
        within the accelerators each site can hold and power now (``room``, updated).

        A job runs on ``ceil`` of its planned mean accelerators (a plan of 0.3 accelerators for
        an hour is 18 minutes on one), at the site the plan uses most, and keeps the site it
        runs at if the plan uses it. Where that, or the room at the site, is below the job's
        minimum parallelism, the job does not run on the plan's account this period (starting
        it at its minimum instead cost more on the benchmark scenarios; see
        docs/optimiser.md): the reserve still starts it if its deadline needs it. A job row
        whose work for the period is done pauses — unless it would finish within a
        checkpoint's time, which is cheaper than a pause (a running job that would does so,
        too, in a period the plan gives it nothing). Rows are served most urgent first; a
        class row is shared earliest deadline first.
        """
        jobs = obs.jobs
        plan = committed.plan
        dt = plan.problem.period_h
        target = plan.work[:, :, period]  # (rows, S) mean accelerators
        # Work each row should do this period, less what its jobs did since the plan was made.
        progress = np.maximum(
            committed.start_remaining(jobs.ids) - jobs.remaining_accelerator_hours, 0.0
        )
        planned = rows >= 0
        done = np.bincount(rows[planned], weights=progress[planned], minlength=target.shape[0])
        left = target.sum(axis=1) * dt - done
        run_h = jobs.pending_overhead_h + jobs.remaining_accelerator_hours / np.maximum(
            jobs.accelerators, 1
        )
        # A running job carries on past its budget for the period if it would finish within a
        # checkpoint's time, or if the plan runs it again next period (a pause between two
        # periods of work would cost a checkpoint for nothing).
        if period + 1 < plan.problem.n_periods:
            next_period = plan.work[:, :, period + 1].sum(axis=1)
        else:
            next_period = np.zeros(target.shape[0])
        planned = rows >= 0
        again = np.zeros(len(jobs), dtype=bool)
        again[planned] = next_period[rows[planned]] > 1e-6
        soon = run_h <= jobs.checkpoint_overhead_h + obs.step_h
        finishing = (jobs.site >= 0) & (soon | again)
        order = np.lexsort((jobs.slack_h, ~(jobs.site >= 0)))  # running first, then urgency
        pace = np.zeros(target.shape[0])  # accelerator-hours per hour given to each row so far
        for j in order:
            row = rows[j]
            if row < 0 or not (left[row] > 1e-6 or finishing[j]):
                continue
            if pace[row] * period_left_h >= left[row] - ROUNDING and not finishing[j]:
                continue  # the class's work for the period is covered
            sites = target[row] * jobs.allowed[j]
            here = int(jobs.site[j])
            if sites.max() <= ROUNDING:
                if soon[j] and here >= 0:  # finishing costs less than its restore would
                    keep_where_it_runs(jobs, int(j), site_of, acc_of, room)
                continue
            # Stay where it runs if the plan uses that site, or if the plan never had it
            # running (it started since, to keep a deadline): moving costs a migration.
            started_since = here >= 0 and plan.problem.jobs.current_site[row] < 0
            s = (
                here
                if here >= 0 and (sites[here] > ROUNDING or started_since)
                else int(np.argmax(sites))
            )
            want = (
                max(math.ceil(target[row].sum() - 1e-6), 1)
                if committed.is_single(row)
                else jobs.max_accelerators[j]
            )
            give = int(min(want, jobs.max_accelerators[j], room[s]))
            if give < jobs.min_accelerators[j]:
                continue
            site_of[j], acc_of[j] = s, give
            room[s] -= give
            pace[row] += give

    def _wait_for_sun(
        self,
        obs: Observation,
        plan: Plan,
        period: int,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
        battery_setpoint: np.ndarray | None,
    ) -> None:
        """Where the plan powers a site without the grid this period, start or widen no work
        beyond what its renewables and battery give now, the most flexible held back first.

        The plan counts on each period's *mean* renewable output; work started on it at the
        dim start of a morning period would draw paid power from the grid. Work already
        running keeps its accelerators (stopping it costs a checkpoint), held-back work starts
        and widens as the sun rises, and work that cannot wait is started by the urgency pass
        that follows.
        """
        fleet = obs.fleet
        import_cost = import_cost_usd_per_kwh(
            obs.history.now("price_usd_per_mwh"),
            obs.history.now("carbon_g_per_kwh"),
            obs.carbon_price_usd_per_tonne,
        )
        gridless = (plan.grid_import_kw[period] <= PLAN_FLOW_TOLERANCE_KW) & (import_cost > 0)
        if not gridless.any():
            return
        jobs = obs.jobs
        # Accelerators a job keeps whatever the sun: what it runs on now, where it runs now.
        floor = np.where(site_of == jobs.site, jobs.accelerators, 0)
        growing = (site_of >= 0) & (acc_of > floor)
        if not growing.any():
            return
        over = obs.demand_kw(site_of, acc_of, routing) - obs.supply_kw(
            battery_setpoint, with_grid=False
        )
        per_acc = busy_accelerator_kw(fleet, obs.pue_now)
        for j in np.argsort(-jobs.slack_h, kind="stable"):
            s = int(site_of[j])
            if not growing[j] or not gridless[s] or over[s] <= ROUNDING:
                continue
            cut = min(math.ceil(over[s] / per_acc[s] - ROUNDING), int(acc_of[j] - floor[j]))
            keep = int(acc_of[j]) - cut
            if keep < jobs.min_accelerators[j]:
                cut, keep = int(acc_of[j]), 0
            over[s] -= cut * per_acc[s]
            acc_of[j] = keep
            if keep == 0:
                site_of[j] = -1

    def _routing(self, obs: Observation, plan: Plan, period: int) -> tuple[np.ndarray, ...]:
        """The plan's routing for ``period`` as shares of each demand point's requests, fitted
        to the accelerators each site can hold and power now, batch work aside (inference comes
        first; :func:`fit_routing`): the plan routed the rates it forecast, and the rates now
        may need more replicas at a site than it has. Requests moved go first where there is
        room beside the batch work running there, which they would otherwise stop."""
        routing = []
        for service, routed, block in zip(
            obs.services, plan.route, plan.problem.services, strict=True
        ):
            planned = routed[period]  # (P, S) rps
            rate = block.rate_rps[period][:, np.newaxis]
            with np.errstate(divide="ignore", invalid="ignore"):
                shares = np.where(rate > ROUNDING, planned / rate, 0.0)
            shares = np.where(service.feasible, shares, 0.0)
            total = shares.sum(axis=1, keepdims=True)
            nearest = nearest_feasible_routing(service)
            # Serve everything the plan serves; where it planned nothing, the nearest site.
            shares = np.where(total > 1e-6, shares / np.maximum(total, 1.0), nearest)
            routing.append(shares)
        if not routing:
            return ()
        idle = tuple(np.zeros_like(shares) for shares in routing)
        capacity = obs.room_beside(np.zeros(obs.fleet.n_sites), idle)
        beside = obs.room(obs.jobs.site, obs.jobs.accelerators, idle)
        return fit_routing(obs.services, tuple(routing), capacity, beside)

    def _run_urgent(
        self,
        obs: Observation,
        rows: np.ndarray,
        planned_site: np.ndarray,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        free: np.ndarray,
        routing: tuple[np.ndarray, ...],
    ) -> None:
        """Jobs whose deadline cannot wait run now at full parallelism, within the
        accelerators a site can hold and power (``free``), stopping the most flexible work if
        they must. A job the plan does not know (it arrived since) can wait
        for the next plan if its slack allows."""
        jobs = obs.jobs
        k = self._steps_per_period(obs)
        wait_h = np.where(rows < 0, (k - (obs.step % k)) * obs.step_h, 0.0)
        run_h = jobs.remaining_accelerator_hours / jobs.max_accelerators
        margin = (
            wait_h
            + jobs.checkpoint_overhead_h
            + jobs.migration_overhead_h
            + 2 * obs.step_h
            + self.deadline_margin / 2 * run_h
        )
        # A running job is judged by the slack it would have if stopped now (it would owe a
        # restore), so that it does not flip between urgent-and-started and calm-and-stopped.
        slack = jobs.slack_h - np.where(jobs.site >= 0, jobs.checkpoint_overhead_h, 0.0)
        urgent = (slack <= margin) & (acc_of < jobs.max_accelerators)
        flexible = np.argsort(-slack, kind="stable")
        calm = slack > margin  # work that can be stopped to make room
        for j in np.argsort(slack, kind="stable"):
            if not urgent[j]:
                continue
            here = int(site_of[j])
            if here >= 0:
                free[here] += acc_of[j]
            # Where it runs, where it ran last (no migration), where the plan puts it, then
            # the others by what its run would cost there: the first that has (or can make)
            # room for it.
            preferred = [here, int(jobs.last_site[j]), int(planned_site[j])]
            others = cheapest_first(obs, int(j), site_of, acc_of, routing, free)
            chosen = -1
            for s in dict.fromkeys([*preferred, *others]):
                if s < 0 or not jobs.allowed[j, s]:
                    continue
                stoppable = calm & (site_of == s) & (np.arange(site_of.size) != j)
                if free[s] + acc_of[stoppable].sum() >= jobs.min_accelerators[j]:
                    chosen = s
                    break
            if chosen < 0:
                if here >= 0:
                    free[here] -= acc_of[j]
                continue
            full = int(jobs.max_accelerators[j])
            there = flexible[calm[flexible] & (site_of[flexible] == chosen) & (flexible != j)]
            for other in there:  # make room from the work that can wait longest
                if free[chosen] >= full:
                    break
                free[chosen] += acc_of[other]
                site_of[other], acc_of[other] = -1, 0
            site_of[j], acc_of[j] = chosen, int(min(full, free[chosen]))
            free[chosen] -= acc_of[j]

    def _fit_power(
        self,
        obs: Observation,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
        battery_setpoint: np.ndarray | None,
    ) -> None:
        """Shed the most flexible batch work where the site cannot power it now."""
        fleet = obs.fleet
        supply = obs.supply_kw(battery_setpoint)
        demand = obs.demand_kw(site_of, acc_of, routing)
        per_acc = busy_accelerator_kw(fleet, obs.pue_now)
        flexible = np.argsort(-obs.jobs.slack_h, kind="stable")
        for s in np.flatnonzero(demand > supply + ROUNDING):
            excess = demand[s] - supply[s]
            for j in flexible:
                if excess <= ROUNDING:
                    break
                if site_of[j] == s:
                    excess -= acc_of[j] * per_acc[s]
                    site_of[j], acc_of[j] = -1, 0
                    self._stats.shed_for_power += 1

    def _soak_surplus(
        self,
        obs: Observation,
        site_of: np.ndarray,
        acc_of: np.ndarray,
        routing: tuple[np.ndarray, ...],
    ) -> None:
        """Start waiting work where renewables would otherwise be curtailed now."""
        fleet = obs.fleet
        demand = obs.demand_kw(site_of, acc_of, routing)
        surplus = (
            obs.solar_now
            + obs.wind_now
            - demand
            - fleet.battery_charge_kw * (obs.soc_kwh < fleet.battery_max_kwh - 1e-6)
        )
        surplus -= fleet.export_limit_kw * (obs.history.now("export_price_usd_per_mwh") > 0)
        per_acc = busy_accelerator_kw(fleet, obs.pue_now)
        need = obs.inference_accelerators(routing)
        free = fleet.accelerators - need - accelerators_by_site(site_of, acc_of, fleet.n_sites)
        jobs = obs.jobs
        for s in np.flatnonzero(surplus > per_acc):
            spare = int(min(free[s], surplus[s] // per_acc[s]))
            # Work already soaking up the surplus here first: switching to other work would
            # stop it, at a checkpoint's cost; then work that would not migrate to start here
            # (it last ran here, or never ran); then work that would; the most urgent first.
            fresh = (jobs.last_site == s) | (jobs.last_site < 0)
            order = np.where(jobs.site == s, 0, np.where(fresh, 1, 2))
            for j in np.lexsort((jobs.slack_h, order)):
                if spare <= 0:
                    break
                if site_of[j] < 0 and jobs.allowed[j, s] and jobs.min_accelerators[j] <= spare:
                    give = int(min(jobs.max_accelerators[j], spare))
                    site_of[j], acc_of[j] = s, give
                    spare -= give
                    self._stats.started_for_surplus += 1

    @staticmethod
    def _setpoints(
        plan: Plan, period: int, n_sites: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Battery and genset set-points where the plan departs from merit order, else NaN."""
        f = plan.problem.fleet
        imports = plan.grid_import_kw[period] > PLAN_FLOW_TOLERANCE_KW
        exports = plan.grid_export_kw[period] > PLAN_FLOW_TOLERANCE_KW
        charge = plan.charge_kw[period]
        discharge = plan.discharge_kw[period]
        has = f.battery_max_kwh > 0
        battery = np.full(n_sites, np.nan)
        # Export first and store the rest; sell the peak; buy the trough.
        battery = np.where(has & exports, charge, battery)
        selling = has & exports & (discharge > PLAN_FLOW_TOLERANCE_KW)
        battery = np.where(selling, -discharge, battery)
        buying = has & imports & (charge > PLAN_FLOW_TOLERANCE_KW)
        battery = np.where(buying, charge, battery)
        genset = np.where(
            (plan.genset_kw[period] > PLAN_FLOW_TOLERANCE_KW)
            & (plan.grid_import_kw[period] < f.import_limit_kw - PLAN_FLOW_TOLERANCE_KW),
            plan.genset_kw[period],
            np.nan,
        )
        return (
            battery if np.isfinite(battery).any() else None,
            genset if np.isfinite(genset).any() else None,
        )


def _service_key(obs: Observation) -> tuple[tuple[str, int], ...]:
    return tuple((s.name, len(s.rate_rps)) for s in obs.services)
