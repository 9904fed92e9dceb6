"""GET /api/v1/traces?service=&status=any|ok|error&min_duration_ms=&limit=&end= and /api/v1/traces/<trace_id>.

`end` (epoch s, or negative seconds from now) lists the traces of the window that ended then (time travel, #14).
"""
from __future__ import annotations

from flask import Flask

from dashboard.api.graph_diff import arg_time
from dashboard.api.common import PREFIX, api_route, arg_choice, arg_float, arg_int, arg_text, check_known, error
from dashboard.query import TRACE_STATUSES, DataSource, TraceFilters

MAX_LIMIT = 10_000
MAX_DURATION_MS = 86_400_000.0  # a day


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/traces")
    @api_route
    def api_traces():  # noqa: ANN202
        check_known({"service", "status", "min_duration_ms", "limit", "end"})
        filters = TraceFilters(service=arg_text("service"),
                               status=arg_choice("status", TRACE_STATUSES, "any"),
                               min_duration_ms=arg_float("min_duration_ms", 0.0, maximum=MAX_DURATION_MS),
                               limit=arg_int("limit", 100, minimum=1, maximum=MAX_LIMIT),
                               end=arg_time(source, "end", None))
        return source.traces(filters)

    @server.route(f"{PREFIX}/traces/<trace_id>")
    @api_route
    def api_trace(trace_id: str):  # noqa: ANN202
        spans = source.trace(trace_id) if len(trace_id) <= 128 else None
        return spans if spans is not None else error(404, f"no trace {trace_id[:128]!r} in the window")
