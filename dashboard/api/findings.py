"""GET /api/v1/findings?severity=&category=&namespace=&status=&code= and /api/v1/findings/<fingerprint>."""
from __future__ import annotations

from flask import Flask, request

from dashboard.api.common import PREFIX, api_route, check_known, error
from dashboard.query import FINDING_FILTERS, DataSource


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/findings")
    @api_route
    def api_findings():  # noqa: ANN202
        check_known(set(FINDING_FILTERS))
        return source.findings({k: request.args[k] for k in FINDING_FILTERS if request.args.get(k)})

    @server.route(f"{PREFIX}/findings/<path:fingerprint>")
    @api_route
    def api_finding(fingerprint: str):  # noqa: ANN202
        found = source.finding(fingerprint)
        return found if found is not None else error(404, f"no finding with fingerprint {fingerprint!r}")
