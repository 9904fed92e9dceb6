"""REST-JSON xDS: Envoy polls `POST /v3/discovery:<type>` and gets a DiscoveryResponse.

A plain threaded HTTP server is enough (no protobuf stack, so no clash with the
`envoy` package). Versions are content hashes per node, type and requested names.
A poll whose config is unchanged is *held* (long poll) until the config changes or
`hold_s` passes, then answered `304 Not Modified` (Envoy's REST fetcher treats it as
"nothing new"): a push reaches a waiting Envoy at once, and an idle mesh costs one
poll per stream every `hold_s` (the bundled mesh holds 25 s under Envoy's 60 s request
timeout: an idle demo's xDS costs next to nothing, and a held answer never races the timeout). Envoy reports the outcome of each
update on its next poll: the accepted `version_info` (ACK) or the previous version
(NACK, the last good config keeps serving; REST carries no error_detail, so an answer
that never reached Envoy would read the same: an answer whose write failed is
therefore forgotten and sent again, never taken for a rejection). Both are recorded, so the control
plane can wait for a push to land and report rejections with Envoy's message.

Like istiod, the server authenticates every proxy before serving it: it speaks only
TLS, requires a client certificate signed by the mesh CA, and serves a node id only
to a client whose certificate carries that node's SPIFFE identity and was issued to
that very node (anything else is a 403). So no local process can read another
workload's config or SDS private key, not even one of a workload sharing its
service account.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TYPE_BY_PATH = {
    "/v3/discovery:listeners": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "/v3/discovery:clusters": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "/v3/discovery:routes": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "/v3/discovery:secrets": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
}
MAX_REQUEST_BYTES = 1024 * 1024
WILDCARD = ("type.googleapis.com/envoy.config.listener.v3.Listener", "type.googleapis.com/envoy.config.cluster.v3.Cluster")


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded server that does not print a traceback when a peer resets its connection."""

    daemon_threads = True
    request_queue_size = 256  # many Envoys connect at once (one connection per held poll)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


_BUSY = b'{"error": "too many open connections; retry shortly"}'
BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY), _BUSY))


class BoundedHTTPServer(QuietHTTPServer):
    """A QuietHTTPServer with a cap on open connections: one past it is answered 503 at once and closed.

    Pair it with a `DeadlineHandler`, so a connection that trickles its request (slowloris)
    loses its thread after `read_timeout` seconds instead of holding it forever.
    """

    max_connections = 64
    refusal = BUSY_RESPONSE  # what an over-cap client reads (b"" for TLS servers: it expects a handshake)

    def __init__(self, *args: Any, max_connections: int | None = None, **kw: Any) -> None:
        if max_connections is not None:
            self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self.refused = 0
        super().__init__(*args, **kw)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            try:
                if self.refusal:
                    request.settimeout(1.0)
                    request.sendall(self.refusal)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _DeadlineReader:
    """The request stream of one connection, refusing to wait past the current request's deadline."""

    def __init__(self, raw: Any, sock: socket.socket, idle: float) -> None:
        self._raw, self._sock, self._idle = raw, sock, idle
        self.deadline = time.monotonic() + idle

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not received within its deadline")
        self._sock.settimeout(min(self._idle, left))

    def readline(self, *args: Any) -> bytes:
        self._arm()
        try:
            return self._raw.readline(*args)
        finally:
            self._sock.settimeout(self._idle)

    def read(self, *args: Any) -> bytes:
        self._arm()
        try:
            return self._raw.read(*args)
        finally:
            self._sock.settimeout(self._idle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class DeadlineHandler(BaseHTTPRequestHandler):
    """A request handler whose request (line, headers and body) must arrive within `read_timeout` seconds.

    `timeout` bounds each gap (and writes); `read_timeout` bounds the whole request however
    slowly it trickles in, counted from when the handler starts waiting for it.
    """

    timeout = 10.0
    read_timeout = 10.0

    def setup(self) -> None:
        super().setup()
        self.rfile = _DeadlineReader(self.rfile, self.connection, self.timeout)  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        self.rfile.deadline = time.monotonic() + self.read_timeout  # type: ignore[attr-defined]
        try:
            super().handle_one_request()
        except TimeoutError:
            self.close_connection = True


@dataclass(frozen=True)
class ServerTLS:
    """What the xDS server needs for mutual TLS: its own certificate and the root that signs clients."""

    cert_pem: str
    key_pem: str
    root_pem: str


def server_context(tls: ServerTLS) -> ssl.SSLContext:
    """A TLS 1.2+ server context that requires a client certificate chaining to `tls.root_pem`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=tls.root_pem)
    fd, path = tempfile.mkstemp(prefix="meshscope-xds-", suffix=".pem")  # ssl loads keys from files only; 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(tls.cert_pem + tls.key_pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


@dataclass(frozen=True)
class Peer:
    """Who a verified client certificate names: its SPIFFE id ("" if none) and serial number."""

    identity: str
    serial: int


def peer_of(conn: ssl.SSLSocket) -> Peer:
    cert = conn.getpeercert() or {}
    identity = next((v for k, v in cert.get("subjectAltName", ()) if k == "URI" and v.startswith("spiffe://")), "")
    try:
        serial = int(cert.get("serialNumber", ""), 16)
    except ValueError:
        serial = -1
    return Peer(identity, serial)


class MutualTLSServer(BoundedHTTPServer):
    """QuietHTTPServer over mutual TLS; the handshake runs on the connection's own thread.

    A client that speaks plain HTTP, sends no certificate, or one the mesh CA did not sign
    fails the handshake and gets no HTTP answer at all. `set_tls` swaps the serving
    certificate for new connections (rotation) without touching open ones.
    """

    handshake_timeout = 5.0
    max_connections = 1024  # a held poll per xDS stream: ~6 per sidecar
    refusal = b""

    def __init__(self, address: tuple[str, int], handler: type, tls: ServerTLS):
        self._ctx = server_context(tls)
        self.handshake_failures = 0
        super().__init__(address, handler)

    def set_tls(self, tls: ServerTLS) -> None:
        self._ctx = server_context(tls)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        request.settimeout(self.handshake_timeout)
        try:
            conn = self._ctx.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            self.handshake_failures += 1
            return
        try:
            conn.settimeout(None)
            super().finish_request(conn, client_address)
        finally:
            conn.close()


@dataclass
class Rejection:
    node_id: str
    type_url: str
    version: str
    message: str
    at: float


@dataclass
class _Stream:
    sent: str = ""  # the version last sent
    acked: str = ""  # the version Envoy last reported as applied
    nacked: str = ""  # a version Envoy rejected (not re-sent until the config changes)
    last_poll: float = 0.0  # when a poll last arrived or was answered
    holding: int = 0  # polls of this stream held right now (a live Envoy always has one)


def _digest(resource: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(resource, sort_keys=True).encode()).hexdigest()


class XdsServer:
    """Serves per-node resources; `set_resources` swaps a whole node's config atomically.

    `tls` is required: the server never speaks plaintext. Each node is registered with
    the SPIFFE identity allowed to fetch it.
    """

    def __init__(self, tls: ServerTLS, host: str = "127.0.0.1", port: int = 0, hold_s: float = 3.0):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = False
        self.hold_s = hold_s  # keep well below the request_timeout Envoy is given (context.REST_REQUEST_TIMEOUT)
        self.stale_after = 10.0  # a stream with no held poll and no poll for this long is no live subscription
        self._resources: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._digests: dict[str, dict[str, dict[str, str]]] = {}  # node -> type -> name -> content hash
        self._identities: dict[str, str] = {}  # node -> the SPIFFE id allowed to fetch it
        self._serials: dict[str, dict[int, float]] = {}  # node -> its client certs' serials -> not_after (epoch)
        self.denied = 0  # authenticated requests refused because the node is not the client's
        self._streams: dict[tuple[str, str, tuple[str, ...]], _Stream] = {}
        self.rejections: list[Rejection] = []
        self.requests = 0
        server = self

        class Handler(DeadlineHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            timeout = 30.0  # idle gap between polls on a kept-alive connection
            read_timeout = 30.0

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_REQUEST_BYTES:  # a DiscoveryRequest is a few KB
                    self.send_error(400 if length < 0 else 413)
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b"{}"
                status, payload, sent = server._handle(self.path, body, peer_of(self.connection))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                if status == 403:  # a reconnect presents the (maybe rewritten) certificate file again
                    self.send_header("connection", "close")
                    self.close_connection = True
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:
                    if sent is not None:  # Envoy gave up on this poll: the update never reached it
                        server._lost(*sent)
                    raise

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = MutualTLSServer((host, port), Handler, tls)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), name="xds-rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set_tls(self, tls: ServerTLS) -> None:
        """Serve a new certificate (rotation) to connections made from now on."""
        self._httpd.set_tls(tls)

    @property
    def handshake_failures(self) -> int:
        return self._httpd.handshake_failures

    def stop(self) -> None:
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        if self._thread.is_alive():  # shutdown() waits forever for a serve loop that never started
            self._httpd.shutdown()
        self._httpd.server_close()

    # --- config -------------------------------------------------------------------------
    def set_resources(self, node_id: str, resources: dict[str, dict[str, dict[str, Any]]], identity: str) -> None:
        """Replace `node_id`'s config; only a client certificate for `identity` may fetch it."""
        digests = {t: {n: _digest(r) for n, r in items.items()} for t, items in resources.items()}
        with self._lock:
            self._resources[node_id] = resources
            self._digests[node_id] = digests
            self._identities[node_id] = identity
            self._changed.notify_all()

    def allow_certificate(self, node_id: str, serial: int, not_after: float) -> None:
        """Let the certificate `serial` (issued to `node_id`) fetch it until `not_after` (epoch seconds).

        Certificates issued before stay valid until they expire: an Envoy keeps the
        connections it opened with them when its certificate is rotated.
        """
        now = time.time()
        with self._lock:
            serials = self._serials.setdefault(node_id, {})
            for old in [s for s, t in serials.items() if t <= now]:
                del serials[old]
            serials[serial] = not_after

    def remove_node(self, node_id: str) -> None:
        with self._lock:
            self._resources.pop(node_id, None)
            self._digests.pop(node_id, None)
            self._identities.pop(node_id, None)
            self._serials.pop(node_id, None)

    def _authorized(self, node_id: Any, peer: Peer) -> bool:
        if not isinstance(node_id, str) or not peer.identity or self._identities.get(node_id) != peer.identity:
            return False
        return self._serials.get(node_id, {}).get(peer.serial, 0.0) > time.time()

    def _version(self, node_id: str, type_url: str, names: tuple[str, ...]) -> str:
        """The version of what `_select` returns, from per-resource digests computed once per push."""
        bucket = self._digests.get(node_id, {}).get(type_url, {})
        keys = sorted(bucket) if type_url in WILDCARD else [n for n in names if n in bucket]
        return hashlib.sha1("|".join(f"{k}={bucket[k]}" for k in keys).encode()).hexdigest()[:16]

    def versions(self) -> dict[tuple[str, str, tuple[str, ...]], str]:
        """The version each known stream is currently served (to tell which streams a push changed)."""
        with self._lock:
            return {k: self._version(*k) for k in self._streams}

    def _select(self, node_id: str, type_url: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
        bucket = self._resources.get(node_id, {}).get(type_url, {})
        if type_url in WILDCARD or not names:
            return [bucket[k] for k in sorted(bucket)] if type_url in WILDCARD else []
        return [bucket[n] for n in names if n in bucket]

    # --- protocol -----------------------------------------------------------------------
    def handle(self, path: str, body: bytes, peer: Peer) -> tuple[int, bytes]:
        """Answer one poll from the client whose verified certificate is `peer`."""
        return self._handle(path, body, peer)[:2]

    def _lost(self, key: tuple[str, str, tuple[str, ...]], version: str) -> None:
        """The answer carrying `version` for stream `key` could not be written: send it again, never call it a NACK."""
        with self._lock:
            st = self._streams.get(key)
            if st is not None and st.sent == version:
                st.sent = ""

    def _handle(self, path: str, body: bytes, peer: Peer) -> tuple[int, bytes, Any]:
        """`handle`, plus (stream key, version) when the answer carries an update."""
        type_url = TYPE_BY_PATH.get(path)
        if type_url is None:
            return 404, b'{"error": "unknown xDS path"}', None
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return 400, b'{"error": "invalid JSON"}', None
        if not isinstance(req, dict) or not isinstance(req.get("node") or {}, dict):
            return 400, b'{"error": "not a DiscoveryRequest"}', None
        node_id = ((req.get("node") or {}).get("id")) or ""
        with self._lock:
            allowed = self._authorized(node_id, peer)
            self.denied += not allowed
        if not allowed:
            return 403, json.dumps({"error": f"node {str(node_id)[:200]!r} is not served to certificate "
                                             f"{peer.serial:x} ({peer.identity or 'no SPIFFE id'})"}).encode(), None
        names = req.get("resource_names") or req.get("resourceNames") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return 400, b'{"error": "resource_names must be a list of strings"}', None
        names = tuple(sorted(names))
        reported = req.get("version_info") or req.get("versionInfo") or ""
        err = req.get("error_detail") or req.get("errorDetail")
        with self._lock:
            self.requests += 1
            key = (node_id, type_url, names)
            st = self._streams.setdefault(key, _Stream())
            st.last_poll = time.monotonic()
            # Envoy's REST fetcher polls one request at a time, so the poll right after we sent
            # version V reports V if it was applied. Anything else (but "" from a restarted Envoy)
            # means it was rejected; REST carries no error_detail, the reason is in Envoy's log.
            if st.sent and reported != st.sent and reported and st.nacked != st.sent:
                st.nacked = st.sent
                message = str(err.get("message", err)) if err else ""
                self.rejections.append(Rejection(node_id, type_url, st.sent, message, time.time()))
            elif not err:
                st.acked = reported
            deadline = time.monotonic() + self.hold_s
            st.holding += 1
            try:
                while True:
                    version = self._version(node_id, type_url, names)
                    if node_id in self._resources and version != reported and version != st.nacked:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closing:
                        return 304, b"", None
                    self._changed.wait(left)
            finally:
                st.holding -= 1
                st.last_poll = time.monotonic()
            resources = self._select(node_id, type_url, names)
            st.sent = version
        payload = {"version_info": version, "type_url": type_url, "resources": resources}
        return 200, json.dumps(payload).encode(), (key, version)

    # --- status -------------------------------------------------------------------------
    def status(self, node_id: str) -> dict[str, dict[str, str]]:
        with self._lock:
            return {f"{t.rsplit('.', 1)[-1]}{'/' + ','.join(n) if n else ''}": {"acked": s.acked, "sent": s.sent,
                                                                                "nacked": s.nacked}
                    for (nid, t, n), s in self._streams.items() if nid == node_id}

    def in_sync(self, node_ids: list[str], only: set | None = None) -> bool:
        """True when every proxy has applied (or rejected) the config it is currently served."""
        return not self.out_of_sync(node_ids, only)

    def out_of_sync(self, node_ids: list[str], only: set | None = None) -> list[str]:
        """The proxies (node ids) that have not yet applied or rejected what they are served.

        `only` limits the check to some streams (those a push changed), so an unchanged
        slow-polling stream does not delay the answer. A stream with no poll held right now
        and none arrived or answered for `stale_after` seconds is no live subscription (a live
        Envoy polls again right after each answer) and is not waited for. A proxy that has
        never polled (still starting) is out of sync.
        """
        now = time.monotonic()
        behind: set[str] = set()
        with self._lock:
            for key, s in self._streams.items():
                if key[0] not in node_ids or (only is not None and key not in only):
                    continue
                if not s.holding and now - s.last_poll > self.stale_after:
                    continue
                want = self._version(*key)
                if s.acked != want and s.nacked != want:
                    behind.add(key[0])
            seen = {k[0] for k in self._streams}
        return sorted(behind | {n for n in node_ids if n not in seen})

    def rejections_since(self, t: float) -> list[Rejection]:
        with self._lock:
            return [r for r in self.rejections if r.at >= t]
