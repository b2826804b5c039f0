"""The planning problem as a linear program, built from small functions over arrays.

Variables (all continuous and non-negative; per period ``h`` and site ``s`` unless noted):

=================  ===========================================================================
``grid_import``    mean import, kW (upper bound: the import limit)
``grid_export``    mean export, kW (upper bound: the export limit)
``genset``         mean genset output, kW
``charge``         mean battery charge, kW
``discharge``      mean battery discharge, kW
``renewable``      mean renewable generation used, kW (the rest is curtailed)
``shed``           facility load left unpowered, kW (penalised; normally zero)
``soc``            battery energy at the end of the period, kWh (within its SoC limits)
``work``           per (job, site, period) the mean accelerators a job gets
``undone``         per job, work undone at its deadline, accelerator-hours (penalised)
``deferred``       per job, work left for after the horizon, accelerator-hours (at its cost)
``rise``           per (job, period), the increase of its accelerators over the period
                   before (restarts cost a checkpoint; only when restart costs are given, and
                   only over the first ``restart_periods``, which the next re-plans act on)
``route``          per (service, demand point, site, period) for SLO-feasible pairs only,
                   requests per second sent there
``dropped``        per (service, demand point, period), requests per second not served
=================  ===========================================================================

Constraint families, one function each: power balance, export from the site's own sources
(where exporting earns more than importing costs), battery dynamics, accelerator capacity,
power cap, job work, job parallelism, job restarts, inference demand. The objective is energy
cost + carbon price x emissions + penalties (undone work, dropped requests, shed load) +
switching and restart costs - terminal battery value, plus tiny tie-breaks that prefer earlier
work.

The matrix is assembled from coordinate triplets into one compressed-column matrix for HiGHS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from wattroute.model.costs import export_value_usd_per_kwh
from wattroute.model.power import busy_accelerator_kw, standing_kw
from wattroute.optimise.problem import PlanningProblem

SITE_VARIABLES = (
    "grid_import",
    "grid_export",
    "genset",
    "charge",
    "discharge",
    "renewable",
    "shed",
    "soc",
)


@dataclass
class Layout:
    """Where each variable family sits in the column vector."""

    n_periods: int
    n_sites: int
    offsets: dict[str, int] = field(default_factory=dict)
    size: int = 0
    # (job, site, period) of each work column; (service, point, site, period) of each route
    work_index: tuple[np.ndarray, np.ndarray, np.ndarray] = (
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
    )
    route_index: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    route_offsets: list[int] = field(default_factory=list)
    dropped_offsets: list[int] = field(default_factory=list)

    def add(self, name: str, count: int) -> int:
        self.offsets[name] = self.size
        self.size += count
        return self.offsets[name]

    def site(self, name: str) -> np.ndarray:
        """Column indices of a site-period family, shape ``(H, S)``."""
        start = self.offsets[name]
        return start + np.arange(self.n_periods * self.n_sites).reshape(
            self.n_periods, self.n_sites
        )


class Rows:
    """Coordinate triplets of the constraint matrix and the row bounds, for rows numbered
    from ``first`` (rows added to a program that has ``first`` already)."""

    def __init__(self, first: int = 0) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.first = first
        self.count = first
        self.families: dict[str, tuple[int, int]] = {}

    def new(self, name: str, n: int, lower: np.ndarray | float, upper: np.ndarray | float) -> int:
        first = self.count
        self.lower.append(np.broadcast_to(np.asarray(lower, float), (n,)).copy())
        self.upper.append(np.broadcast_to(np.asarray(upper, float), (n,)).copy())
        self.count += n
        self.families[name] = (first, self.count)
        return first

    def entries(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        """Add coefficients ``vals`` (broadcast to the shape of ``rows``) at ``(rows, cols)``."""
        rows = np.asarray(rows)
        self.rows.append(rows.ravel())
        self.cols.append(np.asarray(cols).ravel())
        self.vals.append(np.broadcast_to(np.asarray(vals, float), rows.shape).ravel().copy())


@dataclass(frozen=True, eq=False)
class LinearProgram:
    """``min c x`` subject to ``row_lower <= A x <= row_upper``, ``col_lower <= x <= col_upper``
    (and, where ``integrality`` marks a column, ``x`` integer there: a mixed-integer program)."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    offset: float
    layout: Layout
    row_families: dict[str, tuple[int, int]]
    integrality: np.ndarray | None = None
    """Per column, true where the column must take whole values; ``None``: none must."""


def build(problem: PlanningProblem) -> LinearProgram:
    """The linear program of a planning problem."""
    h_n, s_n = problem.n_periods, problem.n_sites
    layout = Layout(h_n, s_n)
    for name in SITE_VARIABLES:
        layout.add(name, h_n * s_n)
    _layout_jobs(problem, layout)
    _layout_services(problem, layout)
    lower = np.zeros(layout.size)
    upper = np.full(layout.size, np.inf)
    cost = np.zeros(layout.size)
    rows = Rows()

    _site_bounds_and_costs(problem, layout, lower, upper, cost)
    _job_bounds_and_costs(problem, layout, upper, cost)
    _service_costs(problem, layout, cost)
    _power_balance(problem, layout, rows)
    _export_from_sources(problem, layout, rows)
    _battery_dynamics(problem, layout, rows)
    _accelerator_capacity(problem, layout, rows)
    _power_cap(problem, layout, rows)
    _job_work(problem, layout, rows)
    _job_parallelism(problem, layout, rows)
    _job_restarts(problem, layout, rows)
    _inference_demand(problem, layout, rows)

    matrix = sp.csc_matrix(
        (
            np.concatenate(rows.vals) if rows.vals else np.zeros(0),
            (
                np.concatenate(rows.rows) if rows.rows else np.zeros(0, np.int64),
                np.concatenate(rows.cols) if rows.cols else np.zeros(0, np.int64),
            ),
        ),
        shape=(rows.count, layout.size),
    )
    matrix.sum_duplicates()
    return LinearProgram(
        cost=cost,
        col_lower=lower,
        col_upper=upper,
        matrix=matrix,
        row_lower=np.concatenate(rows.lower) if rows.lower else np.zeros(0),
        row_upper=np.concatenate(rows.upper) if rows.upper else np.zeros(0),
        offset=0.0,
        layout=layout,
        row_families=rows.families,
    )


# -- layout -----------------------------------------------------------------------------------


def _layout_jobs(problem: PlanningProblem, layout: Layout) -> None:
    jobs = problem.jobs
    # A (job, site, period) column exists where the job may run at that site in that period.
    mask = (jobs.available[:, np.newaxis, :] > 0) & jobs.allowed[:, :, np.newaxis]
    j, s, h = np.nonzero(mask)
    layout.work_index = (j, s, h)
    layout.add("work", j.size)
    layout.add("undone", len(jobs))
    layout.add("deferred", len(jobs))
    restarts = jobs.restart_cost_usd_per_accelerator is not None
    periods = min(problem.n_periods, problem.restart_periods)
    layout.add("rise", len(jobs) * periods if restarts else 0)


def _layout_services(problem: PlanningProblem, layout: Layout) -> None:
    h_n = problem.n_periods
    for service in problem.services:
        p, s = np.nonzero(service.feasible)
        n_pairs = p.size
        hh = np.repeat(np.arange(h_n), n_pairs)
        layout.route_index.append((np.tile(p, h_n), np.tile(s, h_n), hh))
        layout.route_offsets.append(layout.add(f"route{len(layout.route_offsets)}", n_pairs * h_n))
        n_points = service.rate_rps.shape[1]
        layout.dropped_offsets.append(
            layout.add(f"dropped{len(layout.dropped_offsets)}", n_points * h_n)
        )


# -- bounds and costs -------------------------------------------------------------------------


def _site_bounds_and_costs(
    problem: PlanningProblem,
    layout: Layout,
    lower: np.ndarray,
    upper: np.ndarray,
    cost: np.ndarray,
) -> None:
    f, dt = problem.fleet, problem.period_h
    h_n = problem.n_periods

    def bound(name: str, value: np.ndarray) -> None:
        upper[layout.site(name)] = np.broadcast_to(value, (h_n, problem.n_sites))

    bound("grid_import", f.import_limit_kw)
    bound("grid_export", f.export_limit_kw)
    bound("genset", f.genset_kw)
    bound("charge", f.battery_charge_kw)
    bound("discharge", f.battery_discharge_kw)
    bound("renewable", problem.solar_kw + problem.wind_kw)
    bound("soc", f.battery_max_kwh)
    lower[layout.site("soc")] = np.broadcast_to(f.battery_min_kwh, (h_n, problem.n_sites))
    cost[layout.site("grid_import")] = dt * problem.import_cost_usd_per_kwh
    cost[layout.site("grid_export")] = -dt * export_value_usd_per_kwh(
        problem.export_price_usd_per_mwh
    )
    cost[layout.site("genset")] = dt * np.broadcast_to(
        problem.genset_cost_usd_per_kwh, (h_n, problem.n_sites)
    )
    cost[layout.site("shed")] = dt * problem.shed_penalty_usd_per_kwh
    cost[layout.site("soc")[-1]] = -problem.terminal_value_usd_per_kwh


def _job_bounds_and_costs(
    problem: PlanningProblem, layout: Layout, upper: np.ndarray, cost: np.ndarray
) -> None:
    jobs, dt = problem.jobs, problem.period_h
    j, s, h = layout.work_index
    cols = layout.offsets["work"] + np.arange(j.size)
    upper[cols] = jobs.max_accelerators[j] * jobs.available[j, h]
    away = (jobs.current_site[j] >= 0) & (jobs.current_site[j] != s)
    bias = problem.early_bias_usd_per_accelerator_hour
    cost[cols] = dt * (away * jobs.switch_cost_usd_per_accelerator_hour[j] + bias * h)
    undone = layout.offsets["undone"] + np.arange(len(jobs))
    cost[undone] = problem.deadline_penalty_usd_per_accelerator_hour
    deferred = layout.offsets["deferred"] + np.arange(len(jobs))
    if (
        jobs.deferrable_accelerator_hours is None
        or jobs.deferral_cost_usd_per_accelerator_hour is None
    ):
        upper[deferred] = 0.0
    else:
        upper[deferred] = jobs.deferrable_accelerator_hours
        cost[deferred] = jobs.deferral_cost_usd_per_accelerator_hour
    if jobs.restart_cost_usd_per_accelerator is not None and len(jobs):
        # Each accelerator a job gains over the period before costs a checkpoint restore.
        periods = min(problem.n_periods, problem.restart_periods)
        rise = layout.offsets["rise"] + np.arange(len(jobs) * periods)
        cost[rise] = np.repeat(jobs.restart_cost_usd_per_accelerator, periods)


def _service_costs(problem: PlanningProblem, layout: Layout, cost: np.ndarray) -> None:
    seconds = problem.period_h * 3600.0
    for i, service in enumerate(problem.services):
        n = service.rate_rps.size
        cols = layout.dropped_offsets[i] + np.arange(n)
        cost[cols] = problem.slo_penalty_usd_per_request * seconds


# -- constraint families ----------------------------------------------------------------------


def _busy_columns(
    problem: PlanningProblem, layout: Layout
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(period, site, column, accelerators per unit) of every variable that keeps
    accelerators busy: job work and routed requests."""
    j, s, h = layout.work_index
    periods = [h]
    sites = [s]
    cols = [layout.offsets["work"] + np.arange(j.size)]
    per_unit = [np.ones(j.size)]
    for i, service in enumerate(problem.services):
        _, rs, rh = layout.route_index[i]
        periods.append(rh)
        sites.append(rs)
        cols.append(layout.route_offsets[i] + np.arange(rs.size))
        per_unit.append(np.full(rs.size, service.accelerators_per_rps))
    return (
        np.concatenate(periods) * problem.n_sites + np.concatenate(sites),
        np.concatenate(cols),
        np.concatenate(per_unit),
    )


def _power_balance(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """Supply = facility demand: renewables + discharge + import + genset + shed - charge -
    export - PUE (busy - idle) (work + inference) = PUE (base + idle x count)."""
    f = problem.fleet
    h_n, s_n = problem.n_periods, problem.n_sites
    fixed = standing_kw(f, problem.pue)
    first = rows.new("power_balance", h_n * s_n, fixed.ravel(), fixed.ravel())
    row = first + np.arange(h_n * s_n).reshape(h_n, s_n)
    for name, sign in (
        ("renewable", 1.0),
        ("discharge", 1.0),
        ("grid_import", 1.0),
        ("genset", 1.0),
        ("shed", 1.0),
        ("charge", -1.0),
        ("grid_export", -1.0),
    ):
        rows.entries(row, layout.site(name), sign)
    cell, cols, per_unit = _busy_columns(problem, layout)
    delta = busy_accelerator_kw(f, problem.pue).ravel()
    rows.entries(first + cell, cols, -delta[cell] * per_unit)


def _export_from_sources(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """Export <= renewables used + battery discharge + genset, in the periods and at the sites
    where a kWh exported earns more than a kWh imported costs (an export price above the
    import price, a feed-in tariff, say).

    The simulator exports only surplus and never imports and exports at once, so every
    schedule it runs meets this row, and the bound stays a bound. Without it such a period
    would let the plan import to export, earning the spread on as much as the two limits
    allow: without end where both are unlimited (the program is unbounded and there is no
    plan), and otherwise on power the site never has. Where exporting earns no more than
    importing costs (an export price at the import price, as by default), the row could only
    bind on a plan that loses money, and is left out."""
    f = problem.fleet
    earns = export_value_usd_per_kwh(problem.export_price_usd_per_mwh) > (
        problem.import_cost_usd_per_kwh + 1e-12
    )
    cells = np.flatnonzero((earns & (f.export_limit_kw > 0) & (f.import_limit_kw > 0)).ravel())
    if cells.size == 0:
        return
    first = rows.new("export_from_sources", cells.size, -np.inf, 0.0)
    row = first + np.arange(cells.size)
    rows.entries(row, layout.site("grid_export").ravel()[cells], 1.0)
    for name in ("renewable", "discharge", "genset"):
        rows.entries(row, layout.site(name).ravel()[cells], -1.0)


def _battery_dynamics(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """soc[h] = soc[h-1] + eta_c dt charge - dt / eta_d discharge, with soc[-1] the start."""
    f, dt = problem.fleet, problem.period_h
    sites = np.flatnonzero(f.battery_max_kwh > 0)
    h_n = problem.n_periods
    if sites.size == 0:
        return
    rhs = np.zeros((h_n, sites.size))
    rhs[0] = problem.soc_kwh[sites]
    first = rows.new("battery", h_n * sites.size, rhs.ravel(), rhs.ravel())
    row = first + np.arange(h_n * sites.size).reshape(h_n, sites.size)
    soc = layout.site("soc")[:, sites]
    rows.entries(row, soc, 1.0)
    rows.entries(row[1:], soc[:-1], -1.0)
    rows.entries(row, layout.site("charge")[:, sites], -dt * f.battery_charge_eff[sites])
    rows.entries(row, layout.site("discharge")[:, sites], dt / f.battery_discharge_eff[sites])


def _accelerator_capacity(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """Busy accelerators (work + inference) <= the site's accelerators."""
    f = problem.fleet
    h_n, s_n = problem.n_periods, problem.n_sites
    limit = np.broadcast_to(f.accelerators.astype(float), (h_n, s_n)).ravel()
    first = rows.new("capacity", h_n * s_n, -np.inf, limit)
    cell, cols, per_unit = _busy_columns(problem, layout)
    rows.entries(first + cell, cols, per_unit)


def _power_cap(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """Facility power <= the site's power cap, where it has one."""
    f = problem.fleet
    capped = np.isfinite(f.power_cap_kw)
    if not capped.any():
        return
    h_n, s_n = problem.n_periods, problem.n_sites
    room = f.power_cap_kw - standing_kw(f, problem.pue)
    room = np.where(capped, room, np.inf)
    first = rows.new("power_cap", h_n * s_n, -np.inf, room.ravel())
    cell, cols, per_unit = _busy_columns(problem, layout)
    delta = busy_accelerator_kw(f, problem.pue).ravel()
    keep = capped[cell % s_n]
    rows.entries(first + cell[keep], cols[keep], delta[cell[keep]] * per_unit[keep])


def _job_work(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """Work done in the window + deferred + undone = the work to do: never more, so that a plan
    cannot soak up power of negative cost with work nobody asked for (no schedule could)."""
    jobs, dt = problem.jobs, problem.period_h
    n = len(jobs)
    if n == 0:
        return
    first = rows.new("work", n, jobs.work_accelerator_hours, jobs.work_accelerator_hours)
    j, _, _ = layout.work_index
    rows.entries(first + j, layout.offsets["work"] + np.arange(j.size), dt)
    rows.entries(first + np.arange(n), layout.offsets["undone"] + np.arange(n), 1.0)
    rows.entries(first + np.arange(n), layout.offsets["deferred"] + np.arange(n), 1.0)


def _job_parallelism(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """A job's accelerators over all its sites <= its maximum (only for multi-site jobs:
    single-site jobs have it as a column bound)."""
    jobs = problem.jobs
    j, _, h = layout.work_index
    multi = jobs.allowed.sum(axis=1) > 1
    keep = multi[j] & (jobs.available[j, h] > 0)
    if not keep.any():
        return
    cells = j[keep] * problem.n_periods + h[keep]
    unique, inverse = np.unique(cells, return_inverse=True)
    uj, uh = unique // problem.n_periods, unique % problem.n_periods
    first = rows.new(
        "parallelism", unique.size, -np.inf, jobs.max_accelerators[uj] * jobs.available[uj, uh]
    )
    rows.entries(first + inverse, layout.offsets["work"] + np.flatnonzero(keep), 1.0)


def _job_restarts(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """accelerators[h] - accelerators[h-1] <= rise[h] (accelerators[-1]: what runs now), so
    that a pause and resume costs what a checkpoint does."""
    jobs = problem.jobs
    if jobs.restart_cost_usd_per_accelerator is None or len(jobs) == 0:
        return
    h_n = min(problem.n_periods, problem.restart_periods)
    now = np.zeros(len(jobs)) if jobs.accelerators_now is None else jobs.accelerators_now
    upper = np.zeros((len(jobs), h_n))
    upper[:, 0] = now
    first = rows.new("restarts", len(jobs) * h_n, -np.inf, upper.ravel())
    j, _, h = layout.work_index
    work = layout.offsets["work"] + np.arange(j.size)
    near = h < h_n
    rows.entries(first + j[near] * h_n + h[near], work[near], 1.0)
    later = h + 1 < h_n
    rows.entries(first + j[later] * h_n + h[later] + 1, work[later], -1.0)
    rise = layout.offsets["rise"] + np.arange(len(jobs) * h_n)
    rows.entries(first + np.arange(len(jobs) * h_n), rise, -1.0)


def _inference_demand(problem: PlanningProblem, layout: Layout, rows: Rows) -> None:
    """Per service, demand point and period: routed + dropped = the request rate."""
    h_n = problem.n_periods
    for i, service in enumerate(problem.services):
        n_points = service.rate_rps.shape[1]
        rate = service.rate_rps  # (H, P)
        first = rows.new(f"demand{i}", h_n * n_points, rate.ravel(), rate.ravel())
        rp, _, rh = layout.route_index[i]
        rows.entries(first + rh * n_points + rp, layout.route_offsets[i] + np.arange(rp.size), 1.0)
        rows.entries(
            first + np.arange(h_n * n_points),
            layout.dropped_offsets[i] + np.arange(h_n * n_points),
            1.0,
        )


# -- comparing formulations --------------------------------------------------------------------


def carry_solution(lp: LinearProgram, source: LinearProgram, x: np.ndarray) -> np.ndarray:
    """A solution ``x`` of ``source`` as a solution of ``lp``, the same problem's program with
    restarts priced over other periods or another tie-break towards earlier work (so the same
    columns but the rises): every other column keeps its value, each rise is the least its
    restart row allows (as at an optimum). ``lp.cost @ carried + lp.offset`` is what a plan
    solved on a cheaper formulation costs under the full one."""
    carried = np.zeros(lp.layout.size)
    start, stop = _family_span(lp.layout, "rise")
    source_start, source_stop = _family_span(source.layout, "rise")
    if lp.layout.size - (stop - start) != source.layout.size - (source_stop - source_start):
        raise ValueError("the programs differ in more than their restart columns")
    carried[:start] = x[:source_start]
    carried[stop:] = x[source_stop:]
    if "restarts" in lp.row_families:
        first, last = lp.row_families["restarts"]
        needed = lp.matrix[first:last] @ carried - lp.row_upper[first:last]
        carried[start : start + (last - first)] = np.maximum(needed, 0.0)
    return carried


def _family_span(layout: Layout, name: str) -> tuple[int, int]:
    """First and one-past-last column of a variable family."""
    names = list(layout.offsets)
    following = names[names.index(name) + 1 :]
    return layout.offsets[name], layout.offsets[following[0]] if following else layout.size


# -- starting basis ---------------------------------------------------------------------------

AT_LOWER, BASIC, AT_UPPER = 0, 1, 2
"""Basis statuses of :func:`crash_basis` (as HiGHS numbers them)."""


def crash_basis(lp: LinearProgram) -> tuple[np.ndarray, np.ndarray]:
    """A starting basis for the simplex method that prices work as the plan will: per column
    and per row :data:`AT_LOWER`, :data:`BASIC` or :data:`AT_UPPER`, ``(columns,)`` and
    ``(rows,)``.

    Each equality row gets as its basic variable the column that balances it when no work is
    planned: grid import in each site's power balance (load shed where the site has no grid),
    the battery energy in its dynamics, the undone work in each job's work row, the requests
    dropped in each demand row; each restart row its rise, at its bound. Every other row is
    basic (its slack), every other column at the bound its cost prefers (the upper one for a
    negative cost, where finite). Each of these columns appears in its own row alone (the
    battery energy in its own and the next period's row), so the basis is triangular and
    never singular. From it the dual simplex method starts with the duals of an idle plan —
    a site's import cost in its balance, the deadline penalty in each work row — instead of
    zeros, and with the rises of restarts already in the basis."""
    layout = lp.layout
    n_rows = lp.matrix.shape[0]
    negative = (lp.cost < 0) & np.isfinite(lp.col_upper)
    col = np.where(negative, AT_UPPER, AT_LOWER).astype(np.int8)
    row = np.full(n_rows, BASIC, np.int8)
    families = lp.row_families

    def make_basic(family: str, columns: np.ndarray, status: int) -> None:
        first, last = families[family]
        assert columns.size == last - first
        col[columns] = BASIC
        row[first:last] = status

    if "power_balance" in families:
        grid = layout.site("grid_import")
        shed = layout.site("shed")
        make_basic("power_balance", np.where(lp.col_upper[grid] > 0, grid, shed).ravel(), AT_LOWER)
    if "battery" in families:
        first, last = families["battery"]
        soc = layout.site("soc")
        sites = np.flatnonzero(np.any(lp.col_upper[soc] > 0, axis=0))
        if soc[:, sites].size == last - first:
            make_basic("battery", soc[:, sites].ravel(), AT_LOWER)
    if "work" in families:
        first, last = families["work"]
        make_basic("work", layout.offsets["undone"] + np.arange(last - first), AT_LOWER)
    if "restarts" in families:
        first, last = families["restarts"]
        make_basic("restarts", layout.offsets["rise"] + np.arange(last - first), AT_UPPER)
    for i, offset in enumerate(layout.dropped_offsets):
        first, last = families[f"demand{i}"]
        make_basic(f"demand{i}", offset + np.arange(last - first), AT_LOWER)
    return col, row
