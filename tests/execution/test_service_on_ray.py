"""The control plane driving Ray: jobs submitted through the API run as actors, a grid event
and a sudden drop of on-site power are shed within seconds, inference answers through the
gateway, a lost site's work resumes elsewhere, and a job whose code raises is reported
failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.builders import DemandPoint, scenario, site
from tests.service.helpers import Service, make_service, sqlite_url
from wattroute.execution.executor import RayExecutor, RayOptions
from wattroute.execution.gateway import Gateway
from wattroute.model.arrays import FleetSignals, FleetStatic

# Runs on the emulated Ray cluster.
pytestmark = pytest.mark.system

TRAIN = "train-logistic-regression"  # the built-in example, registered by default
DAY = 288


def _fleet():
    n = 2 * DAY
    return scenario(
        [
            site(
                "a",
                n=n,
                accelerators=4,
                idle_kw=0.1,
                price=20.0,
                import_limit_kw=1.0,
                solar_kw=8.0,  # a solar farm behind a small grid link
                solar_profile=np.ones(n),
                latitude=40,
                longitude=-100,
            ),
            site("b", n=n, accelerators=4, idle_kw=0.1, price=60.0, latitude=41, longitude=-99),
            site("c", n=n, accelerators=4, idle_kw=0.1, price=90.0, latitude=42, longitude=-98),
        ],
        n=n,
        points=[DemandPoint("p", 40.5, -99.5)],
    )


@pytest.fixture
def svc(ray_sites, tmp_path) -> Iterator[Service]:
    sc = _fleet()
    executor = RayExecutor(
        FleetStatic.from_scenario(sc),
        FleetSignals.from_scenario(sc),
        sc.step_h,
        RayOptions(checkpoint_root=str(tmp_path / "checkpoints"), stop_timeout_s=20),
    )
    service = make_service(
        sqlite_url(tmp_path), fleet=sc, executor=executor, gateway=Gateway(sc, seed=1)
    )
    try:
        with service.client:
            yield service
    finally:
        executor.close()


def _until(predicate, svc: Service | None = None, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc is not None:
            svc.controller.watch()
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _job(svc, h, **args):
    body = {
        "name": "train",
        "work_accelerator_hours": 2.0,
        "max_accelerators": 2,
        "slack_h": 20.0,
        "function": TRAIN,
        "args": args,
    }
    r = svc.client.post("/v1/jobs", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _two_jobs_running(svc: Service) -> RayExecutor:
    """Submit two long training jobs, tick, and wait until both run; the executor."""
    h = svc.token("acme", "submit")
    for _ in range(2):
        _job(svc, h, epochs=2000, seconds_per_epoch=0.05)
    svc.tick()
    executor = svc.controller.executor
    assert isinstance(executor, RayExecutor)
    assert _until(lambda: len([t for t in executor.transitions if t.what == "started"]) == 2)
    return executor


def test_jobs_need_code_on_an_execution_engine(svc):
    h = svc.token("acme", "submit")
    body = {"name": "x", "work_accelerator_hours": 1.0, "slack_h": 4.0}
    r = svc.client.post("/v1/jobs", json=body, headers=h)
    assert r.status_code == 422
    error = r.json()["errors"][0]
    assert error["field"] == "body.function"
    assert "train-logistic-regression" in error["fix"]


def test_a_submitted_job_runs_on_ray_and_completes(svc):
    h = svc.token("acme", "submit")
    job = _job(svc, h, epochs=8)

    def done() -> bool:
        svc.tick()
        return svc.client.get(f"/v1/jobs/{job}", headers=h).json()["state"] == "completed"

    assert _until(done)
    body = svc.client.get(f"/v1/jobs/{job}", headers=h).json()
    assert body["done_accelerator_hours"] == pytest.approx(2.0)


def test_a_grid_event_is_shed_within_seconds_and_timed(svc):
    admin = svc.token("ops", "admin")
    executor = _two_jobs_running(svc)
    load = executor.load_kw_now(np.ones(3))[0]
    assert load > 2.0  # both at a, the cheapest site
    now = svc.clock.now()
    event = {
        "site": "a",
        "max_kw": load / 2,
        "start": now.isoformat(),
        "end": (now + pd.Timedelta(hours=2)).isoformat(),
    }
    created = svc.client.post("/v1/grid-events", json=event, headers=admin).json()

    def complied() -> bool:
        events = svc.client.get("/v1/grid-events", headers=admin).json()["grid_events"]
        return next(e for e in events if e["id"] == created["id"])["compliance_s"] is not None

    assert _until(complied, svc)
    events = svc.client.get("/v1/grid-events", headers=admin).json()["grid_events"]
    seconds = next(e for e in events if e["id"] == created["id"])["compliance_s"]
    assert seconds < 5.0
    assert executor.load_kw_now(np.ones(3))[0] <= load / 2 + 1e-9
    correction = svc.client.get("/v1/plan", headers=admin).json()["correction"]
    assert "grid event in force: a at most" in correction["reason"]
    assert (
        "wattroute_grid_event_compliance_seconds_count 1.0"
        in svc.client.get("/metrics", headers=admin).text
    )


def test_a_sudden_drop_of_on_site_power_is_shed_within_seconds_and_timed(svc):
    admin = svc.token("ops", "admin")
    executor = _two_jobs_running(svc)
    assert executor.load_kw_now(np.ones(3))[0] > 2.0  # both at a, on its solar
    # A cloud: the farm's meters read no solar; its 1 kW grid link powers its idle
    # accelerators (0.4 kW) and no busy one (0.9 kW more each).
    r = svc.client.post("/v1/sites/a/readings", json={"solar_kw": 0.0}, headers=admin)
    assert r.status_code == 202, r.text

    def reading() -> dict[str, Any]:
        return svc.client.get("/v1/sites/a", headers=admin).json()["reading"]

    assert _until(lambda: reading()["compliance_s"] is not None, svc)
    assert reading()["compliance_s"] < 5.0
    assert executor.load_kw_now(np.ones(3))[0] <= 1.0 + 1e-9
    assert {run.site for run in executor._runs.values()} <= {"b", "c"}
    correction = svc.client.get("/v1/plan", headers=admin).json()["correction"]
    assert correction["reason"] == "reading at a: solar 8.0 -> 0.0 kW"
    assert (
        "wattroute_power_drop_compliance_seconds_count 1.0"
        in svc.client.get("/metrics", headers=admin).text
    )


def test_inference_answers_through_the_gateway_at_a_routed_site(svc):
    h = svc.token("acme", "submit")
    service = {
        "name": "vision",
        "latency_slo_ms": 80.0,
        "service_time_ms": 5.0,
        "replica_throughput_rps": 50.0,
        "demand_rps": {"p": 60.0},
    }
    assert svc.client.post("/v1/services", json=service, headers=h).status_code == 201
    svc.tick()

    def answered() -> bool:
        r = svc.client.post("/v1/infer/vision", json={"point": "p", "input": [1, 2]}, headers=h)
        return r.status_code == 200

    assert _until(answered, timeout=60)
    r = svc.client.post("/v1/infer/vision", json={"point": "p", "input": [1, 2, 3]}, headers=h)
    body = r.json()
    routing = svc.client.get("/v1/plan", headers=h).json()["routing"]["acme/vision"]["p"]
    assert routing[body["site"]] > 0  # answered where the plan sends p's requests
    # The round trip emulated is the fleet's network model's from p to that site.
    fleet = _fleet()
    answering = next(s for s in fleet.sites if s.name == body["site"])
    rtt = fleet.network.rtt_matrix_ms(
        [(40.5, -99.5, None)], [(answering.latitude, answering.longitude, answering.zone)]
    )
    assert body["emulated_network_ms"] == pytest.approx(float(rtt[0, 0]))
    assert body["latency_ms"] >= body["emulated_network_ms"]
    assert len(body["output"]) == 4
    assert abs(sum(body["output"]) - 1.0) < 1e-4
    bad = svc.client.post("/v1/infer/vision", json={"point": "nowhere"}, headers=h)
    assert bad.status_code == 422
    scrape = svc.client.get("/metrics", headers=svc.token("ops", "metrics")).text
    assert 'wattroute_gateway_requests_total{service="acme/vision"' in scrape


def test_a_job_whose_code_raises_is_reported_failed(svc):
    h = svc.token("acme", "submit")
    body = {
        "name": "broken",
        "work_accelerator_hours": 1.0,
        "slack_h": 10.0,
        "function": TRAIN,
        "args": {"no_such_argument": 1},
    }
    job = svc.client.post("/v1/jobs", json=body, headers=h).json()["id"]

    def failed() -> bool:
        svc.tick()
        return svc.client.get(f"/v1/jobs/{job}", headers=h).json()["state"] == "failed"

    assert _until(failed)
    assert "unexpected keyword" in svc.client.get(f"/v1/jobs/{job}", headers=h).json()["error"]


def test_work_at_a_lost_site_resumes_elsewhere_and_the_site_rejoins(svc, ray_sites):
    h = svc.token("acme", "submit")
    job = _job(svc, h, epochs=3000, seconds_per_epoch=0.05, checkpoint_every=5)
    svc.tick()
    executor = svc.controller.executor
    assert _until(
        lambda: (
            ("job", "a") in [("job", t.site) for t in executor.transitions if t.what == "started"]
        )
    )
    assert _until(lambda: executor._progress.get(job, 0) > 0)
    ray_sites.black_out("a")
    try:
        assert _until(lambda: "a" in executor.unavailable_sites(), timeout=30)

        def resumed_elsewhere() -> bool:
            svc.controller.watch()
            return any(t.what == "started" and t.site != "a" for t in executor.transitions)

        assert _until(resumed_elsewhere, timeout=60)
        svc.tick()
        assert svc.client.get(f"/v1/jobs/{job}", headers=h).json()["site"] in {"b", "c"}
    finally:
        ray_sites.restore("a")
    assert _until(lambda: "a" not in executor.unavailable_sites(), timeout=30)
