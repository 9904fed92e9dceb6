"""GET /api/v1/config: the Istio and Kubernetes objects in the mesh, each with its finding codes."""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, check_known
from dashboard.query import DataSource


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/config")
    @api_route
    def api_config():  # noqa: ANN202
        check_known(set())
        return source.config_objects()
