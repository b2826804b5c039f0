"""The planning problem: what the optimiser decides over a horizon of planning periods.

A :class:`PlanningProblem` is plain arrays: per period and site the signals (price, carbon,
renewables, PUE), per job its remaining work and the periods it may run in, per service the
request rates. The same class serves the model-predictive controller (built from an observation
and forecasts) and the perfect-foresight oracle (built from a whole scenario's actual signals);
:mod:`wattroute.optimise.formulation` turns it into a linear program.

Units: power in kW (means over a period), energy in kWh, time in hours, money in USD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattroute.model.arrays import FleetStatic
from wattroute.model.costs import (
    bought_power_cost_usd_per_kwh,
    genset_cost_usd_per_kwh,
    import_cost_usd_per_kwh,
)


@dataclass(frozen=True, eq=False)
class JobBlock:
    """Batch work to plan, arrays of shape ``(J,)`` (a row may be one job or a class of jobs).

    Parameters
    ----------
    work_accelerator_hours
        Work still to do.
    max_accelerators
        Most accelerators the row can use at once.
    available
        Share of each period the row may run in, ``(J, H)`` in [0, 1]: zero before it arrives
        and after its deadline, fractions in the periods the arrival and deadline cut.
    allowed
        Sites the row may run at, ``(J, S)`` bool.
    current_site
        Site the row runs at now (-1 if none); running elsewhere costs ``switch_cost``.
    switch_cost_usd_per_accelerator_hour
        Cost per accelerator-hour of running away from ``current_site`` (checkpoint and
        migration overheads expressed as money; zero for the oracle).
    restart_cost_usd_per_accelerator
        Cost of raising a row's accelerators by one from one period to the next (from its
        ``accelerators_now`` before the first): a pause and resume costs a checkpoint, so this
        is the checkpoint's run time priced as work. ``None`` (the oracle) ignores restarts.
    accelerators_now
        Accelerators each row runs on now, ``(J,)``.
    deferrable_accelerator_hours
        Work that may be left for after the horizon (a deadline beyond it leaves time), at
        ``deferral_cost_usd_per_accelerator_hour`` each (the expected cost of doing it later).
        Zero for the oracle, whose horizon is the whole scenario.
    min_accelerators, checkpoint_overhead_h, migration_overhead_h
        The row's least parallelism when it runs, the hours a restore takes after a pause or
        move, and the hours a move adds, ``(J,)``. The linear program ignores them; the
        integer-aware bound (:mod:`wattroute.optimise.integer_bound`) charges them.
    """

    work_accelerator_hours: np.ndarray
    max_accelerators: np.ndarray
    available: np.ndarray
    allowed: np.ndarray
    current_site: np.ndarray
    switch_cost_usd_per_accelerator_hour: np.ndarray
    deferrable_accelerator_hours: np.ndarray | None = None
    deferral_cost_usd_per_accelerator_hour: np.ndarray | None = None
    restart_cost_usd_per_accelerator: np.ndarray | None = None
    accelerators_now: np.ndarray | None = None
    min_accelerators: np.ndarray | None = None
    checkpoint_overhead_h: np.ndarray | None = None
    migration_overhead_h: np.ndarray | None = None

    def __post_init__(self) -> None:
        restart = self.restart_cost_usd_per_accelerator
        if restart is not None and bool((restart < 0).any()):
            # Each rise column has no upper bound: at a negative cost the plan is unbounded.
            raise ValueError(
                "restart_cost_usd_per_accelerator must be >= 0 (a restart never earns), "
                f"got a least value of {float(restart.min()):g}"
            )

    def __len__(self) -> int:
        return int(self.work_accelerator_hours.shape[0])

    @classmethod
    def empty(cls, n_periods: int, n_sites: int) -> JobBlock:
        return cls(
            np.zeros(0),
            np.zeros(0),
            np.zeros((0, n_periods)),
            np.zeros((0, n_sites), bool),
            np.zeros(0, np.int64),
            np.zeros(0),
        )


@dataclass(frozen=True, eq=False)
class ServiceBlock:
    """One inference service: mean request rate per period and demand point, ``(H, P)``, and
    which (demand point, site) pairs meet the SLO, ``(P, S)``."""

    rate_rps: np.ndarray
    feasible: np.ndarray
    replica_throughput_rps: float
    accelerators_per_replica: int

    @property
    def accelerators_per_rps(self) -> float:
        return self.accelerators_per_replica / self.replica_throughput_rps


@dataclass(frozen=True, eq=False)
class PlanningProblem:
    """Everything the planning LP needs, as arrays over ``H`` periods and ``S`` sites.

    Parameters
    ----------
    period_h
        Length of a planning period, hours.
    fleet
        Site constants.
    price_usd_per_mwh, carbon_g_per_kwh, export_price_usd_per_mwh
        Import price, grid intensity and export price per period, ``(H, S)``.
    solar_kw, wind_kw
        Mean renewable generation available per period, ``(H, S)``.
    pue
        PUE per period, ``(H, S)``.
    carbon_price_usd_per_tonne
        Price on emissions.
    soc_kwh
        Battery energy at the start, ``(S,)``.
    terminal_value_usd_per_kwh
        Value of battery energy left at the end, ``(S,)`` (stops a receding horizon from
        draining the battery at its edge; zero for the oracle).
    jobs, services
        The workloads.
    deadline_penalty_usd_per_accelerator_hour
        Price of work undone at deadlines (the scenario's penalty).
    slo_penalty_usd_per_request
        Price of a request not served within its SLO.
    shed_penalty_usd_per_kwh
        Price of facility load left unpowered (idle accelerators a site cannot power).
    """

    period_h: float
    fleet: FleetStatic
    price_usd_per_mwh: np.ndarray
    carbon_g_per_kwh: np.ndarray
    export_price_usd_per_mwh: np.ndarray
    solar_kw: np.ndarray
    wind_kw: np.ndarray
    pue: np.ndarray
    carbon_price_usd_per_tonne: float
    soc_kwh: np.ndarray
    terminal_value_usd_per_kwh: np.ndarray
    jobs: JobBlock
    services: tuple[ServiceBlock, ...]
    deadline_penalty_usd_per_accelerator_hour: float
    slo_penalty_usd_per_request: float
    shed_penalty_usd_per_kwh: float = 10.0
    restart_periods: int = 6
    """Periods over which restarts are priced (the near term a receding horizon acts on;
    pricing them all makes the LP much harder to solve for little gain)."""
    early_bias_usd_per_accelerator_hour: float = 1e-6
    """Per accelerator-hour and period of delay: among equally cheap plans, work earlier (the
    future is uncertain). Zero for the oracle, so that its objective is the exact bound."""

    @property
    def n_periods(self) -> int:
        return int(self.pue.shape[0])

    @property
    def n_sites(self) -> int:
        return self.fleet.n_sites

    @property
    def import_cost_usd_per_kwh(self) -> np.ndarray:
        """Price plus carbon price on grid energy, ``(H, S)``."""
        return import_cost_usd_per_kwh(
            self.price_usd_per_mwh, self.carbon_g_per_kwh, self.carbon_price_usd_per_tonne
        )

    @property
    def genset_cost_usd_per_kwh(self) -> np.ndarray:
        """Fuel plus carbon price on genset energy, ``(S,)``."""
        return genset_cost_usd_per_kwh(self.fleet, self.carbon_price_usd_per_tonne)

    @property
    def bought_power_cost_usd_per_kwh(self) -> np.ndarray:
        """Cost of the power a site buys for more load (grid where it imports, else genset),
        ``(H, S)``."""
        return bought_power_cost_usd_per_kwh(
            self.fleet, self.import_cost_usd_per_kwh, self.genset_cost_usd_per_kwh
        )


def window_shares(
    start_h: np.ndarray, end_h: np.ndarray, period_h: float, n_periods: int
) -> np.ndarray:
    """Share of each period inside ``[start_h, end_h)`` (hours from the first period's start).

    Returns ``(len(start_h), n_periods)`` in [0, 1].
    """
    edges = np.arange(n_periods + 1) * period_h
    lo = np.maximum(edges[:-1][np.newaxis, :], start_h[:, np.newaxis])
    hi = np.minimum(edges[1:][np.newaxis, :], end_h[:, np.newaxis])
    return np.clip((hi - lo) / period_h, 0.0, 1.0)


def deferral_cost(allowed: np.ndarray, acc_cost: np.ndarray) -> np.ndarray:
    """Expected cost of work left for after a horizon, USD per accelerator-hour, ``(J,)``: the
    mean over the horizon's periods of the cheapest allowed site's cost. ``allowed`` is
    ``(J, S)``; ``acc_cost`` the energy cost of a busy accelerator-hour, ``(H, S)``. A job with
    no allowed site costs nothing to defer.

    Works over the allowed (job, site) pairs only, so that it costs ``J x H x allowed sites``,
    not ``J x H x S`` (jobs are planned at a few candidate sites of large fleets)."""
    n_jobs, n_periods = allowed.shape[0], acc_cost.shape[0]
    job, site = np.nonzero(allowed)  # row-major: each job's pairs are contiguous
    cheapest = np.zeros((n_jobs, n_periods))
    if job.size:
        starts = np.flatnonzero(np.r_[True, job[1:] != job[:-1]])
        cheapest[job[starts]] = np.minimum.reduceat(acc_cost[:, site], starts, axis=1).T
    return cheapest.mean(axis=1)
