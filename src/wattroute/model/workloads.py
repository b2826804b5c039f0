"""Workloads: latency-bound inference services and deferrable batch jobs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from wattroute.errors import InputError
from wattroute.model import _checks as check
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

    def __post_init__(self) -> None:
        at = f"demand_points[{self.name}]"
        check.place(at, self.name, self.latitude, self.longitude, "demand point")


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

    def __post_init__(self) -> None:
        at = f"demand[{self.point}]"
        check.name(f"{at}.point", self.point, "name the demand point the requests come from")
        check.series(
            f"{at}.rate_rps",
            self.rate_rps,
            "give a request rate in requests per second, 0 or more, for every step",
            least=0,
        )


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

    def __post_init__(self) -> None:
        at = f"services[{self.name}]"
        check.name(f"{at}.name", self.name, "give the service a name")
        check.number(
            f"{at}.latency_slo_ms",
            self.latency_slo_ms,
            "give the end-to-end latency objective in ms",
            above=0,
        )
        check.number(
            f"{at}.service_time_ms",
            self.service_time_ms,
            "give the time a replica takes to answer one request, in ms",
            least=0,
        )
        if self.service_time_ms >= self.latency_slo_ms:
            check.fail(
                f"{at}.service_time_ms",
                f"{self.service_time_ms} ms leaves no time for the network within the "
                f"{self.latency_slo_ms} ms SLO.",
                "lower service_time_ms or raise latency_slo_ms",
            )
        check.number(
            f"{at}.replica_throughput_rps",
            self.replica_throughput_rps,
            "give the requests per second one replica sustains within the SLO",
            above=0,
        )
        check.whole(
            f"{at}.accelerators_per_replica",
            self.accelerators_per_replica,
            "give the accelerators one replica occupies, 1 or more",
            least=1,
        )


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

    def __post_init__(self) -> None:
        # A scenario may hold ~100k jobs: plain comparisons first (NaN fails them all), the
        # detailed checks only to say what is wrong.
        allowed = self.allowed_sites
        try:
            ok = bool(
                type(self.name) is str
                and self.name
                and type(self.min_accelerators) is int
                and type(self.max_accelerators) is int
                and 1 <= self.min_accelerators <= self.max_accelerators
                and 0.0 < self.work_accelerator_hours < math.inf
                and 0.0 <= self.checkpoint_overhead_h < math.inf
                and 0.0 <= self.migration_overhead_h < math.inf
                and isinstance(self.arrival, pd.Timestamp)
                and isinstance(self.deadline, pd.Timestamp)
                and self.arrival.tzinfo is not None
                and self.deadline.tzinfo is not None
                and self.arrival < self.deadline
                and (allowed is None or (type(allowed) is tuple and allowed))
            )
        except TypeError:  # a value of the wrong type
            ok = False
        if not ok:
            self._explain()
        elif allowed is not None:
            for site in allowed:
                if type(site) is not str or not site:
                    self._explain()

    def _explain(self) -> None:
        at = f"jobs[{self.name}]"
        check.name(f"{at}.name", self.name, "give the job a name")
        check.number(
            f"{at}.work_accelerator_hours",
            self.work_accelerator_hours,
            "give the work to do in accelerator-hours",
            above=0,
        )
        check.whole(
            f"{at}.min_accelerators",
            self.min_accelerators,
            "give the fewest accelerators the job runs on, 1 or more",
            least=1,
        )
        check.whole(
            f"{at}.max_accelerators",
            self.max_accelerators,
            "give the most accelerators the job runs on, at least min_accelerators",
            least=1,
        )
        if self.min_accelerators > self.max_accelerators:
            check.fail(
                f"{at}.max_accelerators",
                f"must not be below min_accelerators ({self.min_accelerators}), got "
                f"{self.max_accelerators}.",
                "raise max_accelerators or lower min_accelerators",
            )
        for field, value in (
            ("checkpoint_overhead_h", self.checkpoint_overhead_h),
            ("migration_overhead_h", self.migration_overhead_h),
        ):
            check.number(f"{at}.{field}", value, "give hours lost, 0 or more", least=0)
        when = "give a timezone-aware pandas.Timestamp, e.g. pd.Timestamp('2023-06-01T00:00Z')"
        check.aware_time(f"{at}.arrival", self.arrival, when)
        check.aware_time(f"{at}.deadline", self.deadline, when)
        if not self.arrival < self.deadline:
            check.fail(
                f"{at}.deadline",
                f"must be after the arrival {self.arrival}, got {self.deadline}.",
                "move the deadline later or the arrival earlier",
            )
        allowed = self.allowed_sites
        if allowed is not None:
            if type(allowed) is not tuple:
                check.fail(
                    f"{at}.allowed_sites",
                    f"must be a tuple of site names or None, got {allowed!r}.",
                    "write e.g. allowed_sites=('paris',), or None for any site",
                )
            if not allowed:
                check.fail(
                    f"{at}.allowed_sites",
                    "no site allowed.",
                    "list at least one site, or give None for any site",
                )
            for site in allowed:
                check.name(f"{at}.allowed_sites", site, "list site names")

    @property
    def min_duration_h(self) -> float:
        """Shortest possible run time, hours: the work at full parallelism."""
        return self.work_accelerator_hours / self.max_accelerators


def allowed_site_names(
    allowed: Sequence[str] | None, names: Sequence[str], field: str = "allowed_sites"
) -> tuple[str, ...]:
    """The sites a request may run at, in the fleet's order: those of ``names`` it allows
    (``None``: every one).

    Raises
    ------
    InputError
        On ``field``: a site the fleet has not, or an empty list.
    """
    if allowed is not None:
        unknown = [s for s in allowed if s not in names]
        if unknown:
            raise InputError(
                field,
                f"unknown site(s) {', '.join(map(repr, unknown))}.",
                f"use sites of the fleet: {', '.join(names)}.",
            )
        if not allowed:
            raise InputError(field, "no site allowed.", "list at least one site.")
    return tuple(s for s in names if allowed is None or s in allowed)
