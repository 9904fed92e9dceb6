"""GET /api/v1/slos: every SLO with objective, budget remaining, burn rates per window and alert state."""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, check_known
from dashboard.api.freshness import stamped, state_as_of
from dashboard.query import DataSource


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/slos")
    @api_route
    def api_slos():  # noqa: ANN202
        check_known(set())
        return stamped(source.slos(), state_as_of(source), source.now())
