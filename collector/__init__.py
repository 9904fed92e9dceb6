"""Telemetry in (Envoy metrics, access logs, OTLP, Prometheus API), tidy pandas tables out."""
from collector.parse.exposition import ExpositionResult, parse_exposition
from collector.query import golden_signals, histogram_quantile, istio_rates, rates_from_samples, request_table, spans
from collector.store import TelemetryStore

__all__ = ["ExpositionResult", "TelemetryStore", "golden_signals", "histogram_quantile", "istio_rates", "parse_exposition",
           "rates_from_samples", "request_table", "spans"]
