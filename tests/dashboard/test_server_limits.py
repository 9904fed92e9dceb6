"""The UI/API server under slow and numerous clients: slowloris does not starve it, caps refuse clearly."""
from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from dashboard.app import create_app
from dashboard.sample import bookinfo_snapshot
from dashboard.server import ServeError, make_wsgi_server, start
from dashboard.snapshot_source import SnapshotSource
from tests.util import wait_until

SLOW_CLIENTS = 300


def slow_clients(port: int, n: int, partial: bytes) -> list[socket.socket]:
    """`n` connections that each sent `partial` (never a whole request) and then go quiet."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(partial)
        out.append(s)
    return out


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.05)
    try:
        return s.recv(4096) == b"" or True  # anything (a 408/400 or EOF) means the server gave up on it
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.fixture
def source():
    return SnapshotSource(bookinfo_snapshot())


@pytest.mark.parametrize("partial", [
    b"GET /api/v1/findings HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",  # headers never finished
    b"POST /_dash-update-component HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{",  # body never sent
    b"G",  # not even a request line
], ids=["headers", "body", "request-line"])
def test_hundreds_of_slow_clients_leave_the_api_answering(source, partial):
    ui = start(source, port=0)
    socks = slow_clients(ui.server.effective_port, SLOW_CLIENTS, partial)
    try:
        r = httpx.get(ui.url + "/api/v1/findings", timeout=10)  # generous: the point is that it answers
        assert r.status_code == 200 and any(f["code"] == "MS2001" for f in r.json())
        # no thread per slow client: waitress reads requests in its event loop
        assert threading.active_count() < SLOW_CLIENTS / 2
    finally:
        for s in socks:
            s.close()
        ui.stop()


def test_a_trickled_request_is_dropped_at_its_deadline(source):
    app = create_app(source).server
    srv = make_wsgi_server(app, "127.0.0.1", 0, read_timeout=1.0)
    t = threading.Thread(target=srv.serve, daemon=True)
    t.start()
    s = socket.create_connection(("127.0.0.1", srv.effective_port), timeout=5)
    try:
        s.sendall(b"GET /api/v1/findings HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        def trickle_until_dropped() -> bool:
            try:
                s.sendall(b"X-A: b\r\n")  # a header line every poll: never idle, never finished
            except OSError:
                return True
            return closed_by_server(s)
        wait_until(trickle_until_dropped, timeout=15, interval=0.2, what="the trickling client dropped")
        assert srv.timed_out >= 1
    finally:
        s.close()
        srv.stop()
        t.join(5)


def test_connections_past_the_cap_get_a_clear_503(source):
    app = create_app(source).server
    srv = make_wsgi_server(app, "127.0.0.1", 0, connection_limit=20)
    t = threading.Thread(target=srv.serve, daemon=True)
    t.start()
    socks = slow_clients(srv.effective_port, 30, b"GET / HTTP/1.1\r\n")
    try:
        r = httpx.get(f"http://127.0.0.1:{srv.effective_port}/healthz", timeout=10)
        assert r.status_code == 503 and "too many open connections" in r.json()["error"]
        assert r.headers["retry-after"] == "1"
        assert srv.refused >= 1
    finally:
        for s in socks:
            s.close()
    # the slow clients gone, the server answers again
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{srv.effective_port}/healthz", timeout=5).status_code == 200,
               timeout=15, what="answering after the slow clients left")
    srv.stop()
    t.join(5)


def test_a_taken_port_is_named(source):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(ServeError, match=rf"127\.0\.0\.1:{port}: the port is taken"):
            start(source, port=port)
    finally:
        blocker.close()


def test_stopping_is_prompt_with_clients_connected(source):
    ui = start(source, port=0)
    socks = slow_clients(ui.server.effective_port, 20, b"GET / HTTP/1.1\r\n")
    t0 = time.monotonic()
    ui.stop()
    assert not ui.thread.is_alive()
    assert time.monotonic() - t0 < 10
    for s in socks:
        s.close()
