"""Stands in for a running meshscope's report API, in its own process, for `meshscope report --from` tests.

    python -m tests.diagnose.reports.api_server --port P --report FILE [--token T]

GET /api/v1/report?format=json answers FILE; with --token, only for `Authorization: Bearer T` (else 401),
as the dashboard does when it is bound beyond loopback.
"""
from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--token")
    args = ap.parse_args()
    body = Path(args.report).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _send(self, code: int, data: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/api/v1/report":
                return self._send(404, b'{"error": "not found"}')
            if args.token and self.headers.get("Authorization") != f"Bearer {args.token}":
                return self._send(401, b'{"error": "token required"}')
            if parse_qs(url.query).get("format") != ["json"]:
                return self._send(400, b'{"error": "format"}')
            self._send(200, body)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
