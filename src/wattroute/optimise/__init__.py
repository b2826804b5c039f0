"""The optimiser: the planning problem as an LP on HiGHS, plans, the oracle, admission.

The names below are imported on first use, so importing a submodule (the problem's blocks, say)
does not bring the formulation and the solver with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wattroute._lazy import lazy_exports

if TYPE_CHECKING:
    from wattroute.optimise.plan import Plan, optimise
    from wattroute.optimise.problem import JobBlock, PlanningProblem, ServiceBlock

__getattr__ = lazy_exports(
    __name__,
    {
        "wattroute.optimise.plan": ("Plan", "optimise"),
        "wattroute.optimise.problem": ("JobBlock", "PlanningProblem", "ServiceBlock"),
    },
)

__all__ = ["JobBlock", "Plan", "PlanningProblem", "ServiceBlock", "optimise"]
