"""Trace exports decoded together (`decode_traces_many`) and the receiver's batcher: batching must never
change what a body decodes to, what its sender is told, or how many spans are stored."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1 import common_pb2

from collector.parse.otlp import OtlpDecodeError, decode_traces, decode_traces_many
from collector.sources.otlp import OtlpReceiver
from collector.store import TelemetryStore

REAL = (Path(__file__).parent / "data" / "envoy_otlp_traces.pb").read_bytes()  # a real Envoy 1.40 export


def _variant(kind: str) -> bytes:
    """The real export, changed the ways real senders differ: other service names and times, spans with bad ids,
    an attribute value only the complete decoder reads, a trace without spans."""
    req = ExportTraceServiceRequest.FromString(REAL)
    now = time.time_ns()
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                sp.start_time_unix_nano, sp.end_time_unix_nano = now, now + 1_000_000
    spans = [sp for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    if kind == "renamed":
        for rs in req.resource_spans:
            for kv in rs.resource.attributes:
                if kv.key == "service.name":
                    kv.value.string_value += "-b"
    elif kind == "bad-ids":
        spans[0].trace_id = b"\x01" * 3
        spans[-1].span_id = b""
    elif kind == "array-attr":
        spans[1].attributes.add(key="tags", value=common_pb2.AnyValue(
            array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(string_value="x")])))
    elif kind == "empty":
        req = ExportTraceServiceRequest()
    return req.SerializeToString()


POOL = {"real": None, "renamed": None, "bad-ids": None, "array-attr": None, "empty": None,
        "garbage": b"\x0a\xff\xff\xff\xff\x0f not protobuf", "truncated": REAL[: len(REAL) // 2]}


def _body(kind: str) -> bytes:
    if POOL[kind] is None:
        POOL[kind] = _variant(kind)
    return POOL[kind]


def _check_same_as_one_by_one(kinds: list[str]) -> None:
    bodies = [_body(k) for k in kinds]
    batch = decode_traces_many(bodies)
    assert len(batch.results) == len(bodies)
    joint = []
    for body, res in zip(bodies, batch.results):
        try:
            alone = decode_traces(body)
        except OtlpDecodeError:
            assert isinstance(res, OtlpDecodeError)
            continue
        assert not isinstance(res, OtlpDecodeError)
        assert res.rejected == alone.rejected and res.errors == alone.errors
        assert res.table.to_pylist() == alone.table.to_pylist()
        joint.extend(alone.table.to_pylist())
    assert batch.table.to_pylist() == joint  # every good body's rows, once, in body order


def test_each_body_decodes_as_it_would_alone():
    _check_same_as_one_by_one(["real", "garbage", "renamed", "bad-ids", "empty", "truncated", "real"])


def test_a_body_only_the_complete_decoder_reads_does_not_change_its_neighbours():
    _check_same_as_one_by_one(["renamed", "array-attr", "bad-ids"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(sorted(POOL)), min_size=1, max_size=6))
def test_any_mix_of_bodies_decodes_as_each_alone(kinds):
    _check_same_as_one_by_one(kinds)


@pytest.fixture
def batched():
    store = TelemetryStore(window_s=3600)
    rx = OtlpReceiver(store, port=0, trace_linger_s=0.5)
    rx.start()
    yield rx, store
    rx.stop()
    store.close()


def test_concurrent_senders_are_batched_and_each_answered_for_its_own_body(batched):
    rx, store = batched
    kinds = ["real", "bad-ids", "garbage", "renamed", "real", "truncated", "renamed"]
    rx.batcher.linger_s, rx.batcher.max_batch_bodies = 60.0, len(kinds)  # one round, once all have arrived
    answers: dict[int, httpx.Response] = {}

    def send(i: int) -> None:
        answers[i] = httpx.post(f"{rx.endpoint}/v1/traces", content=_body(kinds[i]), timeout=30,
                                headers={"content-type": "application/x-protobuf"})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(kinds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    expected_rows = 0
    for i, kind in enumerate(kinds):
        try:
            alone = decode_traces(_body(kind))
        except OtlpDecodeError:
            assert answers[i].status_code == 400, kind  # undecodable: never retryable, and only this body
            continue
        assert answers[i].status_code == 200, (kind, answers[i].text)
        reply = ExportTraceServiceResponse.FromString(answers[i].content)
        assert reply.partial_success.rejected_spans == alone.rejected, kind
        expected_rows += alone.table.num_rows
    assert store.row_count("spans") == expected_rows  # stored before any answer: exactly once each
    assert rx.spans_received == expected_rows
    assert rx.batcher.bodies == len(kinds) and rx.batcher.batches == 1


def test_json_exports_bypass_the_batcher_and_still_work(batched):
    rx, store = batched
    doc = ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"c2a014f53ee677b4881ece0d1634ed78",'
           f'"spanId":"7b0b2484e36968fa","name":"x","startTimeUnixNano":"{time.time_ns()}",'
           f'"endTimeUnixNano":"{time.time_ns()}"}}]}}]}}]}}')
    r = httpx.post(f"{rx.endpoint}/v1/traces", content=doc, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200 and store.row_count("spans") == 1
    assert rx.batcher.bodies == 0


def test_a_failing_store_answers_every_batched_sender_503(batched):
    rx, store = batched
    store.close()
    r = httpx.post(f"{rx.endpoint}/v1/traces", content=_body("real"), timeout=30,
                   headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 503 and "retry-after" in r.headers


class HeldStore(TelemetryStore):
    """A store whose first `add_spans` waits until the test releases it (the batch worker busy with a batch)."""

    def __init__(self):
        super().__init__(window_s=3600)
        self.entered, self.release = threading.Event(), threading.Event()

    def add_spans(self, table):
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), "the test never released the held batch"
        return super().add_spans(table)


def test_a_lone_sender_is_never_held_for_neighbours_that_are_not_coming():
    """One export at a time (an exporter with one worker): each body is its own batch, answered once stored;
    a linger would hold every export for its whole length (the suite's forwarder fell 15 min behind)."""
    store = TelemetryStore(window_s=3600)
    rx = OtlpReceiver(store, port=0, trace_batch=True)
    rx.start()
    try:
        assert rx.batcher is not None and rx.batcher.linger_s == 0
        rows = decode_traces(_body("real")).table.num_rows
        with httpx.Client(base_url=rx.endpoint, timeout=30) as client:
            for i in range(1, 9):
                r = client.post("/v1/traces", content=_body("real"), headers={"content-type": "application/x-protobuf"})
                assert r.status_code == 200
                assert store.row_count("spans") == i * rows  # stored before its answer, alone
        assert rx.batcher.batches == rx.batcher.bodies == 8
    finally:
        rx.stop()
        store.close()


def test_the_batch_is_what_queued_while_the_worker_was_busy():
    from collector.sources.trace_batch import TraceBatcher

    store = HeldStore()
    batcher = TraceBatcher(store)
    try:
        first = batcher.submit(_body("real"))
        assert store.entered.wait(30)  # the worker holds the first body's batch
        waiting = [batcher.submit(_body(k)) for k in ("renamed", "garbage", "real", "bad-ids")]
        store.release.set()
        assert first.result(timeout=30).kept > 0
        outcomes = []
        for fut in waiting:
            try:
                outcomes.append(fut.result(timeout=30).kept)
            except OtlpDecodeError:
                outcomes.append("400")
        assert outcomes[1] == "400" and all(isinstance(n, int) and n > 0 for i, n in enumerate(outcomes) if i != 1)
        assert batcher.batches == 2 and batcher.bodies == 5  # the four that waited went together, at once
        assert store.row_count("spans") == sum(decode_traces(_body(k)).table.num_rows
                                               for k in ("real", "renamed", "real", "bad-ids"))
    finally:
        store.release.set()
        batcher.stop()
        store.close()
