"""Small fleets and scenarios in code on one start time (the builders of
:mod:`wattroute.scenario.build`), a two-site fleet, and the path to the real data."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import pytest

from benchmarks.shared_data import SHARED_DATA
from wattroute.model import Battery, DemandPoint, Genset, Scenario
from wattroute.policies.base import Decision, Observation
from wattroute.runtime.records import JobRecord
from wattroute.scenario import build

START = pd.Timestamp("2023-06-01T00:00Z")
STEP = build.STEP


def needs_shared_data() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not SHARED_DATA.is_dir(),
        reason=f"{SHARED_DATA} is absent (set WATTROUTE_DATA_DIR to the data folder)",
    )


signal = partial(build.signal, start=START)
site = partial(build.site, start=START)
job = partial(build.job, start=START)
service = partial(build.service, start=START)
scenario = partial(build.scenario, start=START, name="test")


def small_fleet(days: int = 2) -> Scenario:
    """Site ``a``: solar (a sine by day), a battery and a price rising over the period; site
    ``b``: grid only, a degree north; demand point ``p`` at site ``a``."""
    n = days * 288
    sun = np.clip(np.sin(np.linspace(0, 2 * days * np.pi, n) - np.pi / 2), 0, None)
    return scenario(
        [
            site(
                "a",
                n=n,
                accelerators=8,
                idle_kw=0.1,
                solar_kw=6.0,
                solar_profile=sun,
                battery=Battery(20, 5, 5, 0.9, 0.1, 1.0, 0.5),
                price=np.linspace(20, 80, n),
            ),
            site("b", n=n, accelerators=8, idle_kw=0.1, latitude=41.0),
        ],
        n=n,
        points=[DemandPoint("p", 40.0, -100.0)],
    )


def job_record(
    i: int,
    submitted: pd.Timestamp,
    work: float = 4.0,
    slack: float = 6.0,
    tenant: str = "t",
    idempotency_key: str | None = None,
) -> JobRecord:
    """Job ``job-{i}`` as the store holds it: ``work`` accelerator-hours on 1 to 2
    accelerators, submitted at ``submitted``, due its run at full parallelism plus ``slack``
    hours later, with a 0.1 h checkpoint."""
    return JobRecord(
        id=f"job-{i}",
        tenant=tenant,
        name=f"j{i}",
        submitted_at=submitted,
        deadline=submitted + pd.Timedelta(hours=work / 2 + slack),
        work_accelerator_hours=work,
        min_accelerators=1,
        max_accelerators=2,
        checkpoint_overhead_h=0.1,
        idempotency_key=idempotency_key,
    )


__all__ = [
    "SHARED_DATA",
    "START",
    "STEP",
    "Battery",
    "DemandPoint",
    "Genset",
    "job",
    "job_record",
    "needs_shared_data",
    "scenario",
    "service",
    "signal",
    "site",
    "small_fleet",
]


class Scripted:
    """A policy that runs job 0 on one accelerator at the site ``plan(step)`` names (-1:
    stopped); the other jobs wait and no inference is served."""

    name = "scripted"

    def __init__(self, plan: Callable[[int], int]) -> None:
        self.plan = plan

    def reset(self) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def decide(self, observation: Observation) -> Decision:
        n = len(observation.jobs)
        site_of = np.full(n, -1)
        acc = np.zeros(n, dtype=int)
        if n:
            where = self.plan(observation.step)
            if where >= 0:
                site_of[0], acc[0] = where, 1
        return Decision(
            site_of, acc, tuple(np.zeros(s.feasible.shape) for s in observation.services)
        )
