"""Exceptions raised by wattroute.

The tree::

    WattrouteError
    ├── InputError            bad user input; the CLI prints it and exits with code 2
    │   ├── ScenarioError     a field of a scenario is missing, misspelt or out of range
    │   ├── DataFileError     a named file is missing or cannot be parsed
    │   └── SignalError       a signal has NaNs, gaps too long to fill, or misses the period
    ├── OptimisationError     the solver returned no optimal plan (infeasible, time limit)
    └── SimulationError       an invariant of the simulation broke (a bug, not bad input)
        ├── EnergyBalanceError  energy in != energy out at a site and step
        └── PolicyError         a policy returned a decision of the wrong shape or type

Every :class:`InputError` carries the offending ``field`` (a dotted path such as
``sites[2].battery.capacity_kwh`` or a file name) and a ``fix`` telling the user what to
change, so that messages read "field: problem. Fix: what to do".
"""

from __future__ import annotations


class WattrouteError(Exception):
    """Base class of every error wattroute raises on purpose."""


class InputError(WattrouteError):
    """Bad input that the user can fix.

    Parameters
    ----------
    field
        Where the problem is: a dotted field path, a file path, or a CLI option.
    problem
        What is wrong, in one sentence.
    fix
        What to change so that it works.
    """

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"{field}: {problem}"
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)


class ScenarioError(InputError):
    """A scenario field is missing, misspelt or out of range."""


class DataFileError(InputError):
    """A data file is missing, unreadable, or lacks a required column."""


class SignalError(InputError):
    """A signal cannot be used as is: NaNs, gaps too long to fill, or too short a period."""


class OptimisationError(WattrouteError):
    """The solver did not return an optimal plan; ``status`` says why."""

    def __init__(self, status: str, seconds: float) -> None:
        self.status = status
        self.seconds = seconds
        super().__init__(f"no optimal plan: {status} after {seconds:.2f} s")


class SimulationError(WattrouteError):
    """An invariant of the simulation broke. This is a bug in wattroute, not bad input."""


class EnergyBalanceError(SimulationError):
    """Energy supplied differs from energy consumed at a site and step."""


class PolicyError(SimulationError):
    """A policy returned a malformed decision (wrong shapes, NaN allocations)."""
