"""meshscope's own collector metrics, on a registry the dashboard serves at `/metrics`.

A separate registry (not prometheus_client's global one) so tests and embedders get exactly
the collector's series, and so two stores in one process do not collide. Every source counts
what it ingested and what it had to skip, labelled by source kind and origin (target URL,
file path, receiver endpoint): bad input is visible, never silent.

Skipped input is counted per source, origin and *reason* (a short fixed word such as
`invalid_json` or `bad_timestamp`, never the free text, so the label set stays small), and the
last `REJECT_SAMPLES` rejects keep a bounded sample of their bytes for `recent_rejects()`: an
operator can see what was refused without grepping a 60 MB log.
"""
from __future__ import annotations

import collections
import functools
import threading
import time
import weakref
from dataclasses import asdict, dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

MALFORMED = Counter(
    "meshscope_collector_malformed_total",
    "Input records skipped because they could not be parsed (lines, payloads), by reason.",
    ["source", "origin", "reason"], registry=REGISTRY)
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
OTLP_GRPC_REQUESTS = Counter(
    "meshscope_otlp_grpc_requests_total", "OTLP/gRPC Export calls by signal and gRPC status (OK, INVALID_ARGUMENT, ...).",
    ["signal", "status"], registry=REGISTRY)
INGEST_CPU = Counter(
    "meshscope_collector_cpu_seconds_total",
    "CPU time each source spent reading, parsing and storing telemetry (its threads' own time, so other processes' "
    "load does not inflate it): where an idle meshscope's CPU goes (#18).",
    ["source"], registry=REGISTRY)
STORE_FAILURES = Counter(
    "meshscope_collector_store_failures_total",
    "Batches a source's writer could not store (the store raised); the rows are kept and tried again.",
    ["source"], registry=REGISTRY)
ROWS_LOST = Counter(
    "meshscope_collector_rows_lost_total",
    "Rows a source had acknowledged but could not store: refused by the store, or the store still failing at stop.",
    ["source", "reason"], registry=REGISTRY)
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


REJECT_SAMPLES = 200  # rejects kept for inspection (all sources together)
SAMPLE_BYTES = 256  # bytes kept of each rejected record


@dataclass(frozen=True)
class Reject:
    """One refused record: where it came from, why, and its first bytes (escaped, safe to show)."""

    time: float
    source: str
    origin: str
    reason: str
    line: int | None
    message: str
    sample: str

    def as_dict(self) -> dict:
        return asdict(self)


_REJECTS: collections.deque[Reject] = collections.deque(maxlen=REJECT_SAMPLES)
_REJECTS_LOCK = threading.Lock()


def _sample_text(sample: bytes | str | None) -> str:
    """At most SAMPLE_BYTES of the record; bytes that are not UTF-8 shown as \\xNN escapes."""
    if sample is None:
        return ""
    if isinstance(sample, str):
        sample = sample.encode("utf-8", errors="surrogateescape")
    cut = bytes(sample[:SAMPLE_BYTES])
    text = cut.decode("utf-8", errors="backslashreplace")
    return text + ("..." if len(sample) > SAMPLE_BYTES else "")


def count_malformed(source: str, origin: str, n: int = 1, reason: str = "malformed") -> None:
    if n:
        MALFORMED.labels(source, origin, reason).inc(n)


def reject(source: str, origin: str, reason: str, sample: bytes | str | None = None,
           line: int | None = None, message: str = "", n: int = 1) -> None:
    """Count `n` refused records and keep one sample of them for `recent_rejects()`."""
    if n <= 0:
        return
    MALFORMED.labels(source, origin, reason).inc(n)
    entry = Reject(time.time(), source, origin, reason, line, message[:300], _sample_text(sample))
    with _REJECTS_LOCK:
        _REJECTS.append(entry)


def reject_errors(source: str, origin: str, errors, samples_per_reason: int = 3) -> None:
    """A batch's refused records (objects with line, message, reason, sample) -> per-reason
    counts, and a sample of the first few of each reason (a bad batch of 10,000 lines does not
    flush every other source's samples out of the bounded list)."""
    by_reason: dict[str, list] = {}
    for e in errors:
        by_reason.setdefault(getattr(e, "reason", "malformed") or "malformed", []).append(e)
    for reason, errs in by_reason.items():
        for e in errs[:samples_per_reason]:
            reject(source, origin, reason, getattr(e, "sample", b""), line=getattr(e, "line", None),
                   message=getattr(e, "message", str(e)))
        if len(errs) > samples_per_reason:
            count_malformed(source, origin, len(errs) - samples_per_reason, reason)


def recent_rejects(limit: int = 50, source: str | None = None) -> list[Reject]:
    """The latest refused records, newest first (bounded: at most REJECT_SAMPLES are kept)."""
    with _REJECTS_LOCK:
        items = list(_REJECTS)
    items = [r for r in reversed(items) if source is None or r.source == source]
    return items[:limit]


def malformed_by_reason(source: str | None = None) -> dict[str, float]:
    """Skipped records per reason (optionally for one source kind), for the UI's status.

    Reads the one counter, not `REGISTRY.collect()`: that runs every collector of the registry, the per-thread
    CPU one reading /proc for each of meshscope's ~75 threads, and the Overview asks once per source kind per
    request (85 % of its CPU at 50 rps)."""
    out: dict[str, float] = {}
    for metric in MALFORMED.collect():
        for s in metric.samples:
            if s.name.endswith("_total") and (source is None or s.labels.get("source") == source):
                out[s.labels["reason"]] = out.get(s.labels["reason"], 0.0) + s.value
    return out


class cpu_of:
    """`with cpu_of("access_log"): ...` adds the CPU time the block took on this thread to INGEST_CPU."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __enter__(self) -> "cpu_of":
        self.t0 = time.thread_time()
        return self

    def __exit__(self, *exc) -> None:
        INGEST_CPU.labels(self.source).inc(max(0.0, time.thread_time() - self.t0))


def counts_cpu(source: str):
    """Decorator: each call's CPU time on its thread goes to INGEST_CPU under `source`."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*a, **kw):
            with cpu_of(source):
                return fn(*a, **kw)
        return inner
    return wrap


def count_ingested(source: str, table: str, n: int) -> None:
    if n:
        INGESTED.labels(source, table).inc(n)


def malformed_total(source: str | None = None, origin: str | None = None, reason: str | None = None) -> float:
    """Sum of skipped records, optionally for one source kind and/or origin (for tests and the UI)."""
    total = 0.0
    for metric in MALFORMED.collect():  # the one counter: the registry's collectors read /proc (malformed_by_reason)
        for s in metric.samples:
            if not s.name.endswith("_total"):
                continue
            if source is not None and s.labels.get("source") != source:
                continue
            if origin is not None and s.labels.get("origin") != origin:
                continue
            if reason is not None and s.labels.get("reason") != reason:
                continue
            total += s.value
    return total


def exposition() -> bytes:
    """The registry in Prometheus text format (what `/metrics` serves)."""
    return generate_latest(REGISTRY)
