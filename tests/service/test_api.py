"""The HTTP API: auth and tenants, submissions and idempotency, validation, plan and reports."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd
import pytest

from tests.service.helpers import make_service, sqlite_url
from wattroute.model.arrays import FleetSignals
from wattroute.runtime import ReplayProvider, WithholdingProvider

JOB = {"name": "train", "work_accelerator_hours": 4.0, "max_accelerators": 2, "slack_h": 6.0}


@pytest.fixture
def svc(tmp_path):
    service = make_service(sqlite_url(tmp_path))
    with service.client:
        yield service


def test_routes_need_a_token_with_the_right_scope(svc):
    assert svc.client.get("/v1/jobs").status_code == 401
    assert svc.client.get("/v1/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    reader = svc.token("acme", "read")
    assert svc.client.get("/v1/jobs", headers=reader).status_code == 200
    assert svc.client.post("/v1/jobs", json=JOB, headers=reader).status_code == 403
    submitter = svc.token("acme", "submit")
    assert svc.client.post("/v1/jobs", json=JOB, headers=submitter).status_code == 201
    event = {
        "site": "a",
        "max_kw": 1,
        "start": "2023-06-01T01:00:00Z",
        "end": "2023-06-01T02:00:00Z",
    }
    assert svc.client.post("/v1/grid-events", json=event, headers=submitter).status_code == 403
    assert (
        svc.client.patch("/v1/sites/a", json={"offline": True}, headers=submitter).status_code
        == 403
    )
    admin = svc.token("ops", "admin")
    assert svc.client.post("/v1/grid-events", json=event, headers=admin).status_code == 201
    assert svc.client.get("/healthz").status_code == 200  # open


def test_the_same_idempotency_key_creates_one_job(svc):
    h = svc.token("acme", "submit")
    first = svc.client.post("/v1/jobs", json=JOB, headers={**h, "Idempotency-Key": "k1"})
    again = svc.client.post("/v1/jobs", json=JOB, headers={**h, "Idempotency-Key": "k1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = svc.client.post(
        "/v1/jobs", json=JOB, headers={**svc.token("globex", "submit"), "Idempotency-Key": "k1"}
    )
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert svc.client.get("/v1/jobs", headers=h).json()["total"] == 1


def test_a_tenant_sees_and_cancels_only_its_own_jobs(svc):
    acme, globex = svc.token("acme", "submit"), svc.token("globex", "submit")
    job = svc.client.post("/v1/jobs", json=JOB, headers=acme).json()
    assert svc.client.get(f"/v1/jobs/{job['id']}", headers=globex).status_code == 404
    assert svc.client.post(f"/v1/jobs/{job['id']}/cancel", headers=globex).status_code == 404
    assert svc.client.get("/v1/jobs", headers=globex).json()["total"] == 0
    admin = svc.token("ops", "admin")
    assert svc.client.get(f"/v1/jobs/{job['id']}", headers=admin).status_code == 200
    cancelled = svc.client.post(f"/v1/jobs/{job['id']}/cancel", headers=acme)
    assert cancelled.json()["state"] == "cancelled"


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"work_accelerator_hours": -1}, "work_accelerator_hours", "greater than 0"),
        ({"max_accelerators": "many"}, "max_accelerators", "integer"),
        ({"allowed_sites": ["mars"]}, "allowed_sites", "unknown site"),
        (
            {"min_accelerators": 50, "max_accelerators": 60},
            "min_accelerators",
            "largest allowed site",
        ),
        (
            {"slack_h": None, "deadline": "2023-06-01T00:30:00Z"},
            "deadline",
            "raise max_accelerators",
        ),
        ({"slack_h": None, "deadline": "2023-06-01T03:00:00"}, "deadline", "timezone"),
        ({"colour": "red"}, "colour", "not a field"),
        ({"function": "not a function"}, "function", "not a registered job function"),
    ],
)
def test_bad_submissions_get_422_naming_the_field(svc, change, field, text):
    body = {**JOB, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = svc.client.post("/v1/jobs", json=body, headers=svc.token("acme", "submit"))
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert any(e["field"] == f"body.{field}" for e in errors), errors
    assert any(text.lower() in f"{e['problem']} {e['fix']}".lower() for e in errors), errors
    assert all(e["fix"] for e in errors)


def test_oversized_bodies_are_refused(tmp_path):
    svc = make_service(sqlite_url(tmp_path), max_body_bytes=1024)
    with svc.client:
        big = {**JOB, "name": "x" * 5000}
        assert (
            svc.client.post("/v1/jobs", json=big, headers=svc.token("acme", "submit")).status_code
            == 413
        )


def test_jobs_run_and_the_plan_allocation_summary_and_signals_report_it(svc):
    h = svc.token("acme", "submit")
    job = svc.client.post("/v1/jobs", json=JOB, headers=h).json()
    svc.tick()
    plan = svc.client.get("/v1/plan", headers=h).json()
    assert job["id"] in plan["jobs"]
    site = plan["jobs"][job["id"]]["site"]
    allocation = svc.client.get(f"/v1/sites/{site}/allocation", headers=h).json()
    assert allocation["jobs"][job["id"]] == 2  # its maximum
    # PUE 1 x (8 accelerators idle at 0.1 kW + 2 busy at 0.9 kW more)
    assert allocation["power_kw"]["load_kw"] == pytest.approx(8 * 0.1 + 2 * 0.9)
    svc.tick(30)
    done = svc.client.get(f"/v1/jobs/{job['id']}", headers=h).json()
    assert done["state"] == "completed"
    assert done["done_accelerator_hours"] == pytest.approx(4.0)
    summary = svc.client.get("/v1/summary", headers=h).json()
    fleet = summary["fleet"]
    # Over the 31 ticks of 5 minutes before dawn each site idles at 8 x 0.1 kW; a also runs the
    # job's 4 accelerator-hours at 0.9 kW more, all from its battery, and b imports its idle
    # power at 50 USD/MWh and 300 g/kWh.
    idle_kwh = 8 * 0.1 * 31 / 12
    assert fleet["energy_kwh"]["load"] == pytest.approx(2 * idle_kwh + 4.0 * 0.9)
    assert fleet["energy_kwh"]["battery_discharge"] == pytest.approx(idle_kwh + 4.0 * 0.9)
    assert fleet["energy_kwh"]["grid"] == pytest.approx(idle_kwh)
    assert fleet["cost_usd"] == pytest.approx(idle_kwh * 0.050)
    assert fleet["emissions_kg"] == pytest.approx(idle_kwh * 0.300)
    assert summary["jobs"]["by_state"] == {"completed": 1}
    signals = svc.client.get("/v1/signals?horizon_h=2", headers=h).json()
    assert len(signals["sites"]["a"]["price_usd_per_mwh"]["forecast"]) == 24


def test_inference_services_can_be_created_updated_and_deleted(svc):
    h = svc.token("acme", "submit")
    body = {
        "name": "vision",
        "latency_slo_ms": 30,
        "service_time_ms": 5,
        "replica_throughput_rps": 10,
        "demand_rps": {"p": 20},
    }
    assert svc.client.post("/v1/services", json=body, headers=h).status_code == 201
    assert svc.client.post("/v1/services", json=body, headers=h).status_code == 409
    bad = svc.client.post(
        "/v1/services", json={**body, "name": "x", "demand_rps": {"nowhere": 1}}, headers=h
    )
    assert bad.status_code == 422
    assert svc.client.patch(
        "/v1/services/vision", json={"demand_rps": {"p": 40}}, headers=h
    ).json()["demand_rps"] == {"p": 40}
    svc.tick(2)
    # Two ticks of 5 minutes at the updated 40 requests/s, all within the SLO.
    inference = svc.client.get("/v1/summary", headers=h).json()["fleet"]["inference"]
    assert inference["requests"] == pytest.approx(40.0 * 300 * 2)
    assert inference["served_within_slo"] == pytest.approx(40.0 * 300 * 2)
    routing = svc.client.get("/v1/plan", headers=h).json()["routing"]
    assert set(routing) == {"acme/vision"}
    assert (
        svc.client.delete("/v1/services/vision", headers=svc.token("globex", "submit")).status_code
        == 404
    )
    assert svc.client.delete("/v1/services/vision", headers=h).status_code == 204


def test_a_grid_event_is_planned_around_and_reported(svc):
    admin = svc.token("ops", "admin")
    h = svc.token("acme", "submit")
    for i in range(6):
        svc.client.post(
            "/v1/jobs",
            json={**JOB, "name": f"j{i}", "work_accelerator_hours": 12, "slack_h": 24},
            headers=h,
        )
    event = {
        "site": "b",
        "max_kw": 1.5,
        "start": "2023-06-01T00:30:00Z",
        "end": "2023-06-01T01:30:00Z",
        "reason": "DR",
    }
    created = svc.client.post("/v1/grid-events", json=event, headers=admin).json()
    assert created["status"] == "upcoming"
    svc.tick(24)
    listed = svc.client.get("/v1/grid-events", headers=h).json()["grid_events"]
    assert listed[0]["status"] == "past"
    assert listed[0]["complied"] is True
    assert listed[0]["peak_kw"] <= 1.5 + 1e-6


def test_admin_can_take_a_site_offline(svc):
    admin = svc.token("ops", "admin")
    assert svc.client.patch("/v1/sites/a", json={"offline": True}, headers=admin).json()[
        "override"
    ]["offline"]
    h = svc.token("acme", "submit")
    svc.client.post("/v1/jobs", json=JOB, headers=h)
    svc.tick()
    assert all(
        a["site"] == "b" for a in svc.client.get("/v1/plan", headers=admin).json()["jobs"].values()
    )
    assert svc.client.patch("/v1/sites/nowhere", json={}, headers=admin).status_code == 404


def test_metrics_and_logs_carry_no_token(svc, caplog):
    h = svc.token("acme", "submit")
    with caplog.at_level(logging.DEBUG):
        svc.client.post("/v1/jobs", json=JOB, headers=h)
        svc.client.patch("/v1/sites/a", json={"power_cap_kw": 5}, headers=svc.token("ops", "admin"))
        svc.tick(2)
        metrics = svc.client.get("/metrics", headers=svc.token("ops", "metrics")).text
    secret = h["Authorization"].split()[1]
    assert secret not in caplog.text
    assert secret not in metrics
    for name in (
        "wattroute_site_power_kw",
        "wattroute_jobs",
        "wattroute_decision_seconds_bucket",
        "wattroute_slo_violations_total",
        "wattroute_site_price_usd_per_mwh",
    ):
        assert name in metrics


def test_readiness_reports_degraded_while_a_signal_is_withheld(tmp_path):
    from tests.builders import small_fleet

    provider = WithholdingProvider(
        ReplayProvider(FleetSignals.from_scenario(small_fleet())), "price_usd_per_mwh", 2, 5
    )
    svc = make_service(sqlite_url(tmp_path), provider=provider)
    with svc.client:
        svc.tick(2)
        assert svc.client.get("/readyz").status_code == 200
        svc.tick(1)
        ready = svc.client.get("/readyz")
        assert ready.status_code == 503
        assert "price_usd_per_mwh" in ready.json()["reasons"][0]
        scrape = svc.client.get("/metrics", headers=svc.token("ops", "admin")).text
        assert "wattroute_degraded 1.0" in scrape
        assert "wattroute_ready 0.0" in scrape
        assert 'wattroute_not_ready{cause="degraded"} 1.0' in scrape
        svc.tick(4)
        assert svc.client.get("/readyz").status_code == 200


def test_readiness_follows_the_controller_heartbeat(svc):
    ready = svc.client.get("/readyz")
    assert ready.status_code == 503
    assert "has not reported yet" in ready.json()["reasons"][0]
    svc.tick()
    assert svc.client.get("/readyz").status_code == 200
    assert svc.state.readiness is not None
    # as if the controller had gone quiet
    svc.state.readiness = dataclasses.replace(svc.state.readiness, heartbeat_timeout_s=0.0)
    silent = svc.client.get("/readyz")
    assert silent.status_code == 503
    assert "silent" in silent.json()["reasons"][0]


def test_signals_come_from_the_controller_heartbeat_within_24_h(svc):
    h = svc.token("acme", "read")
    assert svc.client.get("/v1/signals", headers=h).json()["sites"] == {}
    svc.tick()
    body = svc.client.get("/v1/signals?horizon_h=24", headers=h).json()
    assert set(body["sites"]) == {"a", "b"}
    assert len(body["sites"]["a"]["carbon_g_per_kwh"]["forecast"]) == 288
    too_far = svc.client.get("/v1/signals?horizon_h=48", headers=h)
    assert too_far.status_code == 422
    assert too_far.json()["errors"][0]["field"] == "query.horizon_h"


def test_a_database_failure_is_a_503_to_retry_not_a_500(svc, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    # The database refuses the insert: the error reaches the request from the committer.
    monkeypatch.setattr(svc.store, "_insert_jobs", down)
    r = svc.client.post("/v1/jobs", json=JOB, headers=svc.token("acme", "submit"))
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert "retry" in r.json()["errors"][0]["fix"]


def test_a_meter_reading_is_validated_stored_and_acted_on(svc):
    admin = svc.token("ops", "admin")
    post = svc.client.post
    bad = [
        ({}, "solar_kw, wind_kw or both", "body.solar_kw"),
        ({"solar_kw": -1}, "body.solar_kw"),
        ({"solar_kw": 1, "sun": 2}, "body.sun"),
        ({"wind_kw": 1.0}, "site 'a' has no wind", "leave wind_kw out"),
        ({"solar_kw": 6000}, "above the site's rated solar of 6 kW", "give the AC output in kW"),
    ]
    for body, *messages in bad:
        r = post("/v1/sites/a/readings", json=body, headers=admin)
        assert r.status_code == 422, body
        assert all(m in r.text for m in messages), (body, r.text)
    assert (
        post("/v1/sites/nowhere/readings", json={"solar_kw": 1}, headers=admin).status_code == 404
    )
    submitter = svc.token("acme", "submit")
    assert post("/v1/sites/a/readings", json={"solar_kw": 1}, headers=submitter).status_code == 403

    svc.client.post("/v1/jobs", json=JOB, headers=submitter)
    svc.tick(144)  # noon: the sun is up at site a
    svc.clock.current += pd.Timedelta(minutes=1)
    r = post("/v1/sites/a/readings", json={"solar_kw": 0.0}, headers=admin)
    assert r.status_code == 202
    assert r.json()["solar_kw"] == 0.0
    assert r.json()["wind_kw"] is None
    svc.controller.watch()
    plan = svc.client.get("/v1/plan", headers=admin).json()
    assert plan["correction"]["reason"].startswith("reading at a: solar ")
    reading = svc.client.get("/v1/sites/a", headers=admin).json()["reading"]
    assert reading["solar_kw"] == 0.0
    assert reading["time"].startswith(str(svc.clock.current.date()))


def test_job_ids_are_random_version_4_uuids_across_refills():
    import uuid

    from wattroute.service.api.jobs import RandomIds

    ids = RandomIds(batch=3)
    made = [ids.next() for _ in range(10)]  # four reads of the random source
    assert len(set(made)) == 10
    for one in made:
        parsed = uuid.UUID(one)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, one)
