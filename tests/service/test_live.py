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
ENTSOE_TOKEN = "entsoe-test-token-in-the-query"  # ENTSO-E takes it as a query parameter
UNUSED = "http://127.0.0.1:9"  # providers of configs that are only checked: never asked
DE_LU, FR = "10Y1001A1001A82H", "10YFR-RTE------C"

PRICES = """<?xml version="1.0" encoding="utf-8"?>
<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">
  <mRID>fake</mRID>
  <revisionNumber>1</revisionNumber>
  <type>A44</type>
  <createdDateTime>{start}</createdDateTime>
  <period.timeInterval><start>{start}</start><end>{end}</end></period.timeInterval>
  <TimeSeries>
    <mRID>1</mRID>
    <auction.type>A01</auction.type>
    <businessType>A62</businessType>
    <in_Domain.mRID codingScheme="A01">{area}</in_Domain.mRID>
    <out_Domain.mRID codingScheme="A01">{area}</out_Domain.mRID>
    <contract_MarketAgreement.type>A01</contract_MarketAgreement.type>
    <currency_Unit.name>EUR</currency_Unit.name>
    <price_Measure_Unit.name>MWH</price_Measure_Unit.name>
    <curveType>A01</curveType>
    <Period>
      <timeInterval><start>{start}</start><end>{end}</end></timeInterval>
      <resolution>PT60M</resolution>
{points}
    </Period>
  </TimeSeries>
</Publication_MarketDocument>
"""

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
  usd_per_eur: 1.1
  providers:
    electricitymaps: {{base_url: "{base}", token: EM_TOKEN, attempts: 1}}
    entsoe: {{base_url: "{base}/entsoe", token: ENTSOE_TOKEN, attempts: 1}}
  sites:
    a: {{carbon: [{{source: electricitymaps, zone: ZA}}], price: [{{source: entsoe, area: DE_LU}}]}}
    b: {{carbon: [{{source: electricitymaps, zone: ZB}}], price: [{{source: entsoe, area: FR}}]}}
policy: greedy
database: {database}
auth: {{required: false}}
"""


class FakeProviders:
    """Electricity Maps v3 ``history`` and ``forecast`` per zone, hourly, at a carbon
    intensity the test sets, and ENTSO-E day-ahead prices (A44, EUR/MWh, hourly) per area
    for the period asked; requests without the right token are refused (401)."""

    def __init__(self) -> None:
        self.carbon = {"ZA": 100.0, "ZB": 600.0}
        self.price_eur = {DE_LU: 200.0, FR: 20.0}
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests += 1
                url = urlparse(self.path)
                if url.path.startswith("/entsoe"):
                    self._entsoe(parse_qs(url.query))
                    return
                if self.headers.get("auth-token") != TOKEN:
                    self._send(401, {"message": "unauthorized"})
                    return
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

            def _entsoe(self, query: dict[str, list[str]]) -> None:
                if query.get("securityToken") != [ENTSOE_TOKEN]:
                    self._send(401, {"message": "unauthorized"})
                    return
                area = query["in_Domain"][0]
                start = pd.Timestamp(query["periodStart"][0], tz="UTC")
                end = pd.Timestamp(query["periodEnd"][0], tz="UTC")
                hours = int((end - start) / pd.Timedelta(hours=1))
                points = "\n".join(
                    f"<Point><position>{i + 1}</position>"
                    f"<price.amount>{fake.price_eur[area]}</price.amount></Point>"
                    for i in range(hours)
                )
                stamp = "%Y-%m-%dT%H:%MZ"
                body = PRICES.format(
                    start=start.strftime(stamp), end=end.strftime(stamp), area=area, points=points
                )
                self._send(200, body, "application/xml")

            def _send(self, status: int, body: object, kind: str = "application/json") -> None:
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", kind)
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
def fake() -> Iterator[FakeProviders]:
    server = FakeProviders()
    yield server
    server.close()


def _config(tmp_path: Path, base: str) -> Path:
    """The live test config, its providers at ``base``."""
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=1)
    path = tmp_path / "live.yaml"
    path.write_text(
        textwrap.dedent(
            CONFIG.format(
                start=start.isoformat(),
                base=base,
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


@pytest.mark.system
@pytest.mark.slow
def test_serve_on_real_time_follows_the_carbon_and_prices_the_providers_report(tmp_path, fake):
    config = _config(tmp_path, fake.base)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "EM_TOKEN": TOKEN, "ENTSOE_TOKEN": ENTSOE_TOKEN}
    process = launch_server(config, port, log=log, env=env)
    base = f"http://127.0.0.1:{port}"
    job = {"name": "train", "work_accelerator_hours": 4, "max_accelerators": 2, "slack_h": 3}

    def latest(signal_name: str) -> list[float]:
        now = httpx.get(f"{base}/v1/signals", params={"horizon_h": 1}).json()["sites"]
        return [now[site][signal_name]["latest"] for site in ("a", "b")]

    def placed() -> str:
        """Where a new job is placed (on what the controller last took in)."""
        answer = httpx.post(f"{base}/v1/jobs", json=job)
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        return str(_until(lambda: _site_of(base, job_id)))

    try:
        wait_healthy(process, port, 120, log=log)
        # objective per MWh at a carbon price of 1000 USD/t: price + carbon (g/kWh = kg/MWh)
        assert placed() == "a"  # a: 220 + 100 = 320, b: 22 + 700 = 722
        signals = httpx.get(f"{base}/v1/signals", params={"horizon_h": 1}).json()
        carbon = signals["sites"]["a"]["carbon_g_per_kwh"]
        assert carbon["latest"] == 100.0
        assert (carbon["source"], carbon["kind"]) == ("electricitymaps", "average/lifecycle")
        price = signals["sites"]["b"]["price_usd_per_mwh"]
        assert price["latest"] == pytest.approx(22.0)  # 20 EUR/MWh at 1.1 USD/EUR
        assert (price["source"], price["kind"]) == ("entsoe", "day-ahead")
        assert signals["kinds"]["carbon_g_per_kwh"] == ["average/lifecycle"]

        # a is still the cleaner, but no longer by enough to pay for its dearer power
        fake.carbon = {"ZA": 300.0, "ZB": 350.0}
        _until(lambda: True if latest("carbon_g_per_kwh") == [300.0, 350.0] else None)
        assert latest("price_usd_per_mwh") == pytest.approx([220.0, 22.0])
        assert placed() == "b"  # a: 220 + 300 = 520, b: 22 + 350 = 372
        summary = httpx.get(f"{base}/v1/summary").json()
        kinds = summary["fleet"]["signal_kinds"]
        assert kinds["carbon_g_per_kwh"] == ["average/lifecycle"]
        assert kinds["price_usd_per_mwh"] == ["day-ahead"]
    finally:
        stop_group(process, signal.SIGTERM)
    text = log.read_text()
    assert TOKEN not in text
    assert ENTSOE_TOKEN not in text


@pytest.mark.system
def test_signals_check_says_what_answered_and_fails_without_a_value(tmp_path, fake, monkeypatch):
    config = _config(tmp_path, fake.base)
    monkeypatch.setenv("EM_TOKEN", TOKEN)
    monkeypatch.setenv("ENTSOE_TOKEN", ENTSOE_TOKEN)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["signals", "check", "--config", str(config)])
    text = out.getvalue()
    assert code == 0, text
    assert "a carbon_g_per_kwh: 100.00 from electricitymaps (average/lifecycle)" in text
    assert "b carbon_g_per_kwh: 600.00 from electricitymaps (average/lifecycle)" in text
    assert "a price_usd_per_mwh: 220.00 from entsoe (day-ahead)" in text
    assert "next publication" in text  # the day-ahead auction's
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


def test_mixing_carbon_kinds_is_refused(tmp_path, monkeypatch):
    from wattroute.errors import InputError
    from wattroute.runtime.clock import RealClock
    from wattroute.service.config import load_service_config
    from wattroute.service.signals import build_live_provider

    monkeypatch.setenv("EM_TOKEN", TOKEN)
    monkeypatch.setenv("ENTSOE_TOKEN", ENTSOE_TOKEN)
    path = _config(tmp_path, UNUSED)  # the provider is built, nothing is fetched
    text = path.read_text().replace(
        "{source: electricitymaps, zone: ZB}", "{source: electricitymaps, zone: ZB, scope: direct}"
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
            ("{source: electricitymaps, zone: ZB}", "{source: gridstatus, iso: CAISO, node: X}"),
            "sites.b.carbon: gridstatus gives prices, not carbon",
        ),
        (("  usd_per_eur: 1.1\n", ""), "set usd_per_eur"),
        (("{source: electricitymaps, zone: ZB}", "{source: watttime}"), "watttime needs region"),
        (("    b: {carbon", "    c: {carbon"), "names sites the fleet does not have: c"),
    ],
)
def test_a_live_config_that_cannot_work_is_refused_naming_the_field(tmp_path, change, said):
    from wattroute.errors import InputError
    from wattroute.service.config import load_service_config

    path = _config(tmp_path, UNUSED)
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(*change))
    with pytest.raises(InputError) as refused:
        load_service_config(path)
    assert said in str(refused.value)
