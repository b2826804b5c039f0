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

from wattroute.optimise.formulation import LinearProgram, crash_basis

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


def _basis(highspy: ModuleType, lp: LinearProgram) -> object:
    """The crash basis of ``lp`` as a HiGHS basis."""
    col, row = crash_basis(lp)
    statuses = (
        highspy.HighsBasisStatus.kLower,
        highspy.HighsBasisStatus.kBasic,
        highspy.HighsBasisStatus.kUpper,
    )
    basis = highspy.HighsBasis()
    basis.col_status = [statuses[v] for v in col.tolist()]
    basis.row_status = [statuses[v] for v in row.tolist()]
    basis.valid = True
    # Not alien: the crash basis has one basic variable per row and is never singular, so
    # HiGHS need not factor it on receipt to repair it (it factors it when the simplex starts).
    basis.alien = False
    return basis


@dataclass(frozen=True, eq=False)
class LpSolution:
    """The outcome of a solve.

    ``ok`` is true when HiGHS proved optimality; ``x`` is then the optimal column vector.
    For a mixed-integer program ``dual_bound`` is the best lower bound HiGHS proved on the
    optimum — valid even when the time limit stopped it before optimality, when ``objective``
    is that of the best solution found (``nan`` if none) — and ``gap`` the relative gap
    between the two; for a linear program both are the optimum and zero.
    """

    ok: bool
    status: str
    objective: float
    x: np.ndarray
    seconds: float
    iterations: int
    dual_bound: float = float("nan")
    gap: float = float("nan")
    nodes: int = 0


def solve(
    lp: LinearProgram,
    time_limit_s: float = 30.0,
    threads: int = 1,
    mip_rel_gap: float = 1e-4,
    crash: bool = False,
) -> LpSolution:
    """Solve ``lp`` with HiGHS, at most ``time_limit_s`` seconds: its default LP algorithm, or
    branch and bound (to a relative gap of ``mip_rel_gap``) where ``lp.integrality`` marks
    integer columns.

    ``crash`` (linear programs only) starts the simplex method from
    :func:`~wattroute.optimise.formulation.crash_basis` instead of HiGHS's presolve and slack
    basis: the same optimum, found faster on the large programs of job classes (see
    ``docs/optimiser.md``)."""
    highspy = _highspy()
    started = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", int(threads))
    n_rows, n_cols = lp.matrix.shape
    inf = highspy.kHighsInf
    integer = lp.integrality is not None and bool(lp.integrality.any())
    # The model goes in as arrays (HiGHS copies them in C++); filling a HighsLp's vectors
    # from Python converts every element, which took longer than some solves.
    passed = h.passModel(
        n_cols,
        n_rows,
        lp.matrix.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        float(lp.offset),
        np.ascontiguousarray(lp.cost, dtype=np.float64),
        np.where(np.isinf(lp.col_lower), -inf, lp.col_lower),
        np.where(np.isinf(lp.col_upper), inf, lp.col_upper),
        np.where(np.isinf(lp.row_lower), -inf, lp.row_lower),
        np.where(np.isinf(lp.row_upper), inf, lp.row_upper),
        lp.matrix.indptr.astype(np.int32),
        lp.matrix.indices.astype(np.int32),
        np.ascontiguousarray(lp.matrix.data, dtype=np.float64),
        # One entry per column (HiGHS reads that many): all continuous for a linear program.
        np.zeros(n_cols, np.int32) if not integer else np.asarray(lp.integrality, np.int32),
    )
    if passed == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS did not accept the model")
    if integer:
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if crash and not integer:
        h.setBasis(_basis(highspy, lp))
    h.run()
    status = h.getModelStatus()
    ok = status == highspy.HighsModelStatus.kOptimal
    info = h.getInfo()
    found = ok or (integer and int(info.primal_solution_status) == 2)  # a feasible incumbent
    x = np.asarray(h.getSolution().col_value) if found else np.zeros(n_cols)
    objective = float(info.objective_function_value) if found else float("nan")
    if integer:
        dual_bound, gap = float(info.mip_dual_bound), float(info.mip_gap)
    else:
        dual_bound, gap = (objective, 0.0) if ok else (float("nan"), float("nan"))
    return LpSolution(
        ok=bool(ok),
        status=h.modelStatusToString(status),
        objective=objective,
        x=x,
        seconds=time.perf_counter() - started,
        iterations=int(info.simplex_iteration_count + info.ipm_iteration_count),
        dual_bound=dual_bound,
        gap=gap,
        nodes=int(info.mip_node_count) if integer else 0,
    )
