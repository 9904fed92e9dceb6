"""GET /api/v1/findings?severity=&category=&namespace=&status=&code= and /api/v1/findings/<fingerprint>."""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_choice, arg_text, check_known, error
from dashboard.api.freshness import stamped, state_as_of
from dashboard.query import FINDING_FILTERS, DataSource
from diagnose.catalog.registry import CATEGORIES
from diagnose.findings import SEVERITIES

STATUSES = ("open", "resolved")
#: filters whose values come from a closed set; a typo there would silently match nothing
CHOICES = {"severity": SEVERITIES, "category": CATEGORIES, "status": STATUSES}


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/findings")
    @api_route
    def api_findings():  # noqa: ANN202
        check_known(set(FINDING_FILTERS))
        filters = {}
        for key in FINDING_FILTERS:
            value = arg_choice(key, CHOICES[key], many=True) if key in CHOICES else arg_text(key)
            if value:
                filters[key] = value
        return stamped(source.findings(filters), state_as_of(source), source.now())

    @server.route(f"{PREFIX}/findings/<path:fingerprint>")
    @api_route
    def api_finding(fingerprint: str):  # noqa: ANN202
        found = source.finding(fingerprint) if len(fingerprint) <= 1024 else None
        return found if found is not None else error(404, f"no finding with fingerprint {fingerprint[:200]!r}")
