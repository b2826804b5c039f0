"""Scenario files: the YAML schema (pydantic, at the edge), loading, and the built-in default."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from wattroute.model import Scenario
from wattroute.scenario.load import (
    build_scenario,
    load_scenario,
    parse_scenario,
    read_scenario_file,
)

DEFAULT_SCENARIO = "default.yaml"


def default_scenario_path() -> Path:
    """Path of the built-in default scenario file (inside the installed package)."""
    return Path(str(resources.files("wattroute.scenario") / "builtin" / DEFAULT_SCENARIO))


def default_scenario() -> Scenario:
    """The built-in default scenario: three sites, one week, no data files needed."""
    return load_scenario(default_scenario_path())


__all__ = [
    "build_scenario",
    "default_scenario",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
    "read_scenario_file",
]
