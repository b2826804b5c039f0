"""The Ray executor: the controller's decisions move real work on a Ray cluster.

A site is one or more Ray nodes carrying the custom resource ``site:<name>``, sized to its
accelerators. Each running batch job is a :class:`~wattroute.execution.actors.JobRunner`
actor asking for ``site:<name>`` units equal to its accelerators; each inference replica a
:class:`~wattroute.execution.actors.Replica` actor asking for its service's accelerators per
replica, named ``replica/<service>/<site>/<n>`` so that the API's gateway (in any process)
can find it.

The executor keeps a *desired* state (set at every tick by :meth:`RayExecutor.execute` and
between ticks by :meth:`RayExecutor.enact`) and a reconcile loop, every ``reconcile_s``,
converges what runs towards it:

* a job that must stop or move is asked to checkpoint and return (``ctx.should_stop()``);
  it starts at its new site, from that checkpoint, once it has returned (so it never runs
  twice); one that does not return within ``stop_timeout_s`` is killed and resumes from its
  last periodic checkpoint;
* a job whose node disappears resumes the same way, wherever the next plan puts it; a site
  with no live node is reported unavailable until one comes back;
* replicas are started and stopped to the counts the plan's routing needs.

What the executor reports at a tick is what actually ran: accelerators busy, integrated over
the wall time since the previous tick, priced through the simulator's power model (merit order,
battery) against the actual signals. A job's progress is the share of its work its last
checkpoint stands for: what a restart would resume from.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayError

from wattroute.execution.actors import (
    JOB_RUNNER_THREADS,
    NAMESPACE,
    REPLICA_THREADS,
    RemoteJobRunner,
    RemoteReplica,
    site_resource,
)
from wattroute.execution.checkpoints import CheckpointStore
from wattroute.model.arrays import FleetSignals, FleetStatic, ServiceArrays
from wattroute.model.tolerances import ROUNDING
from wattroute.runtime.executor import Allocation, SimulatedExecutor, StepReport
from wattroute.sim.dispatch import GridTerms
from wattroute.sim.inference import route
from wattroute.sim.jobs import JobTable

log = logging.getLogger("wattroute.ray")

REPLICA_PREFIX = "replica/"


def replica_name(service: str, site: str, n: int) -> str:
    """The actor name of replica ``n`` of ``service`` (its key, ``tenant/name``) at ``site``."""
    return f"{REPLICA_PREFIX}{service}/{site}/{n}"


def parse_replica_name(name: str) -> tuple[str, str] | None:
    """(service key, site) of a replica actor's name, or ``None`` if it is not one. The key
    is ``tenant/name`` (neither part holds a ``/``); a site name may."""
    if not name.startswith(REPLICA_PREFIX):
        return None
    parts = name[len(REPLICA_PREFIX) :].split("/")
    if len(parts) < 4 or not parts[-1].isdigit():
        return None
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:-1])


@dataclass
class RayOptions:
    """How the Ray executor behaves.

    Parameters
    ----------
    checkpoint_root
        Where jobs keep checkpoints: a directory every node can reach, or an fsspec URL.
    reconcile_s
        Seconds between reconcile passes.
    stop_timeout_s
        Seconds a job gets to checkpoint and return before it is killed.
    node_check_s
        Seconds between checks of which sites have live nodes.
    suspect_s
        Seconds a site where a job was just lost gets no new work (jobs or replicas) unless
        Ray has declared its node dead by then: a node that dies takes its actors with it
        before Ray notices (about 2 s here), and work started there meanwhile is lost again.
        What still runs at the site keeps running.
    """

    checkpoint_root: str
    reconcile_s: float = 0.1
    stop_timeout_s: float = 30.0
    node_check_s: float = 0.5
    suspect_s: float = 5.0


@dataclass
class _Want:
    site: str
    accelerators: int
    function: str
    args: dict[str, Any]


@dataclass
class _Run:
    job_id: str
    site: str
    accelerators: int
    attempt: int
    actor: Any
    ref: Any
    ping: Any
    started: bool = False
    stopping: bool = False
    stop_asked_at: float = 0.0
    began_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Transition:
    """Something the executor did, for logs and the demo: ``what`` is started, stopped,
    lost, completed or failed."""

    at: float
    job_id: str
    what: str
    site: str
    accelerators: int
    detail: str = ""


class RayExecutor:
    """Runs the controller's allocations on a Ray cluster (connected with ``ray.init``).

    Parameters
    ----------
    fleet, actual, step_h
        The fleet, its actual signals and the step (for the power model).
    options
        Checkpoint root and timings.
    check_balance
        Verify the power model's energy balance at every step.
    terms
        Where the grid pays to take power or exporting costs, for the power model.
    """

    def __init__(
        self,
        fleet: FleetStatic,
        actual: FleetSignals,
        step_h: float,
        options: RayOptions,
        check_balance: bool = True,
        terms: GridTerms | None = None,
    ) -> None:
        if not ray.is_initialized():
            raise RuntimeError("connect to a Ray cluster (ray.init) before building the executor")
        self.model = SimulatedExecutor(fleet, actual, step_h, check_balance, terms)
        self.fleet = fleet
        self.options = options
        self.checkpoints = CheckpointStore(options.checkpoint_root)
        self.sites = fleet.names
        self._index = {name: i for i, name in enumerate(fleet.names)}
        self._lock = threading.RLock()
        self._desired: dict[str, _Want] = {}
        self._runs: dict[str, _Run] = {}
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._ended: set[str] = set()  # completed or failed: never started again
        self._progress: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        self._replicas_wanted: dict[tuple[str, str], int] = {}
        self._replicas: dict[tuple[str, str], list[Any]] = {}
        self._replica_acc: dict[str, int] = {}
        self._handlers: dict[str, str | None] = {}
        self._allocation: Allocation | None = None
        self._services: tuple[ServiceArrays, ...] = ()
        self._alive: frozenset[str] = frozenset(fleet.names)
        self._suspect_until: dict[str, float] = {}  # site -> monotonic time
        self._last_node_check = 0.0
        self._batch_acc_s = np.zeros(fleet.n_sites)
        self._inference_acc_s = np.zeros(fleet.n_sites)
        self._integrated_since = time.monotonic()
        self._elapsed = 0.0
        self.transitions: list[Transition] = []
        self.listeners: list[Callable[[Transition], None]] = []
        self._closed = threading.Event()
        self._check_nodes(force=True)
        self._thread = threading.Thread(target=self._loop, name="ray-reconcile", daemon=True)
        self._thread.start()

    # -- the Executor interface ----------------------------------------------------------

    @property
    def soc_kwh(self) -> np.ndarray:
        return self.model.soc_kwh

    def restore(self, soc_kwh: np.ndarray) -> None:
        self.model.restore(soc_kwh)

    def execute(
        self,
        step: int,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> StepReport:
        with self._lock:
            self._want(jobs, ids, allocation, services)
            self.reconcile()
            batch, inference = self._take_means()
            jobs.apply_allocation(ids, allocation.site, allocation.accelerators, step)
            failures = self._report_jobs(jobs, ids, step)
        report = self.model.account(step, batch, allocation, services, inference)
        report.failures.update(failures)
        return report

    def enact(
        self,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> None:
        with self._lock:
            self._want(jobs, ids, allocation, services)
            self.reconcile()
        jobs.place(ids, allocation.site, allocation.accelerators)

    def load_kw_now(self, pue: np.ndarray) -> np.ndarray:
        with self._lock:
            allocation = self._allocation
            if allocation is None:
                return np.zeros(self.fleet.n_sites)
            batch, inference = self._busy_now()
            it = self.model.it_kw(batch, allocation, self._services, inference)
        return it * pue

    def unavailable_sites(self) -> frozenset[str]:
        return frozenset(self.sites) - self._alive

    def close(self) -> None:
        """Stop the reconcile loop and every actor this executor started."""
        self._closed.set()
        self._thread.join(timeout=30)
        with self._lock:
            for run in self._runs.values():
                _kill(run.actor)
            for handles in self._replicas.values():
                for handle in handles:
                    _kill(handle)
            self._runs.clear()
            self._replicas.clear()

    # -- what is wanted --------------------------------------------------------------------

    def _want(
        self,
        jobs: JobTable,
        ids: np.ndarray,
        allocation: Allocation,
        services: tuple[ServiceArrays, ...],
    ) -> None:
        desired: dict[str, _Want] = {}
        for pos, i in enumerate(ids):
            job_id = jobs.spec.names[int(i)]
            s, a = int(allocation.site[pos]), int(allocation.accelerators[pos])
            code = allocation.code.get(job_id)
            if s < 0 or a <= 0 or code is None:
                continue
            desired[job_id] = _Want(self.sites[s], a, code[0], dict(code[1]))
        self._desired = desired
        self._allocation = allocation
        self._services = services
        wanted: dict[tuple[str, str], int] = {}
        if services:
            load = route(services, allocation.routing, 0, 1)
            # Where the decision powers fewer accelerators than a site has (its power is short
            # and batch work is already stopped there), replicas fit in what is powered.
            limit = np.asarray(allocation.accelerator_limit, dtype=float)
            capped = limit < self.fleet.accelerators
            room = limit - np.bincount(
                np.array([self._index[w.site] for w in desired.values()], dtype=np.int64),
                weights=np.array([w.accelerators for w in desired.values()], dtype=float),
                minlength=len(self.sites),
            )
            for k, service in enumerate(services):
                per = service.accelerators_per_replica
                self._replica_acc[service.name] = per
                self._handlers[service.name] = allocation.handlers.get(service.name)
                routed = load.routed_rps[k][0]
                for s, name in enumerate(self.sites):
                    count = math.ceil(routed[s] / service.replica_throughput_rps - ROUNDING)
                    if capped[s]:
                        count = min(count, int(max(room[s], 0.0) // per))
                        room[s] -= count * per
                    if count > 0:
                        wanted[(service.name, name)] = count
        self._replicas_wanted = wanted

    # -- the reconcile loop ----------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closed.wait(self.options.reconcile_s):
            try:
                with self._lock:
                    self.reconcile()
            except Exception:
                log.exception("reconcile failed")

    def reconcile(self) -> None:
        """One pass: account, collect what ended, check nodes, stop, start, scale."""
        self._integrate()
        self._collect()
        self._check_nodes()
        self._refresh_progress()
        self._stop_unwanted()
        self._start_wanted()
        self._scale_replicas()

    def _integrate(self) -> None:
        now = time.monotonic()
        elapsed = now - self._integrated_since
        if elapsed <= 0:
            return
        batch, inference = self._busy_now()
        self._batch_acc_s += batch * elapsed
        self._inference_acc_s += inference * elapsed
        self._elapsed += elapsed
        self._integrated_since = now

    def _busy_now(self) -> tuple[np.ndarray, np.ndarray]:
        """Accelerators busy now per site: jobs whose actor runs, replicas that exist."""
        batch = np.zeros(self.fleet.n_sites)
        for run in self._runs.values():
            if run.started:
                batch[self._index[run.site]] += run.accelerators
        inference = np.zeros(self.fleet.n_sites)
        for (service, site), handles in self._replicas.items():
            inference[self._index[site]] += len(handles) * self._replica_acc.get(service, 1)
        return batch, inference

    def _take_means(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean busy accelerators per site since the last call (batch, inference)."""
        self._integrate()
        if self._elapsed > 0:
            batch = self._batch_acc_s / self._elapsed
            inference = self._inference_acc_s / self._elapsed
        else:
            batch, inference = self._busy_now()
        self._batch_acc_s[:] = 0.0
        self._inference_acc_s[:] = 0.0
        self._elapsed = 0.0
        return batch, inference

    def _collect(self) -> None:
        """Runs that ended: completed, failed, stopped or lost with their node."""
        if not self._runs:
            return
        pings = [r.ping for r in self._runs.values() if not r.started]
        if pings:
            ready, _ = ray.wait(pings, num_returns=len(pings), timeout=0)
            done = set(ready)
            for run in self._runs.values():
                if not run.started and run.ping in done:
                    run.started = True
                    self._note(run, "started", f"attempt {run.attempt}")
        refs = [r.ref for r in self._runs.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            return
        finished = set(ready)
        for job_id, run in list(self._runs.items()):
            if run.ref not in finished:
                continue
            try:
                outcome: dict[str, Any] = ray.get(run.ref)
            except RayError as exc:
                outcome = {"outcome": "lost", "error": type(exc).__name__}
            del self._runs[job_id]
            _kill(run.actor)
            what = outcome["outcome"]
            if what in ("completed", "failed"):
                self._outcomes[job_id] = outcome
            if what == "lost":
                self._last_node_check = -1e9  # look at the nodes before starting anything
                self._suspect_until[run.site] = time.monotonic() + self.options.suspect_s
            self._note(run, what, outcome.get("error", ""))

    def _check_nodes(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_node_check < self.options.node_check_s:
            return
        self._last_node_check = now
        alive: set[str] = set()
        for node in ray.nodes():  # type: ignore[no-untyped-call]
            if not node.get("Alive"):
                continue
            for resource in node.get("Resources", {}):
                if resource.startswith("site:"):
                    alive.add(resource[len("site:") :])
        alive_sites = frozenset(s for s in self.sites if s in alive)
        if alive_sites != self._alive:
            for site in self._alive - alive_sites:
                log.warning("site lost", extra={"fields": {"site": site}})
            for site in alive_sites - self._alive:
                log.info("site back", extra={"fields": {"site": site}})
            for site in self._alive - alive_sites:
                # Replica handles there are dead: forget them, the plan will place anew.
                for key in [k for k in self._replicas if k[1] == site]:
                    del self._replicas[key]
            self._alive = alive_sites

    def _refresh_progress(self) -> None:
        for job_id in set(self._desired) | set(self._runs):
            meta = self.checkpoints.meta(job_id)
            if meta is not None:
                self._progress[job_id] = meta.progress
                self._attempts[job_id] = max(self._attempts.get(job_id, 0), meta.attempt)

    def _stop_unwanted(self) -> None:
        now = time.monotonic()
        for job_id, run in self._runs.items():
            want = self._desired.get(job_id)
            # More accelerators at the same site are not worth a checkpoint and a restart:
            # the job keeps what it has (less power than planned, never more). Fewer are.
            keep = (
                want is not None
                and want.site == run.site
                and want.accelerators >= run.accelerators
                and run.site in self._alive
            )
            if keep:
                continue
            if not run.stopping:
                run.stopping = True
                run.stop_asked_at = now
                with contextlib.suppress(RayError):
                    run.actor.request_stop.remote()
                if want is None:
                    reason = "not in the plan"
                elif want.site == run.site:
                    reason = f"to restart on {want.accelerators}"
                else:
                    reason = f"to {want.site}"
                self._note(run, "stopping", reason)
            elif now - run.stop_asked_at > self.options.stop_timeout_s:
                log.warning(
                    "job ignored the stop request: killed",
                    extra={"fields": {"job": job_id, "site": run.site}},
                )
                _kill(run.actor)

    def _placeable(self, site: str) -> bool:
        """Whether new work may start at ``site``: it has a live node and lost none lately."""
        return site in self._alive and self._suspect_until.get(site, 0.0) <= time.monotonic()

    def _start_wanted(self) -> None:
        for job_id, want in self._desired.items():
            if job_id in self._runs or job_id in self._outcomes or job_id in self._ended:
                continue
            if not self._placeable(want.site):
                continue
            if self.checkpoints.has_result(job_id):
                self._outcomes[job_id] = {"outcome": "completed", "progress": 1.0}
                continue
            attempt = self._attempts.get(job_id, 0) + 1
            self._attempts[job_id] = attempt
            actor: Any = RemoteJobRunner.options(
                num_cpus=0,
                resources={site_resource(want.site): want.accelerators},
                max_concurrency=JOB_RUNNER_THREADS,
            ).remote(
                job_id,
                want.function,
                want.args,
                want.site,
                want.accelerators,
                attempt,
                self.checkpoints.root,
            )
            run = _Run(
                job_id,
                want.site,
                want.accelerators,
                attempt,
                actor,
                actor.run.remote(),
                actor.progress.remote(),
            )
            self._runs[job_id] = run
            self._note(run, "placed", f"attempt {attempt}")

    def _scale_replicas(self) -> None:
        keys = set(self._replicas_wanted) | set(self._replicas)
        for key in keys:
            service, site = key
            want = self._replicas_wanted.get(key, 0) if site in self._alive else 0
            handles = self._replicas.setdefault(key, [])
            while len(handles) > want:
                _kill(handles.pop())
            while len(handles) < want and self._placeable(site):
                n = len(handles)
                handle = RemoteReplica.options(
                    name=replica_name(service, site, n),
                    namespace=NAMESPACE,
                    lifetime=None,
                    num_cpus=0,
                    resources={site_resource(site): self._replica_acc.get(service, 1)},
                    max_concurrency=REPLICA_THREADS,
                    get_if_exists=True,
                ).remote(service, site, self._handlers.get(service))
                handles.append(handle)
            if not handles:
                del self._replicas[key]

    # -- reporting ----------------------------------------------------------------------------

    def _report_jobs(self, jobs: JobTable, ids: np.ndarray, step: int) -> dict[str, str]:
        """Write what actually runs, and the checkpointed progress, into the table."""
        failures: dict[str, str] = {}
        now_h = step * self.model.step_h
        work = jobs.spec.work_accelerator_hours
        for i in ids:
            job_id = jobs.spec.names[int(i)]
            run = self._runs.get(job_id)
            if run is not None and not run.stopping:
                jobs.site[i], jobs.accelerators[i] = self._index[run.site], run.accelerators
            else:
                jobs.site[i], jobs.accelerators[i] = -1, 0
            outcome = self._outcomes.pop(job_id, None)
            if outcome is not None:
                self._ended.add(job_id)
                self._desired.pop(job_id, None)
            if outcome is not None and outcome["outcome"] == "completed":
                jobs.done[i] = work[i]
                jobs.finished[i] = True
                jobs.completed_h[i] = now_h
                jobs.site[i], jobs.accelerators[i] = -1, 0
            elif outcome is not None:
                failures[job_id] = str(outcome.get("error", "failed"))
            else:
                jobs.done[i] = self._progress.get(job_id, 0.0) * work[i]
        jobs.pending_overhead_h[ids] = 0.0  # real overheads take real time
        jobs.close_deadlines(now_h)
        return failures

    def _note(self, run: _Run, what: str, detail: str = "") -> None:
        transition = Transition(time.time(), run.job_id, what, run.site, run.accelerators, detail)
        self.transitions.append(transition)
        del self.transitions[:-1000]
        log.info(
            f"job {what}",
            extra={
                "fields": {
                    "job": run.job_id,
                    "site": run.site,
                    "accelerators": run.accelerators,
                    "detail": detail,
                }
            },
        )
        for listener in self.listeners:
            listener(transition)


def _kill(actor: Any) -> None:
    with contextlib.suppress(RayError, ValueError):
        ray.kill(actor, no_restart=True)
