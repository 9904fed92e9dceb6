"""A webhook receiver run as its own process by the alert tests.

It verifies Standard Webhooks signatures with its own code path (not the
sender's), answers each request according to a plan (`500,hang,429:2,200,...`; after
the plan, 200), and appends one JSON line per request to a log file so the
test process can see exactly what arrived, across restarts.

    python -m tests.diagnose.alerts.sink_server --port P --log FILE [--secret S] [--plan 500,hang]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def check_signature(secret: str, headers, body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and ts and sigs):
        return False
    if abs(time.time() - int(ts)) > 300:
        return False
    want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(s.startswith("v1,") and hmac.compare_digest(s[3:], want) for s in sigs.split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret")
    ap.add_argument("--plan", default="")
    ap.add_argument("--hang-seconds", type=float, default=60)
    args = ap.parse_args()
    plan = [p for p in args.plan.split(",") if p]
    lock = threading.Lock()
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                i = counter["n"]
                counter["n"] += 1
            action = plan[i] if i < len(plan) else "200"
            valid = check_signature(args.secret, self.headers, body) if args.secret else None
            if valid is False:
                action = "401"
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
            record = {"n": i, "pid": os.getpid(), "path": self.path, "action": action, "valid_signature": valid,
                      "headers": {k.lower(): v for k, v in self.headers.items()}, "body": parsed, "t": time.time()}
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
            if action == "hang":
                time.sleep(args.hang_seconds)
                action = "200"
            code, _, retry_after = action.partition(":")  # "429:2" = 429 with Retry-After: 2
            code = int(code)
            out = b"ok" if code < 300 else b"nope"
            self.send_response(code)
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
