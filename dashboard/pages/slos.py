"""SLOs: objective, budget remaining, burn rate per window, alert state and budget over time.

Reads the SLO engine's status dicts (`diagnose.slo.SloStatus.to_dict()`): window
labels come from the SLO's own alert windows, so the columns are whatever it uses.
"""
from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.components import change_marks, charts
from dashboard.components.as_of import as_of, banner, links, window_of
from dashboard.components.slo_format import ALERT_BADGE, alert_text, budget_text
from dashboard.components.widgets import badge
from dashboard.query import DataSource

PATH = "/slos"
TITLE = "SLOs"
HOT_BURN = 6.0  # the slower page threshold of the multiwindow scheme: at or above it the cell is red


def _seconds(label: str) -> float:
    try:
        from diagnose.slo import parse_duration
        return float(parse_duration(label))
    except Exception:  # an unknown label sorts last, it still shows
        return float("inf")


def window_labels(slos: list[dict[str, Any]]) -> list[str]:
    labels = {w for s in slos for w in (s.get("burn_rates") or {})}
    return sorted(labels, key=lambda w: (_seconds(w), w))


def _sli(slo: dict[str, Any]) -> str:
    sli = str(slo.get("sli", ""))
    return f"{sli} < {slo['threshold_ms']:g} ms" if slo.get("threshold_ms") else sli


def _firing(slo: dict[str, Any]) -> str:
    return ", ".join(f"{w.get('severity')} {w.get('long_window')}/{w.get('short_window')} \u2265{w.get('factor')}x"
                     for w in slo.get("windows") or [] if w.get("firing")) or "-"


def _burn(rate: Any) -> html.Td:
    if not isinstance(rate, (int, float)) or rate != rate:
        return html.Td("-")
    return html.Td(f"{rate:.1f}x", className="burn-hot" if rate >= HOT_BURN else "")


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    now = source.now()
    at = as_of(query, now, source)  # ?end=: budgets and burn rates as they stood then (time travel, issue #14)
    window = window_of(query, 86400.0, source)  # ?window=: the span of the budget charts
    slos = source.slos(end=at.end) if at.past else source.slos()
    travel = [banner(PATH, query, at), links(PATH, query, at, now, window=window)]
    if not slos:
        return html.Div([html.H2("SLOs"), *travel, html.P("No SLOs are declared.", className="muted")])
    windows = window_labels(slos)
    table = html.Table(className="grid", id="slo-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("SLO", "Service", "SLI", "Objective", "Budget left", "Alert",
                                                  "Firing windows")] + [html.Th(f"burn {w}") for w in windows])),
        html.Tbody([html.Tr([
            html.Td(s["name"]), html.Td(s.get("service", "")), html.Td(_sli(s)), html.Td(f"{s.get('objective')}%"),
            html.Td(budget_text(s), className="burn-hot" if (s.get("budget_remaining") or 0) < 0 else ""),
            html.Td(badge(alert_text(s), ALERT_BADGE.get(s.get("alert"), "na"))), html.Td(_firing(s)),
            *[_burn((s.get("burn_rates") or {}).get(w)) for w in windows],
        ]) for s in slos])])
    return html.Div(className="slos", children=[
        html.H2("SLOs"), *travel, table,
        html.Div(className="chart-row", children=[dcc.Graph(figure=fig, config={"displayModeBar": False})  # changes marked
                                                  for fig in change_marks.mark_figures(source, [
                                                      _spanning(charts.budget(s), at.end or now, window.seconds)
                                                      if window.asked else charts.budget(s) for s in slos])])])


def _spanning(fig: Any, end: float, seconds: float) -> Any:
    """A chart's time axis fixed to the page's window [end - seconds, end]."""
    fig["layout"].setdefault("xaxis", {})["range"] = [charts.axis_time(end - seconds), charts.axis_time(end)]
    return fig


def register(app: Any, source: DataSource, ctx: Any) -> None:
    """Static page: the data refreshes when the page is opened."""
