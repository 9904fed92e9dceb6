"""GET /api/v1/graph?graphType=workload&namespaces=a,b&window=300: the Cytoscape elements the page draws."""
from __future__ import annotations

from flask import Flask, request

from dashboard.api.common import PREFIX, api_route, arg_float, check_known
from dashboard.query import DataSource


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/graph")
    @api_route
    def api_graph():  # noqa: ANN202
        check_known({"graphType", "namespaces", "window"})
        namespaces = [n for n in request.args.get("namespaces", "").split(",") if n]
        result = source.graph(request.args.get("graphType", "workload"), namespaces or None, arg_float("window"))
        return result.to_dict()
