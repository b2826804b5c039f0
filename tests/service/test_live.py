"""``wattroute serve`` with live signals on the real clock, against a fake Electricity Maps
on 127.0.0.1: the plan follows the carbon the provider reports, and ``signals check`` says
what answered."""

from __future__ import annotations

import io
import json
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pandas as pd
import pytest

from tests.service.processes import free_port, launch_server, stop_group, wait_healthy
from wattroute.cli.main import main

TOKEN = "em-test-token-do-not-log"

CONFIG = """
name: live-test
fleet:
  step: 10s
  carbon_price_usd_per_tonne: 1000
  sites:
    - name: a
      latitude: 52.5
      longitude: 13.4
      accelerators: {{count: 8, busy_kw: 0.7, idle_kw: 0.1}}
      grid: {{import_limit_kw: 100}}
    - name: b
      latitude: 48.1
      longitude: 11.6
      accelerators: {{count: 8, busy_kw: 0.7, idle_kw: 0.1}}
      grid: {{import_limit_kw: 100}}
signals:
  provider: live
  start: {start}
  days: 2
  refresh_minutes: 0.02
  required: [carbon]
  providers:
    electricitymaps: {{base_url: "{base}", token: EM_TOKEN, attempts: 1}}
  sites:
    a: {{carbon: [{{source: electricitymaps, zone: ZA}}]}}
    b: {{carbon: [{{source: electricitymaps, zone: ZB}}]}}
policy: greedy
database: {database}
auth: {{required: false}}
"""


class FakeElectricityMaps:
    """Electricity Maps v3 ``history`` and ``forecast`` per zone, hourly, at a carbon
    intensity the test sets; requests without the token are refused (401)."""

    def __init__(self) -> None:
        self.carbon = {"ZA": 100.0, "ZB": 600.0}
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests += 1
                if self.headers.get("auth-token") != TOKEN:
                    self._send(401, {"message": "unauthorized"})
                    return
                url = urlparse(self.path)
                zone = parse_qs(url.query).get("zone", [""])[0]
                now = pd.Timestamp.now(tz="UTC").floor("h")
                value = fake.carbon.get(zone)
                if value is None:
                    self._send(404, {"message": f"zone {zone} unknown"})
                    return
                if url.path.endswith("/history"):
                    hours = pd.date_range(now - pd.Timedelta(hours=23), now, freq="h")
                    items = [_item(zone, t, value) for t in hours]
                    self._send(200, {"zone": zone, "history": items})
                elif url.path.endswith("/forecast"):
                    hours = pd.date_range(now + pd.Timedelta(hours=1), periods=24, freq="h")
                    self._send(
                        200,
                        {
                            "zone": zone,
                            "forecast": [
                                {"carbonIntensity": value, "datetime": _iso(t)} for t in hours
                            ],
                            "updatedAt": _iso(now),
                        },
                    )
                else:
                    self._send(200, {"zone": zone, "data": []})

            def _send(self, status: int, body: object) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _item(zone: str, t: pd.Timestamp, value: float) -> dict[str, object]:
    return {
        "zone": zone,
        "carbonIntensity": value,
        "datetime": _iso(t),
        "updatedAt": _iso(t),
        "createdAt": _iso(t),
        "emissionFactorType": "lifecycle",
        "isEstimated": True,
        "estimationMethod": "TIME_SLICER_AVERAGE",
    }


@pytest.fixture
def fake() -> Iterator[FakeElectricityMaps]:
    server = FakeElectricityMaps()
    yield server
    server.close()


def _config(tmp_path: Path, fake: FakeElectricityMaps) -> Path:
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=1)
    path = tmp_path / "live.yaml"
    path.write_text(
        textwrap.dedent(
            CONFIG.format(
                start=start.isoformat(),
                base=fake.base,
                database=f"sqlite:///{tmp_path / 'live.db'}",
            )
        )
    )
    return path


def _site_of(base: str, job_id: str) -> str | None:
    plan = httpx.get(f"{base}/v1/plan").json()
    job = plan["jobs"].get(job_id)
    return None if job is None else job["site"]


def _until(what, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while (value := what()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return value


def test_serve_on_real_time_follows_the_carbon_the_provider_reports(tmp_path, fake):
    config = _config(tmp_path, fake)
    port = free_port()
    log = tmp_path / "serve.log"
    process = launch_server(config, port, log=log, env={**os.environ, "EM_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, port, 120, log=log)
        job = {"name": "train", "work_accelerator_hours": 4, "max_accelerators": 2, "slack_h": 3}
        answer = httpx.post(f"{base}/v1/jobs", json=job)
        assert answer.status_code == 201, answer.text
        first = answer.json()["id"]
        assert _until(lambda: _site_of(base, first)) == "a"  # ZA is cleaner
        signals = httpx.get(f"{base}/v1/signals", params={"horizon_h": 1}).json()
        carbon = signals["sites"]["a"]["carbon_g_per_kwh"]
        assert carbon["latest"] == 100.0
        assert (carbon["source"], carbon["kind"]) == ("electricitymaps", "average/lifecycle")
        assert signals["kinds"]["carbon_g_per_kwh"] == ["average/lifecycle"]
        fake.carbon = {"ZA": 700.0, "ZB": 50.0}  # now b is the clean one

        def taken_in() -> bool | None:
            now = httpx.get(f"{base}/v1/signals", params={"horizon_h": 1}).json()["sites"]
            seen = [now[site]["carbon_g_per_kwh"]["latest"] for site in ("a", "b")]
            return True if seen == [700.0, 50.0] else None

        _until(taken_in)  # the controller has planned on the new values
        second = httpx.post(f"{base}/v1/jobs", json=job).json()["id"]

        def moved() -> str | None:
            site = _site_of(base, second)
            return site if site == "b" else None

        assert _until(moved) == "b"
        summary = httpx.get(f"{base}/v1/summary").json()
        assert summary["fleet"]["signal_kinds"]["carbon_g_per_kwh"] == ["average/lifecycle"]
    finally:
        stop_group(process, signal.SIGTERM)
    assert TOKEN not in log.read_text()


def test_signals_check_says_what_answered_and_fails_without_a_value(tmp_path, fake, monkeypatch):
    config = _config(tmp_path, fake)
    monkeypatch.setenv("EM_TOKEN", TOKEN)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["signals", "check", "--config", str(config)])
    text = out.getvalue()
    assert code == 0, text
    assert "a carbon_g_per_kwh: 100.00 from electricitymaps (average/lifecycle)" in text
    assert "b carbon_g_per_kwh: 600.00 from electricitymaps (average/lifecycle)" in text
    monkeypatch.setenv("EM_TOKEN", "wrong")  # every source refuses: no value for carbon
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["signals", "check", "--config", str(config)])
    assert code == 1
    assert "no value from any source: a carbon_g_per_kwh, b carbon_g_per_kwh" in " ".join(
        out.getvalue().split()
    )
    assert "wrong" not in out.getvalue()


def test_the_live_example_is_a_valid_configuration(monkeypatch):
    from wattroute.runtime.clock import RealClock
    from wattroute.service.config import load_service_config
    from wattroute.service.signals import build_live_provider

    config = load_service_config(Path(__file__).parents[2] / "examples" / "live.yaml")
    for name in ("ELECTRICITYMAPS_TOKEN", "ENTSOE_API_KEY"):
        monkeypatch.setenv(name, "x")
    provider, clients = build_live_provider(config, RealClock())  # builds, fetches nothing
    clients.close()
    chains = {
        (signal, provider.sites[i]): [s.name for s in chain.sources]
        for (signal, i), chain in provider.chains.items()
    }
    assert chains[("carbon_g_per_kwh", "berlin")] == ["electricitymaps", "entsoe"]
    assert chains[("price_usd_per_mwh", "sacramento")] == ["gridstatus"]
    assert chains[("solar_kw", "berlin")] == ["openmeteo"]
    assert chains[("wind_kw", "sacramento")] == ["openmeteo"]


def test_mixing_carbon_kinds_is_refused(tmp_path, fake, monkeypatch):
    from wattroute.errors import InputError
    from wattroute.runtime.clock import RealClock
    from wattroute.service.config import load_service_config
    from wattroute.service.signals import build_live_provider

    monkeypatch.setenv("EM_TOKEN", TOKEN)
    path = _config(tmp_path, fake)
    text = path.read_text().replace(
        "b: {carbon: [{source: electricitymaps, zone: ZB}]}",
        "b: {carbon: [{source: electricitymaps, zone: ZB, scope: direct}]}",
    )
    path.write_text(text)
    with pytest.raises(InputError, match="mix direct and lifecycle"):
        build_live_provider(load_service_config(path), RealClock(), None)
    path.write_text(
        text.replace("  required: [carbon]", "  required: [carbon]\n  allow_mixed_kinds: true")
    )
    build_live_provider(load_service_config(path), RealClock(), None)[1].close()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            (
                "b: {carbon: [{source: electricitymaps, zone: ZB}]}",
                "b: {carbon: [{source: gridstatus, iso: CAISO, node: TH_NP15_GEN-APND}]}",
            ),
            "sites.b.carbon: gridstatus gives prices, not carbon",
        ),
        (
            (
                "b: {carbon: [{source: electricitymaps, zone: ZB}]}",
                "b: {carbon: [{source: electricitymaps, zone: ZB}], price: [{source: entsoe, "
                "area: DE_LU}]}",
            ),
            "set usd_per_eur",
        ),
        (
            (
                "b: {carbon: [{source: electricitymaps, zone: ZB}]}",
                "b: {carbon: [{source: watttime}]}",
            ),
            "source watttime needs region",
        ),
        (
            (
                "b: {carbon: [{source: electricitymaps, zone: ZB}]}",
                "c: {carbon: [{source: electricitymaps, zone: ZB}]}",
            ),
            "names sites the fleet does not have: c",
        ),
    ],
)
def test_a_live_config_that_cannot_work_is_refused_naming_the_field(tmp_path, fake, change, said):
    from wattroute.errors import InputError
    from wattroute.service.config import load_service_config

    path = _config(tmp_path, fake)
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(*change))
    with pytest.raises(InputError) as refused:
        load_service_config(path)
    assert said in str(refused.value)
