"""REST-JSON xDS: Envoy polls `POST /v3/discovery:<type>` and gets a DiscoveryResponse.

A plain threaded HTTP server is enough (no protobuf stack, so no clash with the
`envoy` package). Versions are content hashes per node, type and requested names:
an unchanged config answers `304 Not Modified`, which Envoy's REST fetcher treats
as "nothing new", so idle polling is cheap. Envoy reports the outcome of each
update on its next poll: the accepted `version_info` (ACK) or an `error_detail`
(NACK, the last good config keeps serving). Both are recorded, so the control
plane can wait for a push to land and report rejections with Envoy's message.
"""
from __future__ import annotations

import hashlib
import json
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
WILDCARD = ("type.googleapis.com/envoy.config.listener.v3.Listener", "type.googleapis.com/envoy.config.cluster.v3.Cluster")


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded server that does not print a traceback when a peer resets its connection."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


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
    last_poll: float = 0.0


def _version(resources: list[dict[str, Any]]) -> str:
    return hashlib.sha1(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]


class XdsServer:
    """Serves per-node resources; `set_resources` swaps a whole node's config atomically."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._resources: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._streams: dict[tuple[str, str, tuple[str, ...]], _Stream] = {}
        self.rejections: list[Rejection] = []
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b"{}"
                status, payload = server.handle(self.path, body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = QuietHTTPServer((host, port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="xds-rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- config -------------------------------------------------------------------------
    def set_resources(self, node_id: str, resources: dict[str, dict[str, dict[str, Any]]]) -> None:
        with self._lock:
            self._resources[node_id] = resources

    def remove_node(self, node_id: str) -> None:
        with self._lock:
            self._resources.pop(node_id, None)

    def expected_version(self, node_id: str, type_url: str, names: tuple[str, ...] = ()) -> str:
        with self._lock:
            return _version(self._select(node_id, type_url, names))

    def _select(self, node_id: str, type_url: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
        bucket = self._resources.get(node_id, {}).get(type_url, {})
        if type_url in WILDCARD or not names:
            return [bucket[k] for k in sorted(bucket)] if type_url in WILDCARD else []
        return [bucket[n] for n in names if n in bucket]

    # --- protocol -----------------------------------------------------------------------
    def handle(self, path: str, body: bytes) -> tuple[int, bytes]:
        type_url = TYPE_BY_PATH.get(path)
        if type_url is None:
            return 404, b'{"error": "unknown xDS path"}'
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return 400, b'{"error": "invalid JSON"}'
        node_id = ((req.get("node") or {}).get("id")) or ""
        names = tuple(sorted(req.get("resource_names") or req.get("resourceNames") or []))
        reported = req.get("version_info") or req.get("versionInfo") or ""
        err = req.get("error_detail") or req.get("errorDetail")
        with self._lock:
            self.requests += 1
            key = (node_id, type_url, names)
            st = self._streams.setdefault(key, _Stream())
            st.last_poll = time.monotonic()
            if err:
                if st.sent and st.nacked != st.sent:
                    st.nacked = st.sent
                    self.rejections.append(Rejection(node_id, type_url, st.sent, str(err.get("message", err)), time.time()))
            else:
                st.acked = reported
            resources = self._select(node_id, type_url, names)
            version = _version(resources)
            if node_id not in self._resources or version == reported or version == st.nacked:
                return 304, b""
            st.sent = version
        payload = {"version_info": version, "type_url": type_url, "resources": resources}
        return 200, json.dumps(payload).encode()

    # --- status -------------------------------------------------------------------------
    def status(self, node_id: str) -> dict[str, dict[str, str]]:
        with self._lock:
            return {f"{t.rsplit('.', 1)[-1]}{'/' + ','.join(n) if n else ''}": {"acked": s.acked, "sent": s.sent,
                                                                                "nacked": s.nacked}
                    for (nid, t, n), s in self._streams.items() if nid == node_id}

    def in_sync(self, node_ids: list[str]) -> bool:
        """True when every proxy has applied (or rejected) the config it is currently served."""
        with self._lock:
            for (nid, t, names), s in self._streams.items():
                if nid not in node_ids:
                    continue
                want = _version(self._select(nid, t, names))
                if s.acked != want and s.nacked != want:
                    return False
            return all(any(k[0] == n for k in self._streams) for n in node_ids)

    def rejections_since(self, t: float) -> list[Rejection]:
        with self._lock:
            return [r for r in self.rejections if r.at >= t]
