"""Scenario files: the YAML schema (pydantic, at the edge), loading, and the built-in default;
:mod:`wattroute.scenario.build` makes small fleets and scenarios in code.

The loader's names are imported on first use: naming the default scenario's path or building
a fleet in code does not import the schema, the file readers or the renewables models.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from wattroute._lazy import lazy_exports

if TYPE_CHECKING:
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
    from wattroute.scenario.load import load_scenario

    return load_scenario(default_scenario_path())


__getattr__ = lazy_exports(
    __name__,
    {
        "wattroute.scenario.load": (
            "build_scenario",
            "load_scenario",
            "parse_scenario",
            "read_scenario_file",
        )
    },
)

__all__ = [
    "build_scenario",
    "default_scenario",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
    "read_scenario_file",
]
