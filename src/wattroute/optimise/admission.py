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


def admit(
    state: AdmissionState,
    work_accelerator_hours: float,
    max_accelerators: int,
    deadline_h: float,
    allowed: np.ndarray | None = None,
) -> Admission:
    """Decide where a new job should run.

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
    ok = np.ones(n_sites, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if not ok.any():
        return Admission(False, reasons=("the job may run at no site",))
    h_n = state.free.shape[0]
    share = window_shares(np.zeros(1), np.array([deadline_h]), state.period_h, h_n)[0]
    capacity = np.minimum(state.free, max_accelerators) * (share * state.period_h)[:, np.newaxis]
    possible = np.where(ok, capacity.sum(axis=0), 0.0)
    feasible = possible >= work_accelerator_hours - ROUNDING
    if not feasible.any():
        best = int(np.argmax(possible))
        reason = (
            f"needs {work_accelerator_hours:.2f} accelerator-hours within {deadline_h:.2f} h; "
            f"at most {possible[best]:.2f} fit at any allowed site ({state.names[best]})"
            if deadline_h > 0
            else "its deadline has passed"
        )
        return Admission(False, reasons=(reason,))
    order = state.cheapest_first
    sorted_capacity = np.take_along_axis(capacity, order, axis=0)
    before = np.cumsum(sorted_capacity, axis=0) - sorted_capacity
    used = np.clip(work_accelerator_hours - before, 0.0, sorted_capacity)
    cost = np.where(feasible, (used * state.sorted_cost).sum(axis=0), np.inf)
    site = int(np.argmin(cost))
    now = int(np.flatnonzero(order[:, site] == 0)[0])  # where the current period sorted to
    return Admission(
        True,
        site=site,
        site_name=state.names[site],
        cost_usd=float(cost[site]),
        starts_now=bool(used[now, site] > 1e-12),
    )
