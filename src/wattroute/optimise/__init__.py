"""The optimiser: the planning problem as an LP on HiGHS, plans, the oracle, admission."""

from wattroute.optimise.plan import Plan, optimise
from wattroute.optimise.problem import JobBlock, PlanningProblem, ServiceBlock

__all__ = ["JobBlock", "Plan", "PlanningProblem", "ServiceBlock", "optimise"]
