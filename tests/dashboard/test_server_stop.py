"""Stopping the UI server while requests are being served: they end quietly, never with a logged traceback."""
from __future__ import annotations

import logging
import threading

import httpx

from dashboard.server import RunningUI, make_wsgi_server
from tests.util import wait_until

ROUNDS = 12  # servers stopped under load; before the fix one in one or two logged EBADF


def test_stop_under_requests_logs_no_exception(caplog):
    """A handler that finishes while the server stops pulls the trigger (the pipe that wakes the serving loop) if its
    connection is still open: the trigger, closed with the listener among the connections, was gone by then
    ("Exception when servicing ... Bad file descriptor" on `meshscope up`'s or `python -m dashboard`'s Ctrl-C)."""
    served = [0]  # requests answered (a racy += between handler threads can only undercount)

    def app(environ, start_response):
        served[0] += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    caplog.set_level(logging.ERROR, logger="waitress")
    for _ in range(ROUNDS):
        server = make_wsgi_server(app, "127.0.0.1", 0, threads=4)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        ui = RunningUI(server, thread, f"http://127.0.0.1:{server.effective_port}")
        done = threading.Event()
        clients = [threading.Thread(target=_hammer, args=(ui.url, done), daemon=True) for _ in range(8)]
        for c in clients:
            c.start()
        start = served[0]
        wait_until(lambda: served[0] - start > 100, timeout=30, what="requests being served")
        ui.stop()
        done.set()
        for c in clients:
            c.join(10)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() + (f" {r.exc_info[1]!r}" if r.exc_info else "") for r in errors]


def _hammer(url: str, done: threading.Event) -> None:
    with httpx.Client() as client:
        while not done.is_set():
            try:
                client.get(url + "/", timeout=5)
            except httpx.HTTPError:
                pass  # the server stopped under it: expected
