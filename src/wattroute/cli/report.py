"""Readable tables of a run's summary and of a bench, for the terminal.

Every table fits the console's width (80 columns is the narrowest it is made for) without
cutting a cell: a table with one column per site or per policy is split into several tables
of the same rows when its columns do not fit side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

WIDTH = 80
"""The width tables are fitted to when the console does not say (columns)."""


def _num(value: float, digits: int = 2) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def summary_tables(summary: Mapping[str, Any], width: int = WIDTH) -> list[Table]:
    """The headline table (one row per metric) and the per-site tables (one row per metric,
    one column per site, split to fit ``width`` columns)."""
    head = Table(title=f"{summary['scenario']} / {summary['policy']}", show_header=False)
    head.add_column("metric")
    head.add_column("value", justify="right")
    energy = summary["energy_kwh"]
    inf = summary["inference"]
    batch = summary["batch"]
    price = summary["carbon_price_usd_per_tonne"]
    rows = [
        ("objective (USD)", _num(summary["objective_usd"])),
        ("  energy cost (USD)", _num(summary["cost_usd"])),
        (
            f"  carbon cost (USD, at {_num(price, 0)} USD/t)",
            _num(price * summary["emissions_kg"] / 1000.0),
        ),
        ("  penalties (USD)", _num(summary["penalties_usd"]["total"])),
        (f"emissions (kgCO2eq, {summary['carbon_intensity_kind']})", _num(summary["emissions_kg"])),
        ("load served (kWh)", _num(energy["load"], 1)),
        *(
            (f"{label} (kWh)", _num(energy[key], 1))
            for key, label in (
                ("grid", "grid import"),
                ("solar", "solar used"),
                ("wind", "wind used"),
                ("genset", "genset"),
                ("battery_charge", "battery charge"),
                ("battery_discharge", "battery discharge"),
                ("export", "export"),
                ("curtailed", "curtailed"),
                ("unserved", "unserved"),
            )
        ),
        ("inference requests", _num(inf["requests"], 0)),
        ("  SLO violation fraction", f"{inf['slo_violation_fraction']:.4%}"),
        ("batch jobs completed", f"{batch['completed']:,} / {batch['jobs']:,}"),
        ("  deadline misses", f"{batch['deadline_misses']:,}"),
        ("  work (accelerator-h)", _num(batch["work_accelerator_hours"], 1)),
        ("  mean completion delay (h)", _num(batch["mean_completion_delay_h"])),
        ("  moves / stops", f"{batch['moves']:,} / {batch['stops']:,}"),
        ("decision time, total (s)", f"{summary['decision_s']['total']:,.3f}"),
        ("decision time, p99 (s)", f"{summary['decision_s']['p99']:.4f}"),
        ("wall time (s)", f"{summary['wall_s']:,.2f}"),
    ]
    if "capture_ratio" in summary:
        capture = summary["capture_ratio"]
        shown = "n/a" if capture is None or not math.isfinite(capture) else f"{capture:.1%}"
        rows.insert(4, ("capture ratio (vs oracle)", shown))
    for label, value in rows:
        head.add_row(label, value)

    site_rows: list[tuple[str, list[str]]] = [
        ("cost (USD)", [_num(s["cost_usd"]) for s in summary["sites"].values()]),
        ("emissions (kg)", [_num(s["emissions_kg"], 1) for s in summary["sites"].values()]),
        *(
            (
                f"{label} (kWh)",
                [_num(sum(s["energy_kwh"][k] for k in keys), 1) for s in summary["sites"].values()],
            )
            for label, keys in (
                ("load", ("load",)),
                ("grid", ("grid",)),
                ("renewable", ("solar", "wind")),
                ("curtailed", ("curtailed",)),
            )
        ),
        ("peak load (kW)", [_num(s["peak_load_kw"], 1) for s in summary["sites"].values()]),
    ]
    sites = wide_tables("sites", "site", list(summary["sites"]), site_rows, width)
    return [head, *sites]


def wide_tables(
    title: str,
    corner: str,
    columns: Sequence[str],
    rows: Sequence[tuple[str, Sequence[str]]],
    width: int = WIDTH,
) -> list[Table]:
    """Tables of ``rows`` (a label and one cell per column), with as many of ``columns`` side
    by side as fit in ``width`` characters; the labels repeat in each table."""
    label_w = max([len(corner), *(len(label) for label, _ in rows)])
    widths = [
        max([len(name), *(len(cells[i]) for _, cells in rows)]) for i, name in enumerate(columns)
    ]
    groups: list[list[int]] = [[]]
    used = label_w + 3 + 1  # a column costs its width, two of padding and a border
    for i, w in enumerate(widths):
        if groups[-1] and used + w + 3 > width:
            groups.append([])
            used = label_w + 3 + 1
        groups[-1].append(i)
        used += w + 3
    tables = []
    for n, group in enumerate(groups):
        part = f" ({n + 1}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=f"{title}{part}")
        table.add_column(corner, no_wrap=True)
        for i in group:
            table.add_column(columns[i], justify="right", no_wrap=True)
        for label, cells in rows:
            table.add_row(label, *(cells[i] for i in group))
        tables.append(table)
    return tables


def print_summary(summary: Mapping[str, Any], console: Console | None = None) -> None:
    """Print a run's summary tables and its notes."""
    console = console or Console()
    for table in summary_tables(summary, console.width):
        console.print(table)
    for note in summary.get("notes", []):
        console.print(f"[dim]note: {escape(note)}[/dim]")


def bench_tables(rows: Sequence[Mapping[str, Any]], width: int = WIDTH) -> list[Table]:
    """The bench's comparison for the terminal: per scenario, one row per metric and one column
    per policy (split to fit ``width``); a metric that is zero for every policy is left out."""
    tables: list[Table] = []
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    for scenario in scenarios:
        mine = [r for r in rows if r["scenario"] == scenario]
        names = [f"{r['policy']} (bound)" if r["bound"] else r["policy"] for r in mine]
        metrics: list[tuple[str, Sequence[str]]] = []
        for key, label, digits in BENCH_METRICS:
            values = [r[key] for r in mine]
            if key not in ("objective_usd", "capture_ratio") and all(
                isinstance(v, int | float) and (v == 0 or not math.isfinite(v)) for v in values
            ):
                continue
            if key == "capture_ratio":
                if all(not math.isfinite(v) for v in values):
                    continue
                cells = ["n/a" if not math.isfinite(v) else f"{v:.1%}" for v in values]
            elif key == "slo_violation_fraction":
                cells = [f"{v:.2%}" for v in values]
            elif key in ("deadline_misses",):
                cells = [f"{v:,}" for v in values]
            elif key == "decision_s_p99":
                cells = [f"{v:.4f}" for v in values]
            else:
                cells = [_num(v, digits) for v in values]
            metrics.append((label, cells))
        tables += wide_tables(scenario, "metric", names, metrics, width)
    return tables


BENCH_METRICS = (
    ("objective_usd", "objective (USD)", 2),
    ("capture_ratio", "capture ratio", 1),
    ("cost_usd", "energy cost (USD)", 2),
    ("emissions_kg", "emissions (kg)", 1),
    ("penalties_usd", "penalties (USD)", 2),
    ("grid_kwh", "grid (kWh)", 0),
    ("solar_kwh", "solar (kWh)", 0),
    ("wind_kwh", "wind (kWh)", 0),
    ("genset_kwh", "genset (kWh)", 0),
    ("battery_discharge_kwh", "battery out (kWh)", 0),
    ("curtailed_kwh", "curtailed (kWh)", 0),
    ("curtailed_absorbed_kwh", "curtailment absorbed (kWh)", 0),
    ("slo_violation_fraction", "SLO violations", 2),
    ("deadline_misses", "deadline misses", 0),
    ("decision_s_total", "decision time, total (s)", 2),
    ("decision_s_p99", "decision time, p99 (s)", 4),
)
"""The bench table's rows on the terminal: key in :func:`~wattroute.bench.table_rows`,
label, decimals."""
