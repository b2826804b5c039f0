"""POST /v1/placements: where and when a job would run best, on the controller's outlook."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.builders import START
from tests.service.helpers import make_service, sqlite_url

QUERY = {"work_accelerator_hours": 2.0, "accelerators": 2, "slack_h": 6.0}


@pytest.fixture
def svc(tmp_path):
    service = make_service(sqlite_url(tmp_path))
    with service.client:
        service.tick()
        yield service


def test_a_reader_gets_the_best_start_now_and_the_savings(svc):
    answer = svc.client.post("/v1/placements", json=QUERY, headers=svc.token("acme", "read"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert pd.Timestamp(body["time"]) == START
    assert body["runtime_h"] == pytest.approx(1.0)
    assert body["starts"] == 73  # 00:00 .. 06:00 every 5 minutes
    assert {o["site"] for o in body["sites"]} == {"a", "b"}
    best, now = body["best"], body["now"]
    assert best["objective_usd"] <= now["objective_usd"]
    assert pd.Timestamp(now["start"]) == START
    assert body["savings"]["objective_usd"] == pytest.approx(
        now["objective_usd"] - best["objective_usd"]
    )
    assert pd.Timestamp(best["end"]) - pd.Timestamp(best["start"]) == pd.Timedelta(hours=1)


def test_a_flat_grid_site_prices_the_job_by_hand(svc):
    # b: 50 USD/MWh, 300 g/kWh, PUE 1, no renewables; 2 accelerators of 1.0 kW busy, 0.1 idle.
    query = {**QUERY, "allowed_sites": ["b"], "minimise": "cost"}
    body = svc.client.post("/v1/placements", json=query, headers=svc.token("acme", "read")).json()
    for option in (body["best"], body["now"]):
        assert option["site"] == "b"
        assert option["energy_kwh"] == pytest.approx(1.8)
        assert option["cost_usd"] == pytest.approx(1.8 * 0.050)
        assert option["emissions_kg"] == pytest.approx(1.8 * 0.300)
    assert body["best"]["start"] == body["now"]["start"]  # equal everywhere: the earliest


def test_it_needs_a_token_and_changes_nothing(svc):
    assert svc.client.post("/v1/placements", json=QUERY).status_code == 401
    metrics = svc.token("prom", "metrics")
    assert svc.client.post("/v1/placements", json=QUERY, headers=metrics).status_code == 403
    admin = svc.token("ops", "admin")
    assert svc.client.post("/v1/placements", json=QUERY, headers=admin).status_code == 200
    assert svc.client.get("/v1/jobs", headers=admin).json()["total"] == 0


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"allowed_sites": ["a", "mars"]}, "body.allowed_sites", "unknown site"),
        ({"accelerators": 9}, "body.accelerators", "largest allowed site has 8"),
        ({"slack_h": None, "deadline": "2023-06-01T00:30:00Z"}, "body.deadline", "deadline"),
        ({"deadline": "2023-06-01T09:00:00Z"}, "body.deadline", "exactly one"),
        ({"accelerators": "2"}, "body.accelerators", "integer"),
        ({"minimise": "price"}, "body.minimise", "objective"),
        ({"work_accelerator_hours": 0}, "body.work_accelerator_hours", "greater than 0"),
    ],
)
def test_what_cannot_be_placed_is_a_422_naming_the_field(svc, change, field, text):
    query = {k: v for k, v in {**QUERY, **change}.items() if v is not None}
    answer = svc.client.post("/v1/placements", json=query, headers=svc.token("acme", "read"))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    error = answer.json()["errors"][0]
    assert error["field"] == field
    assert text in error["problem"]
    assert error["fix"]


def test_an_offline_site_is_not_offered(svc):
    admin = svc.token("ops", "admin")
    assert svc.client.patch("/v1/sites/a", json={"offline": True}, headers=admin).status_code == 200
    body = svc.client.post("/v1/placements", json=QUERY, headers=admin).json()
    assert {o["site"] for o in body["sites"]} == {"b"}
    only_a = {**QUERY, "allowed_sites": ["a"]}
    answer = svc.client.post("/v1/placements", json=only_a, headers=admin)
    assert answer.status_code == 422
    assert "offline" in answer.json()["errors"][0]["problem"]


def test_before_the_first_step_there_is_nothing_to_place_on(tmp_path):
    service = make_service(sqlite_url(tmp_path))
    with service.client:
        answer = service.client.post(
            "/v1/placements", json=QUERY, headers=service.token("acme", "read")
        )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
