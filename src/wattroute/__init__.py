"""wattroute: decide where and when AI workloads run across compute sites with variable power.

The Python API (docs/python-api.md)::

    import wattroute

    run = wattroute.simulate("examples/multi_site_fleet.yaml", policy="mpc")
    run.summary["objective_usd"], run.timeseries
    wattroute.compare(scenario, ("agnostic", "greedy", "mpc"))  # with the oracle's bound

A scenario is read from YAML (:func:`load_scenario`) or built in code from the model classes
(:class:`Scenario`, :class:`Site`, ...; :mod:`wattroute.scenario.build` has shortcuts).
Every name is imported on first use, so ``import wattroute`` itself loads nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wattroute._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from wattroute.api import Run, compare, simulate
    from wattroute.errors import InputError, WattrouteError
    from wattroute.model import (
        AcceleratorPool,
        BatchJob,
        Battery,
        Demand,
        DemandPoint,
        Genset,
        GridConnection,
        InferenceService,
        Network,
        Penalties,
        Pue,
        Renewable,
        Scenario,
        Site,
    )
    from wattroute.model.summary import Summary
    from wattroute.policies import POLICY_NAMES, Policy
    from wattroute.scenario.load import load_scenario
    from wattroute.signals.signal import Signal

__getattr__ = lazy_exports(
    __name__,
    {
        "wattroute.api": ("Run", "compare", "simulate"),
        "wattroute.errors": ("InputError", "WattrouteError"),
        "wattroute.model": (
            "AcceleratorPool",
            "BatchJob",
            "Battery",
            "Demand",
            "DemandPoint",
            "Genset",
            "GridConnection",
            "InferenceService",
            "Network",
            "Penalties",
            "Pue",
            "Renewable",
            "Scenario",
            "Site",
        ),
        "wattroute.model.summary": ("Summary",),
        "wattroute.policies": ("POLICY_NAMES", "Policy"),
        "wattroute.scenario.load": ("load_scenario",),
        "wattroute.signals.signal": ("Signal",),
    },
)

__all__ = [
    "POLICY_NAMES",
    "AcceleratorPool",
    "BatchJob",
    "Battery",
    "Demand",
    "DemandPoint",
    "Genset",
    "GridConnection",
    "InferenceService",
    "InputError",
    "Network",
    "Penalties",
    "Policy",
    "Pue",
    "Renewable",
    "Run",
    "Scenario",
    "Signal",
    "Site",
    "Summary",
    "WattrouteError",
    "__version__",
    "compare",
    "load_scenario",
    "simulate",
]
