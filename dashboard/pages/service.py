"""Services: the list with health, and one service's golden metrics per version, inbound and outbound."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import dcc, html

from dashboard.components import change_marks, charts
from dashboard.components.widgets import badge, when
from dashboard.query import DataSource, QueryError

PATH = "/services"
TITLE = "Services"
ENDS = [(0, "now"), (300, "5m ago"), (900, "15m ago"), (3600, "1h ago"), (6 * 3600, "6h ago"), (86400, "24h ago")]


def end_ago_of(query: dict[str, str]) -> int:
    """?end=SECONDS_AGO (time travel, issue #14): one of ENDS, else now."""
    try:
        end_ago = int(float(query.get("end", "0") or 0))
    except ValueError:
        return 0
    return end_ago if end_ago in dict(ENDS) else 0


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    services = source.services()
    name = query.get("name")
    table = html.Table(className="grid", id="svc-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("Service", "Namespace", "Health", "Inbound rps", "Error %")])),
        html.Tbody([html.Tr([html.Td(dcc.Link(s["name"], href=f"{PATH}?name={quote(s['service'])}")),
                             html.Td(s["namespace"]), html.Td(badge(s["health"])), html.Td(f"{s['rps']:.2f}"),
                             html.Td(f"{s['error_pct']:.1f}")]) for s in services])])
    children: list[Any] = [html.H2("Services"), table]
    if name:
        end_ago = end_ago_of(query)
        children.append(html.Div(id="svc-ends", className="toolbar", children=[
            html.Span("Window ends ", className="muted"),
            *[dcc.Link(label, href=f"{PATH}?name={quote(name)}&end={ago}", className="active" if ago == end_ago else "",
                       style={"marginRight": "10px", "fontWeight": "bold" if ago == end_ago else "normal"})
              for ago, label in ENDS]]))
        children.append(_detail(source, name, end_ago))
    return html.Div(className="services", children=children)


def _detail(source: DataSource, name: str, end_ago: int = 0) -> html.Div:
    end = source.now() - end_ago if end_ago else None
    try:
        metrics = source.service_metrics(name, end=end) if end is not None else source.service_metrics(name)
    except QueryError as exc:
        return html.Div(id="svc-detail", children=[html.H3(name), html.P(str(exc), className="muted")])
    title = html.H3([name, html.Span(f"  (window ending {when(end)})", className="muted") if end else ""])
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
