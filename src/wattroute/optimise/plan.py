"""A solved plan: the LP's columns decoded into named arrays, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattroute.errors import OptimisationError
from wattroute.model import costs
from wattroute.model.power import facility_kw
from wattroute.model.summary import ENERGY_KEYS
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
        return facility_kw(self.problem.fleet, self.problem.pue, self.busy_accelerators()) - (
            self.shed_kw
        )

    def cost_usd(self) -> np.ndarray:
        """Money paid for the plan's power per period and site, USD, ``(H, S)``."""
        p = self.problem
        return costs.energy_cost_usd(
            p.fleet,
            p.period_h,
            self.grid_import_kw,
            self.grid_export_kw,
            self.genset_kw,
            p.price_usd_per_mwh,
            p.export_price_usd_per_mwh,
        )

    def emissions_kg(self) -> np.ndarray:
        """Emissions of the plan's power per period and site, kgCO2eq, ``(H, S)``."""
        p = self.problem
        return costs.emissions_kg(
            p.fleet, p.period_h, self.grid_import_kw, self.genset_kw, p.carbon_g_per_kwh
        )

    def energy_kwh_by_site(self, periods: slice = slice(None)) -> dict[str, np.ndarray]:
        """Energy by source and sink per site, kWh, ``(S,)`` each, keyed as a summary's
        ``energy_kwh`` (:data:`~wattroute.model.summary.ENERGY_KEYS`). Renewables used are split
        between solar and wind in proportion to what each could give."""
        p, dt = self.problem, self.problem.period_h
        solar, wind = p.solar_kw[periods], p.wind_kw[periods]
        renewable = self.renewable_kw[periods]
        with np.errstate(divide="ignore", invalid="ignore"):
            solar_share = np.where(solar + wind > 0, solar / (solar + wind), 0.0)
        flows = {
            "grid": self.grid_import_kw[periods],
            "solar": renewable * solar_share,
            "wind": renewable * (1 - solar_share),
            "genset": self.genset_kw[periods],
            "battery_charge": self.charge_kw[periods],
            "battery_discharge": self.discharge_kw[periods],
            "curtailed": self.curtailed_kw[periods],
            "export": self.grid_export_kw[periods],
            "load": self.load_kw()[periods],
            "unserved": self.shed_kw[periods],
        }
        return {key: dt * flows[key].sum(axis=0) for key in ENERGY_KEYS}

    def totals(self, periods: slice = slice(None)) -> dict[str, float]:
        """Energy by source (kWh), cost (USD), emissions (kg) and penalties (USD) of the plan,
        or of some of its ``periods`` (deadline penalties and undone work are the whole plan's:
        they belong to no period)."""
        p, dt = self.problem, self.problem.period_h
        energy = {key: float(v.sum()) for key, v in self.energy_kwh_by_site(periods).items()}
        dropped = sum(float(d[periods].sum()) for d in self.dropped) * dt * 3600.0
        requests = sum(float(s.rate_rps[periods].sum()) for s in p.services) * dt * 3600.0
        undone = float(self.undone_accelerator_hours.sum())
        return {
            "cost_usd": float(self.cost_usd()[periods].sum()),
            "emissions_kg": float(self.emissions_kg()[periods].sum()),
            **energy,
            "requests": requests,
            "dropped": dropped,
            "undone_accelerator_hours": undone,
            "deadline_penalty_usd": undone * p.deadline_penalty_usd_per_accelerator_hour,
            "slo_penalty_usd": dropped * p.slo_penalty_usd_per_request,
            "shed_penalty_usd": energy["unserved"] * p.shed_penalty_usd_per_kwh,
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


def optimise(problem: PlanningProblem, time_limit_s: float = 30.0, crash: bool = False) -> Plan:
    """Build, solve and decode; :class:`OptimisationError` if HiGHS proves no optimum in time.
    ``crash``: start from the crash basis (see :func:`~wattroute.optimise.solver.solve`)."""
    lp = build(problem)
    solution = solve(lp, time_limit_s, crash=crash)
    if not solution.ok:
        raise OptimisationError(solution.status, solution.seconds)
    return decode(problem, lp, solution)
