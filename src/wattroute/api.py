"""The Python API: simulate a policy on a scenario, compare policies against the oracle.

A scenario is given as a :class:`~wattroute.model.Scenario` (built in code, see
:mod:`wattroute.scenario.build`) or as the path of a scenario YAML file; a policy by name
(:data:`~wattroute.policies.POLICY_NAMES`) or as an object with the
:class:`~wattroute.policies.Policy` interface. Results are the summaries ``summary.json``
holds and the per-step, per-site time series, as ``wattroute simulate`` and ``wattroute bench``
write them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from wattroute.model import Scenario

if TYPE_CHECKING:
    import pandas as pd

    from wattroute.model.summary import Summary
    from wattroute.policies import Policy
    from wattroute.signals.forecast import Forecaster
    from wattroute.sim import RunRecord

ScenarioLike = Scenario | str | os.PathLike[str]
"""A scenario, or the path of a scenario YAML file."""


@dataclass(frozen=True, eq=False)
class Run:
    """One simulated run: its summary, its time series and everything it recorded."""

    summary: Summary
    """What ``summary.json`` holds: objective, cost, emissions, energy, inference, batch."""
    record: RunRecord
    """Everything the run produced, before it was summarised."""

    @property
    def scenario(self) -> Scenario:
        return self.record.scenario

    @cached_property
    def timeseries(self) -> pd.DataFrame:
        """One row per step and site, columns ``time`` and ``site`` then the series: power by
        source and sink (``*_kw``), battery energy, accelerators in use, price, carbon, PUE,
        cost and emissions — what ``wattroute simulate`` writes to ``timeseries.parquet``."""
        return self.record.sites.to_frame(self.record.scenario.times)

    @cached_property
    def jobs(self) -> pd.DataFrame:
        """One row per batch job: arrival, deadline, work, the sites it ran at in order, start,
        completion, moves, stops, restores, overhead hours, and whether and by how many hours
        it was late — what ``wattroute simulate`` writes to ``jobs.parquet``."""
        from wattroute.sim import job_frame

        return job_frame(self.record)


def _scenario(scenario: ScenarioLike) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    from wattroute.scenario.load import load_scenario

    return load_scenario(scenario)


def simulate(
    scenario: ScenarioLike,
    policy: str | Policy = "mpc",
    *,
    forecaster: str | Forecaster = "blend",
    check_energy_balance: bool = True,
) -> Run:
    """Simulate ``policy`` on ``scenario``.

    Parameters
    ----------
    scenario
        A scenario, or the path of a scenario YAML file (relative data paths in it resolve
        against its folder).
    policy
        A policy name (``"agnostic"``, ``"greedy"``, ``"mpc"``) or a policy object.
    forecaster
        What the policy forecasts with: ``"blend"``, ``"persistence"``, ``"seasonal-naive"``,
        ``"perfect"`` (the actual future, for evaluation only) or a forecaster object.
    check_energy_balance
        Verify energy in = energy out, limits and battery bookkeeping at every site and step
        (the default; off, long runs of many short blocks are faster).

    Raises
    ------
    InputError
        An unknown policy or forecaster name (``field`` is ``"policy"`` or ``"forecaster"``),
        or a scenario file that cannot be loaded.
    """
    from wattroute.policies import get_policy
    from wattroute.sim import SimulationOptions, summarize
    from wattroute.sim import simulate as run

    chosen = get_policy(policy, "policy") if isinstance(policy, str) else policy
    options = SimulationOptions(
        check_energy_balance=check_energy_balance, forecaster=_forecaster(forecaster)
    )
    record = run(_scenario(scenario), chosen, options)
    return Run(summarize(record), record)


def compare(
    scenario: ScenarioLike,
    policies: Sequence[str] = ("agnostic", "greedy", "mpc"),
    *,
    oracle: bool = True,
    forecaster: str | Forecaster = "blend",
    oracle_step_h: float = 1.0,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Summary]:
    """Run ``policies`` side by side on ``scenario`` and, with ``oracle``, solve the
    perfect-foresight oracle (``oracle_step_h``: its planning period, hours), as
    ``wattroute bench`` does; ``forecaster`` as for :func:`simulate`.

    Returns each policy's summary by name (the oracle's as ``"oracle"``). When both the
    ``agnostic`` baseline and the oracle ran, each summary has ``capture_ratio``: the share of
    the saving the oracle achieves over the baseline that the policy achieves,
    ``(agnostic - policy) / (agnostic - oracle)`` on ``objective_usd``. Nothing is written
    unless ``out`` is given: then each policy's ``summary.json`` and time series go under
    ``out/<scenario>/<policy>/``.

    Raises
    ------
    InputError
        An unknown policy or forecaster name (``field`` is ``"policies"`` or ``"forecaster"``).
    """
    from wattroute.bench.runner import ORACLE, check_policies, run_scenario, write_results

    names = [policies] if isinstance(policies, str) else list(policies)
    names = check_policies(list(dict.fromkeys(names + ([ORACLE] if oracle else []))), "policies")
    chosen = _scenario(scenario)
    result = run_scenario(chosen, names, _forecaster(forecaster), oracle_step_h)
    if out is not None:
        write_results(result, Path(out))
    return result.summaries


def _forecaster(forecaster: str | Forecaster) -> Forecaster:
    from wattroute.signals.forecast import get_forecaster

    return get_forecaster(forecaster, "forecaster") if isinstance(forecaster, str) else forecaster


__all__ = ["Run", "ScenarioLike", "compare", "simulate"]
