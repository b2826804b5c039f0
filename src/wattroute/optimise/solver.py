"""Solve a :class:`~wattroute.optimise.formulation.LinearProgram` with HiGHS (highspy)."""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from wattroute.optimise.formulation import LinearProgram

_FIRST_SOLVE = threading.Lock()


def _highspy() -> ModuleType:
    """The HiGHS module, imported on the first solve."""
    with _FIRST_SOLVE:
        return _import_highspy()


@functools.cache
def _import_highspy() -> ModuleType:
    """HiGHS prints a banner on the first instance a process creates, before any option can
    silence it: create that instance here, with standard output closed."""
    import highspy

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        highspy.Highs()
        return highspy
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return highspy


@dataclass(frozen=True, eq=False)
class LpSolution:
    """The outcome of a solve.

    ``ok`` is true when HiGHS proved optimality; ``x`` is then the optimal column vector.
    """

    ok: bool
    status: str
    objective: float
    x: np.ndarray
    seconds: float
    iterations: int


def solve(lp: LinearProgram, time_limit_s: float = 30.0, threads: int = 1) -> LpSolution:
    """Solve ``lp`` with HiGHS's default LP algorithm, at most ``time_limit_s`` seconds."""
    highspy = _highspy()
    started = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", int(threads))
    model = highspy.HighsLp()
    n_rows, n_cols = lp.matrix.shape
    model.num_col_ = n_cols
    model.num_row_ = n_rows
    inf = highspy.kHighsInf
    model.col_cost_ = lp.cost
    model.col_lower_ = np.where(np.isinf(lp.col_lower), -inf, lp.col_lower)
    model.col_upper_ = np.where(np.isinf(lp.col_upper), inf, lp.col_upper)
    model.row_lower_ = np.where(np.isinf(lp.row_lower), -inf, lp.row_lower)
    model.row_upper_ = np.where(np.isinf(lp.row_upper), inf, lp.row_upper)
    model.offset_ = lp.offset
    matrix = model.a_matrix_
    matrix.format_ = highspy.MatrixFormat.kColwise
    matrix.num_col_ = n_cols
    matrix.num_row_ = n_rows
    matrix.start_ = lp.matrix.indptr.astype(np.int32)
    matrix.index_ = lp.matrix.indices.astype(np.int32)
    matrix.value_ = lp.matrix.data
    h.passModel(model)
    h.run()
    status = h.getModelStatus()
    ok = status == highspy.HighsModelStatus.kOptimal
    x = np.asarray(h.getSolution().col_value) if ok else np.zeros(n_cols)
    info = h.getInfo()
    return LpSolution(
        ok=bool(ok),
        status=h.modelStatusToString(status),
        objective=float(info.objective_function_value) if ok else float("nan"),
        x=x,
        seconds=time.perf_counter() - started,
        iterations=int(info.simplex_iteration_count + info.ipm_iteration_count),
    )
