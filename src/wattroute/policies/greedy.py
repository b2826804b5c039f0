"""``greedy``: place work where energy is cheapest now; defer batch while now is expensive.

Every step:

1. **Marginal cost** of one more busy accelerator at each site, USD per accelerator-hour:
   ``PUE x (busy_kw - idle_kw) x c``, where ``c`` (USD/kWh) is that of the source the extra
   power would come from — surplus renewables first (their cost is the export revenue
   forgone, or zero), then the grid (price + carbon price x intensity) up to the import
   limit, then the genset (fuel + carbon price x its factor). Each site thus offers tiers of
   accelerator "slots", cheapest first, and placing work uses them up.
2. **Inference** goes to the cheapest SLO-feasible site with room, else the nearest feasible.
3. **Batch**: a job runs now if the cheapest slot it may use costs no more than the
   ``q``-quantile of the forecast cost over its window (now until its deadline, at most
   ``horizon_h``), where ``q`` is the share of that window the job needs at full parallelism:
   it runs in the cheapest hours it needs. Running jobs keep going up to a higher quantile
   (``hysteresis``), and jobs within ``finish_h`` of completion are not stopped at all,
   since a stop costs a checkpoint.
4. **Deadline pressure** overrides the price: jobs are checked in deadline order
   (earliest-deadline-first); if the work due by some deadline exceeds ``pressure`` times
   the accelerator-hours the fleet has free until then, every job due by that deadline runs
   now, and so does any job whose own slack is within its margin: ``urgency_steps`` steps
   plus a restore, plus ``urgency_share`` of its remaining run time. Urgent jobs that already
   run are placed first, so a new urgent job never stops another.
5. **The deadline reserve** (:mod:`wattroute.policies.deadlines`) has the last word: no
   decision leaves a job without the slack to finish in time.
"""

from __future__ import annotations

import numpy as np

from wattroute.model.costs import (
    bought_power_cost_usd_per_kwh,
    busy_accelerator_hour_usd,
    energy_costs,
)
from wattroute.model.power import busy_accelerator_kw, standing_kw
from wattroute.model.tolerances import ROUNDING
from wattroute.policies.agnostic import nearest_feasible_routing
from wattroute.policies.base import Decision, Observation, accelerators_by_site
from wattroute.policies.deadlines import DEADLINES, ReserveStarts


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the boolean matrix ``rows`` ``(N, S)``, in ascending order, and
    the index of each row among them ``(N,)``: what ``np.unique(rows, axis=0,
    return_inverse=True)`` returns, but with each row packed into bytes and compared as one
    string rather than field by field (at 10,000 rows of 100 sites, a few milliseconds instead
    of a third of a second). Packed most significant bit first, rows compare as bytes as
    they do as sequences of booleans, so the order is the same."""
    if rows.shape[0] == 0:
        return rows.copy(), np.zeros(0, dtype=np.int64)
    packed = np.ascontiguousarray(np.packbits(rows, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], group.reshape(-1).astype(np.int64)


def window_quantiles(
    profiles: np.ndarray, column: np.ndarray, window: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """For each job ``i``, the ``q[i]``-quantile of the finite entries among
    ``profiles[:window[i], column[i]]`` (``inf`` where there are none), as ``np.quantile``
    computes it (linear interpolation, the same arithmetic to the last bit), for all jobs at
    once: one sort of each distinct (column, window) prefix instead of one ``np.quantile``
    call per window and profile.

    ``profiles`` holds cost profiles over the steps ahead, ``(H, G)`` (any unit), ``column``
    the profile each job follows, ``window`` the number of leading steps it looks at (at least
    1), ``q`` the quantiles in [0, 1].
    """
    out = np.full(q.shape, np.inf)
    width = min(int(window.max(initial=0)), profiles.shape[0])
    if q.size == 0 or width == 0:
        return out
    clean = profiles[:width]
    clean = np.where(np.isfinite(clean), clean, np.inf)
    span = np.minimum(window, width)
    pairs, row = np.unique(column * (width + 1) + span, return_inverse=True)
    row = row.reshape(-1)
    cols, widths = np.divmod(pairs, width + 1)
    # Row r holds the first widths[r] steps of profile cols[r], sorted, its non-finite entries
    # (and the steps beyond it) last as inf; count[r] is how many of its entries are finite.
    prefix = np.where(np.arange(width) < widths[:, np.newaxis], clean[:, cols].T, np.inf)
    prefix.sort(axis=1)
    finite = np.cumsum(np.isfinite(clean), axis=0)
    n = finite[widths - 1, cols][row]
    has = n > 0
    if not has.any():
        return out
    rows, n, quantile = row[has], n[has], q[has]
    # np.quantile's "linear" method: virtual index (n - 1) q between neighbours floor and
    # floor + 1, clamped to the ends, and its lerp (from the upper end once the weight is
    # at least one half).
    virtual = (n - 1) * quantile
    below = np.floor(virtual)
    above = below + 1
    top = virtual >= n - 1
    below[top] = n[top] - 1
    above[top] = n[top] - 1
    start = virtual < 0
    below[start] = 0
    above[start] = 0
    gamma = virtual - below
    low = prefix[rows, below.astype(np.intp)]
    high = prefix[rows, above.astype(np.intp)]
    diff = high - low
    out[has] = np.where(gamma >= 0.5, high - diff * (1 - gamma), low + diff * gamma)
    return out


def resume_site(cost: np.ndarray, fits: np.ndarray, last_site: int, overhead_share: float) -> int:
    """The site among ``fits`` (``(S,)`` bool, at least one set) where a job's run costs least,
    from the cost of an accelerator-hour now at each site ``cost`` (``(S,)``, USD): resuming
    anywhere but ``last_site`` (-1: it never ran, so it pays none anywhere) adds the migration
    overhead, ``overhead_share`` of its run, priced at that site's cost but never below zero
    (where power has a negative price the same energy could do work, so an overhead never
    earns; priced below zero, negative prices made a move look cheaper than resuming in
    place). Ties go to ``last_site``."""
    if last_site >= 0:
        moved = np.arange(cost.size) != last_site
        cost = np.where(moved & (cost > 0.0), cost * (1.0 + overhead_share), cost)
    candidates = np.flatnonzero(fits)
    site = int(candidates[np.argmin(cost[candidates])])  # a site that fits, even at no power
    if last_site >= 0 and fits[last_site] and cost[last_site] <= cost[site]:
        return last_site
    return site


class _Slots:
    """Accelerator slots per tier (renewable, grid, genset) and site, cheapest first."""

    def __init__(self, slots: np.ndarray, cost: np.ndarray) -> None:
        order = np.argsort(cost, axis=0, kind="stable")
        self.slots = np.take_along_axis(slots, order, axis=0)  # (3, S), cheapest tier first
        self.cost = np.take_along_axis(cost, order, axis=0)
        self.next_cost = self._next(np.arange(slots.shape[1]))

    def _next(self, sites: np.ndarray) -> np.ndarray:
        has = self.slots[:, sites] > 0
        first = np.argmax(has, axis=0)
        cost = self.cost[first, sites]
        return np.where(has.any(axis=0), cost, np.inf)

    def take(self, site: int, n: float) -> None:
        slots = self.slots
        for tier in range(slots.shape[0]):
            used = min(n, slots[tier, site])
            slots[tier, site] -= used
            n -= used
            if n <= 0:
                break
        # The cost of the cheapest tier with a slot left (inf if none), as _next has it.
        self.next_cost[site] = np.inf
        for tier in range(slots.shape[0]):
            if slots[tier, site] > 0:
                self.next_cost[site] = self.cost[tier, site]
                break


class GreedyPolicy:
    """Cheapest-now placement with forecast-based deferral of batch work.

    Parameters
    ----------
    horizon_h
        How far ahead the deferral threshold looks, hours.
    hysteresis
        Extra quantile a running job is allowed before it is stopped.
    finish_h
        A running job this close to completion, hours, is never stopped for cost.
    urgency_steps
        Slack, in steps, below which a job runs regardless of cost (plus a restore).
    urgency_share
        Share of its remaining run time a job keeps as slack margin.
    pressure
        Share of the free accelerator-hours until a deadline that the work due by then may
        use before the jobs due run regardless of cost. At 0.6, with exact (day-ahead) prices,
        jobs deferred into the same cheap hours crowded each other past their deadlines by
        minutes on the temporal-shifting example; 0.5 leaves room for the checkpoints that
        stopping and resuming them costs.
    """

    name = "greedy"
    description = "cheapest place now; defer batch while now costs more than the forecast"

    def __init__(
        self,
        horizon_h: float = 24.0,
        hysteresis: float = 0.25,
        finish_h: float = 1.0,
        urgency_steps: int = 2,
        urgency_share: float = 0.1,
        pressure: float = 0.5,
    ) -> None:
        self.horizon_h = horizon_h
        self.hysteresis = hysteresis
        self.finish_h = finish_h
        self.urgency_steps = urgency_steps
        self.urgency_share = urgency_share
        self.pressure = pressure
        self.reset()

    def reset(self) -> None:
        """Forget the jobs the deadline reserve started."""
        self._reserve_starts = ReserveStarts()

    def stats(self) -> dict[str, float]:
        """None kept."""
        return {}

    def _slots(self, obs: Observation) -> _Slots:
        fleet = obs.fleet
        per_acc_kw = busy_accelerator_kw(fleet, obs.pue_now)
        base_kw = standing_kw(fleet, obs.pue_now)
        renewable_kw = obs.solar_now + obs.wind_now
        surplus = np.maximum(renewable_kw - base_kw, 0.0)
        grid_room = np.maximum(fleet.import_limit_kw - np.maximum(base_kw - renewable_kw, 0.0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            slots = np.floor(np.vstack([surplus, grid_room, fleet.genset_kw]) / per_acc_kw)
        slots = np.nan_to_num(slots, nan=0.0, posinf=1e9)
        renewable, grid, genset = energy_costs(
            fleet,
            obs.price_now,
            obs.history.now("export_price_usd_per_mwh"),
            obs.carbon_now,
            obs.carbon_price_usd_per_tonne,
        )
        return _Slots(slots, np.vstack([renewable, grid, genset]) * per_acc_kw)

    def _forecast_cost(self, obs: Observation, horizon: int) -> np.ndarray:
        """Forecast marginal cost per accelerator-hour at each site, ``(horizon, S)``."""
        fleet = obs.fleet
        price = obs.forecast("price_usd_per_mwh", horizon)
        export_price = obs.forecast("export_price_usd_per_mwh", horizon)
        carbon = obs.forecast("carbon_g_per_kwh", horizon)
        renewable_kw = obs.forecast("solar_kw", horizon) + obs.forecast("wind_kw", horizon)
        pue = obs.forecast("pue", horizon)
        per_acc_kw = busy_accelerator_kw(fleet, pue)
        base_kw = standing_kw(fleet, pue)
        renewable, grid, genset = energy_costs(
            fleet, price, export_price, carbon, obs.carbon_price_usd_per_tonne
        )
        bought = bought_power_cost_usd_per_kwh(fleet, grid, genset)
        cost = np.where(renewable_kw > base_kw + per_acc_kw, renewable, bought)
        return busy_accelerator_hour_usd(fleet, pue, cost)

    def _route_inference(
        self, obs: Observation, slots: _Slots, free: np.ndarray
    ) -> list[np.ndarray]:
        """Each demand point's requests to the cheapest SLO-feasible site with room for its
        replicas beside the batch work running there, else beside none of it (inference
        comes first), else to the nearest feasible site; ``free`` (accelerators per site) is
        updated.

        Room beside running work comes first because inference takes its accelerators before
        batch work does: a stream that follows the cheapest site from step to step stops the
        jobs running at each site it moves to and resumes them when it leaves, each time a
        checkpoint restore, and on the 100-site fleet (``benchmarks/fleet_service.py``) such
        streams of 40-60 accelerators stopped jobs with a day's slack until they missed
        their deadlines.
        """
        beside = free - accelerators_by_site(obs.jobs.site, obs.jobs.accelerators, free.size)
        routing = []
        for service in obs.services:
            near = nearest_feasible_routing(service)
            shares = np.zeros_like(near)
            for p, rate in enumerate(service.rate_rps):
                acc = np.ceil(rate / service.replica_throughput_rps - ROUNDING) * (
                    service.accelerators_per_replica
                )
                for room in (beside, free):
                    options = np.where(service.feasible[p] & (room >= acc), slots.next_cost, np.inf)
                    if np.isfinite(options).any():
                        break
                if np.isfinite(options).any():
                    site = int(np.argmin(options))
                    shares[p, site] = 1.0
                    free[site] -= acc
                    beside[site] -= acc
                    slots.take(site, acc)
                elif near[p].any():
                    shares[p] = near[p]
                    site = int(np.argmax(near[p]))
                    free[site] -= acc
                    beside[site] -= acc
            routing.append(shares)
        return routing

    def _thresholds(self, obs: Observation, slots: _Slots) -> np.ndarray:
        """The cost below which each active job runs now, USD per accelerator-hour."""
        jobs = obs.jobs
        horizon = max(1, round(self.horizon_h / obs.step_h))
        future = np.vstack([slots.next_cost[np.newaxis, :], self._forecast_cost(obs, horizon)])
        need_h = jobs.pending_overhead_h + jobs.remaining_accelerator_hours / jobs.max_accelerators
        window = np.clip(np.ceil(jobs.deadline_h / obs.step_h), 1, horizon + 1).astype(int)
        q = np.minimum(1.0, need_h / (window * obs.step_h))
        q = np.where(jobs.site >= 0, np.minimum(1.0, q + self.hysteresis), q)
        # A running job is only ever stopped, never moved, so it compares against the cost
        # where it runs (column s of ``future``); a waiting one against the cheapest site it
        # may use (one more column per set of allowed sites among the waiting jobs).
        running = jobs.site >= 0
        column = jobs.site.copy()
        waiting = np.flatnonzero(~running)
        if waiting.size:
            allowed = jobs.allowed[waiting]
            if (allowed == allowed[0]).all():
                patterns, group = allowed[:1], np.zeros(waiting.size, dtype=np.int64)
            else:
                patterns, group = distinct_rows(allowed)
            cheapest = [np.where(p, future, np.inf).min(axis=1) for p in patterns]
            future = np.column_stack([future, *cheapest])
            column[waiting] = slots.next_cost.size + group.reshape(-1)
        return window_quantiles(future, column, window, q)

    def _pressed(self, obs: Observation, free: np.ndarray) -> np.ndarray:
        """Jobs that must run now to keep every deadline (earliest-deadline-first check)."""
        jobs = obs.jobs
        run_h = jobs.remaining_accelerator_hours / jobs.max_accelerators
        margin = (
            self.urgency_steps * obs.step_h
            + jobs.checkpoint_overhead_h
            + np.where(jobs.site < 0, jobs.migration_overhead_h, 0.0)  # it may resume elsewhere
            + self.urgency_share * run_h
        )
        urgent = jobs.slack_h <= margin
        order = np.argsort(jobs.deadline_h, kind="stable")
        work = jobs.remaining_accelerator_hours + jobs.pending_overhead_h * jobs.max_accelerators
        due = np.cumsum(work[order])
        room = self.pressure * max(float(free.sum()), 0.0) * np.maximum(jobs.deadline_h[order], 0.0)
        over = np.flatnonzero(due > room)
        if over.size:
            urgent[order[: over[-1] + 1]] = True
        return urgent

    def decide(self, observation: Observation) -> Decision:
        obs = observation
        fleet = obs.fleet
        slots = self._slots(obs)
        free = fleet.accelerators.astype(np.float64).copy()
        routing = self._route_inference(obs, slots, free)

        jobs = obs.jobs
        n_jobs = len(jobs)
        site_of = np.full(n_jobs, -1, dtype=np.int64)
        acc_of = np.zeros(n_jobs, dtype=np.int64)
        if n_jobs:
            threshold = self._thresholds(obs, slots)
            urgent = self._pressed(obs, free)
            running = jobs.site >= 0
            finishing = running & (
                jobs.pending_overhead_h
                + jobs.remaining_accelerator_hours / np.maximum(jobs.accelerators, 1)
                <= self.finish_h
            )
            keep = urgent | finishing
            # Urgent jobs already running first, then urgent ones by deadline, then the rest.
            order = np.lexsort((jobs.slack_h, jobs.deadline_h * keep, ~(keep & running), ~keep))
            run_h = np.maximum(jobs.remaining_accelerator_hours / jobs.max_accelerators, ROUNDING)
            allowed_sites, least, most = jobs.allowed, jobs.min_accelerators, jobs.max_accelerators
            current, last_site, migration_h = jobs.site, jobs.last_site, jobs.migration_overhead_h
            # Once no site has room for a job's minimum, it fits nowhere: skipped before the
            # per-site test (once the fleet is full, that is most jobs).
            most_free, fewest = float(free.max(initial=-np.inf)), least.tolist()
            for j in order.tolist():
                if most_free < fewest[j]:
                    continue
                fits = allowed_sites[j] & (free >= least[j])
                here = int(current[j])
                if here >= 0 and fits[here]:
                    site = here  # stay: moving costs a checkpoint and a migration
                elif fits.any():
                    site = resume_site(
                        slots.next_cost, fits, int(last_site[j]), migration_h[j] / run_h[j]
                    )
                else:
                    continue
                if not (keep[j] or slots.next_cost[site] <= threshold[j] + 1e-12):
                    continue
                n = int(min(most[j], free[site]))
                site_of[j] = site
                acc_of[j] = n
                free[site] -= n
                most_free = float(free.max())
                slots.take(site, n)
            # Jobs the reserve started run on where they run (a pause would only have the
            # reserve restart them, paying a restore).
            self._reserve_starts.keep_running(jobs, site_of, acc_of, free)
            proposed = site_of.copy()
            DEADLINES.keep_deadlines(obs, site_of, acc_of, tuple(routing))
            self._reserve_starts.note(jobs, proposed, site_of)
        return Decision(
            job_site=site_of, job_accelerators=acc_of, routing=tuple(routing), hold_steps=1
        )
