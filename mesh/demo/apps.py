"""The Bookinfo-shaped demo apps, all served from one Python process (one HTTP server per workload).

productpage -> details, reviews; reviews v2/v3 -> ratings. Like Bookinfo, a failing
dependency degrades the page (productpage still answers 200 and says what is
missing) while the failing edge itself shows the error. Apps call each other through
their own sidecar's outbound port with a Kubernetes-style Host (`reviews:9080`),
forward `x-request-id`, `traceparent` and Bookinfo's user headers, and use
TCP_NODELAY and keep-alive (Envoy's connection reuse plus Nagle costs ~40 ms a hop).

A small admin API per app (`/_meshscope/behavior`, reached directly on the app
port, never through the mesh) lets scenarios add latency or errors, standing in
for a bad deploy. Run: `python -m mesh.demo.apps CONFIG.json`.
"""
from __future__ import annotations

import http.client
import json
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mesh.controlplane.xds_rest import QuietHTTPServer
from mesh.demo.tracing import AppTracer

FORWARD_HEADERS = ("x-request-id", "traceparent", "tracestate", "end-user", "user-agent", "cookie", "x-canary",
                   "x-ms-test")
BASE_LATENCY_MS = {"productpage": 3.0, "details": 2.0, "reviews": 4.0, "ratings": 2.0}


@dataclass
class Behavior:
    """Injected misbehavior of one app (a scenario's 'bad deploy')."""

    extra_latency_ms: float = 0.0
    latency_fraction: float = 1.0
    error_rate: float = 0.0
    error_code: int = 503
    # The app's HTTP keep-alive timeout (ms, 0 = keep connections open): a connection idle this long is closed by
    # the app, sooner than Envoy's upstream idle timeout (1 h), the setup behind the keep-alive race (istio#55138).
    keepalive_timeout_ms: float = 0.0
    # The race itself: the share of requests on a reused connection that arrive just as the app's keep-alive timer
    # closes it. On loopback a FIN lands in microseconds, so that crossing is made explicit: the app closes the
    # connection without answering, and Envoy sees upstream_reset_before_response_started{connection_termination}.
    keepalive_race_rate: float = 0.0


@dataclass
class AppSpec:
    workload: str
    app: str
    version: str
    namespace: str
    port: int
    outbound_port: int
    behavior: Behavior = field(default_factory=Behavior)


class _Peers(threading.local):
    conn: http.client.HTTPConnection | None = None


class App:
    def __init__(self, spec: AppSpec, tracer: AppTracer):
        self.spec = spec
        self.tracer = tracer
        self._peers = _Peers()

    # --- outbound ------------------------------------------------------------------------
    def call(self, host: str, path: str, incoming: dict[str, str]) -> tuple[int, Any]:
        headers = {k: v for k, v in incoming.items() if k in FORWARD_HEADERS}
        headers["host"] = host
        with self.tracer.client_span(f"GET {host}{path}", headers,
                                     {"http.method": "GET", "http.url": f"http://{host}{path}",
                                      "component": "app"}) as span:
            for attempt in (1, 2):  # one retry when a pooled keep-alive connection was closed under us
                conn = self._peers.conn
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.spec.outbound_port, timeout=30)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._peers.conn = conn
                try:
                    conn.request("GET", path, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.getheader("connection", "").lower() == "close":
                        conn.close()
                        self._peers.conn = None
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    self._peers.conn = None
                    if attempt == 2:
                        if span is not None:
                            span.set_attribute("error", True)
                        return 503, None
            if span is not None:
                span.set_attribute("http.status_code", resp.status)
        try:
            return resp.status, json.loads(body) if body else None
        except ValueError:
            return resp.status, body.decode(errors="replace")

    # --- handlers ------------------------------------------------------------------------
    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        s = self.spec
        b = s.behavior
        delay = random.gauss(BASE_LATENCY_MS.get(s.app, 2.0), 0.5)
        if b.extra_latency_ms and random.random() < b.latency_fraction:
            delay += b.extra_latency_ms
        time.sleep(max(delay, 0.0) / 1000)
        if b.error_rate and random.random() < b.error_rate:
            return b.error_code, "application/json", json.dumps({"error": f"{s.workload} failed"}).encode()
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[-1] or 200)
            return code, "text/plain", f"status {code}\n".encode()
        if path in ("/health", "/healthz"):
            return 200, "application/json", b'{"status": "ok"}'
        if s.app == "productpage" and path.split("?")[0] in ("/productpage", "/"):
            return self._productpage(headers)
        if s.app == "details" and path.startswith("/details"):
            pid = path.rsplit("/", 1)[-1]
            return 200, "application/json", json.dumps({
                "id": pid, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
                "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890"}).encode()
        if s.app == "reviews" and path.startswith("/reviews"):
            return self._reviews(path.rsplit("/", 1)[-1], headers)
        if s.app == "ratings" and path.startswith("/ratings"):
            pid = path.rsplit("/", 1)[-1]
            return 200, "application/json", json.dumps({"id": pid, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}).encode()
        return 404, "application/json", json.dumps({"error": f"{s.app} has no {path}"}).encode()

    def _reviews(self, pid: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        reviews = [{"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare."},
                   {"reviewer": "Reviewer2", "text": "Absolutely fun and entertaining."}]
        if self.spec.version in ("v2", "v3"):
            code, ratings = self.call("ratings:9080", f"/ratings/{pid}", headers)
            color = "black" if self.spec.version == "v2" else "red"
            for r in reviews:
                if code == 200 and isinstance(ratings, dict):
                    r["rating"] = {"stars": ratings.get("ratings", {}).get(r["reviewer"]), "color": color}
                else:
                    r["rating"] = {"error": "Ratings service is currently unavailable"}
        return 200, "application/json", json.dumps({"id": pid, "podname": self.spec.workload,
                                                   "reviews": reviews}).encode()

    def _productpage(self, headers: dict[str, str]) -> tuple[int, str, bytes]:
        dcode, details = self.call("details:9080", "/details/0", headers)
        rcode, reviews = self.call("reviews:9080", "/reviews/0", headers)
        parts = ["<html><head><title>Simple Bookstore App</title></head><body>",
                 "<h1>The Comedy of Errors</h1>"]
        parts.append(f"<p>details: {details.get('author')}, {details.get('pages')} pages</p>"
                     if dcode == 200 and isinstance(details, dict) else
                     "<p>Error fetching product details!</p>")
        if rcode == 200 and isinstance(reviews, dict):
            parts.append(f"<p>reviews served by {reviews.get('podname')}</p>")
            for r in reviews.get("reviews", []):
                rating = r.get("rating") or {}
                stars = f" ({rating['stars']} {rating['color']} stars)" if "stars" in rating else \
                    (" (ratings unavailable)" if "error" in rating else "")
                parts.append(f"<blockquote>{r['text']} -- {r['reviewer']}{stars}</blockquote>")
        else:
            parts.append("<p>Error fetching product reviews!</p>")
        parts.append("</body></html>")
        return 200, "text/html; charset=utf-8", "\n".join(parts).encode()


def _handler_for(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        server_version = app.spec.app

        def setup(self) -> None:
            self.served = 0
            super().setup()

        def handle_one_request(self) -> None:
            super().handle_one_request()
            # The keep-alive timer runs only while a connection that has been answered waits for its next request
            # (like Node's keepAliveTimeout): a fresh connection is never cut before its first request, which on a
            # loaded machine can arrive later than a short keep-alive timeout after the accept.
            ka = app.spec.behavior.keepalive_timeout_ms
            try:
                self.connection.settimeout(ka / 1000 if ka > 0 else None)
            except OSError:
                pass

        def _keepalive_race(self) -> bool:
            """True when this request crosses the app's keep-alive close (see Behavior.keepalive_race_rate)."""
            rate = app.spec.behavior.keepalive_race_rate
            if self.served and rate and random.random() < rate:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return True
            self.served += 1
            return False

        def _reply(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path == "/_meshscope/behavior":
                return self._reply(200, "application/json", json.dumps(app.spec.behavior.__dict__).encode())
            if self._keepalive_race():
                return
            attrs = {"http.method": "GET", "http.target": self.path, "component": "app",
                     "app": app.spec.app, "version": app.spec.version}
            with app.tracer.server_span(f"GET {self.path.split('?')[0]}", headers, attrs) as span:
                try:
                    code, ctype, body = app.handle(self.path, headers)
                except Exception as exc:  # an app bug answers 500, as a real app would
                    code, ctype, body = 500, "text/plain", f"internal error: {exc}".encode()
                if span is not None:
                    span.set_attribute("http.status_code", code)
            self._reply(code, ctype, body)

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/_meshscope/behavior":
                return self._reply(405, "text/plain", b"method not allowed\n")
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                app.spec.behavior = Behavior(**json.loads(body or b"{}"))
            except (TypeError, ValueError) as exc:
                return self._reply(400, "text/plain", f"bad behavior: {exc}\n".encode())
            self._reply(200, "application/json", json.dumps(app.spec.behavior.__dict__).encode())

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def serve(specs: list[AppSpec], otlp_endpoint: str | None) -> list[ThreadingHTTPServer]:
    servers = []
    for spec in specs:
        tracer = AppTracer(f"{spec.app}.{spec.namespace}", otlp_endpoint,
                           {"service.version": spec.version, "k8s.namespace.name": spec.namespace,
                            "k8s.deployment.name": spec.workload})
        app = App(spec, tracer)
        httpd = QuietHTTPServer(("127.0.0.1", spec.port), _handler_for(app))
        httpd.app = app  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, name=f"app-{spec.workload}", daemon=True).start()
        servers.append(httpd)
    return servers


def main(argv: list[str]) -> int:
    cfg = json.loads(open(argv[0]).read())
    specs = [AppSpec(**{**s, "behavior": Behavior(**s.get("behavior", {}))}) for s in cfg["apps"]]
    servers = serve(specs, cfg.get("otlp_endpoint"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"demo apps serving {len(servers)} workloads", flush=True)
    while not stop.wait(0.1):
        pass
    # flush spans (in parallel, bounded); the servers' threads are daemons and end with the process
    flushers = [threading.Thread(target=s.app.tracer.shutdown, daemon=True) for s in servers]  # type: ignore[attr-defined]
    for f in flushers:
        f.start()
    deadline = time.monotonic() + 1.0
    for f in flushers:
        f.join(max(0.0, deadline - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
