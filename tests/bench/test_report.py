"""The bench report's charts, checked on the figure objects: a legend for every site panel,
one colour per site everywhere, agnostic against mpc, series binned to the period, nothing
empty, the jobs chart labelled."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tests.builders import STEP, job, scenario, signal, site, small_fleet
from wattroute.bench import run_scenario
from wattroute.bench.report import (
    bin_rule,
    scenario_figures,
    site_colours,
    table_columns,
    write_report,
)
from wattroute.bench.runner import table_rows
from wattroute.model import Renewable
from wattroute.signals.forecast import Blend


def _fleet(days: int = 2):
    # a: solar and a battery; b: wind, by night; c: grid only. Jobs for the policies to place.
    n = days * 288
    a, b = small_fleet(days).sites
    night = np.clip(np.cos(np.linspace(0, 2 * days * np.pi, n)), 0, None)
    return scenario(
        [
            a,
            replace(b, wind=Renewable(5.0, signal(night, STEP))),
            site("c", n=n, accelerators=4, idle_kw=0.1, latitude=42.0),
        ],
        n=n,
        jobs=[job(f"j{i}", 2.0 * i, 8.0, 4, 2.0 * i + 20.0) for i in range(6)],
    )


@pytest.fixture(scope="module")
def result():
    return run_scenario(_fleet(), ["agnostic", "greedy", "mpc", "oracle"], Blend())


def _legend(trace) -> str:
    return trace.legend or "legend"


def test_every_site_panel_has_its_own_legend_naming_each_source_it_shows(result):
    fig = scenario_figures(result)["supply"]
    sites = sorted({t.meta["site"] for t in fig.data})
    assert sites == ["a", "b", "c"]
    for where in sites:
        traces = [t for t in fig.data if t.meta["site"] == where]
        legends = {_legend(t) for t in traces}
        assert len(legends) == 1, where  # one legend per site's row of panels
        (legend,) = legends
        assert fig.layout[legend].title.text == where
        shown = {t.name for t in traces if t.showlegend is not False}
        assert shown == {t.name for t in traces}  # every source drawn is in the legend
    wind_b = [t for t in fig.data if t.meta["site"] == "b" and t.name == "wind"]
    assert wind_b  # wind at a site other than the first is drawn and labelled
    assert any(t.showlegend is not False for t in wind_b)
    # the legends are on different rows
    tops = {fig.layout[_legend(t)].y for t in fig.data}
    assert len(tops) == 3


def test_sources_a_site_lacks_are_left_out(result):
    fig = scenario_figures(result)["supply"]
    by_site = {s: {t.name for t in fig.data if t.meta["site"] == s} for s in "abc"}
    assert "wind" not in by_site["a"]
    assert "solar" not in by_site["b"]
    assert by_site["c"] == {"grid", "load"}
    assert not any(t.name == "genset" for t in fig.data)
    for where, names in by_site.items():
        for name in names:  # drawn: non-zero under one of the policies at least
            ys = [
                np.asarray(t.y, dtype=float)
                for t in fig.data
                if (t.meta["site"], t.name) == (where, name)
            ]
            assert max(np.nanmax(np.abs(y)) for y in ys) > 0, (where, name)


def test_one_colour_per_site_in_every_chart(result):
    colours = site_colours(["a", "b", "c"])
    assert len(set(colours.values())) == 3
    figures = scenario_figures(result)
    seen: dict[str, set[str]] = {}
    for key in ("signals", "jobs"):
        for trace in figures[key].data:
            site = trace.meta["site"]
            colour = trace.marker.color if key == "jobs" else trace.line.color
            seen.setdefault(site, set()).add(colour)
    assert seen == {s: {colours[s]} for s in seen}
    assert set(seen) == {"a", "b", "c"}
    # the supply panels' titles carry the site's colour
    for annotation in figures["supply"].layout.annotations:
        site = annotation.text.split(" — ")[0]
        assert annotation.font.color == colours[site]


def test_time_series_compare_agnostic_against_mpc(result):
    figures = scenario_figures(result)
    supply = figures["supply"]
    assert {t.meta["policy"] for t in supply.data} == {"agnostic", "mpc"}
    titles = [a.text for a in supply.layout.annotations]
    assert titles[:2] == ["a — agnostic", "a — mpc"]
    fleet = figures["fleet"]
    for series in ("grid_import_kw", "batch_accelerators"):
        lines = {t.meta["policy"]: t for t in fleet.data if t.meta["series"] == series}
        assert set(lines) == {"agnostic", "mpc"}
        assert lines["agnostic"].line.dash != lines["mpc"].line.dash
    jobs = figures["jobs"]
    assert {t.meta["policy"] for t in jobs.data} == {"agnostic", "mpc"}
    # the same fleet-wide grid import as the summary, hour by hour (the bins are hourly)
    grid = {
        t.meta["policy"]: np.asarray(t.y, dtype=float)
        for t in fleet.data
        if t.meta["series"] == "grid_import_kw"
    }
    for policy, hourly in grid.items():
        assert hourly.sum() == pytest.approx(
            result.summaries[policy]["energy_kwh"]["grid"], rel=1e-4
        )


def test_series_are_binned_to_the_period():
    step = pd.Timedelta(minutes=5)
    assert bin_rule(pd.Timedelta(days=7), step) == "60min"
    assert bin_rule(pd.Timedelta(days=30), step) == "360min"
    assert bin_rule(pd.Timedelta(days=365), step) == "1D"
    assert bin_rule(pd.Timedelta(days=7), pd.Timedelta(hours=2)) == "120min"


def test_supply_panels_are_hourly_means(result):
    fig = scenario_figures(result)["supply"]
    trace = next(t for t in fig.data if t.meta["site"] == "c" and t.name == "load")
    x = pd.DatetimeIndex(trace.x)
    assert len(x) == 48  # two days of 5-minute steps in 48 hourly points
    assert (x[1:] - x[:-1] == pd.Timedelta(hours=1)).all()
    assert "hourly means" in fig.layout.title.text


def test_empty_charts_and_columns_are_left_out():
    # grid only, no battery, no jobs: no jobs chart, no battery row
    n = 288
    sc = scenario([site("a", n=n, accelerators=4, idle_kw=0.1)], n=n)
    result = run_scenario(sc, ["agnostic", "mpc"], Blend())
    figures = scenario_figures(result)
    assert "jobs" not in figures
    assert not any(t.meta["series"] == "soc_kwh" for t in figures["signals"].data)
    assert [a.text for a in figures["signals"].layout.annotations] == [
        "grid price (USD/MWh)",
        "grid carbon intensity (gCO2/kWh)",
    ]
    assert {t.name for t in figures["comparison"].data} <= {"energy cost", "carbon cost"}
    columns = table_columns(table_rows(result))
    for empty in ("solar_kwh", "wind_kwh", "genset_kwh", "penalties_usd", "deadline_misses"):
        assert empty not in columns
    assert columns[:2] == ["policy", "objective_usd"]


def test_the_jobs_chart_is_labelled_even_with_many_jobs():
    n = 288
    jobs = [job(f"job-{i:03d}", 0.1 * i, 1.0, 1, 0.1 * i + 20.0) for i in range(120)]
    sc = scenario([site("a", n=n, accelerators=16, idle_kw=0.1)], n=n, jobs=jobs)
    result = run_scenario(sc, ["agnostic"], Blend())
    fig = scenario_figures(result)["jobs"]
    assert fig.layout.yaxis.showticklabels is True
    assert list(fig.layout.yaxis.categoryarray) == [f"job-{i:03d}" for i in range(80)]
    assert fig.layout.xaxis.title.text == "time (UTC)"
    assert fig.layout.yaxis.title.text
    assert "the first 80 of 120 jobs" in fig.layout.title.text
    assert fig.layout.height >= 14 * 80  # room for every label


def test_the_report_embeds_plotly_once_and_every_chart(result, tmp_path):
    path = write_report([result], tmp_path / "report.html")
    text = path.read_text()
    assert text.count('class="plotly-graph-div"') == len(scenario_figures(result))
    assert text.count("plotly.js v") == 1
