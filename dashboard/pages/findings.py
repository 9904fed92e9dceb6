"""Findings: a sortable, filterable table; the selected finding's evidence, config and remediation."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from dash import Input, Output, State, dash_table, dcc, html, no_update

from dashboard.components.as_of import as_of, banner, findings_at, links, timeline_as_of, window_of
from dashboard.components.findings_timeline import timeline
from dashboard.components.incidents import incident_list, open_incidents
from dashboard.components.widgets import finding_detail
from dashboard.query import DataSource
from diagnose.findings import SEVERITIES, SEVERITY_RANK

PATH = "/findings"
TITLE = "Findings"
COLUMNS = [("severity", "Severity"), ("code", "Code"), ("category", "Category"), ("message", "Message"),
           ("resource", "Resource"), ("impact_rps", "Impact rps"), ("age_min", "Age (min)"), ("status", "Status")]

NUMERIC = {"impact_rps", "age_min"}


def rows(source: DataSource, filters: dict[str, str], end: float | None = None) -> list[dict[str, Any]]:
    """Table rows of the findings passing `filters`; with `end` (time travel) those open at that instant."""
    now = source.now() if end is None else end
    if end is None:
        found = source.findings(filters)
    else:  # the status filter applies to the status then: every finding shown in the past was open then
        found = findings_at(source.findings({k: v for k, v in filters.items() if k != "status"}), end)
        found = [f for f in found if (filters.get("status") or "open") in ("open", "all")]
    out = []
    for f in found:
        r = f.get("resource") or {}
        out.append({
            "id": f["fingerprint"], "severity": f["severity"], "severity_rank": SEVERITY_RANK.get(f["severity"], 0),
            "code": f["code"], "category": f["category"], "message": f["message"],
            "resource": f"{r.get('kind', '')} {r.get('namespace') or ''}/{r.get('name', '')}" if r else "",
            "impact_rps": (f.get("impact") or {}).get("rps"), "status": f.get("status", ""),
            # minutes as a number, so the column sorts by age rather than as text; counted from the current
            # episode (a finding that resolved and came back is as old as its return, not its first-ever onset)
            "age_min": round(max(0.0, now - (f.get("opened_at") or f["first_seen"])) / 60, 1)
            if f.get("opened_at") or f.get("first_seen") else None,
        })
    return out


def digest(data: list[dict[str, Any]]) -> str:
    """A short fingerprint of table rows (what the browser holds is compared by it, not re-sent)."""
    return hashlib.blake2b(json.dumps(data, default=str).encode(), digest_size=16).hexdigest()


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    now = source.now()
    at = as_of(query, now, source)  # ?end=: the findings open then, the timeline up to then (issue #14)
    window = window_of(query, 3600.0, source)  # ?window=: the timeline's span (default: fitted to the findings)
    everything = source.findings({})
    shown = timeline_as_of(everything, at.end) if at.past else everything
    categories = sorted({f["category"] for f in everything})
    statuses = sorted({f.get("status", "") for f in everything})
    namespaces = sorted({(f.get("resource") or {}).get("namespace") for f in everything} - {None, ""})
    selected = query.get("fp")
    first = rows(source, {}, at.end)
    return html.Div(className="findings", children=[
        html.H2("Findings"),
        banner(PATH, query, at, keep=("category", "status", "namespace")),
        links(PATH, query, at, now, keep=("category", "status", "namespace"), window=window),
        dcc.Store(id="find-end", data=at.end),
        html.Section(className="find-incidents", children=[  # the findings grouped by cause lead the page
            html.H3("Open incidents"), incident_list(open_incidents(source, findings_at(everything, at.end))
                                                     if at.past else open_incidents(source), list_id="find-incidents")]),
        dcc.Store(id="find-span", data=window.seconds if window.asked else None),
        dcc.Graph(id="find-timeline", figure=timeline(source, shown, at.end or now,
                                                      window.seconds if window.asked else None),
                  config={"displayModeBar": False}),
        html.Div(className="toolbar", children=[
            html.Label(className="control", children=[html.Span("Severity"), dcc.Checklist(
                id="find-severity", options=list(SEVERITIES), value=list(SEVERITIES), inline=True)]),
            html.Label(className="control", children=[html.Span("Category"), dcc.Dropdown(
                id="find-category", options=categories, value=query.get("category"), placeholder="any",
                style={"width": "160px"})]),
            html.Label(className="control", children=[html.Span("Status"), dcc.Dropdown(
                id="find-status", options=statuses, value=query.get("status"), placeholder="any", style={"width": "140px"})]),
            html.Label(className="control", children=[html.Span("Namespace"), dcc.Dropdown(
                id="find-namespace", options=namespaces, value=query.get("namespace"), placeholder="any",
                style={"width": "180px"})]),
            html.Span(id="find-count", className="muted"),
        ]),
        dcc.Store(id="find-sent", data=digest(first)),  # the rows the table holds, to resend only a change
        dcc.Interval(id="find-interval", interval=max(2.0, ctx.refresh_s) * 1000, disabled=at.past),  # the past holds
        dash_table.DataTable(
            id="find-table", columns=[{"id": c, "name": n, "type": "numeric" if c in NUMERIC else "text"}
                                      for c, n in COLUMNS],
            data=first, sort_action="native", sort_mode="multi", filter_action="native", page_size=25,
            sort_by=[], style_cell={"textAlign": "left", "whiteSpace": "normal", "height": "auto", "fontSize": 13,
                                    "maxWidth": "560px"},
            style_data_conditional=[
                {"if": {"filter_query": f'{{severity}} = "{s}"', "column_id": "severity"}, "className": f"sev-{s}",
                 "color": c, "fontWeight": "bold"} for s, c in (("error", "#c9190b"), ("warning", "#b45309"), ("info", "#2563eb"))],
            style_header={"fontWeight": "bold"}),
        html.Div(id="find-detail", className="detail",
                 children=_detail(source, selected) if selected else html.P("Select a finding to see its evidence.", className="muted")),
    ])


def _detail(source: DataSource, fingerprint: str) -> Any:
    f = source.finding(fingerprint)
    return finding_detail(f) if f else html.P(f"No finding {fingerprint}.", className="muted")


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("find-table", "data"), Output("find-count", "children"), Output("find-sent", "data"),
                  Input("find-severity", "value"), Input("find-category", "value"), Input("find-status", "value"),
                  Input("find-namespace", "value"), Input("find-interval", "n_intervals"), State("find-end", "data"),
                  State("find-sent", "data"))
    def filter_rows(severity, category, status, namespace, _tick, end, sent):  # noqa: ANN001, ANN202
        data = rows(source, {"severity": ",".join(severity), "category": category or "", "status": status or "",
                             "namespace": namespace or ""}, end) if severity else []
        count = f"{len(data)} finding{'s' * (len(data) != 1)}"
        now = digest(data)
        # rows the table already holds are not sent again: with 5,000 findings every refresh re-sent them all,
        # a 0.5-1 s main-thread task in the browser each time (load 20)
        return (no_update, count, no_update) if now == sent else (data, count, now)

    @app.callback(Output("find-timeline", "figure"), Input("find-interval", "n_intervals"), State("find-span", "data"),
                  prevent_initial_call=True)
    def refresh_timeline(_tick, span):  # noqa: ANN001, ANN202
        return timeline(source, source.findings({}), source.now(), span)

    @app.callback(Output("find-detail", "children"), Input("find-table", "active_cell"), prevent_initial_call=True)
    def show(active):  # noqa: ANN001, ANN202
        if not active or not active.get("row_id"):
            return no_update
        return _detail(source, active["row_id"])
