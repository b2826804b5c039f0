"""The carbon-agnostic baseline of a live run: what the same fleet, the same jobs, services,
grid events and operator changes would have cost under the ``agnostic`` policy.

A :class:`Baseline` is a second controller in memory, on the replayed signals, with its own
batteries and jobs. The live controller steps it once per tick, just before committing, and
keeps its running totals and battery state in the tick (``state["baseline"]``), so that the
API of any process can read it and a restarted controller resumes it where it was. After a
restart its jobs are taken as the live run left them (their progress under the baseline is
not kept); its totals and batteries carry on.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from wattroute.model.scenario import Scenario
from wattroute.runtime.clock import Clock
from wattroute.runtime.records import (
    GridEventRecord,
    JobRecord,
    MemoryStore,
    ServiceRecord,
    SiteOverride,
    SiteReading,
    TickRecord,
)

log = logging.getLogger("wattroute.controller")

POLICY = "agnostic"


@runtime_checkable
class BaselineSource(Protocol):
    """What the baseline reads of the live run's store."""

    def active_jobs(self) -> list[JobRecord]: ...

    def job(self, job_id: str) -> JobRecord | None: ...

    def services(self) -> list[ServiceRecord]: ...

    def grid_events(self, start: pd.Timestamp, end: pd.Timestamp) -> list[GridEventRecord]: ...

    def site_overrides(self) -> dict[str, SiteOverride]: ...

    def site_readings(self) -> dict[str, SiteReading]: ...

    def last_tick(self) -> TickRecord | None: ...


class _ShortMemory(MemoryStore):
    """A memory store that keeps only the last tick (a baseline runs for the whole period)."""

    def commit_tick(
        self, tick: TickRecord, jobs: list[JobRecord], events: list[GridEventRecord]
    ) -> None:
        super().commit_tick(tick, jobs, events)
        with self._lock:
            del self.ticks[:-1]


class Baseline:
    """The ``agnostic`` policy run beside a live controller.

    Parameters
    ----------
    scenario
        The live fleet (its replayed signals are the baseline's).
    source
        The live store: jobs, services, grid events, overrides and readings are mirrored from
        it at every step.
    clock
        The live clock.
    """

    def __init__(self, scenario: Scenario, source: BaselineSource, clock: Clock) -> None:
        from wattroute.policies import get_policy
        from wattroute.runtime.controller import ControllerOptions, build_controller

        self.scenario = scenario
        self.source = source
        self.memory = _ShortMemory()
        self._seen: set[str] = set()  # the live jobs taken in so far
        self._ended: set[str] = set()  # those the live run has finished with
        last = source.last_tick()
        saved = None if last is None else last.state.get("baseline")
        if last is not None and saved is not None:
            # Resume: the baseline's totals and batteries as of the last committed tick.
            self.memory.ticks.append(
                TickRecord(
                    last.time,
                    last.step,
                    0.0,
                    False,
                    (),
                    {},
                    {},
                    {"soc_kwh": saved["soc_kwh"], "totals": saved["totals"]},
                )
            )
            for job in source.active_jobs():
                self.memory.add_job(job)
                self._seen.add(job.id)
        self.controller = build_controller(
            scenario,
            self.memory,
            get_policy(POLICY),
            clock,
            options=ControllerOptions(check_balance=False, heartbeat_s=1e9),
        )

    def step(self, k: int, live: Sequence[JobRecord]) -> dict[str, Any]:
        """Decide and enact step ``k`` under the baseline policy, ``live`` being the live
        run's active jobs as its controller loaded them for this step; what to keep in the
        live tick: ``{"totals": RunningTotals JSON, "soc_kwh": [kWh per site]}``."""
        self._mirror(k, live)
        if self.controller.next_step < k:
            self.controller.advance_to(k)
        tick = self.controller.tick()
        with self.memory._lock:  # finished jobs are of no further use
            for job_id in [j for j, job in self.memory.jobs.items() if not job.active]:
                del self.memory.jobs[job_id]
        return {"totals": tick.state["totals"], "soc_kwh": tick.state["soc_kwh"]}

    def _mirror(self, k: int, live_jobs: Sequence[JobRecord]) -> None:
        """Take in what changed in the live run: new jobs (from the start, as submitted),
        cancellations, services, grid events, overrides and meter readings."""
        memory, source = self.memory, self.source
        live = {j.id: j for j in live_jobs}
        with memory._lock:
            mine = list(memory.jobs)
        for job_id, job in live.items():
            if job_id not in self._seen:
                memory.add_job(_as_submitted(job))
                self._seen.add(job_id)
        for job_id in mine:
            if job_id in live or job_id in self._ended:
                continue
            # The live run is done with it: cancelled, the baseline stops it too; otherwise
            # it runs on under the baseline, and is not asked about again.
            now = source.job(job_id)
            if now is not None and now.state == "cancelled":
                with memory._lock:
                    memory.jobs[job_id].state = "cancelled"
            self._ended.add(job_id)
        now_t = self.scenario.start + k * self.scenario.step
        events = source.grid_events(now_t - self.scenario.step, now_t + 2 * self.scenario.step)
        with memory._lock:
            memory.service_records = {s.key: copy.deepcopy(s) for s in source.services()}
            for e in events:
                if e.id not in memory.events:
                    memory.events[e.id] = dataclasses.replace(
                        e, peak_kw=0.0, complied=None, compliance_s=None
                    )
            memory.overrides = copy.deepcopy(source.site_overrides())
            memory.readings = copy.deepcopy(source.site_readings())


def _as_submitted(job: JobRecord) -> JobRecord:
    """``job`` as it was submitted: queued, no progress."""
    return dataclasses.replace(
        job,
        state="queued",
        done_accelerator_hours=0.0,
        site=None,
        accelerators=0,
        last_site=None,
        pending_overhead_h=0.0,
        overhead_paid_h=0.0,
        moves=0,
        stops=0,
        completed_at=None,
        remaining_at_deadline=None,
        error=None,
    )
