"""OTLP: decoding (protobuf, JSON with hex ids), and the receiver over real HTTP from real senders."""
from __future__ import annotations

import gzip
import json
import socket
import time

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1 import common_pb2
from google.rpc import status_pb2

from collector import schema as s
from collector import selfmetrics
from collector.parse.otlp import OtlpError, decode_logs, decode_traces
from collector.sources.otlp import OtlpReceiver
from collector.store import TelemetryStore
from tests.util import wait_until

TRACE = "c2a014f53ee677b4881ece0d1634ed78"


def _request(n: int = 3, status_code: str = "503") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value="reviews.bookinfo"))
    ss = rs.scope_spans.add()
    now = time.time_ns() // 10**9 * 10**9  # inside the store's window
    for i in range(n):
        sp = ss.spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes([i + 1] * 8), name=f"op{i}", kind=2,
                          start_time_unix_nano=now, end_time_unix_nano=now + 250_000_000)
        if i:
            sp.parent_span_id = bytes([1] * 8)
        sp.status.code = 2
        sp.attributes.add(key="http.status_code", value=common_pb2.AnyValue(string_value=status_code))
        sp.attributes.add(key="response_flags", value=common_pb2.AnyValue(string_value="UF"))
        sp.attributes.add(key="retries", value=common_pb2.AnyValue(int_value=2))
    return req


def test_decode_protobuf_spans():
    df = decode_traces(_request().SerializeToString()).table.to_pandas()
    assert list(df[s.TRACE_ID]) == [TRACE] * 3
    assert list(df[s.SPAN_ID])[:2] == ["0101010101010101", "0202020202020202"]
    assert list(df[s.PARENT_SPAN_ID]) == ["", "0101010101010101", "0101010101010101"]
    assert set(df[s.SERVICE_NAME]) == {"reviews.bookinfo"}
    assert set(df[s.SPAN_KIND]) == {"SERVER"} and set(df[s.STATUS_CODE]) == {"ERROR"}
    assert list(df[s.DURATION_MS]) == [250.0] * 3
    assert list(df[s.RESPONSE_CODE]) == [503] * 3 and set(df[s.RESPONSE_FLAGS]) == {"UF"}
    assert dict(df[s.ATTRIBUTES][0])["retries"] == "2"


def test_decode_json_with_hex_ids_and_string_or_number_times():
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
           "scopeSpans": [{"spans": [
               {"traceId": TRACE.upper(), "spanId": "7b0b2484e36968fa", "parentSpanId": "", "name": "ingress", "kind": 2,
                "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000001000000,
                "status": {"code": 2}, "unknownField": 1}]}]}]}
    df = decode_traces(json.dumps(doc).encode(), "application/json").table.to_pandas()
    assert df[s.TRACE_ID][0] == TRACE  # hex stays the same 16 bytes, not base64-decoded garbage
    assert df[s.SPAN_ID][0] == "7b0b2484e36968fa"
    assert df[s.DURATION_MS][0] == 1.0 and df[s.STATUS_CODE][0] == "ERROR"


def test_spans_without_valid_ids_are_rejected_not_fatal():
    req = _request(2)
    req.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01"
    r = decode_traces(req.SerializeToString())
    assert r.table.num_rows == 1 and r.rejected == 1 and "span_id" in r.errors[0]


@pytest.mark.parametrize("body,ctype,reason", [
    (b"\xff\xff\xff garbage", "application/x-protobuf", "protobuf"),
    (b"{not json", "application/json", "JSON"),
    (b"x", "text/plain", "content type"),
])
def test_undecodable_payloads_raise_with_a_reason(body, ctype, reason):
    with pytest.raises(OtlpError, match=reason):
        decode_traces(body, ctype)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bodies(body):
    for ctype in ("application/x-protobuf", "application/json"):
        for decode in (decode_traces, decode_logs):
            try:
                decode(body, ctype)
            except OtlpError:
                pass


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=400))
def test_fuzz_truncated_real_request(cut):
    body = _request(4).SerializeToString()[:cut]
    try:
        r = decode_traces(body)
        assert r.table.num_rows <= 4
    except OtlpError:
        pass


# ------------------------------------------------------------------- receiver over HTTP
@pytest.fixture
def receiver():
    store = TelemetryStore()
    with OtlpReceiver(store, port=0, max_body_bytes=64 * 1024) as r:
        yield r


def test_sdk_exporters_over_http(receiver):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "ratings.bookinfo"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint + "/v1/traces")))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_attribute("http.status_code", 503)
            child.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    df = receiver.store.spans()
    assert len(df) == 2
    by_name = df.set_index(s.SPAN_NAME)
    assert by_name.loc["child", s.PARENT_SPAN_ID] == by_name.loc["parent", s.SPAN_ID]
    assert by_name.loc["child", s.TRACE_ID] == format(parent.get_span_context().trace_id, "032x")
    assert by_name.loc["child", s.RESPONSE_CODE] == 503 and by_name.loc["child", s.STATUS_CODE] == "ERROR"
    assert set(df[s.SERVICE_NAME]) == {"ratings.bookinfo"}


def test_sdk_log_exporter(receiver):
    import logging as pylogging
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "details.bookinfo"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=receiver.endpoint + "/v1/logs")))
    logger = pylogging.getLogger("otlp-test")
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.warning("upstream %s failed", "ratings")
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    df = receiver.store.logs()
    assert list(df[s.BODY]) == ["upstream ratings failed"]
    assert df[s.SEVERITY][0] == "WARN" and df[s.SERVICE_NAME][0] == "details.bookinfo"


def _raw_post(port: int, head: str, body: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int([l for l in header.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(rest) < length:
            rest += sock.recv(65536)
        return int(header.split()[1]), rest[:length]


def test_chunked_body_like_envoy_sends(receiver):
    body = _request().SerializeToString()
    chunks = b"".join(f"{len(body[i:i + 40]):x}\r\n".encode() + body[i:i + 40] + b"\r\n" for i in range(0, len(body), 40)) + b"0\r\n\r\n"
    head = "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n"
    code, payload = _raw_post(receiver.port, head, chunks)
    assert code == 200
    ExportTraceServiceResponse().ParseFromString(payload)
    assert len(receiver.store.spans()) == 3


def test_gzip_json_and_error_codes(receiver):
    with httpx.Client(base_url=receiver.endpoint, timeout=5) as c:
        r = c.post("/v1/traces", content=gzip.compress(_request().SerializeToString()),
                   headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"})
        assert r.status_code == 200
        before = selfmetrics.malformed_total("otlp", "traces")
        r = c.post("/v1/traces", content=b"\x0a\xff\xff", headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 400
        st_msg = status_pb2.Status()
        st_msg.ParseFromString(r.content)
        assert "protobuf" in st_msg.message
        assert selfmetrics.malformed_total("otlp", "traces") == before + 1
        r = c.post("/v1/traces", content=b"{}x", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["message"]
        r = c.post("/v1/traces", content=b"\0" * (65 * 1024), headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 413
        bomb = gzip.compress(b"\0" * (1024 * 1024))
        r = c.post("/v1/traces", content=bomb, headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"})
        assert r.status_code == 413
        r = c.post("/v1/metrics", content=b"", headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 404
    assert len(receiver.store.spans()) == 3  # the good request is still there


def test_real_envoy_exports_traces_to_the_receiver(tmp_path):
    from tests.collector.envoy_static import static_envoy
    store = TelemetryStore()
    sent = 6 + 2

    def every_request_whole():
        # Envoy exports every 5 spans or on its flush timer, so a count of spans can be reached (a timer batch
        # cutting the stream) with a request's last spans pending: its SERVER span, which ends last, and the
        # /down retries' UF spans. Wait for one SERVER span per request sent and every CLIENT span's parent.
        df = store.spans()
        servers, clients = df[df[s.SPAN_KIND] == "SERVER"], df[df[s.SPAN_KIND] == "CLIENT"]
        whole = len(servers) >= sent and set(clients[s.PARENT_SPAN_ID]) <= set(servers[s.SPAN_ID])
        return (df,) if whole else None

    with OtlpReceiver(store, port=0) as receiver, static_envoy(tmp_path, otlp_port=receiver.port) as envoy:
        envoy.get("/ok", 6)
        envoy.get("/down", 2)
        (df,) = wait_until(every_request_whole, timeout=60, what="every request's spans from envoy")
    assert (df[s.SPAN_KIND] == "SERVER").sum() == sent
    assert set(df[s.SERVICE_NAME]) == {"productpage-v1.bookinfo"}
    assert {"SERVER", "CLIENT"} <= set(df[s.SPAN_KIND])
    assert (df[df[s.RESPONSE_FLAGS].str.contains("UF")][s.RESPONSE_CODE] == 503).any()
    servers = df[df[s.SPAN_KIND] == "SERVER"]
    clients = df[df[s.SPAN_KIND] == "CLIENT"]
    assert set(clients[s.PARENT_SPAN_ID]) <= set(servers[s.SPAN_ID])


_attr_value = st.one_of(
    st.text(max_size=20).map(lambda v: common_pb2.AnyValue(string_value=v)),
    st.booleans().map(lambda v: common_pb2.AnyValue(bool_value=v)),
    st.integers(min_value=-2**63, max_value=2**63 - 1).map(lambda v: common_pb2.AnyValue(int_value=v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: common_pb2.AnyValue(double_value=v)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=10), st.lists(st.tuples(
    st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8), st.sampled_from([b"", b"\x01" * 8, b"\x02" * 3]),
    st.text(max_size=30), st.integers(0, 5), st.integers(0, 2**62), st.integers(0, 2**20), st.integers(0, 2),
    st.lists(st.tuples(st.text(min_size=1, max_size=15), _attr_value), max_size=4)), max_size=4)), min_size=1, max_size=3))
def test_fast_wire_decoder_equals_the_object_walk(resources):
    """The vectorized decoder must give exactly what the upb object walk gives, on any valid request."""
    req = ExportTraceServiceRequest()
    for service, spans_ in resources:
        rs = req.resource_spans.add()
        if service:
            rs.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value=service))
        ss = rs.scope_spans.add()
        for tid, sid, parent, name, kind, start, dur, code, attrs in spans_:
            sp = ss.spans.add(trace_id=tid, span_id=sid, parent_span_id=parent, name=name, kind=kind,
                              start_time_unix_nano=start, end_time_unix_nano=start + dur)
            sp.status.code = code
            for k, v in attrs:
                sp.attributes.add(key=k, value=v)
    body = req.SerializeToString()
    fast, slow = decode_traces(body, fast=True), decode_traces(body, fast=False)
    assert fast.rejected == slow.rejected
    assert fast.table.to_pylist() == slow.table.to_pylist()


def test_fast_path_is_taken_for_envoy_like_requests():
    from collector.parse import otlp_wire
    assert otlp_wire.spans_columns(_request(5).SerializeToString()) is not None


def test_closed_store_answers_503_so_senders_retry():
    store = TelemetryStore()
    with OtlpReceiver(store, port=0) as receiver:
        store.close()
        r = httpx.post(receiver.endpoint + "/v1/traces", content=_request().SerializeToString(),
                       headers={"content-type": "application/x-protobuf"}, timeout=5)
    assert r.status_code == 503


# ---- backpressure: bounded work, shed with Retry-After, no thread per sender -----------------------
def _post(endpoint: str, body: bytes, ctype: str = "application/x-protobuf") -> httpx.Response:
    return httpx.post(endpoint + "/v1/traces", content=body, headers={"content-type": ctype}, timeout=30)


def _request_with_traces(trace_ids: list[str], spans_per_trace: int = 2) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    now = time.time_ns() // 10**9 * 10**9
    for t, tid in enumerate(trace_ids):
        for i in range(spans_per_trace):
            ss.spans.add(trace_id=bytes.fromhex(tid), span_id=(t * 100 + i + 1).to_bytes(8, "big"), name="op",
                         start_time_unix_nano=now, end_time_unix_nano=now + 1000)
    return req


def test_store_behind_sheds_with_retry_after_and_loses_nothing_admitted():
    """While the store cannot write (its lock held, like a stalled disk), batches past the bound get
    503 + Retry-After at once; the admitted ones are stored when the store catches up."""
    import concurrent.futures as cf

    store = TelemetryStore()
    with OtlpReceiver(store, port=0, workers=2, max_pending=4) as rx:
        bodies = [_request_with_traces([f"{k:032x}"]).SerializeToString() for k in range(1, 13)]
        with cf.ThreadPoolExecutor(12) as pool:
            store._lock.acquire()
            try:
                futures = [pool.submit(_post, rx.endpoint, b) for b in bodies]
                wait_until(lambda: sum(f.done() for f in futures) >= len(bodies) - 4, timeout=20,
                           what="the batches past the bound answered while the store is stuck")
                early = [f.result() for f in futures if f.done()]
            finally:
                store._lock.release()
            answers = [f.result() for f in futures]
    assert early and all(r.status_code == 503 and int(r.headers["retry-after"]) >= 1 for r in early)
    status = status_pb2.Status()
    status.ParseFromString(early[0].content)
    assert status.code == 14 and "retry" in status.message  # UNAVAILABLE: exporters retry it
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == 4 and len(ok) + len(early) == len(bodies)
    assert len(store.spans()) == 2 * len(ok)


def test_many_idle_senders_hold_no_threads_and_the_cap_sheds():
    """Keep-alive connections cost a socket, not a thread; past max_connections a sender gets 503 + close."""
    import threading

    store = TelemetryStore()
    with OtlpReceiver(store, port=0, max_connections=40) as rx:
        threads_before = threading.active_count()
        socks = [socket.create_connection(("127.0.0.1", rx.port), timeout=5) for _ in range(60)]
        try:
            wait_until(lambda: rx.connections >= 60, timeout=10, what="60 open connections")
            assert threading.active_count() <= threads_before + 2
            r = _post(rx.endpoint, _request().SerializeToString())
            assert r.status_code == 503 and r.headers["retry-after"] and r.headers["connection"] == "close"
        finally:
            for sock in socks:
                sock.close()
        wait_until(lambda: rx.connections < 40, timeout=10, what="closed connections to go")
        assert _post(rx.endpoint, _request().SerializeToString()).status_code == 200
    assert len(store.spans()) == 3


def test_a_body_that_never_arrives_times_out_with_408():
    store = TelemetryStore()
    with OtlpReceiver(store, port=0, read_timeout_s=0.5) as rx:
        with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n"
                         b"content-length: 100\r\n\r\n" + b"\x0a" * 10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.split()[1] == b"408"
        assert _post(rx.endpoint, _request().SerializeToString()).status_code == 200  # others unaffected


@pytest.mark.parametrize("body,ctype", [
    (b'{"resourceSpans":' + b"[" * 20_000 + b"]" * 20_000 + b"}", "application/json"),  # deep nesting
    (b"\x0a\x05" + b"\x12\x03\x0a\x01" * 4 + b"\xff" * 7, "application/x-protobuf"),  # malformed protobuf
    (b"\x0a" + b"\x80" * 11, "application/x-protobuf"),  # overlong varint
])
def test_undecodable_bodies_get_400_never_a_retryable_code(receiver, body, ctype):
    r = httpx.post(receiver.endpoint + "/v1/traces", content=body, headers={"content-type": ctype}, timeout=30)
    assert r.status_code == 400
    assert "retry-after" not in r.headers


def test_trace_sampling_keeps_whole_traces_at_the_ratio():
    from collector.sources.backpressure import TraceSampler

    trace_ids = [f"{k * 7919:032x}" for k in range(1, 401)]
    store = TelemetryStore()
    with OtlpReceiver(store, port=0, trace_sample=0.25) as rx:
        assert _post(rx.endpoint, _request_with_traces(trace_ids, 3).SerializeToString()).status_code == 200
    kept = store.spans().groupby(s.TRACE_ID).size()
    assert (kept == 3).all()  # a trace is kept whole or not at all
    assert 0.15 * 400 < len(kept) < 0.35 * 400
    # the same decision in another receiver (another sidecar's spans of the same traces)
    store2 = TelemetryStore()
    with OtlpReceiver(store2, port=0, trace_sample=0.25) as rx:
        _post(rx.endpoint, _request_with_traces(trace_ids, 1).SerializeToString())
    assert set(store2.spans()[s.TRACE_ID]) == set(kept.index)
    with pytest.raises(ValueError, match="between 0 and 1"):
        TraceSampler(1.5)


def test_a_taken_port_is_named_in_the_error():
    import socket

    from collector.sources.otlp import OtlpReceiver
    from collector.store import TelemetryStore

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as err:
            OtlpReceiver(TelemetryStore(), host="127.0.0.1", port=port)
    assert f"127.0.0.1:{port}" in str(err.value) and "OTLP/HTTP" in str(err.value)


def test_small_exports_take_the_object_walk_and_large_ones_the_wire_walk_with_the_same_rows(monkeypatch):
    """A real Envoy export (25 spans) repeated around FAST_MIN_SPANS: the size-chosen path gives exactly what each
    forced path gives; exports below it never pay the wire walk's fixed cost (#18)."""
    from pathlib import Path

    from collector.parse import otlp, otlp_wire

    real = (Path(__file__).parent / "data" / "envoy_otlp_traces.pb").read_bytes()
    walked = []
    spans_columns = otlp_wire.spans_columns
    monkeypatch.setattr(otlp_wire, "spans_columns", lambda b: walked.append(len(b)) or spans_columns(b))
    per = decode_traces(real, fast=False).table.num_rows
    for copies in (1, otlp.FAST_MIN_SPANS // per, otlp.FAST_MIN_SPANS // per + 1, 2 * otlp.FAST_MIN_SPANS // per):
        body = real * copies  # serialized requests concatenate into their merge
        walked.clear()
        auto = decode_traces(body)
        assert bool(walked) == (per * copies >= otlp.FAST_MIN_SPANS)
        for forced in (True, False):
            assert auto.table.to_pylist() == decode_traces(body, fast=forced).table.to_pylist()


@pytest.mark.parametrize("fast", [False, True])
def test_response_code_under_either_http_convention(fast):
    """Spans carry their HTTP status as `http.status_code` (Envoy, semantic conventions before 1.21) or
    `http.response.status_code` (the stable HTTP conventions the SDKs write now), as an int or a string; the older
    name wins when a span has both; a span with neither has no response code (0)."""
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    given_attrs = [
        [("http.response.status_code", common_pb2.AnyValue(int_value=503))],
        [("http.response.status_code", common_pb2.AnyValue(string_value="404"))],
        [("http.status_code", common_pb2.AnyValue(int_value=200))],
        [("http.status_code", common_pb2.AnyValue(int_value=502)), ("http.response.status_code", common_pb2.AnyValue(int_value=500))],
        [("http.response.status_code", common_pb2.AnyValue(int_value=201)), ("http.status_code", common_pb2.AnyValue(int_value=204))],
        [("rpc.grpc.status_code", common_pb2.AnyValue(int_value=14))],
    ]
    for i, attrs in enumerate(given_attrs):
        sp = ss.spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes([i + 1] * 8), name=f"op{i}",
                          start_time_unix_nano=1, end_time_unix_nano=2)
        for key, value in attrs:
            sp.attributes.add(key=key, value=value)
    df = decode_traces(req.SerializeToString(), fast=fast).table.to_pandas()
    assert list(df[s.RESPONSE_CODE]) == [503, 404, 200, 502, 204, 0]
    as_json = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": TRACE, "spanId": "0102030405060708", "name": "client",
         "attributes": [{"key": "http.response.status_code", "value": {"intValue": "503"}}]}]}]}]}).encode()
    assert list(decode_traces(as_json, "application/json").table.to_pandas()[s.RESPONSE_CODE]) == [503]


def _json_export(spans: list[dict]) -> bytes:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cart"}}]}, "scopeSpans": [{"spans": spans}]}]}).encode()


@pytest.mark.parametrize("bad", [
    {"traceId": "YUMtSIxXQHea1DTgS+G2zg=="},  # base64, as protobuf's own JSON mapping writes bytes
    {"spanId": "5cPop0hvHRI="},
    {"parentSpanId": "D1MPXqMhokg="},
    {"traceId": TRACE[:31]},  # odd length
    {"spanId": "zz" * 8},
])
def test_a_json_span_with_an_id_that_is_not_hex_is_refused_alone(bad):
    """OTLP/JSON ids are hex. A span whose id is not is refused for its ids (partial success, with the reason), as a
    protobuf span with ids of the wrong length is; the other spans of the export are stored."""
    now = time.time_ns()
    good = [{"traceId": TRACE, "spanId": f"{i:016x}", "name": f"ok{i}", "kind": "SPAN_KIND_SERVER",
             "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 10**6)} for i in (1, 2)]
    body = _json_export([good[0], {**good[1], "name": "bad", "spanId": "00000000000000aa", **bad}, good[1]])
    r = decode_traces(body, "application/json")
    assert r.rejected == 1 and r.errors and "bad" in r.errors[0]
    assert r.table.column(s.SPAN_NAME).to_pylist() == ["ok1", "ok2"]
    store = TelemetryStore()
    with OtlpReceiver(store, port=0) as rx, httpx.Client(base_url=rx.endpoint, timeout=10) as c:
        resp = c.post("/v1/traces", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 200 and resp.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert sorted(store.spans()[s.SPAN_NAME]) == ["ok1", "ok2"]


def test_a_json_log_record_with_an_id_that_is_not_hex_keeps_the_record():
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(time.time_ns()), "traceId": "YUMtSIxXQHea1DTgS+G2zg==", "body": {"stringValue": "a"}},
        {"timeUnixNano": str(time.time_ns()), "traceId": TRACE, "body": {"stringValue": "b"}}]}]}]}).encode()
    df = decode_logs(body, "application/json").table.to_pandas()
    assert list(df[s.BODY]) == ["a", "b"] and list(df[s.TRACE_ID]) == ["", TRACE]


@pytest.mark.parametrize("fast", [True, False])
def test_a_span_that_ends_before_it_starts_is_refused_with_the_reason(fast):
    """end < start (an end of 0: a span never ended) has no duration to read: refused with partial success in both
    decode paths, not stored with a negative duration every latency view would take in; its neighbours are kept."""
    req = _request(4)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].end_time_unix_nano = spans[1].start_time_unix_nano - 1
    spans[2].end_time_unix_nano = 0
    r = decode_traces(req.SerializeToString(), fast=fast)
    assert r.rejected == 2 and all("before start" in e for e in r.errors)
    assert r.table.column(s.SPAN_NAME).to_pylist() == ["op0", "op3"]
    assert min(r.table.column(s.DURATION_MS).to_pylist()) >= 0
    spans[1].end_time_unix_nano = spans[1].start_time_unix_nano  # zero duration is a duration
    assert decode_traces(req.SerializeToString(), fast=fast).rejected == 1


@pytest.mark.parametrize("bad", [
    {"attributes": [{"key": "n", "value": {"intValue": "9223372036854775808"}}]},  # past int64
    {"startTimeUnixNano": "-5"},
    {"endTimeUnixNano": "soon"},
    {"kind": {"nested": True}},
    {"attributes": [{"key": "n", "value": {"boolValue": "yes"}}]},
])
def test_a_json_item_the_reference_refuses_is_refused_alone(bad):
    """A span or log record whose value protobuf's JSON reader refuses (out of range, not a number, the wrong shape)
    is refused by itself with partial success and the reason; the export's other items are stored. Before, the
    whole export was a 400."""
    now = time.time_ns()
    spans = [{"traceId": TRACE, "spanId": f"{i:016x}", "name": f"s{i}", "startTimeUnixNano": str(now),
              "endTimeUnixNano": str(now + 10**6)} for i in (1, 2, 3)]
    spans[1] = {**spans[1], **bad}
    body = _json_export(spans)
    r = decode_traces(body, "application/json")
    assert r.table.column(s.SPAN_NAME).to_pylist() == ["s1", "s3"] and r.rejected == 1 and "s2" in r.errors[0]
    assert set(r.table.column(s.SERVICE_NAME).to_pylist()) == {"cart"}  # the resource is kept for the others
    records = [{"timeUnixNano": str(now), "body": {"stringValue": f"r{i}"}} for i in (1, 2, 3)]
    records[1] = {**records[1], **{k.replace("startTimeUnixNano", "timeUnixNano").replace("endTimeUnixNano",
                                                                                         "observedTimeUnixNano"): v
                                   for k, v in bad.items() if k != "kind"}, **({"severityNumber": {"x": 1}} if "kind" in bad else {})}
    logs = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}).encode()
    store = TelemetryStore()
    with OtlpReceiver(store, port=0) as rx, httpx.Client(base_url=rx.endpoint, timeout=10) as c:
        resp = c.post("/v1/traces", content=body, headers={"content-type": "application/json"})
        assert resp.status_code == 200 and resp.json()["partialSuccess"]["rejectedSpans"] == "1"
        resp = c.post("/v1/logs", content=logs, headers={"content-type": "application/json"})
        assert resp.status_code == 200 and resp.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert sorted(store.spans()[s.SPAN_NAME]) == ["s1", "s3"]
    assert sorted(store.logs()[s.BODY]) == ["r1", "r3"]
