"""The policy interface: an :class:`Observation` in, a :class:`Decision` out.

A policy never sees the future. The observation holds the state now (jobs, battery energy,
current signal values and request rates) and a :class:`~wattroute.signals.forecast.History`
that hands out rows up to and including now only; forecasts are made from that.

The simulator enforces every constraint on the decision it gets back (capacity, allowed sites,
parallelism bounds, power envelope) and repairs it if needed, so a policy may be approximate;
repairs are counted in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from wattroute.model.arrays import FleetStatic
from wattroute.signals.forecast import Forecaster, History

HOLD_FOREVER = 2**62
"""``Decision.hold_steps`` meaning "until something changes" (an arrival or a completion)."""


@dataclass(frozen=True, eq=False)
class ActiveJobs:
    """Batch jobs that have arrived and are not finished, arrays of shape ``(n,)``.

    ``site`` is the site index a job runs at now, -1 if it is not running. Times are hours
    relative to now (``deadline_h`` is negative once the deadline has passed).
    """

    ids: np.ndarray
    remaining_accelerator_hours: np.ndarray
    deadline_h: np.ndarray
    min_accelerators: np.ndarray
    max_accelerators: np.ndarray
    site: np.ndarray
    accelerators: np.ndarray
    allowed: np.ndarray  # (n, S) bool
    pending_overhead_h: np.ndarray
    checkpoint_overhead_h: np.ndarray
    migration_overhead_h: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def slack_h(self) -> np.ndarray:
        """Hours a job can still wait and finish on time at full parallelism."""
        return (
            self.deadline_h
            - self.pending_overhead_h
            - self.remaining_accelerator_hours / self.max_accelerators
        )


@dataclass(frozen=True, eq=False)
class ServiceState:
    """One inference service now.

    ``rate_rps`` is the request rate per demand point now, shape ``(P,)``; ``rtt_ms`` and
    ``feasible`` are per (demand point, site), shape ``(P, S)``.
    """

    name: str
    rate_rps: np.ndarray
    rtt_ms: np.ndarray
    feasible: np.ndarray
    replica_throughput_rps: float
    accelerators_per_replica: int


@dataclass(frozen=True, eq=False)
class Observation:
    """What a policy knows at a step.

    Current values (``*_now``) have shape ``(S,)``: price USD/MWh, intensity gCO2eq/kWh,
    renewable generation kW, PUE.
    """

    step: int
    time: pd.Timestamp
    step_h: float
    steps_per_day: int
    carbon_price_usd_per_tonne: float
    fleet: FleetStatic
    jobs: ActiveJobs
    services: tuple[ServiceState, ...]
    soc_kwh: np.ndarray
    price_now: np.ndarray
    carbon_now: np.ndarray
    solar_now: np.ndarray
    wind_now: np.ndarray
    pue_now: np.ndarray
    history: History
    forecaster: Forecaster

    def forecast(self, name: str, horizon: int) -> np.ndarray:
        """Forecast of a signal for the next ``horizon`` steps, shape ``(horizon, S)``.

        ``name`` is one of ``price_usd_per_mwh``, ``carbon_g_per_kwh``, ``solar_kw``,
        ``wind_kw``, ``pue``, ``export_price_usd_per_mwh``.
        """
        return self.history.forecast(name, horizon, self.forecaster, self.steps_per_day)

    def inference_accelerators(self, routing: tuple[np.ndarray, ...]) -> np.ndarray:
        """Accelerators each site needs now to serve the given routing, shape ``(S,)``."""
        need = np.zeros(self.fleet.n_sites)
        for service, shares in zip(self.services, routing, strict=True):
            routed = service.rate_rps @ shares
            replicas = np.ceil(routed / service.replica_throughput_rps - 1e-9)
            need += replicas * service.accelerators_per_replica
        return need


@dataclass(eq=False)
class Decision:
    """What to do from this step on.

    Parameters
    ----------
    job_site
        Site index per active job (aligned with ``Observation.jobs.ids``), -1 to not run it.
    job_accelerators
        Accelerators per active job (0 to not run it).
    routing
        Per service, the share of each demand point's requests sent to each site, shape
        ``(P, S)``, rows summing to at most 1 (the rest is dropped). Replicas follow from the
        routed rate and the replica throughput.
    battery_kw
        Battery set-point per site, kW (positive charges), NaN for merit order; ``None`` for
        merit order everywhere.
    genset_kw
        Genset set-point per site, kW, NaN for merit order; ``None`` for merit order.
    hold_steps
        How many steps the decision stands, unless an arrival or completion comes first.
    """

    job_site: np.ndarray
    job_accelerators: np.ndarray
    routing: tuple[np.ndarray, ...]
    battery_kw: np.ndarray | None = None
    genset_kw: np.ndarray | None = None
    hold_steps: int = 1


class Policy(Protocol):
    """Decides allocations, routing and set-points from an observation."""

    name: str

    def reset(self) -> None:
        """Forget any state from a previous run."""
        ...

    def decide(self, observation: Observation) -> Decision:
        """The decision for the current step."""
        ...
