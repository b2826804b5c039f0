"""Checkpoints and the example job: a stopped, moved and resumed run ends exactly like an
uninterrupted one."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from wattroute.execution.checkpoints import CheckpointStore
from wattroute.execution.context import JobContext, resolve
from wattroute.execution.examples import train_logistic_regression


def _context(store: CheckpointStore, job: str, stop: threading.Event, attempt: int = 1):
    return JobContext(job, "a", 1, attempt, store, stop)


def test_a_checkpoint_round_trips_and_records_progress(tmp_path):
    store = CheckpointStore(str(tmp_path))
    assert store.load("j") is None
    assert store.meta("j") is None
    store.save("j", {"w": np.arange(3.0)}, 0.25, attempt=1)
    store.save("j", {"w": np.arange(4.0)}, 0.5, attempt=2)
    state = store.load("j")
    assert state is not None
    assert state["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    meta = store.meta("j")
    assert meta is not None
    assert (meta.progress, meta.attempt, meta.checkpoints) == (0.5, 2, 2)
    assert not list(tmp_path.glob("j/.*.tmp"))  # written under a temporary name, then moved


def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    uninterrupted = train_logistic_regression(
        _context(CheckpointStore(str(tmp_path / "once")), "j", threading.Event()), epochs=12
    )
    store = CheckpointStore(str(tmp_path / "moved"))
    result = None
    # Stop after a few epochs, three times (as a move would), then let it finish.
    for attempt, stop_after in enumerate((3, 2, 4, None), start=1):
        stop = threading.Event()
        ctx = _context(store, "j", stop, attempt)
        if stop_after is not None:
            seen = {"n": 0}
            original = ctx.progress

            def counting(fraction, seen=seen, original=original, stop=stop, limit=stop_after):
                original(fraction)
                seen["n"] += 1
                if seen["n"] >= limit:
                    stop.set()

            ctx.progress = counting
        result = train_logistic_regression(ctx, epochs=12)
    assert result is not None
    assert result["epochs"] == 12
    assert np.array_equal(np.array(result["weights"]), np.array(uninterrupted["weights"]))
    assert result["log_loss"] == uninterrupted["log_loss"]


def test_resolve_names_what_is_wrong():
    assert callable(resolve("wattroute.execution.examples:train_logistic_regression"))
    with pytest.raises(ValueError, match="cannot import"):
        resolve("no_such_module:f")
    with pytest.raises(ValueError, match="has no function"):
        resolve("wattroute.execution.examples:nothing")
