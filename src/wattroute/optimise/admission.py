"""Online admission of one new batch job: can it meet its deadline, and where is it cheapest?

Between re-plans (and in the control plane, when a job is submitted) a decision is needed at
once, far faster than a re-plan. :class:`AdmissionState` holds what a plan leaves: accelerators
free per period and site, and the marginal cost of a busy accelerator-hour there. For a job,
:func:`admit` finds the sites where its work fits before its deadline (at most
``max_accelerators`` per period, only where it may run) and, at each, the cost of doing it in
the cheapest periods first; the cheapest feasible site wins. Everything is a handful of array
operations over (periods x sites), so a decision takes microseconds.

An infeasible job is a result with reasons, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from wattroute.model.costs import busy_accelerator_hour_usd
from wattroute.model.tolerances import ROUNDING
from wattroute.optimise.plan import Plan
from wattroute.optimise.problem import window_shares


@dataclass(frozen=True, eq=False)
class AdmissionState:
    """Free accelerators ``(H, S)`` and cost per busy accelerator-hour ``(H, S)``, USD."""

    names: tuple[str, ...]
    period_h: float
    free: np.ndarray
    cost: np.ndarray

    @cached_property
    def cheapest_first(self) -> np.ndarray:
        """Periods of each site from the cheapest, ``(H, S)`` indices."""
        return np.argsort(self.cost, axis=0, kind="stable")

    @cached_property
    def sorted_cost(self) -> np.ndarray:
        """Cost per busy accelerator-hour in :attr:`cheapest_first` order, ``(H, S)``, USD."""
        return np.take_along_axis(self.cost, self.cheapest_first, axis=0)

    @cached_property
    def sorted_free(self) -> np.ndarray:
        """Free accelerators in :attr:`cheapest_first` order, ``(H, S)``."""
        return np.take_along_axis(self.free, self.cheapest_first, axis=0)

    @cached_property
    def prefix_min_cost(self) -> np.ndarray:
        """The cheapest cost per busy accelerator-hour over each site's first ``k`` periods,
        row ``k`` for ``k`` = 0 (inf) .. H, ``(H + 1, S)``, USD."""
        first = np.full((1, self.cost.shape[1]), np.inf)
        return np.concatenate([first, np.minimum.accumulate(self.cost, axis=0)])

    @cached_property
    def cumulative_sorted_cost(self) -> np.ndarray:
        """The sum of each site's ``k`` cheapest periods' costs per busy accelerator-hour,
        row ``k`` for ``k`` = 0 .. H, ``(H + 1, S)``, USD."""
        first = np.zeros((1, self.cost.shape[1]))
        return np.concatenate([first, np.cumsum(self.sorted_cost, axis=0)])

    @cached_property
    def now_rank(self) -> np.ndarray:
        """Where the current period falls in each site's :attr:`cheapest_first` order,
        ``(S,)``."""
        return np.argmax(self.cheapest_first == 0, axis=0)

    @classmethod
    def from_plan(cls, plan: Plan) -> AdmissionState:
        """What a plan leaves free, at the plan's energy prices."""
        p = plan.problem
        f = p.fleet
        free = np.maximum(f.accelerators - plan.busy_accelerators(), 0.0)
        cost = busy_accelerator_hour_usd(f, p.pue, p.bought_power_cost_usd_per_kwh)
        return cls(f.names, p.period_h, free, cost)


@dataclass(frozen=True)
class Admission:
    """The answer for one job: admitted at a site (with its estimated energy cost, USD, and
    whether its cheapest schedule uses the current period), or not, with the reasons."""

    admitted: bool
    site: int = -1
    site_name: str = ""
    cost_usd: float = float("nan")
    starts_now: bool = False
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Admissions:
    """The answers for ``N`` jobs, arrays ``(N,)``: admitted or not; the site (-1: none), its
    estimated energy cost (USD; NaN where not admitted) and whether its cheapest schedule
    uses the current period; and the most of each job's work that fits before its deadline at
    any allowed site (accelerator-hours), with that site (-1: none allowed)."""

    admitted: np.ndarray
    site: np.ndarray
    cost_usd: np.ndarray
    starts_now: np.ndarray
    most_fitting_accelerator_hours: np.ndarray
    most_fitting_site: np.ndarray


BATCH = 512
"""Jobs decided in one pass of :func:`admit_many`: bounds its memory to a few arrays of
``BATCH x periods x sites`` floats (about 10 MB each at 24 periods and 100 sites)."""


def admit_many(
    state: AdmissionState,
    work_accelerator_hours: np.ndarray,
    max_accelerators: np.ndarray,
    deadline_h: np.ndarray,
    allowed: np.ndarray | None = None,
) -> Admissions:
    """Decide where each of ``N`` new jobs should run, each against the same plan (a decision
    does not take capacity from the next: that is the next re-plan's work), as :func:`admit`
    decides one, in passes of :data:`BATCH` jobs over arrays ``(jobs, periods, sites)``.

    Parameters
    ----------
    state
        Free capacity and costs over the coming periods.
    work_accelerator_hours, max_accelerators, deadline_h
        Each job's work, the most accelerators it can use and the hours from now to its
        deadline, ``(N,)``.
    allowed
        Sites each job may run at, ``(N, S)`` bool; all if ``None``.
    """
    work = np.asarray(work_accelerator_hours, dtype=float)
    n = work.shape[0]
    most = np.asarray(max_accelerators, dtype=float)
    deadline = np.asarray(deadline_h, dtype=float)
    n_sites = len(state.names)
    ok = np.ones((n, n_sites), dtype=bool) if allowed is None else np.asarray(allowed, bool)
    parts = [
        _admit_batch(
            state,
            work[i : i + BATCH],
            most[i : i + BATCH],
            deadline[i : i + BATCH],
            ok[i : i + BATCH],
        )
        for i in range(0, n, BATCH)
    ]
    if not parts:
        return Admissions(*(np.empty(0) for _ in range(6)))
    return Admissions(*(np.concatenate(column) for column in zip(*parts, strict=True)))


CANDIDATES = 4
"""Sites at which :func:`admit_many` first works out a job's exact cost: those with the lowest
lower bounds (its work at the cheapest period it may use there). Only a job for which another
site's bound is not above the best exact cost so found is worked out at every site. It sets
how fast a decision is, never what it is."""


def _admit_batch(
    state: AdmissionState, work: np.ndarray, most: np.ndarray, deadline: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, ...]:
    """:func:`admit_many`'s answers for one pass of jobs, as its columns."""
    n, (h_n, s_n) = len(work), state.free.shape
    share = window_shares(np.zeros(n), deadline, state.period_h, h_n)  # (N, H)
    if s_n <= CANDIDATES:
        return _every_site(state, work, most, share, ok)
    rows = np.arange(n)
    # What fits before the deadline at each site: the full periods from per-parallelism
    # prefix sums, plus the part of the period the deadline falls in.
    full = np.clip(np.floor(deadline / state.period_h), 0, h_n).astype(int)
    part = np.where(full < h_n, share[rows, np.minimum(full, h_n - 1)], 0.0)
    caps, inverse = np.unique(most, return_inverse=True)
    per_cap = np.minimum(state.free[np.newaxis], caps[:, np.newaxis, np.newaxis])  # (U, H, S)
    prefix = np.concatenate([np.zeros((len(caps), 1, s_n)), np.cumsum(per_cap, axis=1)], axis=1)
    last = per_cap[inverse, np.minimum(full, h_n - 1)]  # (N, S)
    possible = (prefix[inverse, full] + part[:, np.newaxis] * last) * state.period_h
    possible = np.where(ok, possible, 0.0)
    best_fit = np.where(ok.any(axis=1), np.argmax(possible, axis=1), -1)
    feasible = possible >= (work - ROUNDING)[:, np.newaxis]
    admitted = feasible.any(axis=1)
    # Lower bounds of each site's cost: all the work at its cheapest period in the window;
    # and the work at the job's most accelerators in the site's cheapest periods of all,
    # as if every accelerator were free. The higher of the two.
    periods = full + (part > 0)
    cheapest = work[:, np.newaxis] * state.prefix_min_cost[periods]
    per_period = most * state.period_h  # accelerator-hours of a period at full parallelism
    whole = np.minimum(np.floor(work / per_period), h_n).astype(int)
    rest_h = np.maximum(work - whole * per_period, 0.0)
    spread = (
        per_period[:, np.newaxis] * state.cumulative_sorted_cost[whole]
        + rest_h[:, np.newaxis] * state.sorted_cost[np.minimum(whole, h_n - 1)]
    )
    bound = np.where(feasible, np.maximum(cheapest, spread), np.inf)
    # The exact cost at the sites of the lowest bounds; the cheapest of them (the first site
    # on a tie) stands if every other site's bound is above it.
    cand = np.argpartition(bound, CANDIDATES - 1, axis=1)[:, :CANDIDATES]
    c_cost, c_used, _ = _exact(state, work, most, share, cand, np.take_along_axis(ok, cand, 1))
    best = c_cost.min(axis=1)
    pick = np.where(c_cost == best[:, np.newaxis], cand, s_n).min(axis=1)
    beyond = np.partition(bound, CANDIDATES, axis=1)[:, CANDIDATES]
    done = admitted & (beyond > best)
    site = np.where(done, pick, -1)
    cost = np.where(done, best, np.nan)
    slot = np.argmax(cand == pick[:, np.newaxis], axis=1)  # the pick among the candidates
    now = done & (c_used[rows, state.now_rank[np.minimum(pick, s_n - 1)], slot] > 1e-12)
    rest = np.flatnonzero(admitted & ~done)
    if len(rest):  # every site, for the jobs where a bound did not settle it
        _, site[rest], cost[rest], now[rest], _, _ = _every_site(
            state, work[rest], most[rest], share[rest], ok[rest]
        )
    columns = (admitted, site, cost, now, possible[rows, np.maximum(best_fit, 0)], best_fit)
    return tuple(np.asarray(c) for c in columns)


def _every_site(
    state: AdmissionState, work: np.ndarray, most: np.ndarray, share: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The answers (the columns of :class:`Admissions`) from the exact cost at every site;
    ``share`` is each job's share of each period before its deadline, ``(N, H)``."""
    rows = np.arange(len(work))
    cost, used, possible = _exact(state, work, most, share, None, ok)
    pick = np.argmin(cost, axis=1)
    best = cost[rows, pick]
    admitted = np.isfinite(best)
    possible = np.where(ok, possible, 0.0)
    best_fit = np.where(ok.any(axis=1), np.argmax(possible, axis=1), -1)
    columns = (
        admitted,
        np.where(admitted, pick, -1),
        np.where(admitted, best, np.nan),
        admitted & (used[rows, state.now_rank[pick], pick] > 1e-12),
        possible[rows, np.maximum(best_fit, 0)],
        best_fit,
    )
    return tuple(np.asarray(c) for c in columns)


def _exact(
    state: AdmissionState,
    work: np.ndarray,
    most: np.ndarray,
    share: np.ndarray,
    sites: np.ndarray | None,
    ok: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At each of each job's ``sites`` ``(N, K)`` (``None``: every site): the cost of its
    work in the site's cheapest periods first (inf where it does not fit or the site is not
    ``ok``), the accelerator-hours so used in each period in that order ``(N, H, K)``, and
    the accelerator-hours that fit before its deadline."""
    if sites is None:  # every site: the state's arrays as they are
        hours = share[:, state.cheapest_first] * state.period_h  # (N, H, S)
        free, unit = state.sorted_free, state.sorted_cost
    else:
        order = np.moveaxis(state.cheapest_first[:, sites], 0, 1)  # (N, H, K)
        hours = np.take_along_axis(share[:, :, np.newaxis], order, axis=1) * state.period_h
        free = np.moveaxis(state.sorted_free[:, sites], 0, 1)
        unit = np.moveaxis(state.sorted_cost[:, sites], 0, 1)
    capacity = np.minimum(free, most[:, np.newaxis, np.newaxis]) * hours
    possible = capacity.sum(axis=1)
    fits = ok & (possible >= (work - ROUNDING)[:, np.newaxis])
    before = np.cumsum(capacity, axis=1) - capacity
    used = np.clip(work[:, np.newaxis, np.newaxis] - before, 0.0, capacity)
    cost = np.where(fits, (used * unit).sum(axis=1), np.inf)
    return cost, used, possible


def admit(
    state: AdmissionState,
    work_accelerator_hours: float,
    max_accelerators: int,
    deadline_h: float,
    allowed: np.ndarray | None = None,
) -> Admission:
    """Decide where a new job should run, with the reasons when it cannot be admitted (the
    answer :func:`admit_many` gives it).

    Parameters
    ----------
    state
        Free capacity and costs over the coming periods.
    work_accelerator_hours
        The job's work.
    max_accelerators
        Most accelerators it can use.
    deadline_h
        Hours from now to its deadline.
    allowed
        Sites it may run at, ``(S,)`` bool; all if ``None``.
    """
    n_sites = len(state.names)
    ok = np.ones((1, n_sites), bool) if allowed is None else np.asarray(allowed, bool)[np.newaxis]
    if not ok.any():
        return Admission(False, reasons=("the job may run at no site",))
    work = np.array([work_accelerator_hours], dtype=float)
    share = window_shares(np.zeros(1), np.array([deadline_h]), state.period_h, len(state.free))
    # One job: every site at once is quicker than bounds first.
    one = Admissions(*_every_site(state, work, np.array([float(max_accelerators)]), share, ok))
    if not one.admitted[0]:
        best = int(one.most_fitting_site[0])
        reason = (
            f"needs {work_accelerator_hours:.2f} accelerator-hours within {deadline_h:.2f} h; "
            f"at most {one.most_fitting_accelerator_hours[0]:.2f} fit at any allowed site "
            f"({state.names[best]})"
            if deadline_h > 0
            else "its deadline has passed"
        )
        return Admission(False, reasons=(reason,))
    site = int(one.site[0])
    return Admission(
        True,
        site=site,
        site_name=state.names[site],
        cost_usd=float(one.cost_usd[0]),
        starts_now=bool(one.starts_now[0]),
    )
