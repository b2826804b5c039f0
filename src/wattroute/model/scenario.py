"""A scenario: a fleet, its workloads and a period, ready to simulate."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from wattroute.model.fleet import Site
from wattroute.model.network import Network
from wattroute.model.workloads import BatchJob, DemandPoint, InferenceService


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
