"""GET /api/v1/scenarios, POST /api/v1/scenarios/<name> (apply) and DELETE /api/v1/scenarios (clear).

Only a source over the running bundled mesh can apply scenarios; others answer 503.
"""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, check_known, error
from dashboard.query import DataSource


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/scenarios")
    @api_route
    def api_scenarios():  # noqa: ANN202
        check_known(set())
        return source.scenarios()

    @server.route(f"{PREFIX}/scenarios/<name>", methods=["POST"])
    @api_route
    def api_apply_scenario(name: str):  # noqa: ANN202
        known = {s["name"] for s in source.scenarios()}
        if known and name not in known:
            return error(404, f"unknown scenario {name!r} (known: {', '.join(sorted(known))})", "name")
        source.apply_scenario(name)
        return {"applied": name}

    @server.route(f"{PREFIX}/scenarios", methods=["DELETE"])
    @api_route
    def api_clear_scenario():  # noqa: ANN202
        source.apply_scenario(None)
        return {"applied": None}
