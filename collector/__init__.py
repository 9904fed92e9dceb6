"""Telemetry in (Envoy metrics, access logs, OTLP, Prometheus API), tidy pandas tables out."""
