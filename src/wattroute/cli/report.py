"""Readable tables of a run's summary, for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def summary_tables(summary: Mapping[str, Any]) -> list[Table]:
    """The headline table and the per-site table."""
    head = Table(title=f"{summary['scenario']} / {summary['policy']}", show_header=False)
    head.add_column("metric")
    head.add_column("value", justify="right")
    energy = summary["energy_kwh"]
    inf = summary["inference"]
    batch = summary["batch"]
    rows = [
        ("objective (USD)", _num(summary["objective_usd"])),
        ("  energy cost (USD)", _num(summary["cost_usd"])),
        (
            f"  emissions (kg, {summary['carbon_intensity_kind']}) x "
            f"{_num(summary['carbon_price_usd_per_tonne'], 0)} USD/t",
            _num(summary["emissions_kg"]),
        ),
        ("  penalties (USD)", _num(summary["penalties_usd"]["total"])),
        ("load served (kWh)", _num(energy["load"], 1)),
        (
            "  grid / solar / wind / genset (kWh)",
            " / ".join(_num(energy[k], 1) for k in ("grid", "solar", "wind", "genset")),
        ),
        (
            "  battery charge / discharge (kWh)",
            f"{_num(energy['battery_charge'], 1)} / {_num(energy['battery_discharge'], 1)}",
        ),
        (
            "  export / curtailed / unserved (kWh)",
            " / ".join(_num(energy[k], 1) for k in ("export", "curtailed", "unserved")),
        ),
        ("inference requests", _num(inf["requests"], 0)),
        ("  SLO violation fraction", f"{inf['slo_violation_fraction']:.4%}"),
        ("batch jobs completed", f"{batch['completed']} / {batch['jobs']}"),
        ("  deadline misses", str(batch["deadline_misses"])),
        ("  work (accelerator-h)", _num(batch["work_accelerator_hours"], 1)),
        ("  mean completion delay (h)", _num(batch["mean_completion_delay_h"])),
        (
            "decision time total / p99 (s)",
            f"{summary['decision_s']['total']:.3f} / {summary['decision_s']['p99']:.4f}",
        ),
        ("wall time (s)", f"{summary['wall_s']:.2f}"),
    ]
    for label, value in rows:
        head.add_row(label, value)

    sites = Table(title="sites")
    for col in (
        "site",
        "cost USD",
        "emissions kg",
        "load kWh",
        "grid kWh",
        "renewable kWh",
        "curtailed kWh",
        "peak kW",
    ):
        sites.add_column(col, justify="right" if col != "site" else "left")
    for name, site in summary["sites"].items():
        e = site["energy_kwh"]
        sites.add_row(
            name,
            _num(site["cost_usd"]),
            _num(site["emissions_kg"], 1),
            _num(e["load"], 1),
            _num(e["grid"], 1),
            _num(e["solar"] + e["wind"], 1),
            _num(e["curtailed"], 1),
            _num(site["peak_load_kw"], 1),
        )
    return [head, sites]


def print_summary(summary: Mapping[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for table in summary_tables(summary):
        console.print(table)
    for note in summary.get("notes", []):
        console.print(f"[dim]note: {note}[/dim]")
