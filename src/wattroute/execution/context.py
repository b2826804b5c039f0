"""What a batch job's code sees: :class:`JobContext`.

A job is an importable function ``module:function`` called as ``function(ctx, **args)``. It
resumes from ``ctx.restore()`` (``None`` on its first run), checkpoints with
``ctx.checkpoint(state, progress)`` every so often, reports live progress with
``ctx.progress(fraction)``, and when ``ctx.should_stop()`` turns true (the plan moved or
paused it, or its site must shed power) checkpoints and returns promptly. Whatever it returns
after running to the end is its result. Work done since the last checkpoint is what a move or
a lost node costs, so the checkpoint interval bounds the loss::

    def train(ctx, epochs=100):
        state = ctx.restore() or {"epoch": 0, "weights": init()}
        while state["epoch"] < epochs:
            if ctx.should_stop():
                ctx.checkpoint(state, state["epoch"] / epochs)
                return None
            state = step(state)
            if state["epoch"] % 5 == 0:
                ctx.checkpoint(state, state["epoch"] / epochs)
        return state["weights"]
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from wattroute.execution.checkpoints import CheckpointStore


class JobContext:
    """A job's handle on its run.

    Parameters
    ----------
    job_id
        The job's id (its checkpoint folder).
    site
        The site it runs at.
    parallelism
        Accelerators allocated to it.
    attempt
        1 on the first run, then one more at every restart (after a move, a pause or a lost
        node).
    checkpoints
        Where its checkpoints live.
    stop
        Set when the job must checkpoint and return.
    """

    def __init__(
        self,
        job_id: str,
        site: str,
        parallelism: int,
        attempt: int,
        checkpoints: CheckpointStore,
        stop: threading.Event,
    ) -> None:
        self.job_id = job_id
        self.site = site
        self.parallelism = parallelism
        self.attempt = attempt
        self._checkpoints = checkpoints
        self._stop = stop
        self._progress = 0.0
        meta = checkpoints.meta(job_id)
        self._checkpointed = 0.0 if meta is None else meta.progress
        self._progress = self._checkpointed

    def restore(self) -> Any | None:
        """The state of the last checkpoint, or ``None`` on a first run."""
        return self._checkpoints.load(self.job_id)

    def checkpoint(self, state: Any, progress: float | None = None) -> None:
        """Save ``state`` durably; ``progress`` (0..1) is the share of the work it stands for
        (default: the last reported live progress)."""
        value = self._progress if progress is None else float(progress)
        self._checkpoints.save(self.job_id, state, value, self.attempt)
        self._checkpointed = self._progress = min(max(value, 0.0), 1.0)

    def progress(self, fraction: float) -> None:
        """Report live progress (0..1); durable only once checkpointed."""
        self._progress = min(max(float(fraction), 0.0), 1.0)

    def should_stop(self) -> bool:
        """True when the job must checkpoint and return."""
        return self._stop.is_set()

    @property
    def live_progress(self) -> float:
        return self._progress

    @property
    def checkpointed_progress(self) -> float:
        return self._checkpointed


def resolve(function: str) -> Callable[..., Any]:
    """The function named ``module.path:name``.

    Raises
    ------
    ValueError
        If the module cannot be imported or has no such callable.
    """
    module_name, _, name = function.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for {function!r}: {exc}") from None
    target = getattr(module, name, None)
    if not callable(target):
        raise ValueError(f"{module_name!r} has no function {name!r}")
    return target
