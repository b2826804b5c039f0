"""An HTML report of a bench run, with plotly charts.

Per scenario: the policies compared (objective split into energy cost, carbon cost and
penalties, with the oracle's bound), and for the policy of interest (``mpc`` if it ran, else
the last simulated one): per-site power by source against load, battery state of charge,
price and carbon signals, and where each batch job ran over time. Series are shown as hourly
means to keep the file small; plotly.js is embedded once, so the file works offline.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from wattroute.bench.runner import ScenarioResult, markdown_table, table_rows

SOURCES = (
    ("solar_kw", "solar", "#f2c037"),
    ("wind_kw", "wind", "#5aa9e6"),
    ("battery_discharge_kw", "battery", "#7d5ba6"),
    ("grid_import_kw", "grid", "#8c8c8c"),
    ("genset_kw", "genset", "#c0392b"),
)


def _hourly(values: np.ndarray, times: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, np.ndarray]:
    frame = pd.DataFrame(values, index=times).resample("1h").mean()
    return pd.DatetimeIndex(frame.index), frame.to_numpy()


def _comparison(result: ScenarioResult) -> go.Figure:
    names = list(result.summaries)
    carbon_price = result.scenario.carbon_price_usd_per_tonne
    energy = [result.summaries[n]["cost_usd"] for n in names]
    carbon = [carbon_price * result.summaries[n]["emissions_kg"] / 1000.0 for n in names]
    penalty = [result.summaries[n]["penalties_usd"]["total"] for n in names]
    fig = go.Figure(
        [
            go.Bar(name="energy cost", x=names, y=energy, marker_color="#4c78a8"),
            go.Bar(name="carbon cost", x=names, y=carbon, marker_color="#54a24b"),
            go.Bar(name="penalties", x=names, y=penalty, marker_color="#e45756"),
        ]
    )
    fig.update_layout(barmode="relative", title="Objective by policy (USD)", height=380)
    return fig


def _sites(result: ScenarioResult, policy: str) -> go.Figure:
    record = result.records[policy]
    times = result.scenario.times
    names = record.fleet.names
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"{n}: power by source (kW)" for n in names],
    )
    for i in range(len(names)):
        for column, label, colour in SOURCES:
            hours, values = _hourly(record.sites.series(column)[:, i], times)
            if not np.any(values > 1e-6):
                continue
            fig.add_trace(
                go.Scatter(
                    x=hours,
                    y=values[:, 0],
                    name=label,
                    stackgroup=f"s{i}",
                    line={"width": 0},
                    fillcolor=colour,
                    legendgroup=label,
                    showlegend=i == 0,
                ),
                row=i + 1,
                col=1,
            )
        hours, load = _hourly(record.sites.series("load_kw")[:, i], times)
        fig.add_trace(
            go.Scatter(
                x=hours,
                y=load[:, 0],
                name="load",
                line={"color": "black", "width": 1.5},
                legendgroup="load",
                showlegend=i == 0,
            ),
            row=i + 1,
            col=1,
        )
    fig.update_layout(height=260 * len(names), title=f"{policy}: supply against load")
    return fig


def _signals(result: ScenarioResult, policy: str) -> go.Figure:
    record = result.records[policy]
    times = result.scenario.times
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        subplot_titles=("battery energy (kWh)", "price (USD/MWh)", "carbon intensity (gCO2/kWh)"),
    )
    for i, name in enumerate(record.fleet.names):
        for row, column in ((1, "soc_kwh"), (2, "price_usd_per_mwh"), (3, "carbon_g_per_kwh")):
            if row == 1 and record.fleet.battery_max_kwh[i] <= 0:
                continue
            hours, values = _hourly(record.sites.series(column)[:, i], times)
            fig.add_trace(
                go.Scatter(
                    x=hours, y=values[:, 0], name=name, legendgroup=name, showlegend=row == 2
                ),
                row=row,
                col=1,
            )
    fig.update_layout(height=720, title=f"{policy}: battery and grid signals")
    return fig


def _jobs(result: ScenarioResult, policy: str, most: int = 150) -> go.Figure:
    record = result.records[policy]
    history = record.jobs.allocation_history()
    scenario = result.scenario
    spec = record.jobs.spec
    names = record.fleet.names
    colours = (
        "#4c78a8",
        "#f58518",
        "#54a24b",
        "#e45756",
        "#72b7b2",
        "#b279a2",
        "#ff9da6",
        "#9d755d",
    )
    bars: dict[str, dict[str, list[object]]] = {
        n: {"x": [], "base": [], "y": [], "text": []} for n in names
    }
    shown = sorted(set(history["job"].tolist()))[:most]
    for job in shown:
        mine = history["job"] == job
        steps, sites, accs = (
            history["step"][mine],
            history["site"][mine],
            history["accelerators"][mine],
        )
        end_h = record.jobs.completed_h[job]
        ends = [
            *(steps[1:] * scenario.step_h),
            end_h if np.isfinite(end_h) else scenario.n_steps * scenario.step_h,
        ]
        for start, stop, site, acc in zip(steps * scenario.step_h, ends, sites, accs, strict=True):
            if site < 0 or stop <= start:
                continue
            begin = scenario.start + pd.Timedelta(hours=float(start))
            bars[names[site]]["base"].append(begin)
            bars[names[site]]["x"].append((stop - start) * 3600 * 1000)  # ms, plotly's date unit
            bars[names[site]]["y"].append(spec.names[job])
            bars[names[site]]["text"].append(f"{acc} accelerators")
    fig = go.Figure()
    for i, name in enumerate(names):
        b = bars[name]
        if b["x"]:
            fig.add_trace(
                go.Bar(
                    name=name,
                    orientation="h",
                    x=b["x"],
                    base=b["base"],
                    y=b["y"],
                    hovertext=b["text"],
                    marker_color=colours[i % len(colours)],
                )
            )
    fig.update_layout(
        barmode="overlay",
        height=max(300, 12 * len(shown) + 120),
        xaxis={"type": "date"},
        title=f"{policy}: where each batch job ran (first {len(shown)} jobs)",
        yaxis={"autorange": "reversed", "showticklabels": len(shown) <= 60},
    )
    return fig


def write_report(results: list[ScenarioResult], path: Path) -> Path:
    """Write the HTML report and return its path."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>wattroute bench</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "</style></head><body><h1>wattroute bench</h1>",
    ]
    first = True
    for result in results:
        rows = table_rows(result)
        parts.append(f"<h2>{html.escape(result.scenario.name)}</h2>")
        parts.append(f"<p>{html.escape(result.scenario.description)}</p>")
        parts.append(_html_table(markdown_table(rows)))
        figures = [_comparison(result)]
        simulated = list(result.records)
        if simulated:
            policy = "mpc" if "mpc" in result.records else simulated[-1]
            figures += [_sites(result, policy), _signals(result, policy), _jobs(result, policy)]
        for fig in figures:
            parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
            first = False
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _html_table(markdown: str) -> str:
    lines = [line.strip().strip("|").split("|") for line in markdown.splitlines()]
    head, body = lines[0], lines[2:]
    out = ["<table><tr>", *(f"<th>{html.escape(c.strip())}</th>" for c in head), "</tr>"]
    for row in body:
        out.append("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)
