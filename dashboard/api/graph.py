"""GET /api/v1/graph?graphType=workload&namespaces=a,b&window=300: the Cytoscape elements the page draws.

Views of large meshes (issue #17): `collapse=namespace|app` rolls namespaces or apps up into
aggregate nodes, `expand=ID[,ID]` opens aggregates in place, `focus=FINDING_OR_INCIDENT_ID&hops=K`
keeps only the incident's unhealthy edges, their K-hop neighbourhood and the blamed config objects.
`hide=EXPR` leaves matching elements out (before any roll-up: a group's numbers exclude them) and
`find=EXPR` sets `found` on every element standing for a match (an aggregate: how many of its members
and inner edges match); expressions as the page's find/hide boxes (`dashboard.components.find_hide`).
"""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_choice, arg_float, arg_int, arg_text, check_known
from dashboard.api.freshness import is_live, stamped
from dashboard.api.graph_diff import arg_time
from dashboard.graph_view import DEFAULT_HOPS, View, apply_view
from dashboard.query import GRAPH_TYPES, DataSource, QueryError, Unavailable
from topology.aggregate import LEVELS
from topology.focus import MAX_HOPS

MAX_WINDOW_S = 30 * 86400.0  # no store here keeps more; a longer window is a typo, not a question


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/graph")
    @api_route
    def api_graph():  # noqa: ANN202
        check_known({"graphType", "namespaces", "window", "end", "collapse", "expand", "focus", "hops", "find", "hide"})
        view = _view()
        graph_type = arg_choice("graphType", GRAPH_TYPES, "workload")
        namespaces = [n.strip() for n in (arg_text("namespaces") or "").split(",") if n.strip()]
        window = arg_float("window", None, minimum=1.0, maximum=MAX_WINDOW_S)
        end = arg_time(source, "end", None)  # time travel: the window ends then (dashboard.api.graph_diff)
        if end is not None:
            at = getattr(source, "graph_at", None)
            if at is None:
                raise Unavailable("this source has one moment only (a snapshot): no end time")
            result = at(graph_type, namespaces or None, window or 300.0, end)
            return apply_view(source, result, view).result.to_dict()
        result = source.graph(graph_type, namespaces or None, window)  # the latest graph of the view, at once
        as_of = result.updated_at if is_live(source) else None  # a snapshot's graph has no age to report
        return stamped(apply_view(source, result, view).result.to_dict(), as_of, source.now())


def _view() -> View:
    """The view parameters, each checked on its own and against the others (400 naming the parameter)."""
    collapse = arg_choice("collapse", LEVELS, None)
    expand = tuple(e.strip() for e in (arg_text("expand") or "").split(",") if e.strip())
    if expand and not collapse:
        raise QueryError("expand", "expand opens aggregates: pass collapse=namespace or collapse=app too")
    focus = arg_text("focus")
    hops = arg_int("hops", DEFAULT_HOPS, 0, MAX_HOPS)
    if arg_text("hops") is not None and not focus:
        raise QueryError("hops", "hops is the size of the incident view: pass focus=FINDING_OR_INCIDENT_ID too")
    return View(collapse, expand, focus.strip() if focus else None, hops, arg_text("find"), arg_text("hide"))
