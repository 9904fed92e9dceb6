"""Envoy OpenTelemetry access-log records (Istio envoyOtelAls) -> the same requests rows as the file tailer.

Inputs are the recorded real Envoy logs in tests/collector/data, shipped as OTLP log records the two
ways Istio can configure them: the text line as the record body (Istio's default), or the JSON fields
as record attributes (`logFormat.labels`).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from collector import schema as s
from collector.parse.access_log import LogContext, parse_json_log, parse_text_log
from collector.parse.otel_access_log import OtelLogError, _upb_records, _wire_records, decode_access_logs, records_to_requests

DATA = Path(__file__).parent / "data"
CTX = LogContext("sidecar.log", "productpage-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/productpage")
COMPARED = [s.START_TIME, s.REPORTER, s.SOURCE_WORKLOAD, s.SOURCE_WORKLOAD_NAMESPACE, s.SOURCE_PRINCIPAL,
            s.DESTINATION_SERVICE, s.METHOD, s.PATH, s.RESPONSE_CODE, s.RESPONSE_FLAGS, s.RESPONSE_CODE_DETAILS,
            s.UPSTREAM_TRANSPORT_FAILURE_REASON, s.DURATION_MS, s.BYTES_SENT, s.UPSTREAM_CLUSTER, s.REQUEST_ID]
IDENTITY = {"workload": "productpage-v1", "namespace": "bookinfo", "service_account": "productpage"}


def _value(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def _kv(d: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in d.items() if v is not None]


def request(records: list[dict], resource: dict | None = None) -> bytes:
    """records: {"body": str|None, "attrs": dict, "time": ns}"""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(_kv(resource or {}))
    sl = rl.scope_logs.add()
    for r in records:
        lr = sl.log_records.add()
        lr.time_unix_nano = r.get("time", 1_765_000_000_000_000_000)
        if r.get("body") is not None:
            lr.body.string_value = r["body"]
        lr.attributes.extend(_kv(r.get("attrs", {})))
        if r.get("trace"):
            lr.trace_id = bytes.fromhex(r["trace"])
    return req.SerializeToString()


def same_rows(a, b) -> bool:
    """Same columns, same rows in the same order (a dictionary column's dictionary order is not a value)."""
    return a.schema.equals(b.schema) and a.to_pylist() == b.to_pylist()


def _text_lines() -> list[str]:
    return [ln for ln in (DATA / "envoy_access_text.log").read_text().splitlines() if ln.strip()]


def _json_objects() -> list[dict]:
    return [json.loads(ln) for ln in (DATA / "envoy_access_json.log").read_text().splitlines() if ln.strip()]


def test_istio_default_body_text_gives_the_file_tailers_rows():
    lines = _text_lines()
    # Istio's format ends with "\n" inside the body; identity from the labels docs/cluster.md recommends
    body = request([{"body": ln + "\n", "attrs": {**IDENTITY, "some.unknown.attribute": "ignored"}} for ln in lines])
    got = decode_access_logs(body)
    want = parse_text_log("\n".join(lines) + "\n", CTX)
    assert got.rejected == 0 and got.records == len(lines)
    assert got.table.to_pandas()[COMPARED].equals(want.table.to_pandas()[COMPARED])


def test_json_fields_as_attributes_give_the_file_tailers_rows_with_numbers_of_any_kind():
    objs = _json_objects()
    recs = []
    for i, o in enumerate(objs):  # Envoy may send numbers as int, double or text: all read the same
        attrs = dict(o)
        if i % 3 == 1:
            attrs = {k: (float(v) if isinstance(v, int) else v) for k, v in attrs.items()}
        elif i % 3 == 2:
            attrs = {k: (str(v) if isinstance(v, int) else v) for k, v in attrs.items()}
        recs.append({"attrs": {**attrs, **IDENTITY}})
    got = decode_access_logs(request(recs))
    want = parse_json_log("\n".join(json.dumps(o) for o in objs) + "\n", CTX)
    assert got.rejected == 0
    assert got.table.to_pandas()[COMPARED].equals(want.table.to_pandas()[COMPARED])


@pytest.mark.parametrize("resource,workload,namespace", [
    ({"k8s.deployment.name": "reviews-v2", "k8s.namespace.name": "shop", "k8s.pod.name": "x-1"}, "reviews-v2", "shop"),
    ({"k8s.pod.name": "reviews-v2-7d9f8c6b5d-x8k2p", "k8s.namespace.name": "shop"}, "reviews-v2", "shop"),
    ({"node_name": "sidecar~10.1.2.3~ratings-v1-6b746f74dc-2c7hx.prod~prod.svc.cluster.local",
      "cluster_name": "ratings.prod"}, "ratings-v1", "prod"),
    ({}, "unknown", "unknown"),  # no identity at all: kept, with unknown (as Istio reports it)
])
def test_caller_identity_from_resource_attributes(resource, workload, namespace):
    line = _text_lines()[0]
    got = decode_access_logs(request([{"body": line}], resource)).table.to_pandas()
    assert len(got) == 1
    row = got.iloc[0]
    assert row[s.REPORTER] == "source"
    assert (row[s.SOURCE_WORKLOAD], row[s.SOURCE_WORKLOAD_NAMESPACE]) == (workload, namespace)


def test_record_attributes_win_over_resource_and_vary_per_record():
    line = _text_lines()[0]
    recs = [{"body": line, "attrs": {"workload": f"w{i}", "namespace": "n", "service_account": f"sa{i}"}} for i in range(3)]
    recs.append({"body": line})
    got = decode_access_logs(request(recs, {"k8s.deployment.name": "res-wl", "k8s.namespace.name": "res-ns"})).table.to_pandas()
    assert list(got[s.SOURCE_WORKLOAD]) == ["w0", "w1", "w2", "res-wl"]
    assert list(got[s.SOURCE_WORKLOAD_NAMESPACE]) == ["n", "n", "n", "res-ns"]
    assert got[s.SOURCE_PRINCIPAL].iloc[1] == "spiffe://cluster.local/ns/n/sa/sa1"


def test_bad_records_are_rejected_with_reasons_and_neighbours_kept():
    lines = _text_lines()[:4]
    recs = [{"body": lines[0]}, {"body": "not an access log line"}, {"attrs": {"unrelated": "x"}},
            {"attrs": {"response_code": "abc", "upstream_cluster": "outbound|9080||a.b.svc.cluster.local"}},
            {"attrs": {"response_code": 200, "start_time": "yesterday"}}, {"body": lines[1]}]
    got = decode_access_logs(request(recs))
    assert got.records == 6 and got.rejected == 4
    assert len(got.table) == 2
    assert list(got.table.column(s.REQUEST_ID).to_pylist()) == [parse_text_log(ln, CTX).table.column(s.REQUEST_ID)[0].as_py()
                                                                 for ln in lines[:2]]
    text = " ".join(got.errors)
    assert "neither a string body" in text and "non-numeric" in text and "start_time" in text
    # a body is one record whatever it holds: a line break inside never makes two half rows, and every row keeps
    # its own record's identity (each record here names a different writer)
    bodies = [lines[0], lines[1][:40] + "\n" + lines[1][40:], "broken\nline", lines[2]]
    got = decode_access_logs(request([{"body": b, "attrs": {**IDENTITY, "workload": f"w{i}"}} for i, b in enumerate(bodies)]))
    assert (got.records, got.rejected) == (4, 1) and "record 2: body" in " ".join(got.errors)
    writers = dict(zip(got.table.column(s.REQUEST_ID).to_pylist(),
                       zip(got.table.column(s.SOURCE_WORKLOAD).to_pylist(), got.table.column(s.DESTINATION_WORKLOAD).to_pylist())))
    for i in (0, 1, 3):
        rid = parse_text_log(lines[min(i, 2)], CTX).table.column(s.REQUEST_ID)[0].as_py()
        assert f"w{i}" in writers[rid], (i, writers)


def test_record_time_and_trace_id_fill_what_attributes_leave_out():
    trace = "0af7651916cd43dd8448eb211c80319c"
    got = decode_access_logs(request([{"attrs": {"response_code": 503, "response_flags": "UC",
                                                 "upstream_cluster": "outbound|9080||reviews.bookinfo.svc.cluster.local"},
                                       "time": 1_765_000_000_250_000_000, "trace": trace}])).table.to_pandas()
    row = got.iloc[0]
    assert row[s.TRACE_ID] == trace
    assert row[s.START_TIME].value == 1_765_000_000_250_000_000
    assert row[s.DESTINATION_SERVICE] == "reviews.bookinfo.svc.cluster.local"


def test_wire_decoder_matches_the_complete_decoder():
    recs = [{"body": ln, "attrs": {**IDENTITY, "n": i, "flag": True, "ratio": 0.5}} for i, ln in enumerate(_text_lines())]
    recs += [{"attrs": {**o, "pod_name": "details-v1-5f4d584748-abcde"}} for o in _json_objects()[:5]]
    body = request(recs, {"k8s.namespace.name": "bookinfo"})
    a = records_to_requests(_wire_records(body)).table
    b = records_to_requests(_upb_records(body)).table
    assert same_rows(a, b)


def test_array_attribute_values_take_the_complete_decoder():
    req = ExportLogsServiceRequest.FromString(request([{"body": _text_lines()[0]}]))
    kv = req.resource_logs[0].scope_logs[0].log_records[0].attributes.add()
    kv.key = "tags"
    kv.value.array_value.values.add().string_value = "x"
    got = decode_access_logs(req.SerializeToString())
    assert len(got.table) == 1 and got.rejected == 0


def test_garbage_is_refused_with_a_reason():
    with pytest.raises(OtelLogError, match="ExportLogsServiceRequest"):
        decode_access_logs(b"\x0a\xff\xff\xff\xff\x0fnope")
    assert decode_access_logs(b"").records == 0


@pytest.mark.parametrize("as_json", [False, True])
def test_otlp_http_v1_logs_fills_the_requests_table_too(as_json):
    import httpx
    from google.protobuf import json_format

    from collector.sources.otlp import OtlpReceiver
    from collector.store import TelemetryStore

    lines = _text_lines()[:5]
    body = request([{"body": ln, "attrs": IDENTITY} for ln in lines] + [{"body": "an application log line"}])
    ctype = "application/x-protobuf"
    if as_json:
        body = json_format.MessageToJson(ExportLogsServiceRequest.FromString(body)).encode()
        ctype = "application/json"
    store = TelemetryStore(window_s=10**9)
    with OtlpReceiver(store, port=0) as rx:
        r = httpx.post(rx.endpoint + "/v1/logs", content=body, headers={"content-type": ctype}, timeout=10)
    assert r.status_code == 200
    df = store.requests()
    assert len(df) == 5 and set(df[s.SOURCE_WORKLOAD]) == {"productpage-v1"}
    assert len(store.logs()) == 6  # every record is still kept as a log record


def test_record_framing_found_by_pointer_doubling_matches_a_sequential_walk():
    """The class: any scope layout (scope and schema_url around the records, empty scopes, empty records,
    records of 1- to 3-byte lengths starting with any field, bytes inside records equal to the record tag,
    alone or followed by a length and a LogRecord tag) gives the records a field-by-field walk gives, with
    the candidate filter on or off, and when the filter drops real records (they are read one by one)."""
    import random

    import numpy as np

    from collector.parse import otlp_wire as w
    from collector.parse.otel_access_log import _LOG_RECORD_TAGS, _repeated_field

    rng = random.Random(7)
    lines = _text_lines()
    for case in range(40):
        req = ExportLogsServiceRequest()
        for _ in range(rng.randint(1, 3)):
            rl = req.resource_logs.add()
            rl.resource.attributes.extend(_kv({"k8s.pod.name": f"reviews-v1-5f4d584748-{case:05d}"}))
            for _ in range(rng.randint(0, 3)):
                sl = rl.scope_logs.add()
                if rng.random() < 0.5:
                    sl.scope.name = "envoy\x12"
                if rng.random() < 0.5:
                    sl.schema_url = "https://opentelemetry.io/schemas/1.21.0"
                for _ in range(rng.choice([0, 1, 2, 50, 300])):
                    shape = rng.random()
                    if shape < 0.05:  # an empty record
                        sl.log_records.add()
                        continue
                    lr = sl.log_records.add(time_unix_nano=0x1212121212121212 + rng.randint(0, 99) if shape > 0.3 else 0)
                    if shape < 0.15:
                        lr.severity_number = 9
                    lr.body.string_value = rng.choice(lines) + rng.choice(["", "\x12", "\x12" * 200, "\x12\x01\x09", "\x12\x00"])
                if sl.log_records and rng.random() < 0.2:  # a 3-byte length
                    sl.log_records[-1].body.string_value = "x" * 17_000
        body = req.SerializeToString()
        buf = np.frombuffer(body, dtype=np.uint8)
        for _, r0, rl_len in w._seq_fields(body, 0, len(body), {1}):
            for _, s0, ln in w._seq_fields(body, r0, r0 + rl_len, {2}):
                want = [(p, n) for _, p, n in w._seq_fields(body, s0, s0 + ln, {2})]
                for first in (None, _LOG_RECORD_TAGS, np.array([0x09], np.uint8)):  # the last drops real records
                    starts, lens = _repeated_field(body, buf, s0, s0 + ln, 2, first)
                    assert list(zip(starts.tolist(), lens.tolist())) == want, (case, first)
        a = records_to_requests(_wire_records(body)).table
        b = records_to_requests(_upb_records(body)).table
        assert same_rows(a, b), case
    # a scope cut short (its last record's length runs past the end) is refused, never read as records
    body = request([{"body": ln} for ln in lines[:3]])
    buf = np.frombuffer(body, dtype=np.uint8)
    (_, r0, rl_len), = w._seq_fields(body, 0, len(body), {1})
    (_, s0, ln), = w._seq_fields(body, r0, r0 + rl_len, {2})
    with pytest.raises(w._Bad):
        _repeated_field(body, buf, s0, s0 + ln - 5, 2)


def test_json_bodies_give_the_file_tailers_rows_and_bad_ones_are_refused_alone():
    """The class: a body holding Istio's JSON access-log object (logFormat.text set to JSON, or an OpenTelemetry
    Collector's filelog receiver shipping the sidecar's stdout), pretty-printed or not, beside text bodies."""
    objs = _json_objects()
    text = _text_lines()
    bodies = [json.dumps(o, indent=2 if i % 2 else None) for i, o in enumerate(objs)]
    bodies.insert(1, '{"response_code": 200, "start_time": "not a time"}')
    bodies.insert(3, "{ broken json")
    bodies.append(text[0])
    recs = [{"body": b, "attrs": IDENTITY} for b in bodies]
    recs[-1]["attrs"] = {**IDENTITY, "workload": "the-text-one"}
    got = decode_access_logs(request(recs))
    assert (got.records, got.rejected) == (len(objs) + 3, 2), got.errors
    assert any("record 1: body" in e for e in got.errors) and any("record 3: body" in e for e in got.errors)
    want = parse_json_log("\n".join(json.dumps(o) for o in objs) + "\n", CTX).table.to_pandas()[COMPARED]
    rows = got.table.to_pandas()
    texty = (rows[s.SOURCE_WORKLOAD] == "the-text-one") | (rows[s.DESTINATION_WORKLOAD] == "the-text-one")
    # (values compared, not categories: the text rows' values are categories of the same columns too)
    assert rows[~texty].reset_index(drop=True)[COMPARED].astype(object).equals(want.reset_index(drop=True).astype(object))
    assert list(rows[texty][s.REQUEST_ID]) == [parse_text_log(text[0], CTX).table.column(s.REQUEST_ID)[0].as_py()]


def test_bodies_read_from_the_payload_match_the_complete_decoder_on_mutated_bodies():
    """The class: whatever a body holds (non-ASCII, control bytes, empty, cut short, JSON, none at all), the wire
    decoder (bodies cut from the payload in one copy, only for records without access-log attributes) gives the
    complete decoder's rows, rejections and reasons; a body that is not UTF-8 refuses the payload in both."""
    rng = random.Random(11)
    lines = _text_lines() + [json.dumps(o) for o in _json_objects()]
    for case in range(30):
        recs = []
        for _ in range(rng.randint(1, 40)):
            body = rng.choice(lines)
            cut = rng.randint(0, len(body))
            body = rng.choice([body, body[:cut], body[:cut] + rng.choice(["é", "\t", "\x00", '"', "\n", "  "]) + body[cut:],
                               "", None])
            attrs = dict(IDENTITY) if rng.random() < 0.7 else {}
            if rng.random() < 0.2:  # the fields as attributes too: the body is then not read
                attrs.update({k: v for k, v in rng.choice(_json_objects()).items() if v is not None})
            recs.append({"body": body, "attrs": attrs})
        body = request(recs, {"k8s.namespace.name": "bookinfo"})
        a = records_to_requests(_wire_records(body))
        b = records_to_requests(_upb_records(body))
        assert same_rows(a.table, b.table) and (a.rejected, a.errors) == (b.rejected, b.errors), case
    bad = ExportLogsServiceRequest.FromString(request([{"body": "x", "attrs": {"response_code": 200}}]))
    raw = bad.SerializeToString().replace(b"\x0a\x01x", b"\x0a\x01\xff")  # a structured record's body, not UTF-8
    with pytest.raises(OtelLogError):
        decode_access_logs(raw)


def test_identity_patched_on_codes_gives_what_patching_the_strings_gives():
    """Reporter-side columns hold markers where the sidecar's own identity goes; they are patched on dictionary
    codes: same values and the same dictionary (first appearance, merged duplicates, markers gone) as the strings."""
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    from collector.parse import otel_access_log as o
    from collector.tables import REQUESTS

    rnd = random.Random(3)
    n = 400
    pool = [o._MARK_WL, o._MARK_NS, o._MARK_PR, "unknown", "reviews-v1", "bookinfo", "spiffe://cluster.local/ns/a/sa/b"]
    cols = {f.name: pa.array([rnd.choice(pool) for _ in range(n)]).dictionary_encode() if f.name in (
        s.SOURCE_WORKLOAD, s.DESTINATION_WORKLOAD, s.SOURCE_WORKLOAD_NAMESPACE, s.DESTINATION_WORKLOAD_NAMESPACE,
        s.SOURCE_PRINCIPAL, s.DESTINATION_PRINCIPAL) else pa.nulls(n, f.type) for f in REQUESTS}
    table = pa.table(cols).cast(REQUESTS)
    for kinds in (1, 3, n):  # one sidecar, a few, every record its own
        ident = [pa.array([rnd.choice(["reviews-v1", "unknown", "x", "bookinfo"]) + str(i % kinds) for i in range(n)])
                 for _ in range(3)]
        got = o.patch_identity(table, *ident)
        for name, mark, value in ((s.SOURCE_WORKLOAD, o._MARK_WL, ident[0]), (s.DESTINATION_PRINCIPAL, o._MARK_PR, ident[2]),
                                  (s.SOURCE_WORKLOAD_NAMESPACE, o._MARK_NS, ident[1])):
            col = table.column(name).combine_chunks()
            strings = pc.if_else(pc.equal(col.cast(pa.string()), mark), value, col.cast(pa.string()))
            want = pc.dictionary_encode(strings)
            assert got.column(name).combine_chunks().equals(want), name
