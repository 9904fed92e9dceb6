"""The OTLP receivers bound beyond loopback: a token, or they do not start; without the token a request is refused.

Before, `meshscope serve --host 0.0.0.0` bound both receivers there and stored spans and access-log records from
anyone on the network (forged 503s, findings and alerts). Real HTTP and gRPC on 0.0.0.0, reached via 127.0.0.1;
the senders are the OpenTelemetry SDK's own exporter and gRPC's client with the generated stubs.
"""
from __future__ import annotations

import logging
import time

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.sources.otlp import OtlpReceiver
from collector.sources.otlp_auth import OtlpAccessError, authorized
from collector.sources.otlp_grpc import OtlpGrpcReceiver
from collector.store import TelemetryStore
from tests.collector.test_otlp import _request
from tests.util import wait_until

TOKEN = "otlp-test-token-4f1c"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
@pytest.mark.parametrize("receiver", [OtlpReceiver, OtlpGrpcReceiver])
def test_a_receiver_beyond_loopback_without_a_token_does_not_start(receiver, host):
    with pytest.raises(OtlpAccessError, match="token"):
        receiver(TelemetryStore(), host=host, port=0)


@pytest.mark.parametrize("receiver", [OtlpReceiver, OtlpGrpcReceiver])
def test_loopback_needs_no_token(receiver):
    with receiver(TelemetryStore(), host="127.0.0.1", port=0) as rx:
        assert rx.port


def test_http_receiver_refuses_requests_without_the_token_before_reading_them():
    store = TelemetryStore()
    body = _request(2).SerializeToString()
    with OtlpReceiver(store, host="0.0.0.0", port=0, token=TOKEN) as rx:
        url = f"http://127.0.0.1:{rx.port}/v1/traces"
        ctype = {"content-type": "application/x-protobuf"}
        for auth in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", TOKEN):
            headers = {**ctype, **({"authorization": auth} if auth is not None else {})}
            r = httpx.post(url, content=body, headers=headers, timeout=10)
            assert r.status_code == 401, (auth, r.status_code)
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert len(store.spans()) == 0  # nothing refused was stored
        r = httpx.post(url, content=body, headers={**ctype, "authorization": f"bearer {TOKEN}"}, timeout=10)
        assert r.status_code == 200
    assert len(store.spans()) == 2


def test_the_sdk_exporter_with_its_headers_setting_gets_through():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    store = TelemetryStore()
    with OtlpReceiver(store, host="0.0.0.0", port=0, token=TOKEN) as rx:
        for headers, stored in (({}, 0), ({"authorization": f"Bearer {TOKEN}"}, 1)):
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
                endpoint=f"http://127.0.0.1:{rx.port}/v1/traces", headers=headers, timeout=5)))
            with provider.get_tracer("t").start_as_current_span("op"):
                pass
            provider.shutdown()
            assert len(store.spans()) == stored


def test_grpc_receiver_refuses_calls_without_the_token():
    store = TelemetryStore()
    now = time.time_ns()
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.add(trace_id=bytes(range(16)), span_id=bytes(range(8)), name="x",
                                                         kind=2, start_time_unix_nano=now, end_time_unix_nano=now + 1000)
    with OtlpGrpcReceiver(store, host="0.0.0.0", port=0, token=TOKEN) as rx, \
            grpc.insecure_channel(f"127.0.0.1:{rx.port}") as ch:
        traces = trace_service_pb2_grpc.TraceServiceStub(ch)
        for md in ((), (("authorization", "Bearer nope"),), (("authorization", TOKEN),)):
            with pytest.raises(grpc.RpcError) as err:
                traces.Export(req, metadata=md, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert len(store.spans()) == 0
        traces.Export(req, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
    assert len(store.spans()) == 1


def test_token_comparison():
    assert authorized(None, None) and authorized("anything", None)
    assert authorized(f"Bearer {TOKEN}", TOKEN) and authorized(f"  bearer   {TOKEN} ", TOKEN)
    assert not authorized(f"Bearer {TOKEN[:-1]}", TOKEN) and not authorized("", TOKEN)
    assert not authorized(f"Bearer {TOKEN}\u00e9", TOKEN)  # non-ASCII: compared as bytes, no TypeError


@pytest.mark.parametrize("head", [
    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"a" * 8000 + b"\r\n" * 1 + b"".join(
        b"X-%d: %s\r\n" % (i, b"b" * 8000) for i in range(700)) + b"\r\n",  # more headers than aiohttp takes
    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Long: " + b"c" * 70000 + b"\r\n\r\n",  # a header line too long
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",  # TLS spoken to plain HTTP
    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk framing
])
def test_unparseable_requests_are_answered_and_counted_not_logged_with_a_traceback(caplog, head):
    """Anyone who reaches the port could otherwise fill the operator's log with one traceback per request."""
    import socket

    from collector import selfmetrics

    counted = selfmetrics.OTLP_REQUESTS.labels("unknown", "400")._value.get()
    with OtlpReceiver(TelemetryStore(), port=0) as rx, caplog.at_level(logging.DEBUG):
        with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as s:
            try:
                s.sendall(head)
            except OSError:  # the receiver may answer and close before it has read everything
                pass
            answer = b""
            try:
                while chunk := s.recv(4096):
                    answer += chunk
            except OSError:
                pass
        wait_until(lambda: selfmetrics.OTLP_REQUESTS.labels("unknown", "400")._value.get() > counted, timeout=10,
                   what="the refused request counted")
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0], answer[:100]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
