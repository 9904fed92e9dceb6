"""OTLP/gRPC receiver (port 4317): Envoy access logs as Istio's `envoyOtelAls` ships them, and traces.

Envoy's OpenTelemetry access logger (what Istio configures for an `envoyOtelAls` provider) and
Istio's `opentelemetry` tracing provider speak OTLP/gRPC: `LogsService/Export` and
`TraceService/Export`, directly or through an OpenTelemetry Collector's `otlp` exporter.

- Log records become rows of the requests table (collector.parse.otel_access_log), the same
  rows the file tailer writes, so every runtime rule reads them unchanged. Spans go to the
  spans table through the same decoder as OTLP/HTTP.
- The handlers take the raw request bytes (no deserializer in front): a payload that is not
  OTLP gets INVALID_ARGUMENT with the reason, not gRPC's generic INTERNAL; one over
  `max_message_bytes` gets RESOURCE_EXHAUSTED. Both are counted in meshscope's own metrics
  (`meshscope_otlp_grpc_requests_total{status}`, `meshscope_collector_malformed_total`), and the
  server keeps serving. gRPC itself refuses anything over twice the limit before a handler
  runs (also RESOURCE_EXHAUSTED, then not counted here), so memory stays bounded.
- Records that cannot become a row (no access-log fields, unreadable time) are reported back in
  `partial_success.rejected_log_records`, as the OTLP spec asks; the rest of the batch is kept.
  A store failure answers UNAVAILABLE, which exporters retry.
- Decoded rows are handed to one writer thread that stores them in batches (every `flush_interval`
  seconds, like an OpenTelemetry Collector's batch processor): a sidecar's Export call never waits
  for the store's write-ahead log (an fsync on a busy disk can take seconds, and Envoy drops
  access logs while its calls are pending). At most `max_pending_rows` rows and `max_pending_bytes`
  bytes of them wait; beyond that a call gets UNAVAILABLE (the exporter retries later) instead of growing memory without bound.
- An acknowledged row is kept until the store has it (#18): the sender got OK and will not send it
  again, and a store commit that fails stores nothing, so the writer keeps a batch whose commit
  failed (a full disk, a directory that cannot be written) at the head of the queue and tries it
  again at its next flush. The rows still count against `max_pending_rows`, so while the store
  keeps failing the queue fills and new calls get UNAVAILABLE: memory stays bounded and exporters
  hold on to their data. Only two cases drop acknowledged rows, counted in
  `meshscope_collector_rows_lost_total{source,reason}` and logged once: the store refuses the rows
  themselves (`refused`, a ValueError: retrying cannot help and would stall every later batch),
  and the store still fails at stop() (`stopped`).
- Bound beyond loopback it needs a `token`: a call without `authorization: Bearer <token>` metadata gets
  UNAUTHENTICATED before its message is decoded (`collector.sources.otlp_auth`).
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent import futures

# meshscope forks Envoy and app processes while the receiver runs; gRPC's fork handlers are not needed for that
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import grpc  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import pyarrow as pa

from collector import selfmetrics
from collector.parse.otel_access_log import OtelLogError, decode_access_logs
from collector.parse.otlp import OtlpError, decode_traces
from collector.sources.otlp_auth import authorized, check_bind
from collector.store import TelemetryStore

log = logging.getLogger(__name__)

DEFAULT_PORT = 4317
DEFAULT_MAX_MESSAGE = 16 * 2**20
# the rows waiting for the writer, in their Arrow bytes (~160 a row of Istio's access-log fields, more with long paths
# and headers): 500,000 rows alone, the bound before, let the queue hold 80 MB to a few hundred (#18)
MAX_PENDING_BYTES = 32 * 2**20
LOGS_SERVICE = logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name
TRACE_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name


class _TokenCheck(grpc.ServerInterceptor):
    """Every call must carry `authorization: Bearer <token>` metadata; others get UNAUTHENTICATED from a handler
    that never decodes their message (collector.sources.otlp_auth)."""

    def __init__(self, token: str) -> None:
        self.token = token

        def refuse(_request: bytes, context: grpc.ServicerContext) -> None:
            selfmetrics.OTLP_GRPC_REQUESTS.labels("unknown", grpc.StatusCode.UNAUTHENTICATED.name).inc()
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "this receiver needs 'authorization: Bearer <token>' metadata (its --otlp-token-file)")

        self._refuse = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001, ANN201 - grpc's signature
        header = next((v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"), None)
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        return continuation(handler_call_details) if authorized(header, self.token) else self._refuse


class OtlpGrpcReceiver:
    """Serves OTLP/gRPC on host:port (0 = any free port) and writes requests rows and spans into `store`."""

    name = "otlp_grpc"

    def __init__(self, store: TelemetryStore, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE, trust_domain: str = "cluster.local",
                 workers: int = 4, flush_interval: float = 0.25, max_pending_rows: int = 500_000,
                 max_pending_bytes: int = MAX_PENDING_BYTES,
                 token: str | None = None, unauthenticated: bool = False) -> None:
        if not unauthenticated:
            check_bind(host, token)  # beyond loopback: a token, or no receiver (collector.sources.otlp_auth)
        self.store = store
        self.flush_interval = flush_interval
        self.max_pending_rows = max_pending_rows
        self.max_pending_bytes = max_pending_bytes
        self._pending: list[pa.Table] = []
        self._pending_rows = 0  # queued and being stored: counted until the store has them
        self._pending_bytes = 0  # their Arrow bytes: what the queue holds in memory
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self.store_errors = 0  # failed flushes (the batch is kept and tried again)
        self.rows_lost = 0  # acknowledged rows dropped: refused by the store, or the store still failing at stop()
        self._failing = False  # the last flush failed: logged once per run of failures
        self.max_message_bytes = max_message_bytes
        self.trust_domain = trust_domain
        self.requests_received = 0
        self.spans_received = 0
        self.records_rejected = 0
        hard_cap = 2 * max_message_bytes + 2**20
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
                                   options=[("grpc.max_receive_message_length", hard_cap),
                                            ("grpc.max_send_message_length", 2**20),
                                            ("grpc.so_reuseport", 0)],
                                   # bounded like OTLP/HTTP: past this many RPCs in flight, RESOURCE_EXHAUSTED (retried)
                                   maximum_concurrent_rpcs=4 * workers,
                                   interceptors=[_TokenCheck(token)] if token else None)
        self._server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(
                self._export_logs, response_serializer=ExportLogsServiceResponse.SerializeToString)}),
            grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(
                self._export_traces, response_serializer=ExportTraceServiceResponse.SerializeToString)}),
        ))
        self._host = host
        try:
            self._port = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError as exc:  # grpc reports a busy port this way
            raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}: {exc}") from None
        if not self._port:
            raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
        self._started = False
        selfmetrics.watch_store(store)

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        """host:port for gRPC exporters (Envoy's grpc_service cluster, an OTel Collector's otlp exporter)."""
        return f"{self._host}:{self._port}"

    @property
    def pending_bytes(self) -> int:
        """Arrow bytes of the rows waiting for the writer (bounded by `max_pending_bytes`)."""
        return self._pending_bytes

    # -- Source protocol
    def poll(self) -> int:
        return 0  # push-based

    def start(self) -> None:
        if not self._started:
            self._stopping.clear()
            self._writer = threading.Thread(target=self._write_loop, name="otlp-grpc-writer", daemon=True)
            self._writer.start()
            self._server.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._server.stop(grace=1.0).wait(5)
            self._stopping.set()
            self._wake.set()
            if self._writer:
                self._writer.join(timeout=10)  # stores what was accepted
            self._started = False

    @selfmetrics.counts_cpu("otlp_grpc")
    def flush(self) -> int:
        """Store every accepted row now; returns how many (the writer does this every `flush_interval`).
        When the store fails, the rows stay queued (first in line) for the next flush."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        nbytes = sum(t.nbytes for t in batch)
        table = pa.concat_tables(batch) if len(batch) > 1 else batch[0]
        try:
            n = self.store.add_requests(table)
        except ValueError as exc:  # these rows can never be stored: drop them, not every batch behind them
            self._release(table.num_rows, nbytes)
            self._lose(table.num_rows, "refused", exc)
            return 0
        except Exception as exc:  # noqa: BLE001 - the failed commit stored nothing: keep the rows, try again
            with self._pending_lock:
                self._pending[:0] = [table]
            self.store_errors += 1
            selfmetrics.STORE_FAILURES.labels(self.name).inc()
            if not self._failing:
                self._failing = True
                log.warning("OTLP/gRPC access logs: the store failed (%d rows kept, retried every %.2f s): %s",
                            table.num_rows, self.flush_interval, exc)
            return 0
        self._release(table.num_rows, nbytes)
        if self._failing:
            self._failing = False
            log.warning("OTLP/gRPC access logs: the store works again (%d kept rows stored)", table.num_rows)
        self.requests_received += n
        selfmetrics.count_ingested(self.name, "requests", n)
        return n

    def _release(self, rows: int, nbytes: int) -> None:
        with self._pending_lock:
            self._pending_rows -= rows
            self._pending_bytes -= nbytes

    def _lose(self, rows: int, reason: str, exc: BaseException | None) -> None:
        self.rows_lost += rows
        selfmetrics.ROWS_LOST.labels(self.name, reason).inc(rows)
        log.error("OTLP/gRPC access logs: %d acknowledged rows lost (%s): %s", rows, reason, exc)

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()
        self.flush()
        with self._pending_lock:  # the store still fails: nothing will take these rows any more
            lost, self._pending, self._pending_rows = sum(t.num_rows for t in self._pending), [], 0
            self._pending_bytes = 0
        if lost:
            self._lose(lost, "stopped", None)

    def __enter__(self) -> OtlpGrpcReceiver:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- handlers (raw bytes in)
    def _refuse(self, context: grpc.ServicerContext, signal: str, code: grpc.StatusCode, message: str) -> None:
        selfmetrics.OTLP_GRPC_REQUESTS.labels(signal, code.name).inc()
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED):
            selfmetrics.count_malformed(self.name, signal)
        context.abort(code, message)

    def _check_size(self, body: bytes, context: grpc.ServicerContext, signal: str) -> None:
        if len(body) > self.max_message_bytes:
            self._refuse(context, signal, grpc.StatusCode.RESOURCE_EXHAUSTED,
                         f"message of {len(body)} bytes is over the {self.max_message_bytes}-byte limit")

    @selfmetrics.counts_cpu("otlp_grpc")
    def _export_logs(self, body: bytes, context: grpc.ServicerContext) -> ExportLogsServiceResponse:
        self._check_size(body, context, "logs")
        try:
            result = decode_access_logs(body, origin=f"otlp-grpc:{context.peer()}", trust_domain=self.trust_domain)
        except OtelLogError as exc:
            self._refuse(context, "logs", grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        nbytes = result.table.nbytes
        with self._pending_lock:
            # bounded in bytes as well as rows (a row's size varies with its paths and headers); one call's rows
            # are always taken when nothing waits, however large (max_message_bytes bounds them)
            full = (self._pending_rows + result.table.num_rows > self.max_pending_rows
                    or (self._pending_bytes > 0 and self._pending_bytes + nbytes > self.max_pending_bytes))
            if not full and result.table.num_rows:
                self._pending.append(result.table)
                self._pending_rows += result.table.num_rows
                self._pending_bytes += nbytes
        if full:  # the store is behind: the exporter retries UNAVAILABLE later
            if not self._failing:  # a failing store is retried on the writer's schedule, not per refused call
                self._wake.set()
            self._refuse(context, "logs", grpc.StatusCode.UNAVAILABLE,
                         f"{self._pending_rows} rows ({self._pending_bytes} bytes) waiting for the store; retry later")
        if not self._started:  # used without start(): store at once
            self.flush()
        reply = ExportLogsServiceResponse()
        if result.rejected:
            self.records_rejected += result.rejected
            selfmetrics.count_malformed(self.name, "log_records", result.rejected)
            reply.partial_success.rejected_log_records = result.rejected
            reply.partial_success.error_message = "; ".join(result.errors)[:1000]
        selfmetrics.OTLP_GRPC_REQUESTS.labels("logs", "OK").inc()
        return reply

    @selfmetrics.counts_cpu("otlp_grpc")
    def _export_traces(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        self._check_size(body, context, "traces")
        try:
            result = decode_traces(body)
        except OtlpError as exc:
            self._refuse(context, "traces", grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            n = self.store.add_spans(result.table)
        except Exception as exc:
            log.warning("OTLP/gRPC spans not stored: %s", exc)
            self._refuse(context, "traces", grpc.StatusCode.UNAVAILABLE, f"telemetry store unavailable: {exc}")
        self.spans_received += n
        selfmetrics.count_ingested(self.name, "spans", n)
        reply = ExportTraceServiceResponse()
        if result.rejected:
            selfmetrics.count_malformed(self.name, "spans", result.rejected)
            reply.partial_success.rejected_spans = result.rejected
            reply.partial_success.error_message = "; ".join(result.errors)[:1000]
        selfmetrics.OTLP_GRPC_REQUESTS.labels("traces", "OK").inc()
        return reply
