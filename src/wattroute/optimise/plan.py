"""A solved plan: the LP's columns decoded into named arrays, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattroute.errors import OptimisationError
from wattroute.optimise.formulation import LinearProgram, build
from wattroute.optimise.problem import PlanningProblem
from wattroute.optimise.solver import LpSolution, solve


@dataclass(frozen=True, eq=False)
class Plan:
    """The optimal plan of a :class:`PlanningProblem`.

    Site flows are mean kW per period, ``(H, S)``; ``soc_kwh`` is the battery energy at the end
    of each period; ``work`` is the mean accelerators per (job, site, period), ``(J, S, H)``;
    ``route`` per service the requests per second per (period, demand point, site),
    ``(H, P, S)``; ``dropped`` per service ``(H, P)``.
    """

    problem: PlanningProblem
    solution: LpSolution
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    genset_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    renewable_kw: np.ndarray
    shed_kw: np.ndarray
    soc_kwh: np.ndarray
    work: np.ndarray
    undone_accelerator_hours: np.ndarray
    deferred_accelerator_hours: np.ndarray
    route: tuple[np.ndarray, ...]
    dropped: tuple[np.ndarray, ...]

    @property
    def curtailed_kw(self) -> np.ndarray:
        return np.maximum(self.problem.solar_kw + self.problem.wind_kw - self.renewable_kw, 0.0)

    def busy_accelerators(self) -> np.ndarray:
        """Accelerators busy per period and site (work + inference), ``(H, S)``."""
        busy = self.work.sum(axis=0).T.copy()
        for service, routed in zip(self.problem.services, self.route, strict=True):
            busy += routed.sum(axis=1) * service.accelerators_per_rps
        return busy

    def load_kw(self) -> np.ndarray:
        """Facility load per period and site, kW (the demand the plan powers)."""
        p, f = self.problem, self.problem.fleet
        it = (
            f.base_it_kw
            + f.idle_kw * f.accelerators
            + (f.busy_kw - f.idle_kw) * self.busy_accelerators()
        )
        return it * p.pue - self.shed_kw

    def totals(self, periods: slice = slice(None)) -> dict[str, float]:
        """Energy by source (kWh), cost (USD), emissions (kg) and penalties (USD) of the plan,
        or of some of its ``periods`` (deadline penalties and undone work are the whole plan's:
        they belong to no period)."""
        p, dt = self.problem, self.problem.period_h
        fleet = p.fleet
        grid_import, export, genset = (
            self.grid_import_kw[periods],
            self.grid_export_kw[periods],
            self.genset_kw[periods],
        )
        cost = dt * float(
            (grid_import * p.price_usd_per_mwh[periods] / 1000.0).sum()
            + (genset * fleet.genset_cost_usd_per_kwh).sum()
            - (export * p.export_price_usd_per_mwh[periods] / 1000.0).sum()
        )
        emissions = (
            dt
            * float(
                (grid_import * p.carbon_g_per_kwh[periods]).sum()
                + (genset * fleet.genset_g_per_kwh).sum()
            )
            / 1000.0
        )
        solar, wind = p.solar_kw[periods], p.wind_kw[periods]
        renewable = self.renewable_kw[periods]
        with np.errstate(divide="ignore", invalid="ignore"):
            solar_share = np.where(solar + wind > 0, solar / (solar + wind), 0.0)
        dropped = sum(float(d[periods].sum()) for d in self.dropped) * dt * 3600.0
        requests = sum(float(s.rate_rps[periods].sum()) for s in p.services) * dt * 3600.0
        shed = dt * float(self.shed_kw[periods].sum())
        return {
            "cost_usd": cost,
            "emissions_kg": emissions,
            "grid": dt * float(grid_import.sum()),
            "solar": dt * float((renewable * solar_share).sum()),
            "wind": dt * float((renewable * (1 - solar_share)).sum()),
            "genset": dt * float(genset.sum()),
            "battery_charge": dt * float(self.charge_kw[periods].sum()),
            "battery_discharge": dt * float(self.discharge_kw[periods].sum()),
            "curtailed": dt * float(self.curtailed_kw[periods].sum()),
            "export": dt * float(export.sum()),
            "load": dt * float(self.load_kw()[periods].sum()),
            "unserved": shed,
            "requests": requests,
            "dropped": dropped,
            "undone_accelerator_hours": float(self.undone_accelerator_hours.sum()),
            "deadline_penalty_usd": float(self.undone_accelerator_hours.sum())
            * p.deadline_penalty_usd_per_accelerator_hour,
            "slo_penalty_usd": dropped * p.slo_penalty_usd_per_request,
            "shed_penalty_usd": shed * p.shed_penalty_usd_per_kwh,
        }


def decode(problem: PlanningProblem, lp: LinearProgram, solution: LpSolution) -> Plan:
    """Named arrays from the solution vector."""
    x, layout = solution.x, lp.layout
    h_n, s_n = problem.n_periods, problem.n_sites

    def site(name: str) -> np.ndarray:
        return np.maximum(x[layout.site(name)], 0.0)

    work = np.zeros((len(problem.jobs), s_n, h_n))
    j, s, h = layout.work_index
    work[j, s, h] = np.maximum(x[layout.offsets["work"] + np.arange(j.size)], 0.0)
    routes, dropped = [], []
    for i, service in enumerate(problem.services):
        n_points = service.rate_rps.shape[1]
        rp, rs, rh = layout.route_index[i]
        routed = np.zeros((h_n, n_points, s_n))
        routed[rh, rp, rs] = np.maximum(x[layout.route_offsets[i] + np.arange(rp.size)], 0.0)
        routes.append(routed)
        start = layout.dropped_offsets[i]
        dropped.append(np.maximum(x[start : start + h_n * n_points].reshape(h_n, n_points), 0.0))
    undone = layout.offsets["undone"]
    deferred = layout.offsets["deferred"]
    return Plan(
        problem=problem,
        solution=solution,
        grid_import_kw=site("grid_import"),
        grid_export_kw=site("grid_export"),
        genset_kw=site("genset"),
        charge_kw=site("charge"),
        discharge_kw=site("discharge"),
        renewable_kw=site("renewable"),
        shed_kw=site("shed"),
        soc_kwh=x[layout.site("soc")],
        work=work,
        undone_accelerator_hours=np.maximum(x[undone : undone + len(problem.jobs)], 0.0),
        deferred_accelerator_hours=np.maximum(x[deferred : deferred + len(problem.jobs)], 0.0),
        route=tuple(routes),
        dropped=tuple(dropped),
    )


def optimise(problem: PlanningProblem, time_limit_s: float = 30.0) -> Plan:
    """Build, solve and decode; :class:`OptimisationError` if HiGHS proves no optimum in time."""
    lp = build(problem)
    solution = solve(lp, time_limit_s)
    if not solution.ok:
        raise OptimisationError(solution.status, solution.seconds)
    return decode(problem, lp, solution)
