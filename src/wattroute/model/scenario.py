"""A scenario: a fleet, its workloads and a period, ready to simulate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from wattroute.model import _checks as check
from wattroute.model.fleet import Site
from wattroute.model.network import Network
from wattroute.model.workloads import BatchJob, DemandPoint, InferenceService
from wattroute.signals.signal import Signal


@dataclass(frozen=True)
class Penalties:
    """Penalty prices that enter ``objective_usd`` so that skipping work never looks cheap.

    Parameters
    ----------
    deadline_miss_usd_per_accelerator_hour
        Charged per accelerator-hour of work still undone at a job's deadline, USD.
    slo_violation_usd_per_request
        Charged per inference request not served within its SLO (late or dropped), USD.
    """

    deadline_miss_usd_per_accelerator_hour: float = 10.0
    slo_violation_usd_per_request: float = 0.001

    def __post_init__(self) -> None:
        check.number(
            "penalties.deadline_miss_usd_per_accelerator_hour",
            self.deadline_miss_usd_per_accelerator_hour,
            "give USD per accelerator-hour of work undone at a deadline, 0 or more",
            least=0,
        )
        check.number(
            "penalties.slo_violation_usd_per_request",
            self.slo_violation_usd_per_request,
            "give USD per request not served within its SLO, 0 or more",
            least=0,
        )


@dataclass(frozen=True, eq=False)
class Scenario:
    """Everything a simulation needs, with every signal on the step grid.

    Parameters
    ----------
    name
        Short name, used in reports.
    start, end
        Simulated period [start, end), UTC.
    step
        Simulation step.
    sites, demand_points, services, jobs
        The fleet and its workloads.
    network
        Latency between demand points and sites.
    carbon_price_usd_per_tonne
        Price put on emissions in the objective, USD per tonne CO2eq.
    carbon_intensity_kind
        ``"average"`` or ``"marginal"``: the kind of grid intensity every site's signal is.
    penalties
        Penalty prices for late work and SLO violations.
    description
        What is modelled and what is measured.
    notes
        Things the loader did that a reader of the results should know (gaps filled, jobs
        excluded), copied into the summary.
    """

    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    step: pd.Timedelta
    sites: tuple[Site, ...]
    demand_points: tuple[DemandPoint, ...] = ()
    services: tuple[InferenceService, ...] = ()
    jobs: tuple[BatchJob, ...] = ()
    network: Network = field(default_factory=Network)
    carbon_price_usd_per_tonne: float = 0.0
    carbon_intensity_kind: str = "average"
    penalties: Penalties = field(default_factory=Penalties)
    description: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check.name("name", self.name, "give the scenario a short name")
        self._check_period()
        check.number(
            "carbon_price_usd_per_tonne",
            self.carbon_price_usd_per_tonne,
            "give USD per tonne CO2eq, 0 or more",
            least=0,
        )
        if self.carbon_intensity_kind not in ("average", "marginal"):
            check.fail(
                "carbon_intensity_kind",
                f"must be 'average' or 'marginal', got {self.carbon_intensity_kind!r}.",
                "name the kind of grid intensity every site's carbon signal is",
            )
        if not self.sites:
            check.fail("sites", "no site.", "give at least one Site")
        for kind, names in (
            ("sites", [s.name for s in self.sites]),
            ("demand_points", [p.name for p in self.demand_points]),
            ("services", [s.name for s in self.services]),
            ("jobs", [j.name for j in self.jobs]),
        ):
            check.unique(kind, names, "give every entry its own name")
        for site in self.sites:
            self._check_on_grid(site)
        self._check_services()
        self._check_jobs()

    def _check_period(self) -> None:
        when = "give a timezone-aware pandas.Timestamp, e.g. pd.Timestamp('2023-06-01T00:00Z')"
        check.aware_time("start", self.start, when)
        check.aware_time("end", self.end, when)
        if not self.end > self.start:
            check.fail(
                "end", f"must be after start {self.start}, got {self.end}.", "move end later"
            )
        if not isinstance(self.step, timedelta) or not self.step > timedelta(0):
            check.fail(
                "step",
                f"must be a positive duration, got {self.step!r}.",
                "give e.g. pd.Timedelta('5min')",
            )
        if (self.end - self.start) % self.step:
            check.fail(
                "end",
                f"the period {self.start} .. {self.end} is not a whole number of {self.step} "
                "steps.",
                "move end so that end - start is a multiple of step",
            )

    def _check_on_grid(self, site: Site) -> None:
        """Every signal of a site covers the period."""
        signals = [
            ("temperature_c", site.temperature_c),
            ("solar.profile", site.solar.profile if site.solar else None),
            ("wind.profile", site.wind.profile if site.wind else None),
        ]
        if site.grid is not None:
            signals += [
                ("grid.price", site.grid.price),
                ("grid.carbon", site.grid.carbon),
                ("grid.export_price", site.grid.export_price),
            ]
        for name, signal in signals:
            if signal is not None:
                self._check_signal(f"sites[{site.name}].{name}", signal)

    def _check_signal(self, field: str, signal: Signal) -> None:
        """A signal is read by step index from ``start``: it needs a value for every step
        (values after the end are not read)."""
        if len(signal) < self.n_steps:
            check.fail(
                field,
                f"has {len(signal)} values but the scenario has {self.n_steps} steps of "
                f"{self.step}.",
                "give one value per step of the scenario",
            )

    def _check_services(self) -> None:
        points = {p.name for p in self.demand_points}
        for service in self.services:
            for demand in service.demand:
                at = f"services[{service.name}].demand[{demand.point}]"
                if demand.point not in points:
                    check.fail(
                        f"{at}.point",
                        f"unknown demand point {demand.point!r}.",
                        "add it to demand_points, or use one of: "
                        + (", ".join(sorted(points)) or "(none defined)"),
                    )
                self._check_signal(f"{at}.rate_rps", demand.rate_rps)

    def _check_jobs(self) -> None:
        counts = {s.name: s.accelerators.count for s in self.sites}
        largest = max(counts.values())
        start, end = self.start, self.end
        for job in self.jobs:
            if not start <= job.arrival < end:
                check.fail(
                    f"jobs[{job.name}].arrival",
                    f"{job.arrival} is outside the period {start} .. {end}.",
                    "move the arrival into the period",
                )
            most = largest
            if job.allowed_sites is not None:
                unknown = [n for n in job.allowed_sites if n not in counts]
                if unknown:
                    check.fail(
                        f"jobs[{job.name}].allowed_sites",
                        f"unknown site(s) {', '.join(unknown)}.",
                        f"use site names: {', '.join(counts)}",
                    )
                most = max(counts[n] for n in job.allowed_sites)
            if job.min_accelerators > most:
                check.fail(
                    f"jobs[{job.name}].min_accelerators",
                    f"needs {job.min_accelerators} accelerators but the largest allowed site "
                    f"has {most}.",
                    f"lower min_accelerators to at most {most}",
                )

    @property
    def n_steps(self) -> int:
        return int((self.end - self.start) / self.step)

    @property
    def step_h(self) -> float:
        """Step length in hours."""
        return self.step.total_seconds() / 3600.0

    @property
    def times(self) -> pd.DatetimeIndex:
        """Start of every step, UTC."""
        return pd.date_range(self.start, periods=self.n_steps, freq=self.step)

    def site_index(self, name: str) -> int:
        for i, site in enumerate(self.sites):
            if site.name == name:
                return i
        raise KeyError(name)
