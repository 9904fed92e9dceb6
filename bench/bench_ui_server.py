"""Which WSGI server serves the UI/API: throughput and slowloris resistance, measured side by side.

Each candidate serves the same Dash app (the Bookinfo sample) on 127.0.0.1:
Werkzeug's development server (what the UI used before, the baseline), cheroot
(CherryPy's server), and waitress as `dashboard.server` configures it. Figures:

- `throughput`: GET /api/v1/findings from 8 keep-alive clients for 3 s (requests/s);
- `slowloris`: with 300 connections holding half-sent headers open, the seconds
  a fresh client waits for GET /healthz (capped at 10 s: "10" means it never answered),
  and the threads the server has started to hold those connections.

Throughput is the best of 2 rounds after a warm-up (the machine is shared).

Loopback only; every connection is closed at the end of each candidate.
"""
from __future__ import annotations

import socket
import threading
import time

import httpx

from bench.common import report

CLIENTS = 8
SECONDS = 3.0
SLOW_CONNECTIONS = 300
PROBE_TIMEOUT = 10.0


def _app():
    from dashboard.app import create_app
    from dashboard.sample import bookinfo_snapshot
    from dashboard.snapshot_source import SnapshotSource
    return create_app(SnapshotSource(bookinfo_snapshot())).server


def _werkzeug(app):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *a):
            pass
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_port, lambda: (srv.shutdown(), srv.server_close())


def _cheroot(app):
    from cheroot import wsgi
    srv = wsgi.Server(("127.0.0.1", 0), app, numthreads=16, timeout=10)
    srv.prepare()
    threading.Thread(target=srv.serve, daemon=True).start()
    return srv.bind_addr[1], srv.stop


def _waitress(app):
    from dashboard.server import make_wsgi_server
    srv = make_wsgi_server(app, "127.0.0.1", 0)
    threading.Thread(target=srv.run, daemon=True).start()
    return srv.effective_port, srv.close


def _throughput(port: int) -> float:
    done = [0]
    stop = time.monotonic() + SECONDS
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            n = 0
            while time.monotonic() < stop:
                c.get("/api/v1/findings").raise_for_status()
                n += 1
        with lock:
            done[0] += n

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.monotonic() - t0)


def _slowloris(port: int) -> tuple[float, int]:
    socks = []
    before = threading.active_count()
    try:
        for _ in range(SLOW_CONNECTIONS):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"GET /api/v1/findings HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)
            except OSError:
                break
        time.sleep(0.5)  # let the server take them up
        held = threading.active_count() - before
        t0 = time.monotonic()
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=PROBE_TIMEOUT).raise_for_status()
            return time.monotonic() - t0, held
        except httpx.HTTPError:
            return PROBE_TIMEOUT, held
    finally:
        for s in socks:
            s.close()


def main() -> None:
    app = _app()
    results = {}
    # cheroot last: after its slowloris round its workers stay stuck until their timeouts, which would
    # tax whatever runs next
    for name, start in (("werkzeug", _werkzeug), ("waitress", _waitress), ("cheroot", _cheroot)):
        port, stop = start(app)
        try:
            for _ in range(10):
                httpx.get(f"http://127.0.0.1:{port}/api/v1/findings", timeout=30)
            rps = max(_throughput(port), _throughput(port))
            results[name] = (rps, *_slowloris(port))
        finally:
            stop()
    base_rps, base_slow, _ = results["werkzeug"]
    for name, (rps, slow, held) in results.items():
        report(f"ui_server_{name}_throughput", rps, "req/s", ("werkzeug", base_rps) if name != "werkzeug" else None)
        report(f"ui_server_{name}_slowloris_probe", slow, "s", ("werkzeug", base_slow) if name != "werkzeug" else None)
        report(f"ui_server_{name}_slowloris_threads_held", held, "threads")


if __name__ == "__main__":
    main()
