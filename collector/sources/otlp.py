"""OTLP/HTTP receiver for traces and logs (`POST /v1/traces`, `/v1/logs`), as Envoy and the SDK send.

What the spec and real senders need, and where it is handled:
- Envoy's OTLP exporter sends `transfer-encoding: chunked` with no content-length; a plain
  `http.server` handler would read an empty body. `_read_body` reads both framings.
- `content-encoding: gzip` is decompressed with the same size limit as the raw body, so a
  small compressed body cannot expand without bound.
- Over the limit (default 20 MiB, the spec's recommendation): 413. Undecodable payload or
  unsupported content type: 400 with a `google.rpc.Status` carrying the reason (the sender
  must not retry). Spans the payload holds but we cannot keep (no valid ids): 200 with
  `partial_success.rejected_spans` and a message.
- HTTP/1.1 keep-alive, one thread per connection; binds 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector import selfmetrics
from collector.parse.otel_access_log import decode_access_logs_http
from collector.parse.otlp import OtlpError, decode_logs, decode_traces
from collector.store import TelemetryStore

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 20 * 2**20


class _TooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


class OtlpReceiver:
    """Serves OTLP/HTTP on host:port and writes spans and log records into `store`."""

    name = "otlp"

    def __init__(self, store: TelemetryStore, host: str = "127.0.0.1", port: int = 4318,
                 max_body_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.spans_received = 0
        self.logs_received = 0
        selfmetrics.watch_store(store)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """Base URL for exporters (append /v1/traces or /v1/logs)."""
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"

    # -- Source protocol
    def poll(self) -> int:
        return 0  # push-based: data arrives through HTTP

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="otlp-receiver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling
    def _handle(self, path: str, content_type: str, body: bytes) -> tuple[int, bytes, str]:
        json_reply = content_type.split(";")[0].strip().lower() == "application/json"
        if path == "/v1/traces":
            result = decode_traces(body, content_type)
            n = self.store.add_spans(result.table)
            self.spans_received += n
            selfmetrics.count_ingested(self.name, "spans", n)
            reply = ExportTraceServiceResponse()
            if result.rejected:
                reply.partial_success.rejected_spans = result.rejected
                reply.partial_success.error_message = "; ".join(result.errors)
                selfmetrics.count_malformed("otlp", "spans", result.rejected)
        elif path == "/v1/logs":
            result = decode_logs(body, content_type)
            n = self.store.add_logs(result.table)
            self.logs_received += n
            selfmetrics.count_ingested(self.name, "logs", n)
            access = decode_access_logs_http(body, content_type)  # Envoy OTel access logs -> requests rows (issue 13)
            selfmetrics.count_ingested(self.name, "requests", self.store.add_requests(access.table))
            reply = ExportLogsServiceResponse()
        else:
            raise KeyError(path)
        if json_reply:
            return 200, json_format.MessageToJson(reply).encode(), "application/json"
        return 200, reply.SerializeToString(), "application/x-protobuf"

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "meshscope-otlp"

            def log_message(self, fmt, *args):  # route to logging, not stderr
                log.debug("otlp %s - %s", self.address_string(), fmt % args)

            def do_POST(self):
                path = self.path.split("?")[0]
                signal = path.rsplit("/", 1)[-1] or "unknown"
                ctype = self.headers.get("content-type", "application/x-protobuf")
                json_reply = ctype.split(";")[0].strip().lower() == "application/json"
                if path not in ("/v1/traces", "/v1/logs"):
                    self._drain_quietly()
                    return self._status(404, f"unknown path {path}; this receiver serves /v1/traces and /v1/logs", json_reply, signal)
                try:
                    body = self._read_body()
                    body = self._decompress(body)
                except _TooLarge as exc:
                    self.close_connection = True
                    return self._status(413, str(exc), json_reply, signal)
                except _BadRequest as exc:
                    self.close_connection = True
                    return self._status(400, str(exc), json_reply, signal)
                try:
                    code, payload, out_type = receiver._handle(path, ctype, body)
                except OtlpError as exc:
                    selfmetrics.count_malformed("otlp", signal)
                    return self._status(400, str(exc), json_reply, signal)
                except ValueError as exc:  # store refused the rows (should not happen after decoding)
                    selfmetrics.count_malformed("otlp", signal)
                    return self._status(400, f"payload rejected: {exc}", json_reply, signal)
                except Exception as exc:  # store closed or failing: retryable for the sender
                    log.warning("OTLP %s not stored: %s", signal, exc)
                    return self._status(503, f"telemetry store unavailable: {exc}", json_reply, signal)
                selfmetrics.OTLP_REQUESTS.labels(signal, str(code)).inc()
                self._send(code, payload, out_type)

            def do_GET(self):
                self._status(405, "use POST", False, "unknown")

            # -- helpers
            def _read_body(self) -> bytes:
                limit = receiver.max_body_bytes
                te = (self.headers.get("transfer-encoding") or "").lower()
                if "chunked" in te:
                    parts, total = [], 0
                    while True:
                        line = self.rfile.readline(1024)
                        if not line:
                            raise _BadRequest("chunked body ended early")
                        try:
                            size = int(line.split(b";")[0].strip(), 16)
                        except ValueError:
                            raise _BadRequest("bad chunk size line") from None
                        if size == 0:
                            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(parts)
                        total += size
                        if total > limit:
                            raise _TooLarge(f"body over the {limit}-byte limit")
                        chunk = self.rfile.read(size)
                        if len(chunk) != size:
                            raise _BadRequest("chunked body ended early")
                        parts.append(chunk)
                        self.rfile.readline(1024)  # CRLF after the chunk
                length = self.headers.get("content-length")
                if length is None:
                    raise _BadRequest("a body needs content-length or chunked transfer-encoding")
                try:
                    n = int(length)
                except ValueError:
                    raise _BadRequest(f"bad content-length {length!r}") from None
                if n < 0:
                    raise _BadRequest(f"bad content-length {length!r}")
                if n > limit:
                    raise _TooLarge(f"body of {n} bytes is over the {limit}-byte limit")
                body = self.rfile.read(n)
                if len(body) != n:
                    raise _BadRequest("body shorter than content-length")
                return body

            def _decompress(self, body: bytes) -> bytes:
                enc = (self.headers.get("content-encoding") or "identity").lower().strip()
                if enc in ("identity", ""):
                    return body
                if enc != "gzip":
                    raise _BadRequest(f"unsupported content-encoding {enc!r} (gzip or none)")
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                try:
                    out = d.decompress(body, receiver.max_body_bytes + 1)
                except zlib.error as exc:
                    raise _BadRequest(f"body is not valid gzip: {exc}") from None
                if len(out) > receiver.max_body_bytes or d.unconsumed_tail:
                    raise _TooLarge(f"decompressed body over the {receiver.max_body_bytes}-byte limit")
                return out

            def _drain_quietly(self) -> None:
                try:
                    self._read_body()
                except (_TooLarge, _BadRequest):
                    self.close_connection = True

            def _status(self, code: int, message: str, json_reply: bool, signal: str) -> None:
                selfmetrics.OTLP_REQUESTS.labels(signal, str(code)).inc()
                grpc_code = {400: 3, 404: 5, 405: 12, 413: 8, 503: 14}.get(code, 2)
                status = status_pb2.Status(code=grpc_code, message=message)
                if json_reply:
                    self._send(code, json_format.MessageToJson(status).encode(), "application/json")
                else:
                    self._send(code, status.SerializeToString(), "application/x-protobuf")

            def _send(self, code: int, payload: bytes, ctype: str) -> None:
                try:
                    self.send_response(code)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(payload)))
                    if self.close_connection:
                        self.send_header("connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # the exporter gave up waiting (its timeout); what it sent is stored already
                    self.close_connection = True
                    log.debug("OTLP client went away before the reply")

        return Handler

