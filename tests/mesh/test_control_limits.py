"""The control API and the xDS server under hostile clients: slowloris, caps, oversize bodies, taken ports."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from mesh.control_api import MAX_BODY, ControlServer

pytestmark = pytest.mark.e2e

SLOW_CLIENTS = 300


def get_status(mesh, timeout: float = 10) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{mesh.control.port}/v1/status",
                                 headers={"authorization": f"Bearer {mesh.control_token}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("partial", [
    b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    b"POST /v1/apply HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\nContent-Length: 1000\r\n\r\nkind",
], ids=["headers", "body"])
def test_hundreds_of_slow_clients_leave_the_control_api_answering(bundled_mesh, partial):
    socks = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", bundled_mesh.control.port), timeout=5)
            s.sendall(partial)
            socks.append(s)
        assert get_status(bundled_mesh)["workloads"]  # answered, with the slow clients still connected
    finally:
        for s in socks:
            s.close()


def test_an_oversize_body_is_refused_before_it_is_read(bundled_mesh):
    # a body over the limit is refused from its content-length, before it is read
    s = socket.create_connection(("127.0.0.1", bundled_mesh.control.port), timeout=10)
    try:
        s.sendall(b"POST /v1/apply HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + bundled_mesh.control_token.encode()
                  + b"\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        answer = b""
        while not answer.endswith(b"}"):  # the whole JSON answer, however it is split into segments
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413") and b"4194304" in answer
    finally:
        s.close()


def test_a_taken_control_port_is_named(bundled_mesh):
    with pytest.raises(OSError, match=rf"control API on 127\.0\.0\.1:{bundled_mesh.control.port}: the port is taken"):
        ControlServer(bundled_mesh, port=bundled_mesh.control.port, token="t")


def test_hundreds_of_stalled_connections_leave_xds_serving_the_sidecars(bundled_mesh):
    """Connections that never finish the TLS handshake hold a slot for at most its timeout; Envoys keep polling."""
    from tests.util import wait_until

    xds = bundled_mesh.xds
    socks = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", xds.port), timeout=5)
            s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and nothing more
            socks.append(s)
        before = xds.requests
        # every sidecar polls several streams, each held at most hold_s: many answered polls within seconds
        wait_until(lambda: xds.requests >= before + len(bundled_mesh.workloads), timeout=30,
                   what="xDS polls answered while 300 connections stall")
    finally:
        for s in socks:
            s.close()
