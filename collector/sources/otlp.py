"""OTLP/HTTP receiver for traces and logs (`POST /v1/traces`, `/v1/logs`), as Envoy and the SDK send.

What the spec and real senders need, and where it is handled:
- One event loop (aiohttp) holds every connection: an idle keep-alive connection or a slow
  sender costs a socket, not a thread. Decoding and storing run on a small fixed pool
  (`workers`), so a burst of senders never becomes a burst of threads.
- Bounded work: at most `max_connections` open connections (more get 503 and are closed), a
  body must arrive within `read_timeout_s` (else 408), idle keep-alive connections close after
  `idle_timeout_s`. Batches received but not yet stored are bounded in count and bytes
  (`collector.sources.backpressure.Admission`); past that the receiver answers 503 with
  `Retry-After`, which OpenTelemetry exporters honour by backing off and retrying. Bodies still
  arriving count against the same byte bound: a content-length is reserved before a byte is read
  (503 at once when it does not fit), a chunked body chunk by chunk (cut with 503 when the next
  chunk does not fit), so many senders of large bodies cannot hold more than the bound between them.
- Envoy's OTLP exporter sends `transfer-encoding: chunked` with no content-length; both
  framings are read. `content-encoding: gzip` is decompressed with the same size limit as the
  raw body, so a small compressed body cannot expand without bound.
- Over the limit (default 20 MiB, the spec's recommendation): 413. Undecodable payload
  (`OtlpDecodeError`) or unsupported content type: 400 with a `google.rpc.Status` carrying the
  reason (the sender must not retry). Spans the payload holds but we cannot keep (no valid
  ids): 200 with `partial_success.rejected_spans` and a message.
- Protobuf trace exports can be batched (`trace_batch=True`, `collector.sources.trace_batch`):
  bodies already waiting when the batch worker is free are decoded and stored together (no wait
  for a lone sender; `trace_linger_s` > 0 waits that long for more), each sender still answered
  for its own body; the per-call fixed cost of decoding and storing is paid once per batch.
- Trace ingest can sample (`trace_sample`, 0..1, whole traces by trace-id hash); spans sampled
  out are counted in `meshscope_otlp_spans_sampled_out_total`, refused batches in
  `meshscope_otlp_requests_total{code="503"}`.
- Binds 127.0.0.1 unless told otherwise; bound beyond loopback it needs a `token` and answers a request
  without `Authorization: Bearer <token>` with 401 before reading its body (`collector.sources.otlp_auth`).
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client import Counter

from collector import selfmetrics
from collector.parse.otel_access_log import decode_access_logs_http
from collector.parse.otlp import OtlpDecodeError, OtlpResult, decode_logs, decode_traces
from collector.sources.backpressure import Admission, Overloaded, TraceSampler
from collector.sources.otlp_auth import authorized, check_bind
from collector.sources.trace_batch import TraceBatcher
from collector.store import TelemetryStore

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 20 * 2**20
SAMPLED_OUT = Counter("meshscope_otlp_spans_sampled_out_total",
                      "Spans the OTLP receivers dropped by trace sampling (trace_sample < 1).",
                      registry=selfmetrics.REGISTRY)
_GRPC_CODE = {400: 3, 401: 16, 404: 5, 405: 12, 408: 4, 413: 8, 429: 8, 503: 14}


_SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs"}


def _from_web_page(headers) -> str | None:
    """Why a request comes from a web page (only browsers send `Origin` and `Sec-Fetch-*`), or None.

    OTLP senders here are sidecars, collectors and SDKs, never pages. A page the operator opens
    could otherwise POST spans and access-log records with `fetch(..., {mode: "no-cors"})` and an
    ArrayBuffer body (no content type, read as protobuf): forged 503s, findings and alerts.
    """
    for name in ("origin", "sec-fetch-site", "sec-fetch-mode"):
        if name in headers:
            return (f"refused: OTLP exports come from proxies and SDKs, not web pages ({name} header: "
                    f"{headers[name][:80]!r})")
    return None


class _CountMalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (too many or too long headers, a bad request line, bad chunk framing)
    with a whole traceback at ERROR, before any handler runs, after answering it 400 itself. Anyone who reaches the
    port could fill the operator's log that way, so these are counted (`meshscope_otlp_requests_total{code="400"}`)
    and not logged; any other error still is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            selfmetrics.OTLP_REQUESTS.labels("unknown", "400").inc()
            return False
        return True


_PROTOCOL_LOG = logging.getLogger(f"{__name__}.protocol")
_PROTOCOL_LOG.addFilter(_CountMalformedRequests())


class _TooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


class OtlpReceiver:
    """Serves OTLP/HTTP on host:port and writes spans and log records into `store`."""

    name = "otlp"

    def __init__(self, store: TelemetryStore, host: str = "127.0.0.1", port: int = 4318,
                 max_body_bytes: int = DEFAULT_MAX_BODY, *, workers: int = 2, max_connections: int = 256,
                 max_pending: int = 16, max_pending_bytes: int = 64 * 2**20, read_timeout_s: float = 10.0,
                 idle_timeout_s: float = 15.0, retry_after_s: int = 2, trace_sample: float = 1.0,
                 trace_linger_s: float = 0.0, trace_batch: bool = False,
                 token: str | None = None, unauthenticated: bool = False) -> None:
        if not unauthenticated:
            check_bind(host, token)  # beyond loopback: a token, or no receiver (collector.sources.otlp_auth)
        self.token = token
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.admission = Admission(max_pending, max_pending_bytes, retry_after_s)
        self.sampler = TraceSampler(trace_sample)
        # a batch goes at half the admitted bodies: lingering must never be what makes the receiver shed
        self.batcher = TraceBatcher(store, linger_s=trace_linger_s, keep=self.sampler.keep,
                                    max_batch_bodies=max(1, max_pending // 2)) if trace_batch or trace_linger_s > 0 else None
        self.spans_received = 0
        self.logs_received = 0
        self._workers = workers
        # bound now (like a server object would), so the port is known and a clash fails here
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(512)
        except OSError as exc:
            self._sock.close()
            reason = exc.strerror or str(exc)
            raise OSError(exc.errno, f"cannot listen for OTLP/HTTP on {host}:{port}: {reason}"
                                     " (pass --otlp-port with a free port, or 0 for any)") from None
        self._sock.setblocking(False)
        self._address = self._sock.getsockname()[:2]
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        selfmetrics.watch_store(store)

    @property
    def port(self) -> int:
        return self._address[1]

    @property
    def endpoint(self) -> str:
        """Base URL for exporters (append /v1/traces or /v1/logs)."""
        host = self._address[0]
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections open right now."""
        runner = self._runner
        return len(runner.server.connections) if runner is not None and runner.server is not None else 0

    # -- Source protocol
    def poll(self) -> int:
        return 0  # push-based: data arrives through HTTP

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="otlp-ingest")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failed.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="otlp-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]

    async def _serve(self) -> None:
        app = web.Application(client_max_size=self.max_body_bytes + 1)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, auto_decompress=False,
                                     keepalive_timeout=self.idle_timeout_s, shutdown_timeout=1.0, logger=_PROTOCOL_LOG)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock, shutdown_timeout=1.0).start()

    def stop(self) -> None:
        """Stop accepting, close connections, and return within a few seconds whatever is in flight."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            async def down() -> None:
                if self._runner is not None:
                    await self._runner.cleanup()
                rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in rest:  # handlers of connections that were still open
                    t.cancel()
                await asyncio.wait(rest, timeout=2) if rest else None
            try:
                asyncio.run_coroutine_threadsafe(down(), loop).result(timeout=5)
            except Exception as exc:  # noqa: BLE001 - stopping must finish
                log.debug("OTLP receiver cleanup: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        self._thread = None
        if self.batcher is not None:
            self.batcher.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._sock.close()

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling (decode and store: on the worker pool)
    @selfmetrics.counts_cpu("otlp")
    def _handle(self, path: str, content_type: str, body: bytes) -> tuple[int, bytes, str]:
        json_reply = content_type.split(";")[0].strip().lower() == "application/json"
        if path == "/v1/traces":
            result = decode_traces(body, content_type)
            kept = self.sampler.keep(result.table)
            n = self.store.add_spans(kept)
            reply = self._traces_stored(result, n)
        elif path == "/v1/logs":
            result = decode_logs(body, content_type)
            access = decode_access_logs_http(body, content_type)  # Envoy OTel access logs -> requests rows (issue 13)
            # one commit for both: a sender retries a failed export whole, so one table stored alone would be twice
            n, requests = self.store.add_logs_and_requests(result.table, access.table)
            self.logs_received += n
            selfmetrics.count_ingested(self.name, "logs", n)
            selfmetrics.count_ingested(self.name, "requests", requests)
            reply = ExportLogsServiceResponse()
            if result.rejected:  # records refused one by one (OTLP/JSON): the sender learns which and why
                reply.partial_success.rejected_log_records = result.rejected
                reply.partial_success.error_message = "; ".join(result.errors)
                selfmetrics.count_malformed("otlp", "logs", result.rejected)
        else:
            raise KeyError(path)
        if json_reply:
            return 200, json_format.MessageToJson(reply).encode(), "application/json"
        return 200, reply.SerializeToString(), "application/x-protobuf"

    def _traces_stored(self, result: OtlpResult, kept: int) -> ExportTraceServiceResponse:
        """Count one trace export's outcome (`kept` of its rows stored) and build its answer."""
        if kept < result.table.num_rows:
            SAMPLED_OUT.inc(result.table.num_rows - kept)
        self.spans_received += kept
        selfmetrics.count_ingested(self.name, "spans", kept)
        reply = ExportTraceServiceResponse()
        if result.rejected:
            reply.partial_success.rejected_spans = result.rejected
            reply.partial_success.error_message = "; ".join(result.errors)
            selfmetrics.count_malformed("otlp", "spans", result.rejected)
        return reply

    async def _batched_traces(self, body: bytes) -> tuple[int, bytes, str]:
        """A protobuf trace export through the batcher (decoded and stored with its neighbours)."""
        stored = await asyncio.wrap_future(self.batcher.submit(body))
        return 200, self._traces_stored(stored.result, stored.kept).SerializeToString(), "application/x-protobuf"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        signal = _SIGNALS.get(path, "unknown")  # a metric label: from a closed set, never from the request
        ctype = request.headers.get("content-type", "application/x-protobuf")
        json_reply = ctype.split(";")[0].strip().lower() == "application/json"
        if request.method != "POST":
            return _status(405, "use POST", False, "unknown")
        page = _from_web_page(request.headers)
        if page:
            return _status(403, page, json_reply, signal, close=True)
        if not authorized(request.headers.get("authorization"), self.token):  # before a byte of the body is read
            return _status(401, "this receiver needs 'Authorization: Bearer <token>' (its --otlp-token-file)",
                           json_reply, signal, close=True, authenticate=True)
        if path not in ("/v1/traces", "/v1/logs"):
            return _status(404, f"unknown path {path}; this receiver serves /v1/traces and /v1/logs", json_reply,
                           signal, close=True)
        if self.connections > self.max_connections:
            self.admission.shed += 1
            return _status(503, f"too many connections ({self.connections}, limit {self.max_connections}); "
                           f"retry in {self.admission.retry_after_s}s", json_reply, signal, close=True,
                           retry_after=self.admission.retry_after_s)
        held = [0]  # bytes of this body reserved in the admission bound while it arrives
        try:
            body = await asyncio.wait_for(self._read_body(request, held), self.read_timeout_s)
            body = self._decompress(request, body)
        except asyncio.TimeoutError:
            return _status(408, f"body not received within {self.read_timeout_s:g}s", json_reply, signal, close=True)
        except _TooLarge as exc:
            return _status(413, str(exc), json_reply, signal, close=True)
        except _BadRequest as exc:
            return _status(400, str(exc), json_reply, signal, close=True)
        except Overloaded as exc:  # the body would not fit beside what is held: refused before it is read
            return _status(503, str(exc), json_reply, signal, close=True, retry_after=exc.retry_after_s)
        finally:
            self.admission.release(held[0])
        try:
            self.admission.enter(len(body))
        except Overloaded as exc:
            return _status(503, str(exc), json_reply, signal, retry_after=exc.retry_after_s)
        try:
            if (self.batcher is not None and path == "/v1/traces"
                    and ctype.split(";")[0].strip().lower() in ("application/x-protobuf", "application/protobuf")):
                code, payload, out_type = await self._batched_traces(body)
            else:
                loop = asyncio.get_running_loop()
                code, payload, out_type = await loop.run_in_executor(self._pool, self._handle, path, ctype, body)
        except OtlpDecodeError as exc:  # undecodable: the sender must not retry it
            selfmetrics.count_malformed("otlp", signal)
            return _status(400, str(exc), json_reply, signal)
        except ValueError as exc:  # store refused the rows (should not happen after decoding)
            selfmetrics.count_malformed("otlp", signal)
            return _status(400, f"payload rejected: {exc}", json_reply, signal)
        except Exception as exc:  # store closed or failing: retryable for the sender
            log.warning("OTLP %s not stored: %s", signal, exc)
            return _status(503, f"telemetry store unavailable: {exc}", json_reply, signal,
                           retry_after=self.admission.retry_after_s)
        finally:
            self.admission.leave(len(body))
        selfmetrics.OTLP_REQUESTS.labels(signal, str(code)).inc()
        return web.Response(status=code, body=payload, headers={"content-type": out_type})

    async def _read_body(self, request: web.Request, held: list[int]) -> bytes:
        """The body, bounded as it arrives; `held[0]` is what it has reserved in the admission bound (the
        caller releases it). Over the size limit: 413; not fitting beside the bodies already held: 503."""
        limit = self.max_body_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            raise _TooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
        if declared is None and "chunked" not in (request.headers.get("transfer-encoding") or "").lower():
            if request.can_read_body:
                raise _BadRequest("a body needs content-length or chunked transfer-encoding")
        if declared:
            self.admission.reserve(declared)  # before a byte is read: the sender learns at once
            held[0] = declared
        parts, total = [], 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise _TooLarge(f"body over the {limit}-byte limit")
                if total > held[0]:  # chunked (or more than declared): reserve what arrived
                    self.admission.reserve(total - held[0])
                    held[0] = total
                parts.append(chunk)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise _BadRequest(f"body ended early: {exc}") from None
        except Exception as exc:  # aiohttp's payload errors (bad chunk framing, ...)
            if isinstance(exc, (_TooLarge, Overloaded)):
                raise
            raise _BadRequest(f"unreadable body: {exc}") from None
        return b"".join(parts)

    def _decompress(self, request: web.Request, body: bytes) -> bytes:
        enc = (request.headers.get("content-encoding") or "identity").lower().strip()
        if enc in ("identity", ""):
            return body
        if enc != "gzip":
            raise _BadRequest(f"unsupported content-encoding {enc!r} (gzip or none)")
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(body, self.max_body_bytes + 1)
        except zlib.error as exc:
            raise _BadRequest(f"body is not valid gzip: {exc}") from None
        if len(out) > self.max_body_bytes or d.unconsumed_tail:
            raise _TooLarge(f"decompressed body over the {self.max_body_bytes}-byte limit")
        return out


def _status(code: int, message: str, json_reply: bool, signal: str, *, close: bool = False,
            retry_after: int | None = None, authenticate: bool = False) -> web.Response:
    """An error answer as OTLP/HTTP asks: a google.rpc.Status in the request's encoding."""
    selfmetrics.OTLP_REQUESTS.labels(signal, str(code)).inc()
    status = status_pb2.Status(code=_GRPC_CODE.get(code, 2), message=message)
    headers = {"content-type": "application/json" if json_reply else "application/x-protobuf"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if authenticate:
        headers["www-authenticate"] = 'Bearer realm="meshscope-otlp"'
    if close:
        headers["connection"] = "close"
    body = json_format.MessageToJson(status).encode() if json_reply else status.SerializeToString()
    resp = web.Response(status=code, body=body, headers=headers)
    if close:
        resp.force_close()
    return resp
