"""GET /api/v1/graph?graphType=workload&namespaces=a,b&window=300: the Cytoscape elements the page draws."""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_choice, arg_float, arg_text, check_known
from dashboard.api.graph_diff import arg_time
from dashboard.query import GRAPH_TYPES, DataSource, Unavailable

MAX_WINDOW_S = 30 * 86400.0  # no store here keeps more; a longer window is a typo, not a question


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/graph")
    @api_route
    def api_graph():  # noqa: ANN202
        check_known({"graphType", "namespaces", "window", "end"})
        graph_type = arg_choice("graphType", GRAPH_TYPES, "workload")
        namespaces = [n.strip() for n in (arg_text("namespaces") or "").split(",") if n.strip()]
        window = arg_float("window", None, minimum=1.0, maximum=MAX_WINDOW_S)
        end = arg_time(source, "end", None)  # time travel: the window ends then (dashboard.api.graph_diff)
        if end is not None:
            at = getattr(source, "graph_at", None)
            if at is None:
                raise Unavailable("this source has one moment only (a snapshot): no end time")
            return at(graph_type, namespaces or None, window or 300.0, end).to_dict()
        return source.graph(graph_type, namespaces or None, window).to_dict()
