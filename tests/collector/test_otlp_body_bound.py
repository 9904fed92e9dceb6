"""The OTLP/HTTP receiver bounds a body while it arrives, over real HTTP on 127.0.0.1.

Why: a body is held in memory while it is received. If the byte bound on held work applied only once a body
was whole, every open connection could hold a body of the size limit at once (256 x 20 MiB). Here a declared
content-length is refused before a byte of it is read (413 over the limit, 503 when it does not fit beside
the bodies already held), and a chunked body is cut as soon as it passes either bound.
"""
from __future__ import annotations

import socket
import time

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

from collector.sources.otlp import OtlpReceiver
from collector.store import TelemetryStore
from tests.util import wait_until

LIMIT = 1 << 20  # body limit and held-bytes bound of the receiver under test
HEAD = "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n"


def _export(size: int) -> bytes:
    """A real trace export of about `size` bytes (one span, padded with one long attribute)."""
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(
        trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="padded", kind=2,
        start_time_unix_nano=time.time_ns(), end_time_unix_nano=time.time_ns() + 1_000_000)
    span.attributes.add(key="pad", value=common_pb2.AnyValue(string_value="x" * size))
    return req.SerializeToString()


def _answer(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one answer on `sock` (fails if none comes within `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        assert got, f"connection closed without an answer after {data!r}"
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        got = sock.recv(65536)
        if not got:
            break
        rest += got
    return int(lines[0].split()[1]), headers, rest[:length]


def _stream_chunked(sock: socket.socket, chunk: int, most: int) -> tuple[int, int]:
    """Send a chunked body chunk by chunk until the server answers (or `most` bytes went); (bytes sent, status)."""
    sock.sendall((HEAD + "transfer-encoding: chunked\r\n\r\n").encode())
    piece = b"%x\r\n" % chunk + b"\0" * chunk + b"\r\n"
    sent = 0
    sock.setblocking(False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break
        except BlockingIOError:
            pass
        if sent < most:
            try:
                sent += sock.send(piece)
            except (BlockingIOError, InterruptedError):
                time.sleep(0.005)  # the socket's buffers are full: give the server its turn (not synchronisation)
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            time.sleep(0.005)
    sock.setblocking(True)
    return sent, _answer(sock)[0]


@pytest.fixture
def receiver():
    store = TelemetryStore()
    with OtlpReceiver(store, port=0, max_body_bytes=LIMIT, max_pending_bytes=LIMIT) as r:
        yield r


def test_a_declared_length_over_the_limit_is_refused_before_the_body(receiver):
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.sendall((HEAD + f"content-length: {50 * LIMIT}\r\n\r\n").encode())  # not one byte of the body
        code, headers, body = _answer(sock)
    assert code == 413 and headers.get("connection") == "close"
    status = status_pb2.Status()
    status.ParseFromString(body)
    assert str(50 * LIMIT) in status.message


def test_a_chunked_body_is_cut_at_the_limit(receiver):
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sent, code = _stream_chunked(sock, 64 * 1024, 64 * LIMIT)
    assert code == 413
    assert sent < 16 * LIMIT, sent  # answered long before the sender's 64 MiB (socket buffers hold a few MiB)
    assert receiver.admission.pending_bytes == 0


def test_bodies_still_arriving_count_against_the_held_bytes_bound(receiver):
    """One sender is part-way through a large body; a second declaring a large body gets 503 at once, a third
    sending chunked is cut with 503; once the first finishes, its export is stored and new senders are served."""
    first_body = _export(LIMIT * 3 // 4)
    with socket.create_connection(("127.0.0.1", receiver.port)) as first:
        first.sendall((HEAD + f"content-length: {len(first_body)}\r\n\r\n").encode() + first_body[:1000])
        wait_until(lambda: receiver.admission.pending_bytes == len(first_body), what="the first body reserved")

        with socket.create_connection(("127.0.0.1", receiver.port)) as second:
            second.sendall((HEAD + f"content-length: {LIMIT // 2}\r\n\r\n").encode())
            code, headers, _ = _answer(second)
        assert code == 503 and int(headers["retry-after"]) > 0

        with socket.create_connection(("127.0.0.1", receiver.port)) as third:
            sent, code = _stream_chunked(third, 16 * 1024, 16 * LIMIT)
        assert code == 503 and sent < 16 * LIMIT
        assert receiver.admission.pending_bytes == len(first_body)  # the refused ones hold nothing

        first.sendall(first_body[1000:])
        code, _, _ = _answer(first)
    assert code == 200
    assert wait_until(lambda: len(receiver.store.spans()) == 1, what="the first export stored")
    assert receiver.admission.pending_bytes == 0 and receiver.admission.pending == 0
    small = _export(100)
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.sendall((HEAD + f"content-length: {len(small)}\r\n\r\n").encode() + small)
        assert _answer(sock)[0] == 200
