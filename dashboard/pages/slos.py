"""SLOs: objective, budget remaining, burn rate per window, alert state and budget over time."""
from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.components import charts
from dashboard.components.widgets import badge
from dashboard.query import DataSource

PATH = "/slos"
TITLE = "SLOs"
WINDOWS = ("5m", "30m", "1h", "6h", "1d", "3d")


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    slos = source.slos()
    if not slos:
        return html.Div([html.H2("SLOs"), html.P("No SLOs are declared.", className="muted")])
    table = html.Table(className="grid", id="slo-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("SLO", "Service", "SLI", "Objective", "Budget left", "Alert")] +
                           [html.Th(f"burn {w}") for w in WINDOWS])),
        html.Tbody([html.Tr([
            html.Td(s["name"]), html.Td(s.get("service", "")), html.Td(s.get("sli", "")),
            html.Td(f"{s['objective']}%"), html.Td(f"{100 * s['budget_remaining']:.1f}%"),
            html.Td(badge(s.get("alert", "ok"), "failing" if s.get("alert") == "page" else
                          "degraded" if s.get("alert") == "ticket" else "healthy")),
            *[html.Td(f"{(s.get('burn_rates') or {}).get(w, 0):.1f}x",
                      className="burn-hot" if (s.get("burn_rates") or {}).get(w, 0) >= 6 else "") for w in WINDOWS],
        ]) for s in slos])])
    return html.Div(className="slos", children=[
        html.H2("SLOs"), table,
        html.Div(className="chart-row", children=[dcc.Graph(figure=charts.budget(s), config={"displayModeBar": False})
                                                  for s in slos])])


def register(app: Any, source: DataSource, ctx: Any) -> None:
    """Static page: the data refreshes when the page is opened."""
