"""Policies side by side against the perfect-foresight oracle: tables and an HTML report."""

from wattroute.bench.report import write_report
from wattroute.bench.runner import (
    ScenarioResult,
    add_capture_ratios,
    bench_scenario,
    markdown_table,
    parse_policies,
    table_rows,
)

__all__ = [
    "ScenarioResult",
    "add_capture_ratios",
    "bench_scenario",
    "markdown_table",
    "parse_policies",
    "table_rows",
    "write_report",
]
