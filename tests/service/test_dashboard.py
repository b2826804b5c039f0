"""The dashboard's page, assets and data: behind the same tokens, tenants kept apart, the last
24 h from the committed ticks, grid events, the objective against the agnostic baseline; the
page and the API documentation need nothing from elsewhere."""

from __future__ import annotations

import copy
import dataclasses
import re

import pandas as pd
import pytest

from tests.service.helpers import make_service, sqlite_url
from wattroute.runtime.baseline import Baseline
from wattroute.runtime.records import GridEventRecord
from wattroute.service.api.dashboard import plotly_styles
from wattroute.service.dashboard.view import StepView, why_moved

JOB = {"name": "train", "work_accelerator_hours": 4.0, "max_accelerators": 2, "slack_h": 6.0}
SERVICE = {
    "name": "vision",
    "latency_slo_ms": 30,
    "service_time_ms": 5,
    "replica_throughput_rps": 10,
    "demand_rps": {"p": 5},
}


@pytest.fixture
def svc(tmp_path):
    service = make_service(sqlite_url(tmp_path))
    service.controller.baseline = Baseline(service.state.scenario, service.store, service.clock)
    with service.client:
        yield service


def test_the_data_needs_a_read_token_and_shows_each_tenant_its_own_work(svc):
    assert svc.client.get("/v1/dashboard").status_code == 401
    assert svc.client.get("/v1/dashboard", headers=svc.token("p", "metrics")).status_code == 403
    acme, globex = svc.token("acme", "submit"), svc.token("globex", "submit")
    mine = svc.client.post("/v1/jobs", json=JOB, headers=acme).json()["id"]
    theirs = svc.client.post("/v1/jobs", json=JOB, headers=globex).json()["id"]
    assert svc.client.post("/v1/services", json=SERVICE, headers=acme).status_code == 201
    assert svc.client.post("/v1/services", json=SERVICE, headers=globex).status_code == 201
    svc.tick(3)

    seen = svc.client.get("/v1/dashboard", headers=svc.token("acme", "read")).json()
    assert [j["id"] for j in seen["jobs"]["items"]] == [mine]
    assert seen["jobs"]["total"] == 1
    assert [s["service"] for s in seen["inference"]["services"]] == ["vision"]
    assert seen["scope"] == "tenant"
    job = seen["jobs"]["items"][0]
    assert job["state"] == "running"
    assert job["segments"][0]["site"] == job["site"]
    assert 0 < job["progress"] < 1
    point = seen["inference"]["services"][0]["points"]["p"]
    assert sum(point["shares"].values()) == pytest.approx(1.0)
    assert 5 < point["latency_ms"] <= 30  # service time plus the round trip, within the SLO

    everything = svc.client.get("/v1/dashboard", headers=svc.token("ops", "admin")).json()
    assert {j["id"] for j in everything["jobs"]["items"]} == {mine, theirs}
    assert {s["service"] for s in everything["inference"]["services"]} == {
        "acme/vision",
        "globex/vision",
    }


def test_it_shows_every_site_now_and_over_the_last_24_hours(svc):
    h = svc.token("acme", "read")
    empty = svc.client.get("/v1/dashboard", headers=h).json()
    assert empty["time"] is None
    assert [s["name"] for s in empty["sites"]] == ["a", "b"]
    svc.tick(1)
    first = svc.store.last_tick()
    assert first is not None
    step = svc.state.scenario.step
    # 26 h of steps as the controller commits them (copies of a real tick, the load marked)
    for k in range(1, 12 * 26):
        outcome = copy.deepcopy(first.outcome)
        outcome["sites"]["a"]["load_kw"] = float(k)
        svc.store.commit_tick(
            dataclasses.replace(first, step=k, time=first.time + k * step, outcome=outcome),
            [],
            [],
        )
        if k == 12 * 25:  # a refresh in the middle: later ones read only what is new
            svc.client.get("/v1/dashboard", headers=h)
    d = svc.client.get("/v1/dashboard", headers=h).json()
    times = pd.to_datetime(d["history"]["time"])
    assert len(times) == 289  # 24 h and the step in force
    assert times[-1] - times[0] == pd.Timedelta(hours=24)
    assert times[-1] == pd.Timestamp(d["time"])
    assert d["history"]["sites"]["a"]["load_kw"] == [float(k) for k in range(23, 312)]
    a = next(s for s in d["sites"] if s["name"] == "a")
    assert a["battery_kwh"] == 20
    assert a["now"]["load_kw"] == 311.0
    assert {"price_usd_per_mwh", "carbon_g_per_kwh"} <= set(a["signals"])
    assert a["signals"]["carbon_g_per_kwh"]["kind"]
    again = svc.client.get("/v1/dashboard", headers=h).json()
    assert again["history"] == d["history"]


def test_a_site_now_balances(svc):
    svc.controller.baseline = None  # not needed here: twice as fast
    svc.client.post("/v1/jobs", json=JOB, headers=svc.token("acme", "submit"))
    svc.tick(80)  # to 06:40: the sun is up
    d = svc.client.get("/v1/dashboard", headers=svc.token("acme", "read")).json()
    a = next(s for s in d["sites"] if s["name"] == "a")
    now = a["now"]
    supply = sum(now[k] for k in ("grid_import_kw", "solar_kw", "wind_kw", "battery_discharge_kw"))
    assert supply + now["genset_kw"] == pytest.approx(
        now["load_kw"] + now["battery_charge_kw"] + now["export_kw"], abs=1e-6
    )
    series = d["history"]["sites"]["a"]
    assert len(series["load_kw"]) == 80
    assert series["load_kw"][-1] == pytest.approx(now["load_kw"], abs=1e-3)
    assert max(series["solar_kw"]) > 0
    assert 0 <= a["now"]["soc_kwh"] <= 20


def test_grid_events_and_the_objective_against_the_baseline(svc):
    admin, h = svc.token("ops", "admin"), svc.token("acme", "submit")
    event = {
        "site": "a",
        "max_kw": 1.5,
        "start": "2023-06-01T00:30:00Z",
        "end": "2023-06-01T01:00:00Z",
        "reason": "DR",
    }
    created = svc.client.post("/v1/grid-events", json=event, headers=admin).json()
    svc.client.post("/v1/jobs", json=JOB, headers=h)
    svc.tick(8)
    d = svc.client.get("/v1/dashboard", headers=svc.token("acme", "read")).json()
    [shown] = d["grid_events"]
    assert shown["id"] == created["id"]
    assert shown["max_kw"] == 1.5
    assert shown["status"] == "active"
    a = next(s for s in d["sites"] if s["name"] == "a")
    assert a["grid_event_kw"] == 1.5
    o = d["objective"]
    assert o["usd"] > 0
    assert o["baseline_usd"] > 0  # the agnostic policy ran the same job beside it
    assert d["history"]["baseline_usd"][-1] == pytest.approx(o["baseline_usd"], abs=1e-3)


def test_the_baseline_resumes_after_a_restart_with_its_totals(tmp_path):
    url = sqlite_url(tmp_path)
    first = make_service(url)
    first.controller.baseline = Baseline(first.state.scenario, first.store, first.clock)
    first.client.post("/v1/jobs", json=JOB, headers=first.token("acme", "submit"))
    first.tick(6)
    before = first.store.last_tick()
    assert before is not None
    second = make_service(url)
    second.controller.baseline = Baseline(second.state.scenario, second.store, second.clock)
    second.clock.current = second.controller.time_of(second.controller.next_step)
    second.tick(1)
    after = second.store.last_tick()
    assert after is not None
    assert after.step == before.step + 1
    assert (
        after.state["baseline"]["totals"]["cost_usd"]
        > before.state["baseline"]["totals"]["cost_usd"]
        > 0
    )


def test_a_move_is_explained(svc):
    t = pd.Timestamp("2023-06-01T12:00Z")

    def view(price_a: float, price_b: float, correction: str | None = None) -> StepView:
        site = {"price_usd_per_mwh": 0.0, "carbon_g_per_kwh": 100.0, "curtailed_kw": 0.0}
        return StepView(
            1,
            t,
            {
                "a": {**site, "price_usd_per_mwh": price_a},
                "b": {**site, "price_usd_per_mwh": price_b},
            },
            {},
            correction,
            0.0,
            None,
            False,
        )

    cheaper = why_moved(view(90, 30), view(90, 30), "a", "b", [], 100.0)
    assert "cheaper" in cheaper
    assert "at b: 40 against 100 USD/MWh" in cheaper
    event = GridEventRecord("e", "a", 2.0, t, t + pd.Timedelta(hours=1))
    assert why_moved(view(30, 90), view(30, 90), "a", "b", [event], 100.0) == (
        "grid event at a: at most 2 kW"
    )
    assert why_moved(view(1, 1), view(1, 1, "site lost: a"), "a", "b", [], 0.0).endswith(
        "site lost: a"
    )


def test_the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script(svc):
    page = svc.client.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    html = page.text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    assert all('src="/assets/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert 'id="plotly.js-style-global"' in html  # plotly.js adds no inline style
    for asset in re.findall(r'(?:src|href)="(/assets/[^"]+)"', html):
        answer = svc.client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.content
    assert (
        svc.client.get("/assets/plotly.min.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    missing = svc.client.get("/assets/..%2Fauth.py")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_the_api_documentation_is_served_from_here(svc):
    for route in ("/docs", "/redoc"):
        html = svc.client.get(route).text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets
        assert all(a.startswith("/assets/") for a in assets), assets
        assert "fonts.googleapis" not in html
        for a in assets:
            assert svc.client.get(a).status_code == 200, a
    assert "cdn.redoc.ly" not in svc.client.get("/assets/redoc.standalone.js").text


def test_plotly_styles_are_read_from_the_installed_plotly():
    css, ids = plotly_styles()
    assert ".js-plotly-plot .plotly .main-svg{" in css  # its layers overlay, not stack
    assert all(re.fullmatch(r"[0-9a-f]{16,}", i) for i in ids)
