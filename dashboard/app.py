"""The Dash app factory: pages, API, access control and self-metrics over one data source."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import dash
from dash import Input, Output, dcc, html

from dashboard.access import install_access, install_guards
from dashboard.api import register_api
from dashboard.components.positions import PositionMemory
from dashboard.components.widgets import nav
from dashboard.pages import changes, config, findings, overview, service, slos, topology, traces
from dashboard.query import DataSource, QueryError
from dashboard.selfmetrics import install_selfmetrics

log = logging.getLogger("meshscope.dashboard")
PAGES = (overview, topology, findings, service, traces, slos, config, changes)
ASSETS = Path(__file__).parent / "assets"


@dataclass
class AppContext:
    """Per-app state the pages share (nothing global, so tests can run several apps at once)."""

    positions: PositionMemory = field(default_factory=PositionMemory)
    refresh_s: float = 10.0


def create_app(source: DataSource, token: str | None = None, refresh_s: float = 10.0,
               bind_host: str = "127.0.0.1", allowed_hosts: tuple[str, ...] = ()) -> dash.Dash:
    """A Dash app serving every page and /api/v1 from `source`.

    `token` turns on access control (required by `dashboard.server.serve` when
    binding beyond loopback). Assets are served from this package only: no CDN.
    `bind_host` and `allowed_hosts` are the names the Host header may carry
    (see `dashboard.access`).
    """
    app = dash.Dash(
        __name__, title="meshscope", assets_folder=str(ASSETS), serve_locally=True,
        suppress_callback_exceptions=True, update_title=None,
    )
    ctx = AppContext(refresh_s=refresh_s)
    server = app.server
    install_guards(server, token, bind_host, allowed_hosts)
    install_access(server, token)
    install_selfmetrics(server)
    register_api(server, source)
    app.layout = html.Div([
        dcc.Location(id="url", refresh=False),
        html.Div(id="nav", children=nav("/")),
        html.Main(id="page", className="page"),
    ])
    routes = {p.PATH: p for p in PAGES}

    @app.callback(Output("page", "children"), Output("nav", "children"),
                  Input("url", "pathname"), Input("url", "search"))
    def route(pathname: str | None, search: str | None):  # noqa: ANN202
        page = routes.get((pathname or "/").rstrip("/") or "/")
        if page is None:
            return html.Div([html.H2("Not found"), html.P(f"No page at {pathname}")]), nav("")
        query = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
        try:
            return page.layout(source, ctx, query), nav(page.PATH)
        except QueryError as exc:
            return _problem(page.TITLE, str(exc)), nav(page.PATH)
        except Exception as exc:  # a failing source must not blank the UI; say what broke
            log.exception("page %s failed", page.PATH)
            return _problem(page.TITLE, f"{type(exc).__name__}: {exc}"), nav(page.PATH)

    for page in PAGES:
        page.register(app, source, ctx)
    install_security_headers(app)
    app.meshscope_source = source  # for the composition root and tests
    return app


def _problem(title: str, message: str) -> html.Div:
    return html.Div(className="problem", id="page-problem", children=[
        html.H2(title), html.P("This page could not be loaded from the data source:"), html.Pre(message)])


def install_security_headers(app: dash.Dash) -> None:
    """Headers that stop framing, MIME sniffing, referrer leaks and injected script.

    Dash renders from one inline script (`new DashRenderer()`); its hash, from
    `app.csp_hashes()`, is the only inline script allowed. Styles stay
    'unsafe-inline': Plotly and Cytoscape insert <style> elements at run time.
    """
    server = app.server
    state: dict[str, str] = {}

    def policy() -> str:
        if "csp" not in state:  # hashes are known once every callback is registered: compute on first use
            hashes = " ".join(h if h.startswith("'") else f"'{h}'" for h in app.csp_hashes())
            state["csp"] = ("default-src 'self'; "
                            f"script-src 'self' {hashes}; "
                            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
                            "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
                            "form-action 'self'; frame-ancestors 'none'")
        return state["csp"]

    @server.after_request
    def security_headers(resp):  # noqa: ANN001, ANN202 - Flask hook
        h = resp.headers
        h.setdefault("Content-Security-Policy", policy())
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return resp
