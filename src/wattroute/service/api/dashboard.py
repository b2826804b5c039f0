"""The live dashboard at ``/``, its data at ``/v1/dashboard``, and the API documentation
(``/docs``, ``/redoc``) with every asset served by the package itself: nothing is fetched from
elsewhere, so all of it works offline.

The page carries no data and needs no token to load; it asks for one (a ``read`` token is
enough), keeps it in the tab's ``sessionStorage`` and sends it as ``Authorization: Bearer`` on
every request for data, so that it appears neither in a URL nor in an access log. The page
and its assets are sent with a strict Content-Security-Policy (scripts and styles from this
origin only, no inline script).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from wattroute.service.api.deps import Reader, State
from wattroute.service.api.problems import READ, not_found
from wattroute.service.dashboard.view import History, dashboard

router = APIRouter(tags=["dashboard"])

STATIC = Path(__file__).resolve().parent.parent / "dashboard" / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: everything from this origin, no inline script."""

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _plotly_js() -> Path:
    """plotly.js as the installed ``plotly`` package ships it."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@functools.cache
def plotly_styles() -> tuple[str, tuple[str, ...]]:
    """What plotly.js would otherwise inject as inline ``<style>`` elements (which the page's
    CSP forbids): its own rules as a stylesheet, and the ids of the style elements it adds
    when it loads (an element already there by that id stops it; they style map traces,
    which the page has none of). Read from the installed plotly.min.js; empty if its layout
    is not recognised (the charts then lose their hover and cursor styles, nothing more)."""
    source = _plotly_js().read_text(encoding="utf-8")
    ids = tuple(
        dict.fromkeys(
            re.findall(
                r'getElementById\("([0-9a-f]{16,})"\)\)\{'
                r'var \w+=document\.createElement\("style"\)',
                source,
            )
        )
    )
    loop = re.search(
        r'for\((\w+) in (\w+)\)\w+=\1\.replace\(/\^,/," ,"\)\.replace\(/X/g,"([^"]+)"\)'
        r'\.replace\(/Y/g,"([^"]+)"\)',
        source,
    )
    if loop is None:
        return "", ids
    name, x, y = loop.group(2), loop.group(3), loop.group(4)
    start = source.rfind(f"{name}={{", 0, loop.start())
    if start < 0:
        return "", ids
    body = source[start + len(name) + 2 : loop.start()]
    rules = []
    for m in re.finditer(r'(?:"([^"]*)"|([A-Za-z]\w*)):(?:"([^"]*)"|\'([^\']*)\')', body):
        selector = m.group(1) if m.group(1) is not None else m.group(2)
        rule = m.group(3) if m.group(3) is not None else m.group(4)
        selector = re.sub(r"^,", " ,", selector).replace("X", x).replace("Y", y)
        rules.append(f"{selector}{{{rule}}}")
    return "\n".join(rules) + "\n", ids


@functools.cache
def redoc_js() -> str:
    """ReDoc, its one outside address (the logo in its side menu) pointed at this server."""
    source = (_apidocs_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return source.replace("https://cdn.redoc.ly/redoc/logo-mini.svg", "/assets/favicon.png")


def _apidocs_dir() -> Path:
    """Swagger UI and ReDoc as the installed ``fastapi-offline`` package ships them."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


ASSETS: dict[str, tuple[str, str]] = {
    # name in the URL -> (where, file name); nothing else is ever read
    "dashboard.js": ("static", "dashboard.js"),
    "dashboard.css": ("static", "dashboard.css"),
    "plotly.min.js": ("plotly", "plotly.min.js"),
    "plotly.css": ("plotly", "plotly.css"),  # made from plotly.min.js: plotly_styles()
    "swagger-ui-bundle.js": ("apidocs", "swagger-ui-bundle.js"),
    "swagger-ui.css": ("apidocs", "swagger-ui.css"),
    "redoc.standalone.js": ("apidocs", "redoc.standalone.js"),
    "favicon.png": ("apidocs", "favicon.png"),
}


def _asset_path(name: str) -> Path:
    where, file = ASSETS[name]
    if where == "static":
        return STATIC / file
    if where == "plotly":
        return _plotly_js()
    return _apidocs_dir() / file


@router.get("/", include_in_schema=False)
async def page(state: State) -> HTMLResponse:
    """The dashboard page (no data: it fetches ``/v1/dashboard`` with the token it is given).
    It says whether a token is needed, so that the page asks for one before any request."""
    _, ids = plotly_styles()
    # plotly.js leaves out its inline <style> elements when these are already there
    tags = '<link id="plotly.js-style-global" class="no-inline-styles" rel="stylesheet" '
    tags += 'href="/assets/plotly.css">' + "".join(f'<meta id="{i}">' for i in ids)
    tags += f'<meta name="wattroute-auth" content="{"token" if state.auth_required else "open"}">'
    html = (STATIC / "index.html").read_text(encoding="utf-8").replace("<!--plotly-->", tags)
    return HTMLResponse(html, headers=HEADERS)


@router.get("/assets/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    """One of the page's and the documentation's assets, by name (a fixed list)."""
    if name not in ASSETS:
        raise not_found("path.name", f"asset {name!r}", "ask for an asset the pages use")
    media = "text/javascript" if name.endswith(".js") else None
    headers = {**HEADERS, "Cache-Control": "public, max-age=3600"}
    if name == "plotly.css":
        return Response(plotly_styles()[0], media_type="text/css", headers=headers)
    if name == "redoc.standalone.js":
        return Response(redoc_js(), media_type=media, headers=headers)
    return FileResponse(_asset_path(name), media_type=media, headers=headers)


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI, from this server's own copy."""
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url="/assets/swagger-ui-bundle.js",
        swagger_css_url="/assets/swagger-ui.css",
        swagger_favicon_url="/assets/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from elsewhere
    )


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc, from this server's own copy (no web fonts)."""
    return get_redoc_html(
        openapi_url=str(request.app.openapi_url),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url="/assets/redoc.standalone.js",
        redoc_favicon_url="/assets/favicon.png",
        with_google_fonts=False,
    )


@router.get("/v1/dashboard", responses=READ)
async def dashboard_data(request: Request, state: State, who: Reader) -> dict[str, Any]:
    """What the dashboard shows, as of the controller's last tick: each site's power by
    source, load, import against its limit, battery, and the signals it plans on (their age
    and kind); the last 24 h of fleet time of the same; your jobs (an admin's: everyone's)
    with where each ran and why it moved; your services' routing and latency; grid events;
    and the objective against the carbon-agnostic baseline. Fleet-wide values are the
    fleet's; workloads are filtered as in the rest of the API."""
    history: History | None = getattr(request.app.state, "dashboard_history", None)
    if history is None:
        history = request.app.state.dashboard_history = History()
    return await run_in_threadpool(
        dashboard, state.scenario, state.store, history, state.clock.now(), who
    )
