"""An authenticating reverse proxy in front of the real Prometheus, as clusters put one
(oauth-proxy, an ingress with basic auth, a Thanos/Mimir gateway): it checks the
Authorization header and forwards everything else unchanged over real HTTP."""
from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class AuthProxy:
    def __init__(self, upstream: str, bearer: str | None = None, user: str | None = None, password: str | None = None):
        allowed = set()
        if bearer:
            allowed.add(f"Bearer {bearer}")
        if user:
            allowed.add("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        self.seen: list[str] = []  # the Authorization header of every request, in order
        self.paths: list[str] = []  # and its path (with the query string), in the same order
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                auth = self.headers.get("Authorization", "")
                outer.seen.append(auth)
                outer.paths.append(self.path)
                if auth not in allowed:
                    return self._send(401, b'{"error":"unauthorized"}', "application/json")
                r = httpx.request(method, upstream + self.path, content=body, timeout=30,
                                  headers={"content-type": self.headers.get("content-type", "")})
                self._send(r.status_code, r.content, r.headers.get("content-type", "application/json"))

            def _send(self, code: int, data: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
