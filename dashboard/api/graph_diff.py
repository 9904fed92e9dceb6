"""GET /api/v1/graph/diff?graphType=&namespaces=&window=300&before=&after=: two windows compared.

`before` and `after` are the end times of the two windows (epoch seconds; a
negative value is relative to now, `before=-3600` = an hour ago; `after`
defaults to now). The answer lists edges and nodes that appeared or vanished,
per edge the deltas of rate, error %, p95 and mTLS share judged better/worse,
and the config changes between the two windows.
"""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_choice, arg_float, arg_text, check_known
from dashboard.query import GRAPH_TYPES, DataSource, QueryError, Unavailable

MAX_WINDOW_S = 30 * 86400.0
MAX_BACK_S = 30 * 86400.0


def arg_time(source: DataSource, name: str, default: float | None) -> float | None:
    """An end time: epoch seconds, or negative seconds relative to now; not in the future."""
    value = arg_float(name, None, minimum=-MAX_BACK_S, maximum=4e9)
    if value is None:
        return default
    now = source.now()
    value = now + value if value <= 0 else value
    if value > now + 1:
        raise QueryError(name, "must not be in the future")
    return value


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/graph/diff")
    @api_route
    def api_graph_diff():  # noqa: ANN202
        check_known({"graphType", "namespaces", "window", "before", "after"})
        graph_type = arg_choice("graphType", GRAPH_TYPES, "workload")
        namespaces = [n.strip() for n in (arg_text("namespaces") or "").split(",") if n.strip()]
        window = arg_float("window", 300.0, minimum=1.0, maximum=MAX_WINDOW_S)
        before = arg_time(source, "before", None)
        if before is None:
            raise QueryError("before", "required: the end time of the earlier window (e.g. before=-3600)")
        after = arg_time(source, "after", source.now())
        fn = getattr(source, "graph_diff", None)
        if fn is None:
            raise Unavailable("this source has one moment only (a snapshot): nothing to compare")
        return fn(graph_type, namespaces or None, window, before, after)
