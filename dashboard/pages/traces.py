"""Traces: search by service, status and minimum duration; one trace as a waterfall with span attributes."""
from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dash_table, dcc, html, no_update

from dashboard.components import charts
from dashboard.components.as_of import as_of, banner, links, window_of
from dashboard.components.widgets import kv_table, when
from dashboard.query import TRACE_STATUSES, DataSource, QueryError, TraceFilters

PATH = "/traces"
TITLE = "Traces"
OPTIONS_SHOWN = 50  # services in the Service menu at once (typing searches them all)
WINDOW_S = 900.0  # traces of the last 15 min unless ?window= says
COLUMNS = [("trace_id", "Trace"), ("root_service", "Root service"), ("root_name", "Operation"), ("started", "Start"),
           ("duration_ms", "Duration ms"), ("spans", "Spans"), ("status", "Status")]


def _rows(source: DataSource, filters: TraceFilters) -> list[dict[str, Any]]:
    return [{**{k: t[k] for k in ("trace_id", "root_service", "root_name", "duration_ms", "spans", "status")},
             **_root(t), "id": t["trace_id"], "started": when(t["start"])} for t in source.traces(filters)]


def _root(t: dict[str, Any]) -> dict[str, str]:
    """A trace whose root span has not arrived (still in flight, or lost) says so instead of showing "?"."""
    if t.get("root_service") not in (None, "", "?"):
        return {}
    seen = [str(s) for s in t.get("services") or []]
    return {"root_service": "root not received yet" + (f" (spans from {', '.join(seen[:2])})" if seen else ""),
            "root_name": "in flight or root span lost"}


def _status(query: dict[str, str]) -> str:
    status = query.get("status", "any")
    return status if status in TRACE_STATUSES else "any"


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    now = source.now()
    at = as_of(query, now, source)  # ?end=: the traces of the window that ended then (time travel, issue #14)
    window = window_of(query, WINDOW_S, source)  # ?window=: how far back from the end traces are listed
    services = _service_names(source, at.end if at.past else None)
    trace_id = query.get("trace")
    return html.Div(className="traces", children=[
        html.H2("Traces"),
        banner(PATH, query, at, keep=("service", "status")),
        links(PATH, query, at, now, keep=("service", "status"), window=window),
        dcc.Store(id="tr-end", data=at.end),  # the search reads the same instant as the first listing
        dcc.Store(id="tr-window", data=window.seconds),
        html.Div(className="toolbar", children=[
            html.Label(className="control", children=[html.Span("Service"), dcc.Dropdown(
                id="tr-service", options=_options(services, "", query.get("service")), value=query.get("service"),
                placeholder="any", style={"width": "200px"})]),
            html.Label(className="control", children=[html.Span("Status"), dcc.RadioItems(
                id="tr-status", options=list(TRACE_STATUSES), value=_status(query), inline=True)]),
            html.Label(className="control", children=[html.Span("Min duration ms"), dcc.Input(
                id="tr-min", type="number", min=0, value=0, style={"width": "90px"})]),
            html.Button("Search", id="tr-search", n_clicks=0),
            html.Span(id="tr-count", className="muted"),
        ]),
        dash_table.DataTable(id="tr-table", columns=[{"id": c, "name": n} for c, n in COLUMNS],
                             data=_rows(source, TraceFilters(service=query.get("service") or None,
                                                             status=_status(query), end=at.end,
                                                             window_s=window.seconds)),
                             sort_action="native", page_size=15,
                             style_cell={"textAlign": "left", "fontSize": 13, "fontFamily": "monospace"}),
        html.Div(id="tr-detail", className="detail", children=_waterfall(source, trace_id, at.end) if trace_id else
                 html.P("Select a trace to open its waterfall.", className="muted")),
    ])


def _waterfall(source: DataSource, trace_id: str, end: float | None = None) -> Any:
    spans = source.trace(trace_id, end=end) if end is not None else source.trace(trace_id)  # only live has history
    if not spans:
        return html.P(f"No trace {trace_id} in the window.", className="muted")
    orphans = sum(bool(s.get("orphan")) for s in spans)
    return html.Div(id="tr-waterfall-box", children=[
        html.H3(["Trace ", html.Code(trace_id)]),
        html.P(f"{orphans} span{'s' * (orphans != 1)} whose parent span has not been received: sidecars and apps "
               "export in batches every few seconds, so a fresh trace can be incomplete; reopen it shortly. "
               "Spans still missing then were not sampled or not sent.", id="tr-orphans", className="muted")
        if orphans else None,
        dcc.Graph(id="tr-waterfall", figure=charts.waterfall(spans), config={"displayModeBar": False}),
        dcc.Store(id="tr-spans", data={s["span_id"]: s for s in spans}),
        html.Div(id="tr-attrs", children=html.P("Click a span for its attributes.", className="muted")),
    ])


def _service_names(source: DataSource, end: float | None) -> list[str]:
    return sorted({s["name"] for s in (source.services(end=end) if end is not None else source.services())})


def _options(names: list[str], typed: str, value: str | None) -> list[str]:
    """The service menu's options: the names holding what was typed, at most OPTIONS_SHOWN (the chosen one kept).

    The menu is searched on the server as the user types: 10,000 services handed to the Dropdown at once were a
    7.5 s main-thread task as the page opened (load 45), the tab frozen."""
    typed = typed.strip().lower()
    out = [n for n in names if typed in n.lower()][:OPTIONS_SHOWN] if typed else names[:OPTIONS_SHOWN]
    return out + [value] if value and value not in out else out


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("tr-service", "options"), Input("tr-service", "search_value"), State("tr-service", "value"),
                  State("tr-end", "data"), prevent_initial_call=True)
    def service_options(typed, value, end):  # noqa: ANN001, ANN202
        if typed is None:
            return no_update
        return _options(_service_names(source, end), typed, value)

    @app.callback(Output("tr-table", "data"), Output("tr-count", "children"), Input("tr-search", "n_clicks"),
                  State("tr-service", "value"), State("tr-status", "value"), State("tr-min", "value"),
                  State("tr-end", "data"), State("tr-window", "data"), prevent_initial_call=True)
    def search(_n, service, status, min_ms, end, window):  # noqa: ANN001, ANN202
        try:
            data = _rows(source, TraceFilters(service=service or None, status=status or "any",
                                              min_duration_ms=float(min_ms or 0), end=end, window_s=window))
        except QueryError as exc:
            return [], str(exc)
        return data, f"{len(data)} trace{'s' * (len(data) != 1)}"

    @app.callback(Output("tr-detail", "children"), Input("tr-table", "active_cell"), State("tr-end", "data"),
                  prevent_initial_call=True)
    def open_trace(active, end):  # noqa: ANN001, ANN202
        if not active or not active.get("row_id"):
            return no_update
        return _waterfall(source, active["row_id"], end)

    @app.callback(Output("tr-attrs", "children"), Input("tr-waterfall", "clickData"), State("tr-spans", "data"),
                  prevent_initial_call=True)
    def span_attrs(click, spans):  # noqa: ANN001, ANN202
        if not click or not spans:
            return no_update
        span = spans.get(click["points"][0]["customdata"])
        if not span:
            return no_update
        facts = {k: span[k] for k in ("service_name", "name", "kind", "span_id", "parent_span_id", "duration_ms",
                                      "status_code", "response_code", "response_flags")}
        return html.Div([html.H4("Span"), kv_table(facts), html.H4("Attributes"), kv_table(span.get("attributes") or {})])
