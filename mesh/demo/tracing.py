"""OpenTelemetry for the demo apps: one tracer per app, OTLP/HTTP export, W3C propagation.

The apps continue the trace their inbound sidecar started (the `traceparent` Envoy
forwards), add a SERVER span for their own work and a CLIENT span per call, and
inject `traceparent` into the outbound request, so the client sidecar's span is
a child of the app's span: proxy and app spans interleave as in a real mesh.
Without an endpoint, headers are still forwarded verbatim and no SDK is loaded.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any


class AppTracer:
    """Spans for one app, or a pass-through when tracing is off."""

    def __init__(self, service_name: str, otlp_endpoint: str | None, attributes: dict[str, str] | None = None):
        self._tracer = None
        self._provider = None
        if not otlp_endpoint:
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        resource = Resource.create({"service.name": service_name, **(attributes or {})})
        self._provider = TracerProvider(resource=resource)
        self._provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces", timeout=2),
            schedule_delay_millis=3000))  # as the sidecars' exports (bootstrap): per-export cost is meshscope's (#18)
        self._tracer = self._provider.get_tracer("meshscope.demo")
        self._propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def server_span(self, name: str, headers: Mapping[str, str], attrs: dict[str, Any]) -> Iterator[Any]:
        if self._tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind
        ctx = self._propagator.extract(carrier={k.lower(): v for k, v in headers.items()})
        with self._tracer.start_as_current_span(name, context=ctx, kind=SpanKind.SERVER, attributes=attrs) as span:
            yield span

    @contextlib.contextmanager
    def client_span(self, name: str, out_headers: dict[str, str], attrs: dict[str, Any]) -> Iterator[Any]:
        """A CLIENT span; `out_headers` gets the `traceparent` of this span injected."""
        if self._tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind
        with self._tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attrs) as span:
            self._propagator.inject(out_headers)
            yield span

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
