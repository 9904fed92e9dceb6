"""Services: the list with health, and one service's golden metrics per version, inbound and outbound."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from dash import dcc, html

from dashboard.components import change_marks, charts
from dashboard.components.as_of import AsOf, Window, as_of, banner, links, services_at, window_of
from dashboard.components.widgets import badge, when
from dashboard.query import DataSource, QueryError

PATH = "/services"
TITLE = "Services"
PAGE_ROWS = 100  # services listed a page
WINDOW_S = 60.0  # the list's numbers and each chart point: rates over the last minute unless ?window= says


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    """The list and the chosen service (?name=) over the window (?window=) ending at ?end= (issue #14)."""
    now = source.now()
    at = as_of(query, now, source)  # the one `?end=` parser of every windowed page
    window = window_of(query, WINDOW_S, source)
    services = services_at(source, at, window)
    name = query.get("name")
    wanted = (query.get("q") or "").strip().lower()
    if wanted:  # a name to look for among thousands
        services = [s for s in services if wanted in f"{s['service']} {s['name']}".lower()]
    shown, pager = _page(services, query)
    table = html.Table(className="grid", id="svc-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("Service", "Namespace", "Health", "Inbound rps", "Error %")])),
        html.Tbody([html.Tr([html.Td(dcc.Link(s["name"], href=f"{PATH}?name={quote(s['service'])}")),
                             html.Td(s["namespace"]), html.Td(badge(s["health"])), html.Td(f"{s['rps']:.2f}"),
                             html.Td(f"{s['error_pct']:.1f}")]) for s in shown])])
    children: list[Any] = [html.H2("Services"), banner(PATH, query, at, keep=("name", "q")),
                           html.Div(id="svc-ends", children=links(PATH, query, at, now, keep=("name", "q"), window=window)),
                           _search(query), table, pager]
    if name:
        children.append(_detail(source, name, at, window))
    return html.Div(className="services", children=children)


def _page(services: list[dict[str, Any]], query: dict[str, str]) -> tuple[list[dict[str, Any]], Any]:
    """The `?page=` of the list (PAGE_ROWS a page) and the links to the others.

    One row is a handful of elements and a Link: 10,000 services drawn at once were 80,000 DOM nodes and one
    main-thread task of 56 s (load 45), the tab frozen. A page of rows is bounded whatever the mesh."""
    pages = max(1, -(-len(services) // PAGE_ROWS))
    try:
        page = min(pages, max(1, int(query.get("page") or 1)))
    except ValueError:
        page = 1
    shown = services[(page - 1) * PAGE_ROWS:page * PAGE_ROWS]
    if pages == 1:
        return shown, None

    def to(n: int) -> str:
        return f"{PATH}?{urlencode({**query, 'page': str(n)})}"
    first = (page - 1) * PAGE_ROWS + 1
    return shown, html.P(id="svc-pages", className="muted", children=[
        f"services {first}-{first + len(shown) - 1} of {len(services)}, page {page} of {pages} ",
        dcc.Link("previous", href=to(page - 1)) if page > 1 else None, " ",
        dcc.Link("next", href=to(page + 1)) if page < pages else None])


def _search(query: dict[str, str]) -> html.Form:
    """Find a service by part of its name (a GET form: the page's other parameters kept, paging restarted)."""
    kept = [dcc.Input(type="hidden", name=k, value=v) for k, v in query.items() if k not in ("q", "page")]
    return html.Form(id="svc-search", method="get", action=PATH, className="toolbar", children=[
        *kept, dcc.Input(id="svc-q", name="q", type="search", value=query.get("q", ""), placeholder="service name",
                         debounce=True), html.Button("Find", type="submit")])


def _detail(source: DataSource, name: str, at: AsOf | None = None, window: Window | None = None) -> html.Div:
    end = at.end if at is not None else None
    window = window or Window(WINDOW_S)
    try:
        # a chosen window is what the charts span: 20 points half a rate window apart, each a rate over a tenth
        metrics = source.service_metrics(name, _rate_window(window), end=end) if end is not None or window.asked \
            else source.service_metrics(name)
    except QueryError as exc:
        return html.Div(id="svc-detail", children=[html.H3(name), html.P(str(exc), className="muted")])
    title = html.H3([name, html.Span(f"  (window ending {when(end)})", className="muted") if end else "",
                     html.Span(f"  (the charts span {_span(window.seconds)}; each point a rate over "
                               f"{_span(_rate_window(window))})", className="muted")
                     if window.asked else ""])
    if not metrics:
        return html.Div(id="svc-detail", children=[title, html.P("No metrics for this service in the window.",
                                                                 className="muted")])
    sections: list[Any] = [title]
    for direction in ("inbound", "outbound"):
        per_version = metrics.get(direction) or {}
        if not per_version:
            continue
        sections.append(html.H4(f"{direction.capitalize()} by version"))
        figures = change_marks.mark_figures(source, [  # config changes as lines on the time axis
            charts.by_version(per_version, m, f"{direction} {label}")
            for m, label in (("rps", "requests/s"), ("error_pct", "errors % (4xx+5xx+no response)"), ("p95", "p95 ms"))])
        sections.append(html.Div(className="chart-row", children=[
            dcc.Graph(figure=fig, config={"displayModeBar": False}) for fig in figures]))
    if end is None:  # verdicts are about now; a past window has no live verdict
        sections.extend(canary_section(source, name))
    return html.Div(id="svc-detail", children=sections)


def _rate_window(window: Window) -> float:
    """The rate window of each chart point: the page's default, or a tenth of a chosen window (>= 10 s)."""
    return max(window.seconds / 10.0, 10.0) if window.asked else WINDOW_S


def _span(seconds: float) -> str:
    from diagnose.slo import format_duration
    return format_duration(seconds)


_VERDICT_KIND = {"rollback": "failing", "promote": "healthy", "hold": "degraded", "insufficient_traffic": "idle"}


def canary_section(source: DataSource, name: str) -> list[Any]:
    """Canary verdicts of this service's versions (diagnose.canary), with the rollback YAML of a regression."""
    from diagnose.canary.marks import for_service

    fetch = getattr(source, "canary", None)
    if fetch is None:
        return []
    try:
        got = fetch()
    except Exception as exc:  # noqa: BLE001 - the page still shows the metrics above
        return [html.H4("Canary"), html.P(f"no canary verdict: {exc}", className="muted")]
    verdicts = for_service(got.get("verdicts") or [], name)
    if not verdicts:
        return []
    rollbacks = {(f["evidence"]["verdict"].get("candidate")): f["evidence"].get("rollback_yaml")
                 for f in got.get("findings") or [] if f.get("code") == "MS5010"
                 and f["evidence"]["verdict"].get("service") == verdicts[0]["service"]}
    rows = []
    for v in verdicts:
        ev = v.get("evidence") or {}
        req, rate, p95 = ev.get("requests") or {}, ev.get("error_rate") or {}, (ev.get("latency_ms") or {}).get("p95") or {}
        rows.append(html.Tr([html.Td(v["candidate"]), html.Td(v["stable"]),
                             html.Td(badge(v["verdict"], _VERDICT_KIND.get(v["verdict"]))),
                             html.Td(f"{v.get('confidence', 0):.1%}"),
                             html.Td(f"{req.get('candidate', 0):.0f} / {req.get('stable', 0):.0f}"),
                             html.Td(f"{rate.get('candidate', 0):.2%} / {rate.get('stable', 0):.2%}"),
                             html.Td(f"{p95.get('candidate') or 0:.0f} / {p95.get('stable') or 0:.0f}"),
                             html.Td(v.get("reason", ""))]))
    out: list[Any] = [html.H4(f"Canary (last {got.get('window_s', 0) / 60:.0f} min)"), html.Table(
        className="grid", id="svc-canary", children=[
            html.Thead(html.Tr([html.Th(h) for h in ("Candidate", "Stable", "Verdict", "Confidence",
                                                     "Requests (cand / stable)", "Errors", "p95 ms", "Why")])),
            html.Tbody(rows)])]
    for cand, text in sorted(rollbacks.items()):
        if text:
            out += [html.P(f"Roll back {cand}: apply this VirtualService", className="muted"),
                    html.Pre(text, id=f"svc-canary-rollback-{cand}", className="yaml")]
    return out


def register(app: Any, source: DataSource, ctx: Any) -> None:
    """No callbacks: the service is chosen by link (?name=), so views are bookmarkable."""
