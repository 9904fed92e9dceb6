"""The free-port check before `meshscope up`: TIME_WAIT leftovers of a stopped run do not count,
a live listener does."""
from __future__ import annotations

import socket
import time

from mesh.bundled import _port_free


def _listener() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s


def _time_wait_on(port: int, listener: socket.socket) -> None:
    """One connection to `port` that the server side closes first: its socket (local port =
    `port`) is left in TIME_WAIT, as a stopped server leaves its served connections."""
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # active close on the server side -> TIME_WAIT on 127.0.0.1:port
    deadline = time.monotonic() + 5
    client.settimeout(5)
    while client.recv(1) and time.monotonic() < deadline:
        pass
    client.close()


def test_port_in_time_wait_is_free_for_a_restart():
    listener = _listener()
    port = listener.getsockname()[1]
    _time_wait_on(port, listener)
    listener.close()
    plain = socket.socket()
    try:  # the precondition the old check tripped on: a bind without SO_REUSEADDR is refused
        plain.bind(("127.0.0.1", port))
        time_wait = False
    except OSError:
        time_wait = True
    finally:
        plain.close()
    assert time_wait, "no TIME_WAIT connection was left on the port; the test would prove nothing"
    assert _port_free(port)


def test_live_listener_is_busy():
    listener = _listener()
    try:
        assert not _port_free(listener.getsockname()[1])
    finally:
        listener.close()
