"""Access logs: both Istio formats from a real Envoy, malformed lines, and the rotation-safe tailer."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from collector import schema as s
from collector import selfmetrics
from collector.parse.access_log import LogContext, parse_access_log, parse_json_log, parse_text_log
from collector.sources.access_log import AccessLogTailer, LogFile
from collector.store import TelemetryStore
from tests.util import wait_until

DATA = Path(__file__).parent / "data"
CTX = LogContext("sidecar.log", "productpage-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/productpage")
INBOUND_JSON = (
    '{"authority":"b","bytes_received":0,"bytes_sent":11,"downstream_peer_uri_san":"spiffe://cluster.local/ns/default/sa/a",'
    '"downstream_tls_version":"TLSv1.3","duration":3,"method":"GET","path":"/status/500","protocol":"HTTP/1.1",'
    '"request_id":"72b095ff-487e-95cb-a154-31f456eebfd2","requested_server_name":"outbound_.8080_._.b.default.svc.cluster.local",'
    '"response_code":500,"response_code_details":"via_upstream","response_flags":"-","start_time":"2026-11-21T00:51:57.435Z",'
    '"traceparent":"00-c2a014f53ee677b4881ece0d1634ed78-7b0b2484e36968fa-01","upstream_cluster":"inbound|8080||",'
    '"upstream_host":"127.0.0.1:27080","upstream_peer_uri_san":null,"upstream_transport_failure_reason":null}'
)


def test_real_envoy_json_and_text_logs_give_the_same_requests():
    j = parse_json_log((DATA / "envoy_access_json.log").read_bytes(), CTX)
    t = parse_text_log((DATA / "envoy_access_text.log").read_bytes(), CTX)
    assert j.errors == [] and t.errors == []
    cols = [s.START_TIME, s.METHOD, s.PATH, s.RESPONSE_CODE, s.RESPONSE_FLAGS, s.REQUEST_ID, s.UPSTREAM_CLUSTER,
            s.DESTINATION_SERVICE, s.REPORTER, s.DURATION_MS, s.BYTES_SENT]
    assert j.requests[cols].equals(t.requests[cols])
    df = j.requests
    assert len(df) == 26
    assert set(df[s.REPORTER]) == {"source"}  # an outbound (client) sidecar
    assert set(df[s.SOURCE_WORKLOAD]) == {"productpage-v1"}
    uf = df[df[s.RESPONSE_FLAGS] == "URX,UF"]
    assert len(uf) == 2 and set(uf[s.DESTINATION_SERVICE]) == {"down.bookinfo.svc.cluster.local"}
    assert "Connection_refused" in uf[s.UPSTREAM_TRANSPORT_FAILURE_REASON].iloc[0]
    nr = df[df[s.RESPONSE_FLAGS] == "NR"]
    assert list(nr[s.RESPONSE_CODE]) == [404]
    assert list(nr[s.DESTINATION_SERVICE]) == list(nr[s.AUTHORITY].astype(str))  # no cluster: the authority


@pytest.mark.parametrize("flags,details", [("NC", "cluster_not_found"), ("NR", "route_not_found")])
@pytest.mark.parametrize("authority", ["details:9080", "detail.bookinfo.svc.cluster.local:9080", "reviews"])
def test_client_request_with_no_cluster_is_named_by_its_authority_verbatim(flags, details, authority):
    """As Istio's stats filter names it (the Host header, port included), so metrics and logs agree."""
    line = json.loads(INBOUND_JSON)
    line.update(authority=authority, response_flags=flags, response_code=503 if flags == "NC" else 404,
                response_code_details=details, upstream_cluster=None, requested_server_name=None,
                downstream_peer_uri_san=None, downstream_tls_version=None, upstream_host=None)
    r = parse_json_log(json.dumps(line) + "\n", CTX)
    row = r.requests.iloc[0]
    assert r.errors == [] and row[s.REPORTER] == "source"
    assert row[s.DESTINATION_SERVICE] == authority


def test_inbound_json_line_reads_peer_identity_mtls_and_trace():
    r = parse_json_log(INBOUND_JSON + "\n", LogContext("b.log", "b-v1", "default", "spiffe://cluster.local/ns/default/sa/b"))
    row = r.requests.iloc[0]
    assert row[s.REPORTER] == "destination"
    assert row[s.SOURCE_PRINCIPAL] == "spiffe://cluster.local/ns/default/sa/a"
    assert row[s.SOURCE_WORKLOAD_NAMESPACE] == "default"
    assert row[s.DESTINATION_WORKLOAD] == "b-v1"
    assert row[s.DESTINATION_SERVICE] == "b.default.svc.cluster.local"
    assert bool(row[s.MTLS]) is True
    assert row[s.TRACE_ID] == "c2a014f53ee677b4881ece0d1634ed78"
    assert row[s.RESPONSE_CODE] == 500 and row[s.DURATION_MS] == 3.0


def test_bad_json_lines_are_reported_by_line_and_the_rest_kept():
    good = (DATA / "envoy_access_json.log").read_text().splitlines()
    lines = [good[0], "not json", good[1], '{"start_time": 5}', '{"start_time":"2026-11-21T00:00:00Z","response_code":"x"}',
             '{"start_time":"yesterday"}', good[2], '{"truncated": ', ""]
    r = parse_json_log("\n".join(lines), CTX, first_line=100)
    assert len(r.requests) == 3
    assert [e.line for e in r.errors] == [101, 103, 104, 105, 107]
    assert "start_time" in r.errors[3].message


def test_numbers_written_as_strings_are_accepted():
    line = INBOUND_JSON.replace('"response_code":500', '"response_code":"500"').replace('"duration":3', '"duration":"3"')
    r = parse_json_log(line, CTX)
    assert r.errors == [] and r.requests[s.RESPONSE_CODE].iloc[0] == 500


def test_auto_format_detection():
    assert len(parse_access_log((DATA / "envoy_access_text.log").read_bytes(), CTX).requests) == 26
    assert len(parse_access_log((DATA / "envoy_access_json.log").read_text(), CTX).requests) == 26


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_never_raise(data):
    for parse in (parse_json_log, parse_text_log):
        r = parse(data, CTX)
        assert len(r.requests) + len(r.errors) <= data.count(b"\n") + 1


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=20000), st.sampled_from(["envoy_access_json.log", "envoy_access_text.log"]))
def test_fuzz_truncated_real_logs(cut, name):
    data = (DATA / name).read_bytes()[:cut]
    r = parse_access_log(data, CTX)
    assert len(r.errors) <= 1  # only the cut line


# ------------------------------------------------------------------------------ tailer
def _lines(start: int, n: int) -> str:
    return "".join(INBOUND_JSON.replace("72b095ff-487e-95cb-a154-31f456eebfd2", f"req-{i}") + "\n" for i in range(start, start + n))


def _ids(store: TelemetryStore) -> list[int]:
    return sorted(int(x.split("-")[1]) for x in store.requests()[s.REQUEST_ID])


@pytest.fixture
def store():
    return TelemetryStore(window_s=10**10)


def test_tail_follows_appends_and_waits_for_complete_lines(tmp_path, store):
    log = tmp_path / "a.log"
    log.write_text(_lines(0, 3))
    t = AccessLogTailer([LogFile(str(log), "b-v1", "default")], store)
    assert t.poll() == 3
    with open(log, "a") as f:
        f.write(_lines(3, 2))
        f.write(INBOUND_JSON[:40])  # a line being written
    assert t.poll() == 2
    with open(log, "a") as f:
        f.write(INBOUND_JSON[40:].replace("72b095ff-487e-95cb-a154-31f456eebfd2", "req-5") + "\n")
    assert t.poll() == 1
    assert _ids(store) == list(range(6))
    t.stop()


def test_rename_rotation_drains_the_old_file_then_follows_the_new(tmp_path, store):
    log = tmp_path / "a.log"
    log.write_text(_lines(0, 2))
    t = AccessLogTailer([str(log)], store)
    t.poll()
    with open(log, "a") as f:
        f.write(_lines(2, 2))  # written just before rotation, not yet read
    os.rename(log, tmp_path / "a.log.1")
    log.write_text(_lines(4, 3))
    t.poll()
    assert _ids(store) == list(range(7))
    t.stop()


def test_copytruncate_rotation_restarts_at_zero(tmp_path, store):
    log = tmp_path / "a.log"
    log.write_text(_lines(0, 5))
    t = AccessLogTailer([str(log)], store)
    t.poll()
    with open(log, "r+") as f:
        f.truncate(0)
    with open(log, "a") as f:
        f.write(_lines(5, 2))
    t.poll()
    assert _ids(store) == list(range(7))
    t.stop()


def test_resume_after_restart_without_duplicates_or_gaps(tmp_path, store):
    log, state = tmp_path / "a.log", tmp_path / "offsets.json"
    log.write_text(_lines(0, 4))
    t = AccessLogTailer([str(log)], store, state_path=state)
    t.poll()
    t.stop()
    with open(log, "a") as f:
        f.write(_lines(4, 3))  # written while meshscope was down
    t2 = AccessLogTailer([str(log)], store, state_path=state)
    t2.poll()
    t2.stop()
    assert _ids(store) == list(range(7))
    assert json.loads(state.read_text())[str(log)]["offset"] == log.stat().st_size


_TAIL_FOREVER = """
import sys
from collector.sources.access_log import AccessLogTailer
from collector.store import TelemetryStore
store = TelemetryStore(sys.argv[1], window_s=10**10, flush_interval_s=0.05)
tailer = AccessLogTailer([sys.argv[2]], store, state_path=sys.argv[3], max_batch_bytes=4096)
while True:
    tailer.poll()
"""


def _stored_rows(data: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in data.glob("requests/seg-*.parquet"))


def test_killed_mid_backlog_resumes_without_duplicates_or_gaps(tmp_path):
    """SIGKILL a real tailer process while it works through a backlog, twice; then finish in process.

    Rows and the file position are committed together, so wherever the kill lands, every
    line ends up stored exactly once.
    """
    log, data, state = tmp_path / "a.log", tmp_path / "store", tmp_path / "offsets.json"
    total = 0
    for _ in range(2):
        log.open("a").write(_lines(total, 20_000))
        total += 20_000
        before = _stored_rows(data)
        proc = subprocess.Popen([sys.executable, "-c", _TAIL_FOREVER, str(data), str(log), str(state)],
                                cwd=Path(__file__).resolve().parents[2])
        try:
            # kill as soon as more rows have reached a segment: in the middle of the backlog
            wait_until(lambda: proc.poll() is not None or _stored_rows(data) > before, timeout=120,
                       interval=0.01, what="the tailer storing part of the backlog")
            assert proc.poll() is None, "the tailer process exited"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert _stored_rows(data) < total  # it really was stopped half way
    with TelemetryStore(data, window_s=10**10) as store:
        tailer = AccessLogTailer([str(log)], store, state_path=state)
        tailer.poll()
        tailer.stop()
        assert _ids(store) == list(range(total))


def test_rotation_while_stopped_reads_the_old_tail_first(tmp_path, store):
    log, state = tmp_path / "a.log", tmp_path / "offsets.json"
    log.write_text(_lines(0, 2))
    t = AccessLogTailer([str(log)], store, state_path=state)
    t.poll()
    t.stop()
    with open(log, "a") as f:
        f.write(_lines(2, 2))
    os.rename(log, tmp_path / "a.log.1")
    log.write_text(_lines(4, 2))
    t2 = AccessLogTailer([str(log)], store, state_path=state)
    t2.poll()
    t2.poll()
    t2.stop()
    assert _ids(store) == list(range(6))


def test_malformed_lines_counted_per_file(tmp_path, store):
    log = tmp_path / "bad.log"
    log.write_text(_lines(0, 1) + "garbage\n" + _lines(1, 1))
    before = selfmetrics.malformed_total("access_log", str(log))
    t = AccessLogTailer([str(log)], store)
    assert t.poll() == 2
    t.stop()
    assert selfmetrics.malformed_total("access_log", str(log)) - before == 1


def test_tail_a_real_envoy_log(tmp_path, store):
    from tests.collector.envoy_static import static_envoy
    from tests.util import wait_until
    with static_envoy(tmp_path) as envoy:
        t = AccessLogTailer([LogFile(str(envoy.json_log), "productpage-v1", "bookinfo"),
                             LogFile(str(envoy.text_log), "productpage-v1", "bookinfo")], store, interval=0.1)
        t.start()
        try:
            envoy.get("/ok", 5)
            envoy.get("/fail", 2)
            wait_until(lambda: len(store.requests()) >= 14, timeout=60, what="both logs tailed")
        finally:
            t.stop()
    df = store.requests()
    assert len(df) == 14
    assert sorted(df.groupby(s.LOG_SOURCE)[s.RESPONSE_CODE].apply(sorted).iloc[0]) == [200] * 5 + [503] * 2


def test_bare_paths_named_namespace_workload_give_the_writer(tmp_path, store):
    log = tmp_path / "bookinfo.productpage-v1.log"
    log.write_text((DATA / "envoy_access_json.log").read_text())
    t = AccessLogTailer([log], store)
    assert t.poll() == 26
    t.stop()
    df = store.requests()
    assert set(df[s.SOURCE_WORKLOAD]) == {"productpage-v1"} and set(df[s.SOURCE_WORKLOAD_NAMESPACE]) == {"bookinfo"}
