"""meshscope's own collector metrics, on a registry the dashboard serves at `/metrics`.

A separate registry (not prometheus_client's global one) so tests and embedders get exactly
the collector's series, and so two stores in one process do not collide. Every source counts
what it ingested and what it had to skip, labelled by source kind and origin (target URL,
file path, receiver endpoint): bad input is visible, never silent.
"""
from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

MALFORMED = Counter(
    "meshscope_collector_malformed_total",
    "Input records skipped because they could not be parsed (lines, payloads).",
    ["source", "origin"], registry=REGISTRY)
INGESTED = Counter(
    "meshscope_collector_ingested_total",
    "Rows added to the telemetry store.",
    ["source", "table"], registry=REGISTRY)
SCRAPE_UP = Gauge(
    "meshscope_scrape_up", "1 when the last scrape of the target succeeded, else 0.",
    ["target"], registry=REGISTRY)
SCRAPE_DURATION = Histogram(
    "meshscope_scrape_duration_seconds", "Time to fetch and parse one target.",
    registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
OTLP_REQUESTS = Counter(
    "meshscope_otlp_requests_total", "OTLP/HTTP export requests by signal and response code.",
    ["signal", "code"], registry=REGISTRY)
PROM_API_ERRORS = Counter(
    "meshscope_prometheus_api_errors_total", "Failed Prometheus HTTP API calls by kind.",
    ["kind"], registry=REGISTRY)


class _StoreCollector:
    """Reports rows and bytes of every live TelemetryStore without keeping them alive."""

    def __init__(self) -> None:
        self.stores: weakref.WeakSet = weakref.WeakSet()

    def collect(self):
        rows = GaugeMetricFamily("meshscope_store_rows", "Rows held in memory per table.", labels=["table"])
        size = GaugeMetricFamily("meshscope_store_bytes", "Bytes held in memory by the telemetry store.")
        total_rows: dict[str, int] = {}
        total_bytes = 0
        for store in list(self.stores):
            for table in ("metrics", "requests", "spans", "logs"):
                total_rows[table] = total_rows.get(table, 0) + store.row_count(table)
            total_bytes += store.nbytes
        for table, n in sorted(total_rows.items()):
            rows.add_metric([table], n)
        size.add_metric([], total_bytes)
        yield rows
        yield size


_STORES = _StoreCollector()
REGISTRY.register(_STORES)


def watch_store(store) -> None:
    """Expose a store's size in `/metrics` (held weakly)."""
    _STORES.stores.add(store)


def count_malformed(source: str, origin: str, n: int = 1) -> None:
    if n:
        MALFORMED.labels(source, origin).inc(n)


def count_ingested(source: str, table: str, n: int) -> None:
    if n:
        INGESTED.labels(source, table).inc(n)


def malformed_total(source: str | None = None, origin: str | None = None) -> float:
    """Sum of skipped records, optionally for one source kind and/or origin (for tests and the UI)."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name != "meshscope_collector_malformed":
            continue
        for s in metric.samples:
            if not s.name.endswith("_total"):
                continue
            if source is not None and s.labels.get("source") != source:
                continue
            if origin is not None and s.labels.get("origin") != origin:
                continue
            total += s.value
    return total


def exposition() -> bytes:
    """The registry in Prometheus text format (what `/metrics` serves)."""
    return generate_latest(REGISTRY)
