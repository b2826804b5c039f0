"""Workloads: latency-bound inference services and deferrable batch jobs."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from wattroute.signals.signal import Signal


@dataclass(frozen=True)
class DemandPoint:
    """Where requests originate, e.g. a factory's robot fleet.

    Parameters
    ----------
    name
        Unique name.
    latitude, longitude
        Location, decimal degrees.
    zone
        Grid zone code of the point, if it should use the measured latency matrix.
    """

    name: str
    latitude: float
    longitude: float
    zone: str | None = None


@dataclass(frozen=True, eq=False)
class Demand:
    """Requests from one demand point to one service.

    Parameters
    ----------
    point
        Name of the :class:`DemandPoint`.
    rate_rps
        Request rate per step, requests per second.
    """

    point: str
    rate_rps: Signal


@dataclass(frozen=True, eq=False)
class InferenceService:
    """A latency-bound inference service.

    A request from a demand point may be served at a site only if the network round trip plus
    ``service_time_ms`` fits within ``latency_slo_ms``.

    Parameters
    ----------
    name
        Unique name.
    latency_slo_ms
        End-to-end latency objective, ms.
    service_time_ms
        Time a replica takes to answer one request, ms.
    replica_throughput_rps
        Requests per second one replica sustains within the SLO.
    accelerators_per_replica
        Accelerators one replica occupies.
    demand
        Request streams by demand point.
    """

    name: str
    latency_slo_ms: float
    service_time_ms: float
    replica_throughput_rps: float
    accelerators_per_replica: int
    demand: tuple[Demand, ...]


@dataclass(frozen=True)
class BatchJob:
    """A deferrable batch job (training, fine-tuning, offline inference).

    Work scales linearly with the accelerators given, between ``min_accelerators`` and
    ``max_accelerators``. A job that stops pays ``checkpoint_overhead_h`` of accelerator time
    without progress when it resumes; if it resumes at another site it also pays
    ``migration_overhead_h``. Changing the accelerator count at the same site is free.

    Parameters
    ----------
    name
        Unique name.
    arrival
        When the job is submitted (UTC).
    work_accelerator_hours
        Work to do, accelerator-hours.
    min_accelerators, max_accelerators
        Parallelism bounds, accelerators.
    deadline
        When the work must be done (UTC).
    checkpoint_overhead_h
        Hours of run time lost to checkpoint and restore after each stop.
    migration_overhead_h
        Extra hours lost when the job resumes at a different site.
    allowed_sites
        Sites the job may run at (data residency); ``None`` means any.
    """

    name: str
    arrival: pd.Timestamp
    work_accelerator_hours: float
    min_accelerators: int
    max_accelerators: int
    deadline: pd.Timestamp
    checkpoint_overhead_h: float = 0.0
    migration_overhead_h: float = 0.0
    allowed_sites: tuple[str, ...] | None = None

    @property
    def min_duration_h(self) -> float:
        """Shortest possible run time, hours: the work at full parallelism."""
        return self.work_accelerator_hours / self.max_accelerators
