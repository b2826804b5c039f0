"""The Ray actors that run work at a site: one :class:`JobRunner` per running batch job, and
:class:`Replica` actors serving an inference service.

Both are pinned to a site by the custom resource ``site:<name>`` that the site's Ray nodes
carry, sized to its accelerators: a job asks for as many units as it has accelerators, a
replica for its service's accelerators per replica. They ask for no CPU of their own, so
that the site resource alone decides where and how much runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from wattroute.execution.checkpoints import CheckpointStore
from wattroute.execution.context import JobContext, resolve

NAMESPACE = "wattroute"


def site_resource(site: str) -> str:
    """The custom resource that pins work to ``site``."""
    return f"site:{site}"


class JobRunner:
    """Runs one attempt of a batch job; answers progress and stop requests while it runs
    (a threaded actor: ``run`` occupies one thread, the other calls another)."""

    def __init__(
        self,
        job_id: str,
        function: str,
        args: dict[str, Any],
        site: str,
        parallelism: int,
        attempt: int,
        checkpoint_root: str,
    ) -> None:
        self.job_id = job_id
        self.function = function
        self.args = args
        self.stop = threading.Event()
        self.checkpoints = CheckpointStore(checkpoint_root)
        self.ctx = JobContext(job_id, site, parallelism, attempt, self.checkpoints, self.stop)
        self.started_at = time.time()

    def run(self) -> dict[str, Any]:
        """Run the job's function to its end or until told to stop.

        Returns ``{"outcome": "completed" | "stopped" | "failed", ...}``; a completed job's
        result is in the checkpoint store.
        """
        try:
            result = resolve(self.function)(self.ctx, **self.args)
        except Exception as exc:  # the user's code failed: report it, do not crash the actor
            return {"outcome": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        finished = not self.stop.is_set() or self.ctx.checkpointed_progress >= 1.0
        if not finished:
            return {"outcome": "stopped", "progress": self.ctx.checkpointed_progress}
        self.checkpoints.save_result(self.job_id, result)
        return {"outcome": "completed", "progress": 1.0}

    def request_stop(self) -> None:
        self.stop.set()

    def progress(self) -> tuple[float, float]:
        """(live, checkpointed) progress, 0..1."""
        return self.ctx.live_progress, self.ctx.checkpointed_progress


class Replica:
    """One replica of an inference service: loads its model once, answers requests."""

    def __init__(self, service: str, site: str, handler: str | None) -> None:
        from wattroute.execution.examples import mlp_model

        self.service = service
        self.site = site
        factory = resolve(handler) if handler else mlp_model
        self.model = factory()

    def infer(self, payload: Any) -> dict[str, Any]:
        started = time.perf_counter()
        output = self.model(payload)
        return {
            "output": output,
            "site": self.site,
            "service_ms": (time.perf_counter() - started) * 1000.0,
        }

    def ready(self) -> bool:
        return True


RemoteJobRunner = ray.remote(JobRunner)
RemoteReplica = ray.remote(Replica)
# Threads per actor: a job's run() holds one, progress and stop requests use the others; a
# replica answers that many requests at once.
JOB_RUNNER_THREADS = 4
REPLICA_THREADS = 16
