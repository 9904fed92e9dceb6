"""Topology: the traffic graph, colour-coded, with a side panel for whatever is clicked."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dash_cytoscape as cyto
from dash import ClientsideFunction, Input, Output, State, callback_context, dcc, html, no_update

from dashboard.components import change_marks, charts, diff_view, graph_canvas, graph_views, replay
from dashboard.components.as_of import as_of, time_form, window_of, window_options
from dashboard.components.find_hide import ExpressionError, to_selector
from dashboard.components.graph_style import LARGE_GRAPH_EDGES, stylesheet
from dashboard.components.lean import FullData, Recent, digest, lean, view_key
from dashboard.components.widgets import badge, when
from dashboard.elements import gc_paused
from dashboard.highlight import project, projector
from dashboard.query import GRAPH_TYPES, DataSource, QueryError, TraceFilters

PATH = "/topology"
TITLE = "Topology"
WINDOWS = [(60, "1m"), (300, "5m"), (900, "15m"), (3600, "1h")]
REFRESH = [(0, "off"), (2, "2s"), (5, "5s"), (10, "10s"), (30, "30s"), (60, "1m")]
ENDS = [(0, "now"), (300, "5m ago"), (900, "15m ago"), (3600, "1h ago"), (6 * 3600, "6h ago"), (86400, "24h ago")]
DEFAULT_WINDOW_S = 300.0
LABELS = [{"label": "rps", "value": "rps"}, {"label": "error %", "value": "err"}, {"label": "p95", "value": "p95"}]
class PanelFollower:
    """The open side panel of a live page, rebuilt off the refresh's request.

    Dash drops a callback's answer when the same callback was asked again before it came back (dash-renderer keeps
    only the newest request of a callback), so a refresh slower than the refresh interval never lands: the whole
    page stops updating. Building a panel (series, traces, changes) can take longer than a 2 s interval on a busy
    box, and it used to be built inside the refresh: with a panel open the graph and the panel froze (found by the
    live MS3001 browser test: the clicked edge's finding never appeared). Now each refresh starts a rebuild in the
    background unless one runs for that element and view, and sends the newest finished one: a panel lags at most
    one build, and the refresh answers at the speed of the graph alone."""

    FRESH_S = 30.0  # an element clicked again later must not get the panel of its last opening back

    def __init__(self, views: int = 16) -> None:
        self._done: Recent[tuple, tuple[float, list[Any]]] = Recent(views)
        self._running: set[tuple] = set()
        self._lock = threading.Lock()

    def latest(self, key: tuple, build: Any) -> list[Any] | None:
        """The newest finished panel for `key` (None before the first), and a rebuild started if none runs."""
        with self._lock:
            start = key not in self._running
            if start:
                self._running.add(key)
        if start:
            threading.Thread(target=self._build, args=(key, build), daemon=True, name="topology-panel").start()
        done = self._done.get(key)
        return done[1] if done is not None and time.monotonic() - done[0] < self.FRESH_S else None

    def _build(self, key: tuple, build: Any) -> None:
        try:
            started = time.monotonic()
            self._done.put(key, (started, build()))
        except Exception:  # noqa: BLE001 - the next refresh tries again; the open panel keeps what it shows
            log.warning("side panel rebuild failed for %s", key[0], exc_info=True)
        finally:
            with self._lock:
                self._running.discard(key)


log = logging.getLogger(__name__)
FULL = FullData()  # full element data of the graphs sent (the browser gets `lean` elements), for the side panel
PANELS = PanelFollower()
CANVAS: Recent[str, list[dict[str, Any]]] = Recent(4)  # big graphs drawn by assets/big_graph.js, by digest: find/hide run here


def _elements(source: DataSource, ctx: Any, graph_type: str, namespaces: list[str] | None, window: float | None,
              end_ago: float | None = None, view: dict[str, Any] | None = None):
    """The graph now, or (time travel, issue #14) of the window that ended `end_ago` seconds ago."""
    result, elements, _ = _view_elements(source, ctx, graph_type, namespaces, window, end_ago, view)
    return result, elements


def _view_elements(source: DataSource, ctx: Any, graph_type: str, namespaces: list[str] | None,
                   window: float | None, end_ago: float | None = None, view: dict[str, Any] | None = None,
                   renderer: str | None = None):
    """(result, elements, the `topo-found` store: whether find/hide run on the server and what a find matched).

    The elements are `lean` for Cytoscape; with a `renderer` (the page's choice) and a graph the canvas draws
    they are the full ones: the canvas takes its columns straight from them (`graph_canvas.payload`), and
    leaning 44,000 elements first cost a second of server CPU on every load and refresh at 34,000 edges.

    A view of the graph the source hands out is laid out once: kept (`ctx.views`) while the source returns the
    same graph, and concurrent requests for it (a page load while the server prepares it, `prepare`) share one
    computation (`ctx.sharing`). At 34,000 edges a grouped view cost 0.24 s of CPU a request (the roll-up) and
    an expanded one 0.2 s (positions, columns), on every load and refresh of an unchanged graph.
    """
    at = getattr(source, "graph_at", None)
    if end_ago and at is not None:
        result = at(graph_type, namespaces or None, window or 300.0, source.now() - seconds_ago(source, end_ago))
        result.notes = [*result.notes, *_changes_note(source, result.updated_at - result.window_s, result.updated_at)]
        shown, full, state, shape = _laid_out(source, ctx, result, view)
        FULL.remember(view_key(graph_type, namespaces or [], float(shown.window_s), end_ago or 0), full, shape)
        if renderer is not None and graph_canvas.wanted(full, bool((state or {}).get("grouped")), renderer):
            return shown, full, state
        return shown, lean(full), state
    result = source.graph(graph_type, namespaces or None, window)
    # what decides the layout: the graph (the source's object: the same one while nothing changed) and the view
    # (absent and empty settings alike: the page's first load and its refreshes name them differently)
    key = (id(result), repr(sorted((k, v) for k, v in (view or {}).items() if v not in (None, "", [], ()))))

    def kept() -> list | None:
        hit = ctx.views.get(key)
        return hit[1] if hit is not None and hit[0] is result else None

    def compute() -> list:
        out = kept()
        if out is None:  # the entry holds `result`, so its id is not reused while kept
            out = _laid_out(source, ctx, result, view)
            ctx.views.put(key, (result, out))
        return out

    out = kept() or ctx.sharing.get(key, compute)
    shown, full, state, shape = out[:4]
    FULL.remember(view_key(graph_type, namespaces or [], float(shown.window_s), end_ago or 0), full, shape)
    if renderer is not None and graph_canvas.wanted(full, bool((state or {}).get("grouped")), renderer):
        return shown, full, state
    if len(out) == 4:  # Cytoscape's lean copy, made once too
        out.append(lean(full))
    return shown, out[4], state


def _laid_out(source: DataSource, ctx: Any, result: Any, view: dict[str, Any] | None) -> list:
    """`_view_elements`' computation: [the view's result, its elements placed (full data), the found state, its
    shape (the positions key: plain, grouped or focused)]."""
    with gc_paused():  # a roll-up and a first layout of a big graph make tens of thousands of small dicts
        applied = graph_views.show(source, result, view)  # grouped / incident view, find/hide inside groups (#17)
        result, placed_as = applied.result, applied.key
        graph_views.place_in_place(ctx.positions, placed_as, result.elements)
        full = ctx.positions.place(placed_as, result.elements)  # joined edge labels: made in the browser (lean)
    return [result, full, applied.state(), placed_as]


def prepare(source: DataSource, ctx: Any) -> None:
    """Build and lay out the page's default view (grouped above the threshold) and the expanded graph, as a
    page load would, before any page asks (`dashboard.app.prepare`, at server start): a 34,000-edge graph's
    first build and layout were most of its first view. Kept where a page load finds them: the source's graph
    cache, the positions memory and the kept views and columns (`_view_elements`, `_to_canvas`); the page's own
    first rendering also loads the modules it imports on first use (0.2 s of CPU on the first page's time)."""
    source.graph("workload", None, None)  # what every view needs first (a page asking meanwhile shares it)
    for query in ({}, {"group": "none"}):
        ctx.idle()  # then a page being rendered for a request goes first
        layout(source, ctx, query)


def _end_options(end_ago: int, end: float | None) -> list[dict[str, Any]]:
    """The quick ends (seconds ago), plus the instant the URL chose as its epoch time: it stays that instant
    however long the tab stays open (seconds ago would slide with the clock at the next control change)."""
    options = [{"label": l, "value": v} for v, l in ENDS]
    if end_ago and end_ago not in dict(ENDS) and end is not None:
        options.append({"label": when(end)[11:19], "value": int(end)})
    return options


def seconds_ago(source: DataSource, end: float | None) -> float:
    """The End control's value as seconds before now: an epoch time (>= ABSOLUTE_FROM) is an instant."""
    from dashboard.components.as_of import ABSOLUTE_FROM

    value = float(end or 0)
    return max(0.0, source.now() - value) if value >= ABSOLUTE_FROM else value


def permalink(graph_type: str, namespaces: list[str] | None, window_s: float, end: float | None,
              compare: Any = None) -> str:
    """The URL of a view: graph type, namespaces, window length and the window's end as an epoch (absolute)."""
    from urllib.parse import urlencode

    from diagnose.slo import format_duration
    q = {"graphType": graph_type, "window": format_duration(float(window_s))}
    if namespaces:
        q["namespaces"] = ",".join(namespaces)
    if end is not None:
        q["end"] = int(end)
    if compare:
        q["compare"] = compare
    return f"{PATH}?{urlencode(q)}"


def _changes_note(source: DataSource, start: float, end: float) -> list[str]:
    """A marker for the config changes inside a past window (the Changes page has them in full)."""
    changes = getattr(source, "changes", None)
    try:
        rows = [c for c in changes(since=start, until=end, limit=50) if c.get("op") != "gap"] if changes else []
    except Exception:  # noqa: BLE001 - a marker is a hint; the graph must still show
        return []
    if not rows:
        return []
    names = ", ".join(dict.fromkeys(c.get("ref", "") for c in rows[:3]))
    return [f"{len(rows)} config change(s) in this window ({names}); see Changes"]


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    graph_type = query.get("graphType", "workload")
    if graph_type not in GRAPH_TYPES:
        graph_type = "workload"
    namespaces = [n for n in query.get("namespaces", "").split(",") if n]
    highlight: list[str] = []  # workload-graph ids of the finding to show
    if query.get("highlight"):
        f = source.finding(query["highlight"])
        highlight = list((f or {}).get("elements") or [])
    # time travel (issue #14): any instant within the store's retention and any window length, by the pages' one
    # parser; the graph of [end - window, end] is read from the store (Parquet when memory no longer holds it)
    now = source.now()
    at, window = as_of(query, now, source), window_of(query, DEFAULT_WINDOW_S, source)
    end_ago = max(1, round(now - at.end)) if at.past else 0
    end_value = end_ago if end_ago in dict(ENDS) or at.end is None else int(at.end)  # the End control's value
    view = graph_views.initial(query, highlight)  # a highlighted finding's groups open
    renderer = graph_canvas.renderer_of(query)
    result, elements, found = _view_elements(source, ctx, graph_type, namespaces,
                                             window.seconds if window.asked else None, end_value, view, renderer)
    travel_notes = [n for n in (at.note, window.note) if n]
    compare = diff_view.compare_of(query)  # ?compare=: open in diff mode (issue #14)
    elements, compared = diff_view.compared(source, graph_type, namespaces, window.seconds if window.asked else None,
                                            end_ago, compare, elements)
    shown = _shown(source, highlight, result.elements, graph_type, namespaces, None)
    refresh_default = int(ctx.refresh_s) if int(ctx.refresh_s) in dict(REFRESH) else 10
    large = sum("source" in e["data"] for e in elements) > LARGE_GRAPH_EDGES
    labels = [] if large else ["rps", "err"]
    big, sent = _to_canvas(elements, found, renderer, ctx)  # a big plain graph is drawn by our canvas renderer
    return html.Div(className="topology", children=[
        # the toolbar's height once its dropdowns have loaded (they load after the first view): growing then made
        # the page 8 px taller than the screen, and the scrollbar that appeared narrowed the graph, which the
        # canvas renderer had to draw a second time right after its first view
        html.Div(className="toolbar", style={"minHeight": "58px"}, children=[
            _labeled("Graph", dcc.Dropdown(id="topo-type", options=list(GRAPH_TYPES), value=graph_type, clearable=False,
                                           style={"width": "150px"})),
            _labeled("Namespaces", dcc.Dropdown(id="topo-ns", options=result.namespaces, value=namespaces, multi=True,
                                                placeholder="all", style={"minWidth": "200px"})),
            _labeled("Window", dcc.Dropdown(id="topo-window", options=[{"label": l, "value": v}
                                                                       for v, l in window_options(result.window_s)],
                                            value=result.window_s,
                                            clearable=False, style={"width": "80px"})),
            _labeled("Edge labels", dcc.Checklist(id="topo-labels", options=LABELS, value=labels, inline=True)),
            _labeled("Refresh", dcc.Dropdown(id="topo-refresh", options=[{"label": l, "value": v} for v, l in REFRESH],
                                             value=refresh_default, clearable=False, style={"width": "80px"})),
            _labeled("Find", dcc.Input(id="topo-find", type="text", debounce=True, placeholder="e.g. error > 5",
                                       className="expr")),
            _labeled("Hide", dcc.Input(id="topo-hide", type="text", debounce=True, placeholder="e.g. healthy",
                                       className="expr")),
            html.Div(className="updated", children=["Last updated ", html.Span(when(result.updated_at), id="topo-updated")]),
        ]),
        html.Div(id="topo-expr-error", className="expr-error"),
        html.Div(className="topo-viewbar", style={"height": "36px", "overflow": "hidden"}, children=graph_views.controls(view, found)),
        html.Div(className="topo-timebar", style={"height": "40px", "overflow": "hidden"}, children=[
            # time travel: its own row of fixed height (a lazily drawn dropdown must not move the graph under
            # the pointer after Cytoscape has measured its container)
            html.Span("Window ends ", className="muted"),
            dcc.Dropdown(id="topo-end", options=_end_options(end_ago, at.end),
                         value=end_value,
                         clearable=False, style={"width": "100px", "display": "inline-block", "verticalAlign": "middle"}),
            html.Span(" Compare ", className="muted"),  # diff mode: this window against an earlier one
            dcc.Dropdown(id="topo-compare", options=[{"label": l, "value": v} for v, l in diff_view.COMPARES], value=compare,
                         clearable=False, style={"width": "140px", "display": "inline-block", "verticalAlign": "middle"}),
            html.Div(className="topo-replay", style={"width": "320px", "display": "inline-block",
                                                     "verticalAlign": "middle"}, children=[
                dcc.Slider(id="topo-replay", min=0, max=replay.STEPS, step=1, value=replay.STEPS,
                           marks=replay.marks(source, result.window_s, end_ago))]),
            *replay.player(),  # autoplay: play / pause and speed
            html.Span(id="topo-notes", className="muted", children="; ".join([*travel_notes, *result.notes, *compared]))]),
        html.Div(className="topo-travel", style={"height": "32px", "overflow": "hidden"}, children=[  # any instant, any length: a link reopens the same view
            time_form(PATH, {**query, "graphType": graph_type}, at, window, ("graphType", "namespaces", "compare"),
                      prefix="topo-time"),
            " ", dcc.Link("link to this view", id="topo-permalink",
                          href=permalink(graph_type, namespaces, result.window_s, at.end))]),
        dcc.Interval(id="topo-interval", interval=refresh_default * 1000 or 10_000, disabled=refresh_default == 0),
        dcc.Store(id="topo-highlight", data=highlight),
        dcc.Store(id="topo-highlight-shown", data=shown),
        dcc.Store(id="topo-selected", data=None),
        dcc.Store(id="topo-panel-update", data=None),  # a refresh's panel for the element its request had selected
        dcc.Store(id="topo-selected-mark", data=None),
        dcc.Store(id="topo-large", data=large),
        dcc.Store(id="topo-sent", data=sent),  # what the browser has: an identical refresh sends nothing
        dcc.Store(id="topo-renderer", data=renderer),
        dcc.Store(id="topo-big", data=big),  # elements for assets/big_graph.js (None: Cytoscape draws)
        dcc.Store(id="topo-big-marks", data={"found": [], "hidden": []}),
        dcc.Store(id="topo-big-drawn"), dcc.Store(id="topo-big-marked"),
        html.Div(className="topo-body", children=[html.Div(className="topo-stage", style=_STAGE, children=[
            cyto.Cytoscape(id="topo-graph", elements=[] if big else elements,
                           layout={"name": "preset", "fit": True, "padding": 30},
                           stylesheet=stylesheet(labels, highlight=shown, large=large) + diff_view.styles()
                           + graph_views.styles(),
                           minZoom=0.05, maxZoom=3,
                           boxSelectionEnabled=False, className="topo-graph",
                           # refreshes only patch elements (they carry their remembered positions);
                           # re-running the layout would re-fit and throw away the user's zoom and pan
                           autoRefreshLayout=False,
                           style={"width": "100%", "height": "calc(100vh - 246px)"}),
            # over the (then empty) Cytoscape graph: the canvas renderer's drawing surface
            html.Div(id="topo-canvas", className="topo-canvas", style={**_CANVAS, "display": "block" if big else "none"}),
            ]),
            html.Aside(id="topo-panel", className="side-panel", children=_legend()),
        ]),
    ])


_STAGE = {"flex": 1, "position": "relative", "minWidth": 0}
# the same box as the Cytoscape graph under it (not the stage's: a tall side panel stretches the stage)
_CANVAS = {"position": "absolute", "top": 0, "left": 0, "right": 0, "height": "calc(100vh - 246px)", "background": "#fff", "border": "1px solid #e5e7eb",
           "borderRadius": "6px", "overflow": "hidden"}


def _to_canvas(elements: list[dict[str, Any]], found: dict[str, Any] | None,
               renderer: str | None, ctx: Any = None) -> tuple[dict[str, Any] | None, str]:
    """(the `topo-big` store's data when the canvas renderer draws these elements, else None; the digest of
    what is sent). A canvas graph is fingerprinted by its columns (what the browser gets, a fraction of the
    elements to pickle) and remembered under it for find/hide. With `ctx`, made once per element list (the
    kept views of `_view_elements` hand out the same list while the graph is the same)."""
    wanted = graph_canvas.wanted(elements, bool((found or {}).get("grouped")), renderer)
    hit = ctx.canvases.get(id(elements)) if ctx is not None else None
    if hit is not None and hit[0] is elements and hit[1] == wanted:
        big, sent = hit[2]
    elif not wanted:
        big, sent = None, digest(elements)
    else:
        big = graph_canvas.payload(elements)
        sent = digest(big)
    if ctx is not None:  # the entry holds the list, so its id is not reused while kept
        ctx.canvases.put(id(elements), (elements, wanted, (big, sent)))
    if big is not None:
        CANVAS.put(sent, elements)
    return big, sent


def _shown(source: DataSource, highlight: list[str], elements: list[dict[str, Any]], graph_type: str,
           namespaces: list[str] | None, window: float | None) -> list[str]:
    """The ids in the graph on screen of the workload-graph elements `highlight`."""
    if not highlight or graph_type == "workload":
        return list(highlight)
    workload = source.graph("workload", namespaces or None, window).elements
    return project(highlight, workload, elements, graph_type)


def _findings_touching(source: DataSource, eid: str, graph_type: str | None, namespaces: list[str] | None,
                       window: float | None) -> list[dict[str, Any]]:
    """Findings about a clicked element; they name workload-graph elements, so other graphs map them first."""
    if graph_type in (None, "workload"):
        return source.findings({"element": eid})
    found = [f for f in source.findings({}) if f.get("elements")]
    if not found:
        return []
    mapped = projector(source.graph("workload", namespaces or None, window).elements,
                       source.graph(graph_type, namespaces or None, window).elements, graph_type)
    return [f for f in found if eid in mapped(f["elements"])]


def _labeled(label: str, control: Any) -> html.Label:
    return html.Label(className="control", children=[html.Span(label), control])


def _legend() -> html.Div:
    items = [("healthy", "no errors"), ("degraded", "some errors, or slower than a latency SLO allows"),
             ("failing", "\u2265 10% 5xx or \u2265 20% 4xx, or a latency SLO burning \u2265 10x"), ("idle", "no traffic")]
    return html.Div(className="legend", children=[
        html.H4("Click a node or an edge"),
        html.P("Shapes: circle workload, diamond service, rounded box app, rhomboid service entry, triangle unknown "
               "source."),
        html.Ul([html.Li([badge(k), " ", v]) for k, v in items]),
        html.P("mTLS: a filled square at the caller end = all traffic mTLS, hollow square = partial, dashed edge with an amber diamond = "
               "traffic contradicts the configured mTLS intent."),
        html.P("Find/hide: rps > 10, error >= 5, p95 > 200, name ~ reviews, ns = bookinfo, health = failing, mismatch, "
               "!mtls; join with and / or."),
    ])


def _panel(source: DataSource, data: dict[str, Any], is_edge: bool, graph_type: str | None = None,
           namespaces: list[str] | None = None, window: float | None = None) -> list[Any]:
    """The side panel of a clicked element; its series come from the graph request it was drawn in."""
    eid = data["id"]
    if data.get("type") == "aggregate":  # a grouped view's namespace or app: its roll-up and worst members
        return graph_views.aggregate_panel(data, source)
    if is_edge:
        title = f"{data.get('source_label', data['source'])} \u2192 {data.get('target_label', data['target'])}"
    else:
        title = f"{data.get('type', '')} {data.get('namespace', '')}/{data.get('name', '')}"
    if is_edge:
        mtls_pct = data.get("mtls_pct")
        facts = {"protocol": data.get("protocol"), "rps": data.get("label_rps"), "error %": data.get("error_pct"),
                 "p50/p95/p99 ms": f"{_ms(data.get('p50_ms'))} / {_ms(data.get('p95_ms'))} / {_ms(data.get('p99_ms'))}",
                 "mTLS": f"{data.get('mtls_state')} ({'n/a' if mtls_pct is None else f'{mtls_pct:.0f}%'})",
                 "mTLS intent": data.get("mtls_intent"), "why this colour": data.get("health_reason"),
                 "circuit breaker": "tripped (UO/UH responses)" if data.get("cb_tripped") else None}
    else:
        facts = {"health": data.get("health"), "why this colour": data.get("health_reason"),
                 "inbound rps": data.get("rps_in"), "outbound rps": data.get("rps_out"),
                 "inbound error %": data.get("error_pct"), "app": data.get("app"), "version": data.get("version"),
                 "config": ", ".join(str(b).upper() for b in data.get("badges") or [])}
    out: list[Any] = [html.H3(title, id="panel-title"), badge(data.get("health", "na")),
                      html.Table(className="kv", children=[html.Tbody([
                          html.Tr([html.Th(k), html.Td(str(v))]) for k, v in facts.items() if v not in (None, "")])])]
    findings = _findings_touching(source, eid, graph_type, namespaces, window)
    out.append(html.H4(f"Findings ({len(findings)})"))
    out.append(html.Ul(id="panel-findings", children=[html.Li([
        badge(f["severity"]), " ", dcc.Link(f["code"], href=f"/findings?fp={_quote(f['fingerprint'])}"), " ",
        html.Span(f["message"]), " ", graph_views.focus_link(f["fingerprint"])]) for f in findings])
        if findings else html.P("None.", className="muted"))
    out.extend(change_marks.what_changed(source, data, is_edge, source.now() - float(window or 300), source.now()))
    for fig in change_marks.mark_figures(source, charts.golden(source.element_metrics(
            eid, window, graph_type=graph_type, namespaces=namespaces or None))):
        out.append(dcc.Graph(figure=fig, config={"displayModeBar": False}))
    where = "" if is_edge else " (inbound)"
    if data.get("codes"):
        out.append(dcc.Graph(figure=charts.breakdown(data["codes"], f"response codes{where}"), config={"displayModeBar": False}))
    if data.get("flags"):
        out.append(dcc.Graph(figure=charts.breakdown(data["flags"], f"response flags{where}"), config={"displayModeBar": False}))
    service = _service_of(source, data, is_edge)
    if service:
        recent = source.traces(TraceFilters(service=service, limit=5))
        out.append(html.H4(f"Recent traces through {service}"))
        out.append(html.Ul([html.Li([dcc.Link(t["trace_id"][:16], href=f"/traces?trace={_quote(t['trace_id'])}"),
                                     f"  {t['duration_ms']:.1f} ms  ", badge(t["status"])]) for t in recent])
                   if recent else html.P("None in the window.", className="muted"))
    return out


def _ms(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.1f}"


def _service_of(source: DataSource, data: dict[str, Any], is_edge: bool) -> str | None:
    """The service name spans carry: the app of a node, the target's app for an edge (`ui_elements` adds it)."""
    if not is_edge:
        return data.get("app") or data.get("name")
    return data.get("target_app") or None


def _quote(s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="")


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("topo-graph", "elements"), Output("topo-updated", "children"), Output("topo-ns", "options"),
                  Output("topo-notes", "children"), Output("topo-panel-update", "data"),
                  Output("topo-highlight-shown", "data"), Output("topo-found", "data"), Output("topo-sent", "data"),
                  Output("topo-big", "data"), Input("topo-type", "value"), Input("topo-ns", "value"), Input("topo-window", "value"),
                  Input("topo-interval", "n_intervals"), Input("topo-end", "value"), Input("topo-compare", "value"),
                  Input("topo-replay", "value"), Input("topo-view", "data"), Input("topo-find", "value"),
                  Input("topo-hide", "value"), State("topo-selected", "data"),
                  State("topo-highlight", "data"), State("topo-found", "data"), State("topo-sent", "data"),
                  State("topo-renderer", "data"), prevent_initial_call=True)
    def refresh(graph_type, namespaces, window, _n, end_ago, compare, step, view, find, hide, selected, highlight,  # noqa: ANN001, ANN202
                found, sent, renderer):
        if step is not None and 0 <= int(step) < replay.STEPS:  # a slice counts in seconds before now
            end_ago = seconds_ago(source, end_ago)
        window, end_ago = replay.view(window, end_ago, step)  # a replay step draws one slice of the window
        trigger = callback_context.triggered_id
        if end_ago and trigger == "topo-interval":
            return (no_update,) * 9  # a past window does not change
        if trigger in ("topo-find", "topo-hide") and not (found or {}).get("grouped"):
            return (no_update,) * 9  # a plain graph finds and hides by stylesheet (restyle), nothing to re-send
        view = {**(view or {}), "find": find, "hide": hide}  # grouped: find/hide reach members (graph_views)
        try:
            result, elements, found = _view_elements(source, ctx, graph_type, namespaces, window, end_ago, view,
                                                     renderer)
        except QueryError as exc:
            return no_update, no_update, no_update, str(exc), no_update, no_update, no_update, no_update, no_update
        # an open side panel follows the data, so an incident unfolds in it too
        current = FULL.get(view_key(graph_type, namespaces or [], float(result.window_s), end_ago or 0),
                           selected) if selected and any(e["data"]["id"] == selected for e in elements) else None
        # shown only if that element is still the selected one when it arrives (a click meanwhile wins: see
        # followPanel in assets/topology_render.js); the request's `selected` may be stale by then
        built = PANELS.latest((current["id"], view_key(graph_type, namespaces or [], float(result.window_s), 0)),
                              lambda c=current: _panel(source, c, "source" in c, graph_type, namespaces, window)) \
            if current else None
        panel = {"id": current["id"], "panel": built} if built is not None else no_update
        shown = _shown(source, highlight or [], result.elements, graph_type, namespaces, window)
        elements, compared = diff_view.compared(source, graph_type, namespaces, window, seconds_ago(source, end_ago),
                                                compare, elements)
        big, now = _to_canvas(elements, found, renderer, ctx)
        if now == sent:
            big = no_update
        drawn = no_update if now == sent else [] if big else elements  # the canvas draws a big graph, Cytoscape the rest
        return (drawn, when(result.updated_at), result.namespaces,
                "; ".join([*result.notes, *compared]), panel, shown, found, now, big)

    @app.callback(Output("topo-replay", "marks"), Input("topo-window", "value"), Input("topo-end", "value"),
                  Input("topo-interval", "n_intervals"), prevent_initial_call=True)
    def replay_marks(window, end_ago, _n):  # noqa: ANN001, ANN202
        return replay.marks(source, window, seconds_ago(source, end_ago))

    @app.callback(Output("topo-interval", "interval"), Output("topo-interval", "disabled"),
                  Input("topo-refresh", "value"), prevent_initial_call=True)
    def set_refresh(seconds):  # noqa: ANN001, ANN202
        return max(1, int(seconds or 10)) * 1000, not seconds

    @app.callback(Output("topo-graph", "stylesheet"), Output("topo-expr-error", "children"),
                  Input("topo-labels", "value"), Input("topo-find", "value"), Input("topo-hide", "value"),
                  Input("topo-highlight-shown", "data"), State("topo-selected", "data"), State("topo-large", "data"),
                  prevent_initial_call=True)
    def restyle(labels, find, hide, highlight, selected, large):  # noqa: ANN001, ANN202
        errors, selectors = [], {}
        for name, expr in (("find", find), ("hide", hide)):
            try:
                # aggregates are judged by their members (server-side `found`), not their summed numbers
                selectors[name] = to_selector(expr or "", members_only=True)
            except ExpressionError as exc:
                selectors[name] = ""
                errors.append(f"{name}: {exc}")
        # the clicked element is marked by a class in the browser (markSelected): no restyle per click
        return (stylesheet(labels or [], selectors["find"], selectors["hide"], highlight, None, bool(large))
                + diff_view.styles() + graph_views.styles(), " ".join(errors))

    @app.callback(Output("topo-panel", "children"), Output("topo-selected", "data"),
                  Input("topo-graph", "tapNodeData"), Input("topo-graph", "tapEdgeData"), State("topo-type", "value"),
                  State("topo-ns", "value"), State("topo-window", "value"), State("topo-end", "value"),
                  prevent_initial_call=True)
    def show_panel(node, edge, graph_type, namespaces, window, end_ago):  # noqa: ANN001, ANN202
        trigger = callback_context.triggered_id and callback_context.triggered[0]["prop_id"]
        is_edge = bool(trigger and trigger.endswith("tapEdgeData"))
        data = edge if is_edge else node
        if not data:
            return no_update, no_update
        data = FULL.get(view_key(graph_type, namespaces or [], float(window or 300), end_ago or 0), data["id"]) or data
        return _panel(source, data, is_edge, graph_type, namespaces, window), data["id"]

    @app.callback(Output("topo-permalink", "href"), Input("topo-type", "value"), Input("topo-ns", "value"),
                  Input("topo-window", "value"), Input("topo-end", "value"), Input("topo-compare", "value"),
                  prevent_initial_call=True)
    def link_to_view(graph_type, namespaces, window, end_ago, compare):  # noqa: ANN001, ANN202 - time travel (#14)
        return permalink(graph_type, namespaces, float(window or DEFAULT_WINDOW_S),
                         source.now() - seconds_ago(source, end_ago) if end_ago else None, compare)

    @app.callback(Output("topo-big-marks", "data"), Input("topo-find", "value"), Input("topo-hide", "value"),
                  Input("topo-sent", "data"), State("topo-found", "data"), prevent_initial_call=True)
    def canvas_marks(find, hide, sent, state):  # noqa: ANN001, ANN202 - find/hide on a canvas graph: ids from the server
        elements = CANVAS.get(sent or "")
        triggers = {t["prop_id"].split(".", 1)[0] for t in callback_context.triggered}  # Dash merges pending ones
        if elements is not None and (state or {}).get("grouped"):
            # a grouped or incident view: the server ran find/hide into the elements it sent (their digest names
            # what was found), so its marks follow `topo-sent`; a box's change alone brings new elements
            return graph_canvas.server_marks(elements) if "topo-sent" in triggers else no_update
        if elements is None or (triggers == {"topo-sent"} and not (find or hide)):
            return no_update  # not a canvas graph, or a refresh with nothing to mark
        return graph_canvas.marks(elements, find, hide)

    graph_views.register(app)  # group / expand / incident-view controls (issue #17)
    replay.register_player(app)  # replay autoplay (issue #14)

    app.clientside_callback(ClientsideFunction("meshscope_topology", "markSelected"),
                            Output("topo-selected-mark", "data"), Input("topo-selected", "data"))
    app.clientside_callback(ClientsideFunction("meshscope_topology", "followPanel"),
                            Output("topo-panel", "children", allow_duplicate=True),
                            Input("topo-panel-update", "data"), State("topo-selected", "data"), prevent_initial_call=True)
    # the canvas renderer of big graphs (assets/big_graph.js): its elements, then what find/hide/highlight/click mark
    app.clientside_callback(ClientsideFunction("meshscope_big", "elements"),
                            Output("topo-big-drawn", "data"), Input("topo-big", "data"))
    app.clientside_callback(ClientsideFunction("meshscope_big", "marks"), Output("topo-big-marked", "data"),
                            Input("topo-big-marks", "data"), Input("topo-highlight-shown", "data"),
                            Input("topo-labels", "value"), Input("topo-selected", "data"))
