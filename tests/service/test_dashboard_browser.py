"""The dashboard in a real headless Chromium (the system's, driven by Playwright) against a
real server on loopback: it loads with no console error and nothing fetched from elsewhere,
signs in with a read token kept out of the URL, shows every site, and shows a job submitted
and a grid event declared through the API within seconds."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wattroute.service.auth import new_token, token_hash
from wattroute.service.config import load_service_config
from wattroute.service.server import serve_in_thread

pytestmark = pytest.mark.system

CONFIG = """
name: browser-test
fleet:
  sites:
    - name: north
      latitude: 40
      longitude: -100
      accelerators: {count: 16, busy_kw: 0.7, idle_kw: 0.1}
      weather: {pvlib_tmy: 723170TYA.CSV}
      grid: {price: 60, carbon: 300, import_limit_kw: 30}
      solar: {capacity_kw: 4}
      battery: {capacity_kwh: 20, charge_kw: 5, discharge_kw: 5}
    - name: south
      latitude: 33
      longitude: -97
      accelerators: {count: 16, busy_kw: 0.7, idle_kw: 0.1}
      grid: {price: 40, carbon: 500}
  demand_points: [{name: p, latitude: 40, longitude: -100}]
signals: {start: 2023-06-01T00:00:00Z, end: 2023-06-30T00:00:00Z}
policy: greedy
database: sqlite:///wattroute.db
clock: {kind: replay, speedup: 3600}
auth: {required: true}
"""


def chromium() -> str | None:
    """The system's Chromium (``scripts/ensure-chromium`` installs it)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    path = tmp_path / "service.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    with serve_in_thread(load_service_config(path)) as (url, state):
        tokens = {}
        for tenant, scope in (("acme", "read"), ("acme", "submit"), ("ops", "admin")):
            tokens[scope] = new_token()
            state.store.add_token(tenant, scope, token_hash(tokens[scope]))
        yield url, tokens


def test_the_dashboard_shows_the_fleet_a_new_job_and_a_grid_event(served):
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium binary found (scripts/ensure-chromium installs it)")
    from playwright.sync_api import sync_playwright

    url, tokens = served
    problems: list[str] = []
    elsewhere: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith((url, "data:", "blob:")) else elsewhere.append(r.url)
                ),
            )
            page.goto(f"{url}/")
            page.wait_for_selector("#login-form", state="visible", timeout=10_000)
            page.fill("#token", tokens["read"])
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("[data-site='south']", timeout=10_000)
            shown = page.eval_on_selector_all("[data-site]", "els => els.map(e => e.dataset.site)")
            assert shown == ["north", "south"]
            assert tokens["read"] not in page.url
            assert page.evaluate("sessionStorage.getItem('wattroute.token')") == tokens["read"]
            page.wait_for_selector("[data-chart='north'] .main-svg", timeout=10_000)

            job = httpx.post(
                f"{url}/v1/jobs",
                json={
                    "name": "nightly",
                    "work_accelerator_hours": 8,
                    "max_accelerators": 4,
                    "slack_h": 12,
                },
                headers={"Authorization": f"Bearer {tokens['submit']}"},
            )
            assert job.status_code == 201, job.text
            event = httpx.post(
                f"{url}/v1/grid-events",
                json={
                    "site": "north",
                    "max_kw": 3,
                    "start": "2023-06-01T00:00:00Z",
                    "end": "2023-06-29T00:00:00Z",
                    "reason": "test",
                },
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            assert event.status_code == 201, event.text
            row = page.wait_for_selector(f"tr[data-job='{job.json()['id']}']", timeout=8_000)
            assert row is not None
            assert "nightly" in row.inner_text()
            cap = page.wait_for_selector(f"tr[data-event='{event.json()['id']}']", timeout=8_000)
            assert cap is not None
            assert "3 kW" in cap.inner_text()
            page.wait_for_function(
                "document.querySelector(\"[data-site='north']\").innerText.includes('grid event')",
                timeout=8_000,
            )
        finally:
            browser.close()
    assert problems == []
    assert elsewhere == []
