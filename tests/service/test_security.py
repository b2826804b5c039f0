"""What a tenant can and cannot do: run only registered code, see only its own workloads, and
get a 4xx naming the field — never a 5xx — for any input, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.service.helpers import Service, make_service, sqlite_url
from wattroute.runtime.registry import CodeEntry, CodeRegistry

JOB = {"name": "train", "work_accelerator_hours": 4.0, "max_accelerators": 2, "slack_h": 6.0}
SERVICE = {
    "name": "vision",
    "latency_slo_ms": 30,
    "service_time_ms": 5,
    "replica_throughput_rps": 10,
    "demand_rps": {"p": 20},
}
REGISTRY = CodeRegistry.of(
    [
        CodeEntry("train", "wattroute.execution.examples:train_logistic_regression"),
        CodeEntry(
            "secret-sauce",
            "wattroute.execution.examples:train_logistic_regression",
            frozenset({"acme"}),
        ),
    ],
    [CodeEntry("mlp", "wattroute.execution.examples:mlp_model", frozenset({"acme"}))],
)
DEEP: list[object] = [1]
for _ in range(20):
    DEEP = [DEEP]
PYTHON_REPR = re.compile(r"\['|\{'|\(\'|<[a-z_.]+ object|Traceback")


@pytest.fixture
def svc(tmp_path) -> Iterator[Service]:
    service = make_service(sqlite_url(tmp_path), registry=REGISTRY)
    with service.client:
        yield service


@pytest.fixture
def svc_db(database_url) -> Iterator[Service]:
    service = make_service(database_url, registry=REGISTRY)
    with service.client:
        yield service


def _problem(r, status: int, field: str | None, *words: str) -> None:
    """``r`` is a problem-details answer with ``status`` naming ``field`` and ``words``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["errors"], body
    assert all(e["problem"] and e["fix"] for e in body["errors"])
    assert not PYTHON_REPR.search(r.text), r.text
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    text = " ".join(f"{e['problem']} {e['fix']}" for e in body["errors"])
    for word in words:
        assert word in text, (word, text)


# -- code a tenant may run ------------------------------------------------------------------


def test_only_registered_code_is_accepted_and_the_refusal_lists_what_is(svc):
    acme, globex = svc.token("acme", "submit"), svc.token("globex", "submit")
    for name in ("os:system", "os:abort", "wattroute.execution.examples:train_logistic_regression"):
        r = svc.client.post("/v1/jobs", json={**JOB, "function": name}, headers=acme)
        _problem(r, 422, "body.function", "not a registered job function", "secret-sauce, train")
    assert svc.client.post("/v1/jobs", json={**JOB, "function": "train"}, headers=acme).is_success
    # Registered for acme only: globex is told what it may use, which does not include it.
    r = svc.client.post("/v1/jobs", json={**JOB, "function": "secret-sauce"}, headers=globex)
    _problem(r, 422, "body.function", "use one of: train")
    assert "secret-sauce" not in r.text.split("use one of")[1]
    r = svc.client.post("/v1/services", json={**SERVICE, "handler": "os:abort"}, headers=acme)
    _problem(r, 422, "body.handler", "not a registered inference handler", "mlp")
    r = svc.client.post("/v1/services", json={**SERVICE, "handler": "mlp"}, headers=globex)
    _problem(r, 422, "body.handler", "no inference handler is registered for you")
    assert svc.client.post(
        "/v1/services", json={**SERVICE, "handler": "mlp"}, headers=acme
    ).is_success
    assert svc.client.get("/v1/code", headers=acme).json() == {
        "jobs": ["secret-sauce", "train"],
        "handlers": ["mlp"],
    }
    assert svc.client.get("/v1/code", headers=globex).json() == {"jobs": ["train"], "handlers": []}


# -- tenant isolation -------------------------------------------------------------------------


def test_a_tenant_sees_only_its_own_workloads_everywhere(svc):
    acme, globex, admin = (
        svc.token("acme", "submit"),
        svc.token("globex", "submit"),
        svc.token("ops", "admin"),
    )
    mine = svc.client.post("/v1/jobs", json=JOB, headers=acme).json()["id"]
    theirs = svc.client.post("/v1/jobs", json=JOB, headers=globex).json()["id"]
    for h in (acme, globex):
        assert svc.client.post("/v1/services", json=SERVICE, headers=h).status_code == 201
    svc.tick()
    plan = svc.client.get("/v1/plan", headers=acme).json()
    assert plan["workloads_scope"] == "tenant"
    assert set(plan["jobs"]) == {mine}
    assert set(plan["routing"]) == {"acme/vision"}
    both = svc.client.get("/v1/plan", headers=admin).json()
    assert both["workloads_scope"] == "all"
    assert set(both["jobs"]) == {mine, theirs}
    assert set(both["routing"]) == {"acme/vision", "globex/vision"}
    for site in ("a", "b"):
        seen = svc.client.get(f"/v1/sites/{site}/allocation", headers=acme).json()
        assert theirs not in seen["jobs"]
        assert seen["jobs_scope"] == "tenant"
    everywhere = {
        j
        for site in ("a", "b")
        for j in svc.client.get(f"/v1/sites/{site}/allocation", headers=admin).json()["jobs"]
    }
    assert everywhere == {mine, theirs}
    summary = svc.client.get("/v1/summary", headers=acme).json()
    assert summary["jobs"] == {"scope": "tenant", "tenant": "acme", "by_state": {"running": 1}}
    assert summary["fleet"]["scope"] == "fleet"
    assert svc.client.get("/v1/summary", headers=admin).json()["jobs"]["by_state"] == {"running": 2}
    listed = svc.client.get("/v1/services", headers=acme).json()
    assert [(s["tenant"], s["name"]) for s in listed["services"]] == [("acme", "vision")]
    assert svc.client.get("/v1/services", headers=admin).json()["total"] == 2


def test_metrics_name_every_tenants_services_so_they_need_the_metrics_scope(svc):
    assert svc.client.get("/metrics").status_code == 401
    _problem(
        svc.client.get("/metrics", headers=svc.token("acme", "submit")),
        403,
        "header.Authorization",
        "metrics",
    )
    scraper = svc.token("prometheus", "metrics")
    assert svc.client.get("/metrics", headers=scraper).status_code == 200
    # The metrics scope reads metrics and nothing else.
    assert svc.client.get("/v1/jobs", headers=scraper).status_code == 403
    assert svc.client.get("/metrics", headers=svc.token("ops", "admin")).status_code == 200


# -- per-tenant service names -----------------------------------------------------------------


def test_service_names_are_per_tenant(svc):
    acme, globex, admin = (
        svc.token("acme", "submit"),
        svc.token("globex", "submit"),
        svc.token("ops", "admin"),
    )
    assert svc.client.post("/v1/services", json=SERVICE, headers=acme).status_code == 201
    # globex learns nothing of acme's: its own create of the same name succeeds.
    created = svc.client.post(
        "/v1/services", json={**SERVICE, "demand_rps": {"p": 5}}, headers=globex
    )
    assert created.status_code == 201
    assert created.json()["key"] == "globex/vision"
    _problem(svc.client.post("/v1/services", json=SERVICE, headers=acme), 409, "body.name", "PATCH")
    assert svc.client.get("/v1/services/vision", headers=acme).json()["demand_rps"] == {"p": 20}
    assert svc.client.get("/v1/services/vision", headers=globex).json()["demand_rps"] == {"p": 5}
    # Changing or deleting one leaves the other alone.
    svc.client.patch("/v1/services/vision", json={"demand_rps": {"p": 1}}, headers=globex)
    assert svc.client.delete("/v1/services/vision", headers=globex).status_code == 204
    assert svc.client.get("/v1/services/vision", headers=acme).json()["demand_rps"] == {"p": 20}
    _problem(svc.client.get("/v1/services/vision", headers=globex), 404, "path.name")
    # An admin names the tenant to act on another's service; nobody else may.
    _problem(svc.client.get("/v1/services/vision?tenant=acme", headers=globex), 403, "query.tenant")
    assert svc.client.get("/v1/services/vision?tenant=acme", headers=admin).status_code == 200
    _problem(svc.client.get("/v1/services/vision", headers=admin), 404, "path.name")


# -- no 5xx from input, the same on both databases ---------------------------------------------

BAD_JOBS = [
    ({"slack_h": None, "deadline": "9999-12-31T23:59:59Z"}, "body.deadline", "1970 to 2200"),
    ({"slack_h": None, "deadline": "0001-01-01T00:00:00Z"}, "body.deadline", "1970 to 2200"),
    ({"slack_h": None, "deadline": "0001-01-01T00:00:00+05:00"}, "body.deadline", "1970"),
    ({"name": "a\x00b"}, "body.name", "control character"),
    ({"allowed_sites": ["a\x00"]}, "body.allowed_sites.0", "control character"),
    ({"args": {"path": "x\x00y"}}, "body.args", "control character"),
    ({"args": {"k\x00": 1}}, "body.args", "control character"),
    ({"max_accelerators": "2"}, "body.max_accelerators", "integer"),
    ({"work_accelerator_hours": "4"}, "body.work_accelerator_hours", "number"),
    ({"args": {"deep": DEEP}}, "body.args", "nested"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_JOBS)
def test_bad_values_get_422_on_both_databases(svc_db, change, field, words):
    body = {**JOB, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = svc_db.client.post("/v1/jobs", json=body, headers=svc_db.token("acme", "submit"))
    _problem(r, 422, field, words)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_in_args_are_refused_not_stored_as_null(svc_db, number):
    body = (
        b'{"name": "x", "work_accelerator_hours": 1, "slack_h": 1, "args": {"lr": ' + number + b"}}"
    )
    h = {**svc_db.token("acme", "submit"), "Content-Type": "application/json"}
    _problem(svc_db.client.post("/v1/jobs", content=body, headers=h), 422, "body.args", "NaN")
    assert svc_db.client.get("/v1/jobs", headers=h).json()["total"] == 0


def test_nul_bytes_in_paths_filters_and_bodies_are_4xx_on_both_databases(svc_db):
    admin = svc_db.token("ops", "admin")
    get = svc_db.client.get
    _problem(get("/v1/jobs/%00", headers=admin), 422, "path.job_id", "control character")
    _problem(get("/v1/jobs?site=%00", headers=admin), 422, "query.site", "control character")
    _problem(get("/v1/sites/a%00", headers=admin), 422, "path.name", "control character")
    _problem(get("/v1/services/v%00", headers=admin), 422, "path.name", "control character")
    _problem(get("/v1/grid-events?site=%00", headers=admin), 422, "query.site")
    event = {
        "site": "a",
        "max_kw": 1,
        "start": "2023-06-01T01:00:00Z",
        "end": "2023-06-01T02:00:00Z",
        "reason": "DR\x00",
    }
    _problem(svc_db.client.post("/v1/grid-events", json=event, headers=admin), 422, "body.reason")
    far = {**event, "reason": "", "end": "9999-12-31T23:59:59Z"}
    _problem(svc_db.client.post("/v1/grid-events", json=far, headers=admin), 422, "body.end")
    _problem(
        svc_db.client.post(
            "/v1/services", json={**SERVICE, "demand_rps": {"p\x00": 1}}, headers=admin
        ),
        422,
        "body.demand_rps",
    )
    _problem(
        svc_db.client.post("/v1/infer/vision", json={"point": "p\x00"}, headers=admin),
        422,
        "body.point",
    )


# -- the contract: idempotency, strict types, limits, auth scheme, pages ------------------------


def test_a_reused_idempotency_key_with_another_body_is_refused(svc):
    h = svc.token("acme", "submit")
    first = svc.client.post("/v1/jobs", json=JOB, headers={**h, "Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = svc.client.post("/v1/jobs", json=JOB, headers={**h, "Idempotency-Key": "k1"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = svc.client.post(
        "/v1/jobs",
        json={**JOB, "work_accelerator_hours": 5.0},
        headers={**h, "Idempotency-Key": "k1"},
    )
    _problem(other, 422, "header.Idempotency-Key", "different request body")
    for key in ("", " padded", "tab\there"):
        r = svc.client.post("/v1/jobs", json=JOB, headers={**h, "Idempotency-Key": key})
        _problem(r, 422, "header.Idempotency-Key")
    assert svc.client.get("/v1/jobs", headers=h).json()["total"] == 1


def test_a_streamed_body_over_the_limit_gets_413(tmp_path):
    svc = make_service(sqlite_url(tmp_path), max_body_bytes=1024)
    with svc.client:
        h = {**svc.token("acme", "submit"), "Content-Type": "application/json"}

        def chunks() -> Iterator[bytes]:
            yield b'{"name": "'
            for _ in range(10):
                yield b"x" * 200
            yield b'", "work_accelerator_hours": 1, "slack_h": 1}'

        r = svc.client.post("/v1/jobs", content=chunks(), headers=h)
        _problem(r, 413, "body", "1024 bytes")
        small = b'{"name": "x", "work_accelerator_hours": 1, "slack_h": 1}'
        assert svc.client.post("/v1/jobs", content=iter([small]), headers=h).status_code == 201


def test_the_bearer_scheme_is_case_insensitive_and_long_credentials_are_refused_unread(svc):
    token = svc.token("acme", "read")["Authorization"].split()[1]
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert svc.client.get("/v1/jobs", headers={"Authorization": f"{scheme} {token}"}).is_success
    _problem(
        svc.client.get("/v1/jobs", headers={"Authorization": "Bearer " + "x" * 4096}),
        401,
        "header.Authorization",
    )
    _problem(
        svc.client.get("/v1/jobs", headers={"Authorization": f"Basic {token}"}),
        401,
        "header.Authorization",
        "not a bearer token",
    )


def test_every_list_is_paged(svc):
    admin = svc.token("ops", "admin")
    for i in range(5):
        event = {
            "site": "a",
            "max_kw": 1,
            "start": f"2023-06-01T0{i}:00:00Z",
            "end": f"2023-06-01T0{i + 1}:00:00Z",
        }
        svc.client.post("/v1/grid-events", json=event, headers=admin).raise_for_status()
        svc.client.post(
            "/v1/services", json={**SERVICE, "name": f"s{i}"}, headers=admin
        ).raise_for_status()
        svc.client.post("/v1/jobs", json=JOB, headers=admin).raise_for_status()
    for path, key in (
        ("/v1/grid-events", "grid_events"),
        ("/v1/services", "services"),
        ("/v1/jobs", "jobs"),
    ):
        page = svc.client.get(f"{path}?limit=2&offset=2", headers=admin).json()
        assert (page["total"], page["limit"], page["offset"], len(page[key])) == (5, 2, 2, 2)
        everything = svc.client.get(f"{path}?limit=1000", headers=admin).json()[key]
        assert page[key] == everything[2:4]
        _problem(svc.client.get(f"{path}?limit=1001", headers=admin), 422, "query.limit")
    events = svc.client.get("/v1/grid-events?site=b", headers=admin).json()
    assert events["total"] == 0


def test_every_error_is_a_problem_with_field_problem_and_fix(svc):
    h = svc.token("acme", "submit")
    json_type = {**h, "Content-Type": "application/json"}
    post = svc.client.post
    _problem(post("/v1/jobs", content=b'{"name": 1,', headers=json_type), 422, "body", "JSON")
    _problem(post("/v1/jobs", content=b"[1, 2]", headers=json_type), 422, "body")
    _problem(post("/v1/jobs", content=b"", headers=json_type), 422, "body")
    _problem(post("/v1/jobs", content=b"\xff\xfe", headers=json_type), 422, "body")
    _problem(post("/v1/jobs", json={**JOB, "colour": 1}, headers=h), 422, "body.colour", "name")
    _problem(post("/v1/jobs", json={"name": "x"}, headers=h), 422, "body.work_accelerator_hours")
    _problem(svc.client.get("/v1/jobs"), 401, "header.Authorization")
    _problem(svc.client.get("/v1/jobs?limit=x", headers=h), 422, "query.limit", "integer")
    _problem(svc.client.get("/v1/nowhere", headers=h), 404, None, "no such route")
    _problem(svc.client.delete("/v1/jobs", headers=h), 405, None)
    _problem(svc.client.get("/v1/sites/mars", headers=h), 404, "path.name", "a, b")
    _problem(post("/v1/grid-events", json={}, headers=h), 403, "header.Authorization", "admin")


def test_unknown_and_repeated_query_parameters_are_refused(svc):
    h = svc.token("acme", "read")
    _problem(
        svc.client.get("/v1/jobs?stat=queued", headers=h),
        422,
        "query.stat",
        "limit, offset, site, state",
    )
    _problem(
        svc.client.get("/v1/jobs?offset=1&offset=2", headers=h), 422, "query.offset", "2 times"
    )
    assert svc.client.get("/v1/jobs?state=queued&limit=5", headers=h).status_code == 200
