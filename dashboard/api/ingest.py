"""GET /api/v1/ingest/rejects: what the collectors refused, so an operator sees bad input without grepping.

Counts per source and reason (the same numbers as meshscope_collector_malformed_total on
/metrics) and the last refused records with a bounded, escaped sample of their bytes. Samples
are untrusted text: JSON-encoded here; a page showing them must HTML-escape them.
"""
from __future__ import annotations

from flask import Flask

from collector import selfmetrics
from dashboard.api.common import PREFIX, api_route, arg_choice, arg_int, check_known
from dashboard.query import DataSource

SOURCES = ("access_log", "exposition", "otlp", "otlp_grpc", "prom_api", "kube")


def register(server: Flask, source: DataSource) -> None:  # noqa: ARG001 - the collectors' registry is process-wide
    @server.route(f"{PREFIX}/ingest/rejects")
    @api_route
    def api_ingest_rejects():  # noqa: ANN202
        check_known({"limit", "source"})
        limit = arg_int("limit", 50, 1, selfmetrics.REJECT_SAMPLES)
        kind = arg_choice("source", SOURCES)
        return {
            "by_reason": {k: selfmetrics.malformed_by_reason(k) for k in ((kind,) if kind else SOURCES)},
            "recent": [r.as_dict() for r in selfmetrics.recent_rejects(limit, kind)],
        }
