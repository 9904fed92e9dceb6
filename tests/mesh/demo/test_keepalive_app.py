"""The demo app's keep-alive options: it closes idle connections itself, and can cross a request with that close."""
from __future__ import annotations

import http.client
import socket
import time

import pytest

from mesh.demo.apps import AppSpec, Behavior, serve
from tests.util import free_port, wait_until


@pytest.fixture
def details():
    spec = AppSpec("details-v1", "details", "v1", "bookinfo", free_port(), free_port())
    servers = serve([spec], None)
    yield spec
    for s in servers:
        s.shutdown()
        s.server_close()


def test_the_app_closes_idle_keepalive_connections_after_its_timeout(details):
    details.behavior = Behavior(keepalive_timeout_ms=200)
    sock = socket.create_connection(("127.0.0.1", details.port), timeout=5)
    sock.sendall(b"GET /details/0 HTTP/1.1\r\nhost: details\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # then nothing: the app's idle timer closes the connection (EOF), long before Envoy's 1 h idle timeout would.
    # (Headers and body are separate segments: the first recv may hold only the headers, so drain in big reads.)
    assert wait_until(lambda: sock.recv(65536) == b"", timeout=5, what="EOF from the app") is True
    sock.close()


def test_a_fresh_connection_is_not_cut_by_the_keepalive_timer_before_its_first_request(details):
    # a loaded machine (or a slow client) may send the first request later than the keep-alive timeout after the
    # accept: the timer is for idle connections between requests, so that request is still answered
    details.behavior = Behavior(keepalive_timeout_ms=100)
    sock = socket.create_connection(("127.0.0.1", details.port), timeout=5)
    time.sleep(0.4)  # the late client itself (what is tested), not a wait for the server
    sock.sendall(b"GET /details/0 HTTP/1.1\r\nhost: details\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert wait_until(lambda: sock.recv(65536) == b"", timeout=5, what="EOF from the app once idle") is True
    sock.close()


def test_a_request_crossing_the_keepalive_close_gets_no_answer_on_a_reused_connection(details):
    details.behavior = Behavior(keepalive_race_rate=1.0)
    conn = http.client.HTTPConnection("127.0.0.1", details.port, timeout=5)
    conn.request("GET", "/details/0")
    first = conn.getresponse()
    assert first.status == 200 and first.read()  # a fresh connection is always answered
    conn.request("GET", "/details/0")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        conn.getresponse()
    conn.close()
    details.behavior = Behavior()
    conn = http.client.HTTPConnection("127.0.0.1", details.port, timeout=5)
    for _ in range(3):  # healthy again: keep-alive reuse answers every request
        conn.request("GET", "/details/0")
        assert conn.getresponse().read()
    conn.close()
