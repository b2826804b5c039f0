"""An HTML report of a bench run, with plotly charts.

Per scenario: the comparison table (columns that are zero for every policy left out), the
policies' objectives split into energy cost, carbon cost and penalties (with the oracle's
bound), and, for the baseline ``agnostic`` beside the policy of interest (``mpc`` if it ran,
else the last simulated one):

* per site and policy, power by source against load (one panel per site and policy, each row
  of panels with its own legend of the sources it has);
* the fleet's grid import, curtailed power and busy batch accelerators, policy against policy;
* battery energy, grid price and carbon intensity per site;
* where each batch job ran, policy against policy.

Each site has one colour in every chart; sources keep theirs (solar yellow, wind blue, ...).
Series are means over bins sized to the period — an hour up to two weeks, six hours up to two
months, a day beyond — so that stacked areas stay legible and the file small. Charts and
series with nothing to show (no battery, a source a site lacks, no jobs) are left out.
plotly.js is embedded once, so the file works offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from wattroute.bench.runner import BASELINE, ScenarioResult, table_rows
from wattroute.sim import RunRecord

SOURCES = (
    ("solar_kw", "solar", "#f2c037"),
    ("wind_kw", "wind", "#5aa9e6"),
    ("battery_discharge_kw", "battery", "#7d5ba6"),
    ("grid_import_kw", "grid", "#8c8c8c"),
    ("genset_kw", "genset", "#c0392b"),
)
"""Power sources stacked in the site panels: series, label, colour."""

SITE_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#b07aa1",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
    "#edc948",
)
"""One colour per site, by the site's place in the fleet (Tableau 10)."""

POLICY_DASH = ("solid", "dash", "dot", "dashdot")
"""Line styles of the compared policies, in order (the baseline first)."""

ZERO = 1e-6
"""Series whose values all stay within this of zero are left out (kW, kWh, accelerators)."""


def site_colours(names: Sequence[str]) -> dict[str, str]:
    """Each site's colour, the same in every chart."""
    return {name: SITE_COLOURS[i % len(SITE_COLOURS)] for i, name in enumerate(names)}


def bin_rule(period: pd.Timedelta, step: pd.Timedelta) -> str:
    """The bin series are averaged over: ``1h`` for up to 14 days, ``6h`` up to 62 days, ``1D``
    beyond; never finer than the step."""
    if period <= pd.Timedelta(days=14):
        rule = pd.Timedelta(hours=1)
    elif period <= pd.Timedelta(days=62):
        rule = pd.Timedelta(hours=6)
    else:
        rule = pd.Timedelta(days=1)
    rule = max(rule, step)
    return "1D" if rule == pd.Timedelta(days=1) else f"{int(rule.total_seconds() // 60)}min"


def bin_label(rule: str) -> str:
    """``hourly``, ``6-hourly``, ``daily``: how the series are averaged, for titles."""
    minutes = pd.Timedelta(rule).total_seconds() / 60
    if minutes == 60:
        return "hourly"
    if minutes == 1440:
        return "daily"
    if minutes % 60 == 0:
        return f"{int(minutes // 60)}-hourly"
    return f"{minutes:g}-minute"


def _binned(values: np.ndarray, times: pd.DatetimeIndex, rule: str) -> pd.DataFrame:
    """Means of ``values`` (steps x columns) over bins of ``rule``."""
    return pd.DataFrame(np.asarray(values, dtype=np.float64), index=times).resample(rule).mean()


def compared_policies(result: ScenarioResult) -> list[str]:
    """The simulated policies the time series compare: the baseline, if it ran, and the
    policy of interest (``mpc`` if it ran, else the last simulated one)."""
    simulated = list(result.records)
    if not simulated:
        return []
    focus = "mpc" if "mpc" in simulated else simulated[-1]
    chosen = [BASELINE] if BASELINE in simulated and focus != BASELINE else []
    return [*chosen, focus]


def _nonzero(values: np.ndarray) -> bool:
    return bool(np.any(np.abs(np.nan_to_num(values)) > ZERO))


def comparison_figure(result: ScenarioResult) -> go.Figure:
    """The objective of each policy, split into energy cost, carbon cost and penalties (USD);
    a part that is zero for every policy is left out."""
    names = list(result.summaries)
    carbon_price = result.scenario.carbon_price_usd_per_tonne
    parts = (
        ("energy cost", "#4c78a8", [result.summaries[n]["cost_usd"] for n in names]),
        (
            "carbon cost",
            "#54a24b",
            [carbon_price * result.summaries[n]["emissions_kg"] / 1000.0 for n in names],
        ),
        ("penalties", "#e45756", [result.summaries[n]["penalties_usd"]["total"] for n in names]),
    )
    labels = [f"{n} (bound)" if result.summaries[n].get("bound") else n for n in names]
    fig = go.Figure(
        [
            go.Bar(name=name, x=labels, y=values, marker_color=colour)
            for name, colour, values in parts
            if _nonzero(np.array(values))
        ]
    )
    fig.update_layout(
        barmode="relative",
        title="Objective by policy: energy cost + carbon cost + penalties",
        yaxis_title="USD",
        height=380,
        legend_title_text="part of the objective",
    )
    return fig


def _row_legends(fig: go.Figure, rows: int, cols: int, titles: Sequence[str]) -> None:
    """Give each row of subplots its own legend, beside the row, titled ``titles[row]``."""
    for r in range(rows):
        axis = fig.layout[f"yaxis{'' if r == 0 else r * cols + 1}"]
        top = axis.domain[1]
        key = "legend" if r == 0 else f"legend{r + 1}"
        fig.layout[key] = {
            "x": 1.01,
            "xanchor": "left",
            "y": top,
            "yanchor": "top",
            "title": {"text": titles[r]},
            "tracegroupgap": 2,
        }


def _legend_key(row: int) -> str:
    return "legend" if row == 0 else f"legend{row + 1}"


def supply_figure(result: ScenarioResult, policies: Sequence[str], rule: str) -> go.Figure | None:
    """Per site (rows) and policy (columns): power by source, stacked, against load (kW)."""
    times = result.scenario.times
    records = [result.records[p] for p in policies]
    names = records[0].fleet.names
    colours = site_colours(names)
    panels: list[tuple[int, list[tuple[str, str, str, list[pd.DataFrame]]]]] = []
    for i in range(len(names)):
        series = []
        for column, label, colour in (*SOURCES, ("load_kw", "load", "black")):
            binned = [_binned(r.sites.series(column)[:, i : i + 1], times, rule) for r in records]
            if any(_nonzero(b.to_numpy()) for b in binned):
                series.append((column, label, colour, binned))
        if series:
            panels.append((i, series))
    if not panels:
        return None
    cols = len(policies)
    fig = make_subplots(
        rows=len(panels),
        cols=cols,
        shared_xaxes=True,
        shared_yaxes="rows",
        horizontal_spacing=0.03,
        vertical_spacing=min(0.08, 0.3 / len(panels)),
        subplot_titles=[f"{names[i]} — {p}" for i, _ in panels for p in policies],
    )
    for row, (i, series) in enumerate(panels):
        site = names[i]
        for col, policy in enumerate(policies):
            for column, label, colour, binned in series:
                frame = binned[col]
                is_load = column == "load_kw"
                fig.add_trace(
                    go.Scatter(
                        x=frame.index,
                        y=frame[0],
                        name=label,
                        legend=_legend_key(row),
                        legendgroup=f"{site}:{label}",
                        showlegend=col == 0,
                        meta={"site": site, "policy": policy, "series": column},
                        hovertemplate=f"{label} %{{y:,.1f}} kW<extra>{site}, {policy}</extra>",
                        **(
                            {"line": {"color": "black", "width": 1.5}}
                            if is_load
                            else {
                                "stackgroup": f"{row}-{col}",
                                "line": {"width": 0, "color": colour},
                                "fillcolor": colour,
                            }
                        ),
                    ),
                    row=row + 1,
                    col=col + 1,
                )
        fig.update_yaxes(title_text="kW", row=row + 1, col=1)
    # Each subplot title in its site's colour.
    for n, annotation in enumerate(fig.layout.annotations):
        site = names[panels[n // cols][0]]
        annotation.font = {"color": colours[site], "size": 14}
    _row_legends(fig, len(panels), cols, [names[i] for i, _ in panels])
    fig.update_layout(
        height=max(320, 250 * len(panels)),
        title=f"Supply against load per site, {bin_label(rule)} means (kW)",
        margin={"r": 150},
    )
    return fig


def fleet_figure(result: ScenarioResult, policies: Sequence[str], rule: str) -> go.Figure | None:
    """The fleet's grid import and curtailment (kW) and busy batch accelerators over time,
    one line per policy; a quantity zero for every policy is left out."""
    times = result.scenario.times
    quantities = (
        ("grid_import_kw", "grid import (kW)"),
        ("curtailed_kw", "renewables curtailed (kW)"),
        ("batch_accelerators", "batch accelerators busy"),
    )
    rows = []
    for column, title in quantities:
        binned = [
            _binned(result.records[p].sites.series(column).sum(axis=1)[:, None], times, rule)
            for p in policies
        ]
        if any(_nonzero(b.to_numpy()) for b in binned):
            rows.append((column, title, binned))
    if not rows:
        return None
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[title for _, title, _ in rows],
    )
    for r, (column, _, binned) in enumerate(rows):
        for k, (policy, frame) in enumerate(zip(policies, binned, strict=True)):
            fig.add_trace(
                go.Scatter(
                    x=frame.index,
                    y=frame[0],
                    name=policy,
                    legendgroup=policy,
                    showlegend=r == 0,
                    line={"color": "#333333", "dash": POLICY_DASH[k % len(POLICY_DASH)]},
                    meta={"policy": policy, "series": column},
                ),
                row=r + 1,
                col=1,
            )
    fig.update_layout(
        height=max(300, 230 * len(rows)),
        title=f"Fleet, policy against policy, {bin_label(rule)} means",
        legend_title_text="policy",
    )
    return fig


def signals_figure(result: ScenarioResult, policies: Sequence[str], rule: str) -> go.Figure | None:
    """Battery energy (kWh, per compared policy), grid price (USD/MWh) and carbon intensity
    (gCO2/kWh) per site; rows and sites with nothing to show are left out."""
    times = result.scenario.times
    records: list[RunRecord] = [result.records[p] for p in policies]
    fleet = records[0].fleet
    names = fleet.names
    colours = site_colours(names)
    rows: list[tuple[str, str, list[tuple[str, str, int, pd.DataFrame]]]] = []
    battery = []
    for i, name in enumerate(names):
        if fleet.battery_max_kwh[i] <= 0:
            continue
        for k, (policy, record) in enumerate(zip(policies, records, strict=True)):
            frame = _binned(record.sites.series("soc_kwh")[:, i : i + 1], times, rule)
            battery.append((name, policy, k, frame))
    if battery:
        rows.append(("soc_kwh", "battery energy (kWh)", battery))
    for column, title in (
        ("price_usd_per_mwh", "grid price (USD/MWh)"),
        ("carbon_g_per_kwh", "grid carbon intensity (gCO2/kWh)"),
    ):
        per_site = []
        for i, name in enumerate(names):
            frame = _binned(records[0].sites.series(column)[:, i : i + 1], times, rule)
            if _nonzero(frame.to_numpy()):
                per_site.append((name, "", 0, frame))
        if per_site:
            rows.append((column, title, per_site))
    if not rows:
        return None
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[title for _, title, _ in rows],
    )
    for r, (column, _, traces) in enumerate(rows):
        for name, policy, k, frame in traces:
            label = f"{name} ({policy})" if policy else name
            fig.add_trace(
                go.Scatter(
                    x=frame.index,
                    y=frame[0],
                    name=label,
                    legend=_legend_key(r),
                    legendgroup=f"{r}:{label}",
                    line={"color": colours[name], "dash": POLICY_DASH[k % len(POLICY_DASH)]},
                    meta={"site": name, "policy": policy, "series": column},
                ),
                row=r + 1,
                col=1,
            )
    _row_legends(
        fig, len(rows), 1, ["site (policy)" if c == "soc_kwh" else "site" for c, _, _ in rows]
    )
    fig.update_layout(
        height=max(300, 250 * len(rows)),
        title=f"Batteries and grid signals, {bin_label(rule)} means",
        margin={"r": 170},
    )
    return fig


def jobs_figure(
    result: ScenarioResult, policies: Sequence[str], most: int = 80
) -> go.Figure | None:
    """Where each batch job ran over time, policy against policy (the first ``most`` jobs to
    arrive); ``None`` when no job ran."""
    scenario = result.scenario
    records = [result.records[p] for p in policies]
    names = records[0].fleet.names
    colours = site_colours(names)
    spec = records[0].jobs.spec
    order = np.argsort(spec.arrival_h, kind="stable")[:most]
    shown = set(order.tolist())
    panels = [_job_bars(record, shown, scenario.step_h) for record in records]
    if not any(bars for bars in panels):
        return None
    labels = [spec.names[j] for j in order]
    # The time axis spans the stretches shown (the first jobs may take a small part of the period).
    first_h = min(h for bars in panels for b in bars.values() for h in b["base"])
    last_h = max(
        h + ms / 3.6e6
        for bars in panels
        for b in bars.values()
        for h, ms in zip(b["base"], b["x"], strict=True)
    )
    span = [
        scenario.start + pd.Timedelta(hours=first_h),
        scenario.start + pd.Timedelta(hours=last_h),
    ]
    cols = len(policies)
    fig = make_subplots(
        rows=1,
        cols=cols,
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=list(policies),
    )
    legend_done: set[str] = set()
    for col, (policy, bars) in enumerate(zip(policies, panels, strict=True)):
        for site, b in sorted(bars.items()):
            name = names[site]
            fig.add_trace(
                go.Bar(
                    name=name,
                    orientation="h",
                    x=b["x"],
                    base=[scenario.start + pd.Timedelta(hours=h) for h in b["base"]],
                    y=[spec.names[j] for j in b["job"]],
                    marker_color=colours[name],
                    legendgroup=name,
                    showlegend=name not in legend_done,
                    meta={"site": name, "policy": policy},
                    customdata=b["text"],
                    hovertemplate="%{y} at "
                    + name
                    + ": %{customdata}<extra>"
                    + policy
                    + "</extra>",
                ),
                row=1,
                col=col + 1,
            )
            legend_done.add(name)
        fig.update_xaxes(
            type="date",
            title_text="time (UTC)",
            range=span,
            row=1,
            col=col + 1,
        )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=labels,
        autorange="reversed",
        tickfont={"size": 10},
        showticklabels=True,
        type="category",
    )
    fig.update_yaxes(title_text="job (by arrival)", row=1, col=1)
    first = (
        f"the first {len(labels)} of {spec.n_jobs} jobs"
        if spec.n_jobs > len(labels)
        else f"all {len(labels)} jobs"
    )
    fig.update_layout(
        barmode="overlay",
        height=max(320, 14 * len(labels) + 170),
        title=f"Where each batch job ran, {first}, policy against policy",
        legend_title_text="site",
    )
    return fig


def _job_bars(record: RunRecord, shown: set[int], step_h: float) -> dict[int, dict[str, list[Any]]]:
    """Per site: the stretches jobs in ``shown`` ran there (start hour, length ms, job, text)."""
    history = record.jobs.allocation_history()
    n_steps = record.scenario.n_steps
    bars: dict[int, dict[str, list[Any]]] = {}
    by_job = np.argsort(history["job"], kind="stable")
    jobs, steps = history["job"][by_job], history["step"][by_job]
    sites, accs = history["site"][by_job], history["accelerators"][by_job]
    for n in range(jobs.size):
        job = int(jobs[n])
        if job not in shown or sites[n] < 0:
            continue
        start = steps[n] * step_h
        if n + 1 < jobs.size and jobs[n + 1] == job:
            stop = steps[n + 1] * step_h
        else:
            end = record.jobs.completed_h[job]
            stop = end if math.isfinite(end) else n_steps * step_h
        if stop <= start:
            continue
        b = bars.setdefault(int(sites[n]), {"base": [], "x": [], "job": [], "text": []})
        b["base"].append(float(start))
        b["x"].append((stop - start) * 3600 * 1000)  # ms, plotly's unit on a date axis
        b["job"].append(job)
        b["text"].append(f"{int(accs[n])} accelerators for {stop - start:.2f} h")
    return bars


def scenario_figures(result: ScenarioResult) -> dict[str, go.Figure]:
    """The charts of one scenario, by name (``comparison``, ``supply``, ``fleet``,
    ``signals``, ``jobs``); those with nothing to show are absent."""
    figures: dict[str, go.Figure] = {"comparison": comparison_figure(result)}
    policies = compared_policies(result)
    if not policies:
        return figures
    scenario = result.scenario
    rule = bin_rule(scenario.end - scenario.start, scenario.step)
    makers: dict[str, Callable[[], go.Figure | None]] = {
        "supply": lambda: supply_figure(result, policies, rule),
        "fleet": lambda: fleet_figure(result, policies, rule),
        "signals": lambda: signals_figure(result, policies, rule),
        "jobs": lambda: jobs_figure(result, policies),
    }
    for key, make in makers.items():
        fig = make()
        if fig is not None:
            figures[key] = fig
    return figures


TABLE_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("policy", "policy", str),
    ("objective_usd", "objective USD", lambda v: f"{v:,.2f}"),
    ("capture_ratio", "capture", lambda v: "n/a" if not math.isfinite(v) else f"{v:.1%}"),
    ("cost_usd", "energy cost USD", lambda v: f"{v:,.2f}"),
    ("emissions_kg", "emissions kg", lambda v: f"{v:,.1f}"),
    ("penalties_usd", "penalties USD", lambda v: f"{v:,.2f}"),
    ("grid_kwh", "grid kWh", lambda v: f"{v:,.0f}"),
    ("solar_kwh", "solar kWh", lambda v: f"{v:,.0f}"),
    ("wind_kwh", "wind kWh", lambda v: f"{v:,.0f}"),
    ("genset_kwh", "genset kWh", lambda v: f"{v:,.0f}"),
    ("battery_discharge_kwh", "battery out kWh", lambda v: f"{v:,.0f}"),
    ("curtailed_kwh", "curtailed kWh", lambda v: f"{v:,.0f}"),
    (
        "curtailed_absorbed_kwh",
        "curtailment absorbed kWh",
        lambda v: "n/a" if not math.isfinite(v) else f"{v:,.0f}",
    ),
    ("slo_violation_fraction", "SLO violations", lambda v: f"{v:.2%}"),
    ("deadline_misses", "deadline misses", lambda v: f"{v:,}"),
    ("decision_s_total", "decision s", lambda v: f"{v:,.2f}"),
    ("decision_s_p99", "decision s p99", lambda v: f"{v:.4f}"),
)
"""The report's comparison table: row key, header, format."""

ALWAYS_SHOWN = ("policy", "objective_usd")


def table_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table's columns for ``rows``: a column that is zero (or n/a) for every policy is
    left out."""
    keep = []
    for key, _, _ in TABLE_COLUMNS:
        values = [r[key] for r in rows]
        empty = all(
            isinstance(v, int | float) and (not math.isfinite(v) or abs(v) <= ZERO) for v in values
        )
        if key in ALWAYS_SHOWN or not empty:
            keep.append(key)
    return keep


def _html_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = table_columns(rows)
    spec = {key: (head, fmt) for key, head, fmt in TABLE_COLUMNS}
    out = ["<table><tr>", *(f"<th>{html.escape(spec[c][0])}</th>" for c in columns), "</tr>"]
    for row in rows:
        cells = []
        for c in columns:
            text = spec[c][1](row[c])
            if c == "policy" and row["bound"]:
                text += " (bound)"
            cells.append(f"<td>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def write_report(results: list[ScenarioResult], path: Path) -> Path:
    """Write the HTML report and return its path."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>wattroute bench</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "td{text-align:right}td:first-child{text-align:left}</style></head><body>"
        "<h1>wattroute bench</h1>",
    ]
    first = True
    for result in results:
        parts.append(f"<h2>{html.escape(result.scenario.name)}</h2>")
        parts.append(f"<p>{html.escape(result.scenario.description)}</p>")
        parts.append(_html_table(table_rows(result)))
        for fig in scenario_figures(result).values():
            parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
            first = False
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
