"""meshscope's own metrics at /metrics and liveness at /healthz.

Each app gets its own prometheus-client registry for the UI's request counters, so
several apps in one process (tests, benches) do not collide on the global one.
`/metrics` serves it together with the collector's registry (ingested and malformed
telemetry per source, scrape health, store size), the alert dispatcher's (outbox,
delivery attempts) and the live diagnoser's (cycles run or skipped, and why): one scrape target for the
whole process.
"""
from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest


def process_registries() -> list[CollectorRegistry]:
    """The lower packages' process-wide registries (imported on first scrape: they are module singletons)."""
    from collector.selfmetrics import REGISTRY as COLLECTOR
    from diagnose.alerts.selfmetrics import REGISTRY as ALERTS
    from diagnose.live.selfmetrics import REGISTRY as DIAGNOSER

    return [COLLECTOR, ALERTS, DIAGNOSER]


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install_selfmetrics(server: Flask) -> CollectorRegistry:
    registry = CollectorRegistry()
    requests_total = Counter("meshscope_ui_http_requests", "HTTP requests served by the UI and API",
                             ["route", "method", "code"], registry=registry)
    latency = Histogram("meshscope_ui_http_request_duration_seconds", "Time to answer a UI or API request",
                        ["route"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    @server.before_request
    def _start():  # noqa: ANN202
        g._ms_t0 = time.perf_counter()

    @server.after_request
    def _count(resp):  # noqa: ANN001, ANN202
        # route templates (not raw paths) keep label cardinality bounded
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        # the method too: a client may send any token as a method ("M0X"), one series each
        method = request.method if request.method in _METHODS else "other"
        requests_total.labels(route, method, str(resp.status_code)).inc()
        if hasattr(g, "_ms_t0"):
            latency.labels(route).observe(time.perf_counter() - g._ms_t0)
        return resp

    @server.route("/metrics")
    def metrics():  # noqa: ANN202
        body = b"".join(generate_latest(r) for r in (registry, *process_registries()))
        return Response(body, mimetype=CONTENT_TYPE_LATEST)

    @server.route("/healthz")
    def healthz():  # noqa: ANN202
        return {"status": "ok"}

    return registry
