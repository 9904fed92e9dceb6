"""GET /api/v1/traces?service=&status=any|ok|error&min_duration_ms=&limit= and /api/v1/traces/<trace_id>."""
from __future__ import annotations

from flask import Flask, request

from dashboard.api.common import PREFIX, api_route, arg_float, check_known, error
from dashboard.query import DataSource, TraceFilters


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/traces")
    @api_route
    def api_traces():  # noqa: ANN202
        check_known({"service", "status", "min_duration_ms", "limit"})
        filters = TraceFilters(service=request.args.get("service") or None,
                               status=request.args.get("status", "any") or "any",
                               min_duration_ms=arg_float("min_duration_ms", 0.0),
                               limit=int(arg_float("limit", 100, minimum=1)))
        return source.traces(filters)

    @server.route(f"{PREFIX}/traces/<trace_id>")
    @api_route
    def api_trace(trace_id: str):  # noqa: ANN202
        spans = source.trace(trace_id)
        return spans if spans is not None else error(404, f"no trace {trace_id!r} in the window")
