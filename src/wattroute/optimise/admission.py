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


def _admit_batch(
    state: AdmissionState, work: np.ndarray, most: np.ndarray, deadline: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, ...]:
    h_n, order = state.free.shape[0], state.cheapest_first
    share = window_shares(np.zeros(len(work)), deadline, state.period_h, h_n)  # (N, H)
    # Hours each job can run in each period, with its periods in each site's cheapest-first
    # order: (N, H, S).
    hours = share[:, order] * state.period_h
    capacity = np.minimum(state.sorted_free[np.newaxis], most[:, np.newaxis, np.newaxis]) * hours
    possible = np.where(ok, capacity.sum(axis=1), 0.0)
    best_fit = np.where(ok.any(axis=1), np.argmax(possible, axis=1), -1)
    feasible = possible >= (work - ROUNDING)[:, np.newaxis]
    before = np.cumsum(capacity, axis=1) - capacity
    used = np.clip(work[:, np.newaxis, np.newaxis] - before, 0.0, capacity)
    cost = np.where(feasible, (used * state.sorted_cost[np.newaxis]).sum(axis=1), np.inf)
    admitted = feasible.any(axis=1)
    site = np.where(admitted, np.argmin(cost, axis=1), -1)
    rows = np.arange(len(work))
    chosen = np.maximum(site, 0)
    starts_now = admitted & (used[rows, state.now_rank[chosen], chosen] > 1e-12)
    columns = (
        admitted,
        site,
        np.where(admitted, cost[rows, chosen], np.nan),
        starts_now,
        possible[rows, np.maximum(best_fit, 0)],
        best_fit,
    )
    return tuple(np.asarray(c) for c in columns)


def admit(
    state: AdmissionState,
    work_accelerator_hours: float,
    max_accelerators: int,
    deadline_h: float,
    allowed: np.ndarray | None = None,
) -> Admission:
    """Decide where a new job should run (:func:`admit_many` for one job), with the reasons
    when it cannot be admitted.

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
    ok = None if allowed is None else np.asarray(allowed, dtype=bool)[np.newaxis]
    if ok is not None and not ok.any():
        return Admission(False, reasons=("the job may run at no site",))
    one = admit_many(
        state,
        np.array([work_accelerator_hours], dtype=float),
        np.array([max_accelerators]),
        np.array([deadline_h], dtype=float),
        ok,
    )
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
