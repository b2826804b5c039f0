"""``wattroute jobs|services|events|place`` against the real API, in process and over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

import wattroute.cli.client as client
from tests.service.helpers import Service, make_service, sqlite_url
from tests.service.processes import free_port
from wattroute.cli.main import main
from wattroute.service.api import create_app

SUBMIT = ["jobs", "submit", "--name", "train", "--work", "4", "--accelerators", "2"]


class Shared:
    """The service's test client for the CLI, which must not close it."""

    def __init__(self, http: Any) -> None:
        self.http = http

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self.http.request(*args, **kwargs)

    def close(self) -> None:
        pass


@pytest.fixture
def svc(tmp_path, monkeypatch) -> Iterator[Service]:
    service = make_service(sqlite_url(tmp_path))
    monkeypatch.setattr(client, "open_http", lambda url, timeout_s: Shared(service.client))
    monkeypatch.delenv("WATTROUTE_URL", raising=False)
    monkeypatch.delenv("WATTROUTE_TOKEN", raising=False)
    with service.client:
        yield service


def token(svc: Service, tenant: str, scope: str) -> str:
    return svc.token(tenant, scope)["Authorization"].split()[1]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_submit_list_get_and_cancel_a_job(svc, capsys):
    secret = token(svc, "acme", "submit")
    code, out, err = run([*SUBMIT, "--slack", "6", "--token", secret], capsys)
    assert code == 0, err
    job_id = out.split()[1]
    assert "queued" in out
    assert "idempotency key:" in out
    code, out, _ = run(["jobs", "list", "--token", secret], capsys)
    assert code == 0
    assert job_id in out
    assert "train" in out
    assert "queued" in out
    assert "1 job" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    code, out, _ = run(["jobs", "get", job_id, "--token", secret], capsys)
    assert code == 0
    assert "0.00 of 4 accelerator-hours" in out
    code, out, _ = run(["jobs", "cancel", job_id, "--token", secret], capsys)
    assert (code, out.strip()) == (0, f"job {job_id} cancelled")
    cancelled = ["jobs", "list", "--state", "cancelled", "--json", "--token", secret]
    code, out, _ = run(cancelled, capsys)
    page = json.loads(out)
    assert [j["id"] for j in page["jobs"]] == [job_id]
    captured = "".join(run(["jobs", "list", "--token", secret], capsys)[1:])
    assert secret not in captured


def test_the_same_idempotency_key_submits_one_job(svc, capsys, monkeypatch):
    monkeypatch.setenv("WATTROUTE_TOKEN", token(svc, "acme", "submit"))
    first = run([*SUBMIT, "--slack", "6", "--idempotency-key", "k1", "--json"], capsys)
    again = run([*SUBMIT, "--slack", "6", "--idempotency-key", "k1"], capsys)
    assert first[0] == again[0] == 0
    job = json.loads(first[1])
    assert again[1].startswith(f"job {job['id']} queued (submitted before with this key")
    changed = run([*SUBMIT, "--slack", "7", "--idempotency-key", "k1"], capsys)
    assert changed[0] == 2
    assert "--idempotency-key: was used before with a different request body. Fix:" in changed[2]
    assert json.loads(run(["jobs", "list", "--json"], capsys)[1])["total"] == 1


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--work", "0", "--slack", "1"], "--work: should be greater than 0"),
        (["--slack", "1", "--site", "mars"], "--site: unknown site(s) 'mars'. Fix: use sites"),
        (["--deadline", "2023-06-01T01:00:00Z"], "--deadline: the work needs"),
        (["--deadline", "tomorrow"], "--deadline: "),
        (["--slack", "1", "--args", "[1]"], "--args: is not a JSON object. Fix:"),
        (["--slack", "1", "--args", '{"lr": NaN}'], "--args: is not JSON (NaN is not a JSON"),
    ],
)
def test_bad_input_exits_2_naming_the_flag_and_the_fix(svc, capsys, extra, expected):
    code, out, err = run([*SUBMIT, *extra, "--token", token(svc, "acme", "submit")], capsys)
    assert code == 2
    assert expected in err
    assert "Fix:" in err
    assert "Traceback" not in err
    assert out == ""


def test_a_refused_token_exits_4_and_is_never_printed(svc, capsys):
    code, _, err = run(["jobs", "list", "--token", "not-a-token"], capsys)
    assert code == 4
    assert "--token: unknown, expired or revoked token. Fix: ask the operator" in err
    assert "not-a-token" not in err
    assert run(["jobs", "list"], capsys)[0] == 4  # no token at all
    reader = token(svc, "acme", "read")
    code, _, err = run([*SUBMIT, "--slack", "1", "--token", reader], capsys)
    assert code == 4
    assert "lacks the 'submit' scope" in err


def test_an_unreachable_server_exits_3_without_a_traceback(capsys, monkeypatch):
    monkeypatch.delenv("WATTROUTE_TOKEN", raising=False)
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(["jobs", "list", "--url", url, "--token", "t0ken"], capsys)
    assert code == 3
    assert f"--url: cannot reach {url}" in err
    assert "Fix: start the server" in err
    assert "Traceback" not in err
    assert "t0ken" not in err + out
    code, _, err = run([*SUBMIT, "--slack", "1", "--url", url, "--idempotency-key", "k9"], capsys)
    assert code == 3
    assert "retry with --idempotency-key k9" in err
    monkeypatch.setenv("WATTROUTE_URL", "ftp://127.0.0.1/")
    code, _, err = run(["jobs", "list"], capsys)
    assert code == 2
    assert "--url: 'ftp://127.0.0.1/' is not an http(s) URL" in err


def test_a_number_json_cannot_carry_is_refused_before_sending(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["place", "--work", "inf", "--slack", "1"])
    assert exit_.value.code == 2
    assert "argument --work: 'inf' is not a finite number" in capsys.readouterr().err


def test_an_unknown_job_is_exit_2(svc, capsys):
    code, _, err = run(["jobs", "get", "nope", "--token", token(svc, "acme", "read")], capsys)
    assert code == 2
    assert "ID: no job 'nope'. Fix: list your jobs" in err


def test_watch_follows_a_job_until_it_completes(svc, capsys, monkeypatch):
    secret = token(svc, "acme", "submit")
    _, out, _ = run([*SUBMIT, "--slack", "6", "--json", "--token", secret], capsys)
    job_id = json.loads(out)["id"]
    monkeypatch.setattr(client, "sleep", lambda s: svc.tick(6))
    code, out, err = run(["jobs", "watch", job_id, "--interval", "0.1", "--token", secret], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert "queued" in lines[0]
    assert "running at" in out
    assert lines[-1].endswith("completed, 100% done")


def test_watch_exits_5_for_a_cancelled_job_and_130_on_ctrl_c(svc, capsys, monkeypatch):
    secret = token(svc, "acme", "submit")
    _, out, _ = run([*SUBMIT, "--slack", "6", "--json", "--token", secret], capsys)
    job_id = json.loads(out)["id"]

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "sleep", interrupt)
    code, _, err = run(["jobs", "watch", job_id, "--token", secret], capsys)
    assert code == 130
    assert "stopped watching" in err
    assert "Traceback" not in err
    run(["jobs", "cancel", job_id, "--token", secret], capsys)
    code, out, _ = run(["jobs", "watch", job_id, "--json", "--token", secret], capsys)
    assert code == 5
    assert json.loads(out)["state"] == "cancelled"
    code, _, err = run(["jobs", "watch", job_id, "--interval", "0", "--token", secret], capsys)
    assert code == 2
    assert "--interval: 0 is not positive" in err


def test_services_are_created_listed_changed_and_deleted(svc, capsys, monkeypatch):
    monkeypatch.setenv("WATTROUTE_TOKEN", token(svc, "acme", "submit"))
    create = ["services", "create", "--name", "vision", "--slo-ms", "200"]
    create += ["--service-time-ms", "20", "--throughput-rps", "50", "--demand", "p=12.5"]
    code, out, err = run(create, capsys)
    assert code == 0, err
    assert "acme/vision" in out
    assert "p 12.5" in out
    code, _, err = run(create, capsys)
    assert code == 2
    assert "--name: you have a service 'vision' already" in err
    code, out, _ = run(["services", "demand", "vision", "p=3", "--json"], capsys)
    assert json.loads(out)["demand_rps"] == {"p": 3.0}
    code, _, err = run(["services", "demand", "vision", "nowhere=3"], capsys)
    assert code == 2
    assert "--demand: unknown demand point(s) 'nowhere'" in err
    code, _, err = run(["services", "demand", "vision", "p=-1"], capsys)
    assert code == 2
    assert "--demand.p: should be greater than or equal to 0" in err
    code, _, err = run(["services", "demand", "vision", "p3"], capsys)
    assert (code, "POINT=RPS: 'p3' is not POINT=RPS" in err) == (2, True)
    code, out, _ = run(["services", "list"], capsys)
    assert "acme/vision" in out
    assert "1 service" in out
    code, out, _ = run(["services", "get", "vision", "--json"], capsys)
    assert json.loads(out)["key"] == "acme/vision"
    assert run(["services", "delete", "vision"], capsys)[:2] == (0, "service vision deleted\n")
    code, _, err = run(["services", "get", "vision"], capsys)
    assert code == 2
    assert "NAME: no service 'vision'" in err


def test_events_are_declared_by_an_admin_and_listed(svc, capsys):
    admin = token(svc, "ops", "admin")
    declare = ["events", "declare", "--site", "a", "--max-kw", "2"]
    declare += ["--start", "2023-06-01T01:00:00Z", "--end", "2023-06-01T02:00:00Z"]
    code, out, err = run([*declare, "--reason", "peak", "--token", admin], capsys)
    assert code == 0, err
    assert "upcoming" in out
    assert "2023-06-01 01:00" in out
    code, _, err = run([*declare, "--token", token(svc, "acme", "submit")], capsys)
    assert code == 4
    assert "lacks the 'admin' scope" in err
    backwards = [*declare[:-4], "--start", "2023-06-01T02:00:00Z", "--end", "2023-06-01T01:00Z"]
    code, _, err = run([*backwards, "--token", admin], capsys)
    assert code == 2
    assert "--end: is not after start. Fix: give an end later than the start." in err
    code, out, _ = run(["events", "list", "--site", "a", "--json", "--token", admin], capsys)
    events = json.loads(out)["grid_events"]
    assert [(e["site"], e["max_kw"], e["reason"]) for e in events] == [("a", 2.0, "peak")]


def test_place_answers_the_best_start_against_now(svc, capsys):
    svc.tick()
    reader = token(svc, "acme", "read")
    query = ["place", "--work", "2", "--accelerators", "2", "--slack", "6", "--token", reader]
    code, out, err = run(query, capsys)
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"best", "now", "saves"} <= set(rows)
    assert "2023-06-01 00:00" in rows["now"]
    assert "1 h on 2 accelerators; best by objective over 73 starts" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    code, out, _ = run([*query, "--site", "b", "--minimise", "cost", "--json"], capsys)
    answer = json.loads(out)
    assert answer["best"]["site"] == "b"
    assert answer["best"]["cost_usd"] == pytest.approx(1.8 * 0.05)
    early = [*query[:-4], "--deadline", "2023-06-01T00:30:00Z", "--token", reader]
    code, _, err = run(early, capsys)
    assert code == 2
    assert "--deadline: 2 accelerator-hours on 2 accelerators take 1.00 h" in err
    code, _, err = run([*query, "--accelerators", "9"], capsys)
    assert code == 2
    assert "--accelerators: 9 accelerators: the largest allowed site has 8" in err


@pytest.mark.system
def test_the_commands_over_http_against_a_served_api(tmp_path, capsys, monkeypatch):
    service = make_service(sqlite_url(tmp_path))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service.state), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        monkeypatch.setenv("WATTROUTE_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("WATTROUTE_TOKEN", token(service, "acme", "submit"))
        code, out, err = run([*SUBMIT, "--slack", "6", "--json"], capsys)
        assert code == 0, err
        job_id = json.loads(out)["id"]
        code, out, _ = run(["jobs", "list"], capsys)
        assert code == 0
        assert job_id in out
        code, _, err = run(["jobs", "list", "--token", "wrong"], capsys)
        assert code == 4
        assert "--token: unknown, expired or revoked token" in err
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
