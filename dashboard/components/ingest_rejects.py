"""The Overview's "Telemetry refused" section: what the collectors skipped, per source and reason.

Why on the overview: a collector that refuses input (a sidecar writing a bad log line, a sender
posting undecodable OTLP) keeps ingesting everything else, so nothing else on the page would
show it; the counts and the last refused records (a bounded sample of their bytes) let an
operator see bad input without grepping. Samples are untrusted bytes: they go into Dash text
children (React escapes them), never Markdown or raw HTML.
"""
from __future__ import annotations

from dash import html

from collector import selfmetrics
from dashboard.components.widgets import when

SOURCES = ("access_log", "exposition", "otlp", "otlp_grpc", "prom_api", "kube")
SHOWN = 10  # latest refused records listed (the API serves up to selfmetrics.REJECT_SAMPLES)


def rejects_section(limit: int = SHOWN) -> html.Section:
    counts = [(src, reason, n) for src in SOURCES for reason, n in selfmetrics.malformed_by_reason(src).items() if n]
    counts.sort(key=lambda c: (-c[2], c[0], c[1]))
    if not counts:
        return html.Section(id="ov-rejects", className="ov-rejects", children=[
            html.H3("Telemetry refused"), html.P("No telemetry refused since start.", className="muted")])
    recent = selfmetrics.recent_rejects(limit)
    return html.Section(id="ov-rejects", className="ov-rejects", children=[
        html.H3("Telemetry refused"),
        html.P(f"{sum(n for *_, n in counts):,.0f} records skipped; everything else was ingested.", className="muted"),
        html.Table(id="ov-rejects-counts", className="kv", children=[
            html.Thead(html.Tr([html.Th("source"), html.Th("reason"), html.Th("records")])),
            html.Tbody([html.Tr([html.Td(src), html.Td(reason), html.Td(f"{n:,.0f}")]) for src, reason, n in counts])]),
        html.H4("Latest refused records"),
        html.Ul(id="ov-rejects-recent", className="rejects", children=[
            html.Li([html.Span(when(r.time), className="muted"), " ", r.source, " ",
                     html.Span(r.origin, className="muted"), " ", html.Strong(r.reason),
                     f" line {r.line}" if r.line else "", ": ", r.message,
                     html.Pre(html.Code(r.sample), className="reject-sample")])
            for r in recent]),
        html.P(html.A("all recent refusals (JSON)", href="/api/v1/ingest/rejects?limit=200"), className="muted"),
    ])
