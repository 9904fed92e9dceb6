"""Services: the list with health, and one service's golden metrics per version, inbound and outbound."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import dcc, html

from dashboard.components import charts
from dashboard.components.widgets import badge
from dashboard.query import DataSource

PATH = "/services"
TITLE = "Services"


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
        children.append(_detail(source, name))
    return html.Div(className="services", children=children)


def _detail(source: DataSource, name: str) -> html.Div:
    metrics = source.service_metrics(name)
    if not metrics:
        return html.Div(id="svc-detail", children=[html.H3(name), html.P("No metrics for this service in the window.",
                                                                          className="muted")])
    sections: list[Any] = [html.H3(name)]
    for direction in ("inbound", "outbound"):
        per_version = metrics.get(direction) or {}
        if not per_version:
            continue
        sections.append(html.H4(f"{direction.capitalize()} by version"))
        sections.append(html.Div(className="chart-row", children=[
            dcc.Graph(figure=charts.by_version(per_version, m, f"{direction} {label}"), config={"displayModeBar": False})
            for m, label in (("rps", "requests/s"), ("error_pct", "errors % (4xx+5xx+no response)"), ("p95", "p95 ms"))]))
    return html.Div(id="svc-detail", children=sections)


def register(app: Any, source: DataSource, ctx: Any) -> None:
    """No callbacks: the service is chosen by link (?name=), so views are bookmarkable."""
