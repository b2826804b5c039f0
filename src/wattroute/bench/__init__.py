"""Policies side by side against the perfect-foresight oracle: tables and an HTML report.

The names below are imported on first use (the report brings plotly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wattroute._lazy import lazy_exports

if TYPE_CHECKING:
    from wattroute.bench.report import write_report
    from wattroute.bench.runner import (
        ScenarioResult,
        add_capture_ratios,
        bench_scenario,
        check_policies,
        markdown_table,
        parse_policies,
        run_scenario,
        table_rows,
        write_results,
    )

__all__ = [
    "ScenarioResult",
    "add_capture_ratios",
    "bench_scenario",
    "check_policies",
    "markdown_table",
    "parse_policies",
    "run_scenario",
    "table_rows",
    "write_report",
    "write_results",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "wattroute.bench.report": ["write_report"],
        "wattroute.bench.runner": [name for name in __all__ if name != "write_report"],
    },
)
