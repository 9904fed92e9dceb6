"""The Dash app factory: pages, API, access control and self-metrics over one data source."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dash
import flask
from dash import Input, Output, State, dcc, html, no_update, set_props

from dashboard.access import install_access, install_guards
from dashboard.api import register_api
from dashboard.coalesced import Coalesced
from dashboard.components.lean import Recent
from dashboard.components.positions import PositionMemory
from dashboard.components.widgets import nav
from dashboard.pages import changes, config, findings, overview, service, slos, topology, traces
from dashboard.plotly_bundle import install_plotly_bundle
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
    # the topology page's laid-out views and canvas columns, kept while the source hands out the same graph, and
    # the computation concurrent requests for one share (pages.topology._view_elements); two: the grouped default
    # and the expanded graph (each entry holds a whole graph: a live source's older ones are of no further use)
    views: Recent = field(default_factory=lambda: Recent(2))
    canvases: Recent = field(default_factory=lambda: Recent(2))
    sharing: Coalesced = field(default_factory=Coalesced)
    _rendering: list = field(default_factory=lambda: [0, threading.Condition()])  # pages being rendered now

    @contextmanager
    def rendering(self) -> Iterator[None]:
        """Around a page render for a request: the server's preparation waits for it (`idle`)."""
        cond = self._rendering[1]
        with cond:
            self._rendering[0] += 1
        try:
            yield
        finally:
            with cond:
                self._rendering[0] -= 1
                cond.notify_all()

    def idle(self, timeout: float = 30.0) -> None:
        """Return once no page is being rendered for a request (or after `timeout` s): the preparation at start
        steps aside between its steps, so a page opened meanwhile does not share the cores with views it does
        not need (the two would run interleaved on the GIL, each at half speed)."""
        cond = self._rendering[1]
        with cond:
            cond.wait_for(lambda: self._rendering[0] == 0, timeout)


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
    install_access(server, token, known_outputs=lambda: app.callback_map)  # a callback request for any other: 404
    install_selfmetrics(server)
    install_plotly_bundle(server)  # the pages' charts load plotly's basic build, not the full bundle
    register_api(server, source)
    routes = {p.PATH: p for p in PAGES}

    def render(pathname: str | None, search: str | None) -> tuple[Any, Any]:
        """(the page's content, the nav bar) of a URL."""
        page = routes.get((pathname or "/").rstrip("/") or "/")
        if page is None:
            return html.Div([html.H2("Not found"), html.P(f"No page at {pathname}")]), nav("")
        query = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
        try:
            with ctx.rendering():
                return page.layout(source, ctx, query), nav(page.PATH)
        except QueryError as exc:
            return _problem(page.TITLE, str(exc)), nav(page.PATH)
        except Exception as exc:  # a failing source must not blank the UI; say what broke
            log.exception("page %s failed", page.PATH)
            return _problem(page.TITLE, f"{type(exc).__name__}: {exc}"), nav(page.PATH)

    def shell() -> html.Div:
        """The app's layout, with the page already in it when the request is a page load's.

        The page's own content came from the `route` callback, which the browser can only call once Dash's
        layout and callback list have arrived and the layout is drawn: a second round trip on every page load
        (a third of a 34,000-edge graph's first view). The layout request's Referer is the page being loaded
        (same origin), so the page is rendered into it, and `page-for` tells `route` the content is there.
        """
        opened = _page_loading()
        content, bar = render(*opened) if opened else (None, nav("/"))
        return html.Div([
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="page-for", data=_url_key(*opened) if opened else None),
            html.Div(id="nav", children=bar),
            html.Main(id="page", className="page", children=content),
        ])

    app.layout = shell

    @app.callback(Output("page", "children"), Output("nav", "children"),
                  Input("url", "pathname"), Input("url", "search"), State("page-for", "data"))
    def route(pathname: str | None, search: str | None, page_for: str | None = None):  # noqa: ANN202
        # (page_for defaults: a request naming only the url, as `bench load` sends, renders the page)
        if page_for is not None and page_for == _url_key(pathname, search):
            set_props("page-for", {"data": None})  # the layout brought this page; a later visit renders it here
            return no_update, no_update
        return render(pathname, search)

    for page in PAGES:
        page.register(app, source, ctx)
    install_security_headers(app)
    app.meshscope_source = source  # for the composition root and tests
    app.meshscope_ctx = ctx
    return app


def prepare(app: dash.Dash, stopped: threading.Event | None = None) -> None:
    """Compute what the first pages ask for before they ask: each page's `prepare` (the topology page lays out
    its default view and the expanded graph), then the source's other default views (`warm`).

    Called by `dashboard.server.start` in a background thread, for any source. A page that asks meanwhile
    shares the computation under way (the source's and the positions' own sharing), it does not start another.
    """
    source, ctx = app.meshscope_source, app.meshscope_ctx
    steps = [getattr(page, "prepare") for page in PAGES if hasattr(page, "prepare")]
    if hasattr(source, "warm"):
        steps.append(lambda _source, _ctx: source.warm())
    for step in steps:
        ctx.idle()  # a page being rendered for a request goes first
        if stopped is not None and stopped.is_set():  # the server stopped first: nobody will ask
            return
        try:
            step(source, ctx)
        except Exception as exc:  # noqa: BLE001 - a page that asks later reports what fails
            log.debug("preparing the first views failed: %s", exc)


def _url_key(pathname: str | None, search: str | None) -> str:
    return f"{(pathname or '/').rstrip('/') or '/'}?{(search or '').lstrip('?')}"


def _page_loading() -> tuple[str, str] | None:
    """(path, query) of the page whose Dash layout this request fetches (its same-origin Referer), else None."""
    if not flask.has_request_context() or not flask.request.path.endswith("/_dash-layout"):
        return None
    referrer = urlsplit(flask.request.referrer or "")
    if not referrer.path or referrer.netloc != flask.request.host:
        return None
    return referrer.path, referrer.query


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
