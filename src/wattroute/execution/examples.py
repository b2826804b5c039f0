"""Example workloads for the Ray executor: a batch job that trains a model and checkpoints,
and an inference model.

``train_logistic_regression`` fits a logistic regression by mini-batch stochastic gradient
descent on a synthetic, seeded data set. Its checkpoint holds the weights, the epoch and the
random generator's state, so a run that is stopped, moved and resumed any number of times
ends with exactly the weights of an uninterrupted run (a test checks it, bit for bit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from wattroute.execution.context import JobContext


def _data(seed: int, samples: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features))
    truth = rng.normal(size=features)
    y = (x @ truth + rng.normal(scale=0.5, size=samples) > 0).astype(float)
    return x, y


def train_logistic_regression(
    ctx: JobContext,
    epochs: int = 60,
    samples: int = 4000,
    features: int = 20,
    batch: int = 64,
    learning_rate: float = 0.1,
    checkpoint_every: int = 5,
    seconds_per_epoch: float = 0.0,
    seed: int = 7,
) -> dict[str, Any]:
    """Train; the result is the weights, the final log-loss and the epochs run.

    ``seconds_per_epoch`` adds wall time per epoch, to make the job last long enough to be
    moved in a demo. Checkpoints every ``checkpoint_every`` epochs and whenever told to stop.
    """
    x, y = _data(seed, samples, features)
    state = ctx.restore()
    if state is None:
        state = {
            "epoch": 0,
            "weights": np.zeros(features),
            "rng": np.random.default_rng(seed + 1).bit_generator.state,
        }
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    weights = np.array(state["weights"], dtype=float)
    epoch = int(state["epoch"])

    def snapshot() -> dict[str, Any]:
        return {"epoch": epoch, "weights": weights.copy(), "rng": rng.bit_generator.state}

    while epoch < epochs:
        if ctx.should_stop():
            ctx.checkpoint(snapshot(), epoch / epochs)
            return {"stopped_at_epoch": epoch}
        order = rng.permutation(samples)
        for start in range(0, samples, batch):
            rows = order[start : start + batch]
            p = 1.0 / (1.0 + np.exp(-(x[rows] @ weights)))
            weights -= learning_rate * x[rows].T @ (p - y[rows]) / rows.size
        epoch += 1
        if seconds_per_epoch:
            time.sleep(seconds_per_epoch)
        ctx.progress(epoch / epochs)
        if epoch % checkpoint_every == 0:
            ctx.checkpoint(snapshot(), epoch / epochs)
    p = np.clip(1.0 / (1.0 + np.exp(-(x @ weights))), 1e-12, 1 - 1e-12)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    ctx.checkpoint(snapshot(), 1.0)
    return {"weights": weights.tolist(), "log_loss": loss, "epochs": epoch}


def mlp_model(features: int = 32, hidden: int = 64, seed: int = 3) -> Callable[[Any], Any]:
    """A small two-layer perceptron with fixed random weights: an inference handler.

    The handler takes a list of ``features`` numbers (shorter inputs are zero-padded) and
    returns class probabilities.
    """
    rng = np.random.default_rng(seed)
    w1 = rng.normal(scale=features**-0.5, size=(features, hidden))
    w2 = rng.normal(scale=hidden**-0.5, size=(hidden, 4))

    def predict(payload: Any) -> list[float]:
        values = np.zeros(features)
        given = np.asarray(payload if payload is not None else [], dtype=float).ravel()[:features]
        values[: given.size] = given
        logits = np.maximum(values @ w1, 0.0) @ w2
        e = np.exp(logits - logits.max())
        return (e / e.sum()).round(6).tolist()

    return predict
