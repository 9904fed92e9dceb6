"""Real-world telemetry corpus: payloads meshscope was not written for, read by its own parsers and sources.

Files under telemetry/files/ are byte for byte as upstream ships them (telemetry/sources.yaml: repo, path,
tag, licence, git blob). What each test asserts is read by hand from the file itself: how many records it
holds, fields of named records, and that nothing the format allows is refused. Cheap: no mesh, no Envoy;
the scraper case serves the files from 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prometheus_client.parser import text_string_to_metric_families

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector import schema as sc
from collector.parse.access_log import LogContext, parse_text_log
from collector.parse.exposition import format_labels, parse_exposition, parse_sample_line
from collector.parse.otlp import decode_logs, decode_traces
from collector.sources.otlp import OtlpReceiver
from collector.sources.prom_api import PrometheusClient
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore
from tests.collector.envoy_static import ISTIO_TEXT_FORMAT
from tests.util import BodyServer, wait_until

ROOT = Path(__file__).parent / "telemetry"
SOURCES: list[dict] = yaml.safe_load((ROOT / "sources.yaml").read_text())
EXPOSITION = [s["file"] for s in SOURCES if s["format"] == "prometheus-text-0.0.4"]
ACCESS_LOGS = [s["file"] for s in SOURCES if s["format"] == "istio-text-access-log"]
OTLP = {s["file"]: s["format"] for s in SOURCES if s["format"].startswith("otlp-json-")}


def _bytes(name: str) -> bytes:
    return (ROOT / "files" / name).read_bytes()


def _sample_lines(raw: bytes) -> int:
    """Lines that are neither blank nor comments: each is one sample in the 0.0.4 text format."""
    return sum(1 for line in raw.splitlines() if line.strip() and not line.lstrip().startswith(b"#"))


def _timestamped(raw: bytes) -> bool:
    """Whether any sample line carries its own timestamp (a token after the value)."""
    for line in raw.splitlines():
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        rest = line.rsplit(b"}", 1)[1] if b"}" in line else line.split(None, 1)[1]
        if len(rest.split()) > 1:
            return True
    return False


def _value(df: pd.DataFrame, metric: str, labels: str) -> float:
    hit = df[(df.metric == metric) & (df.labels == labels)]
    assert len(hit) == 1, (metric, labels, len(hit))
    return float(hit.value.iloc[0])


def test_every_file_is_as_upstream_ships_it():
    """Whole files carry upstream's git blob id; trimmed ones (`trim` says what was kept) the sha256 of the trim."""
    assert {s["file"] for s in SOURCES} == {str(p.relative_to(ROOT / "files")) for p in (ROOT / "files").rglob("*") if p.is_file()}
    for s in SOURCES:
        data = _bytes(s["file"])
        if "trim" in s:
            assert hashlib.sha256(data).hexdigest() == s["sha256"], s["file"]
        else:
            assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == s["blob"], s["file"]
        assert s["licence"] in ("Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause"), s["file"]
        assert s["repo"] and s["path"] and (s.get("tag") or s.get("commit")), s["file"]


@pytest.mark.parametrize("name", EXPOSITION)
def test_exposition_reads_every_sample_and_refuses_nothing(name):
    raw = _bytes(name)
    result = parse_exposition(raw)
    assert [str(e) for e in result.errors] == []
    assert len(result.samples) == _sample_lines(raw)
    for row in result.samples.itertuples(index=False):  # an Istio label column holds the sample's own label
        labels = parse_sample_line(f"m{{{row.labels}}} 0")[1]
        assert (row.reporter, row.destination_service) == (labels.get("reporter", "unknown"),
                                                          labels.get("destination_service", "unknown")), row.labels


@pytest.mark.parametrize("name", EXPOSITION)
def test_exposition_agrees_with_the_reference_parser(name):
    """Every sample's name, labels (without `le`), `le` and value as prometheus_client reads them, in file order."""
    raw = _bytes(name)
    ours = parse_exposition(raw).samples
    ref = [smp for fam in text_string_to_metric_families(raw.decode()) for smp in fam.samples]
    assert len(ours) == len(ref)
    for row, smp in zip(ours.itertuples(index=False), ref):
        labels = dict(smp.labels)
        le = labels.pop("le", None)
        assert (row.metric, str(row.labels)) == (smp.name, format_labels(labels))
        assert (math.isnan(row.le) if le is None else row.le == float(le)), (row.metric, le)
        assert row.value == smp.value or (math.isnan(row.value) and math.isnan(smp.value)), (row.metric, row.labels)


def test_prometheus_textparse_data():
    """prometheus/prometheus model/textparse/promtestdata.txt: a Prometheus 1.x server's own /metrics."""
    df = parse_exposition(_bytes("prometheus/model/textparse/promtestdata.txt")).samples
    assert len(df) == 410
    assert _value(df, "go_gc_duration_seconds", 'quantile="0.25"') == 7.424100000000001e-05  # line 4
    assert _value(df, "go_goroutines", "") == 33  # line 12
    assert _value(df, "http_requests_total", 'code="200",handler="prometheus",method="get"') == 462  # line 280
    assert math.isnan(_value(df, "http_request_duration_microseconds", 'handler="alerts",quantile="0.5"'))  # line 84
    # line 382: empty label values are label values, kept as written
    assert _value(df, "prometheus_build_info", 'branch="",goversion="go1.7.3",revision="",version=""') == 1
    assert df.metric.iloc[-1] == "prometheus_treecache_zookeeper_failures_total"  # the last sample, before '# EOF'


def test_metadata_lines_change_nothing():
    """promtestdata.nometa.txt is the same samples without # HELP / # TYPE lines."""
    cols = ["metric", "labels", "value"]
    meta = parse_exposition(_bytes("prometheus/model/textparse/promtestdata.txt")).samples[cols]
    bare = parse_exposition(_bytes("prometheus/model/textparse/promtestdata.nometa.txt")).samples[cols]
    pd.testing.assert_frame_equal(meta.astype({"labels": str}), bare.astype({"labels": str}))


def test_prometheus_common_expfmt_text():
    """prometheus/common expfmt/testdata/text: summaries per handler, process and Go runtime gauges."""
    df = parse_exposition(_bytes("prometheus-common/expfmt/testdata/text")).samples
    assert len(df) == 248
    assert _value(df, "http_requests_total", 'code="200",handler="prometheus",method="get"') == 119  # line 117
    assert _value(df, "go_goroutines", "") == 70  # line 180
    assert _value(df, "process_start_time_seconds", "") == 1.42236894836e09  # line 192
    assert _value(df, "http_request_duration_microseconds_count", 'handler="/heap"') == 0  # line 47


def test_the_scraper_stores_every_sample_of_every_file():
    """The real scraper over HTTP (keep=None: every series), one target per corpus file."""
    bodies = {f"/{i}/metrics": _bytes(name) for i, name in enumerate(EXPOSITION)}
    with BodyServer(bodies.get) as srv:
        base = srv.url
        store = TelemetryStore()
        scraper = Scraper([base + p for p in bodies], store, keep=None)
        try:
            scraper.poll()
        finally:
            scraper.stop()
        rows = store.metrics().groupby("target").size()
        for path, body in bodies.items():
            health = scraper.health()[base + path]
            assert health.malformed == 0, path
            assert rows.get(base + path, 0) == _sample_lines(body), path


def test_prometheus_exposition_format_examples():
    """prometheus/prometheus promql/fuzz-data/ParseMetric/corpus: the text format's own examples, one sample each
    (escapes, timestamps, +Inf, spaces around labels), and promtool's metrics-test.prom."""
    def one(name: str) -> pd.Series:
        df = parse_exposition(_bytes(f"prometheus/promql/fuzz-data/ParseMetric/corpus/{name}")).samples
        assert len(df) == 1, name
        return df.iloc[0]

    row = one("exposition_formats_1")  # a Windows path and a quoted newline, escaped as the format says
    assert row["metric"] == "msdos_file_access_time_ms" and row["value"] == 1234.0
    assert str(row["labels"]) == r'path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""'
    row = one("exposition_formats_0")  # a timestamp after the value; HELP/TYPE name another family
    assert (row["metric"], str(row["labels"]), row["value"]) == ("http_request_count", 'method="post",code="200"', 1027)
    row = one("exposition_formats_3")  # +Inf with a negative timestamp
    assert row["value"] == math.inf and str(row["labels"]) == 'problem="division by zero"'
    row = one("exposition_formats_4")
    assert (row["metric"], row["le"], row["value"]) == ("http_request_duration_seconds_bucket", math.inf, 144320)
    for name in ("exposition_formats_5", "exposition_formats_6", "exposition_formats_7", "982cbe5ad899f03c630b1a21876a206707ea3dc9"):
        row = one(name)  # spaces after '{', around '=' and before '}' are allowed and not part of the labels
        assert row["metric"] in ("go_gc_duration_seconds", "o") and row["value"] == 8.3835e-05, name
        assert str(row["labels"]).endswith('a="b"') and str(row["labels"]).startswith("quantile="), name
    df = parse_exposition(_bytes("prometheus/cmd/promtool/testdata/metrics-test.prom")).samples
    assert len(df) == 27
    assert _value(df, "go_gc_duration_seconds", 'quantile="1"') == 0.005201208


def test_openmetrics_exemplars_and_created_series():
    """prometheus/prometheus omtestdata.txt (OpenMetrics, as client_golang writes it): six histogram buckets carry an
    exemplar (` # {dummyID="..."} value timestamp`, timestamps in float seconds). Every sample line is one sample
    with the value before the exemplar, `_created` series are samples, nothing is refused (the buckets were: the
    histogram lost 6 of its 21 buckets and every quantile read from it shifted)."""
    raw = _bytes("prometheus/model/textparse/testdata/omtestdata.txt")
    result = parse_exposition(raw)
    assert [str(e) for e in result.errors] == []
    df = result.samples
    assert len(df) == _sample_lines(raw) == 53
    buckets = df[df.metric == "rpc_durations_histogram_seconds_bucket"]
    assert list(buckets.value) == [0] * 7 + [3, 5, 5, 8, 9, 11] + [15] * 8  # lines 19-39, exemplars or not
    assert buckets["le"].iloc[7] == -0.0002899999999999998 and buckets["le"].iloc[-1] == math.inf
    assert _value(df, "rpc_requests_created", 'service="uniform"') == 1.7268398130168471e09
    assert _value(df, "rpc_durations_histogram_seconds_sum", "") == -8.452185437166741e-05


def test_prometheus_api_answers_read_back(prometheus):
    """The files scraped by a real Prometheus and read back through PrometheusClient (real API answers: values as
    text, "NaN", labels as objects) give the parser's samples. Prometheus drops empty label values; files whose
    samples carry their own timestamps (2014, negative) are left out: a live Prometheus keeps none of those."""
    names = [n for n in EXPOSITION if not _timestamped(_bytes(n))]
    assert "prometheus/model/textparse/promtestdata.txt" in names
    servers = {n: BodyServer(_bytes(n)) for n in names}  # one per file: Prometheus tells targets apart by instance
    instance = {n: srv.address for n, srv in servers.items()}
    expected = {}
    for n in names:
        df = parse_exposition(_bytes(n)).samples
        expected[n] = [(m, str(lab), le, v) for m, lab, le, v in zip(df["metric"], df["labels"], df["le"], df["value"])]

    def key(row: dict) -> tuple:
        labels = {k: v for k, v in row.items() if k not in ("__name__", "value", "instance", "job")}
        labels = {k: v for k, v in labels.items() if isinstance(v, str) and v != ""}
        return row["__name__"], labels, row["value"]

    try:
        with prometheus.scrape([f"http://{i}/metrics" for i in instance.values()]), PrometheusClient(prometheus.url) as client:
            def read_back():
                out = {}
                for n in names:
                    df = client.query_vector(f'{{instance="{instance[n]}",__name__!~"up|scrape_.*"}}')
                    if len(df) < len(expected[n]):
                        return None
                    out[n] = [key(r) for r in df.to_dict("records")]
                return out
            got = wait_until(read_back, timeout=60, interval=0.5, what="every corpus sample in Prometheus")
    finally:
        for srv in servers.values():
            srv.close()
    for n in names:
        ours = {}
        for m, lab, le, v in expected[n]:
            labels = {k: v2 for k, v2 in parse_sample_line(f"m{{{lab}}} 0")[1].items() if v2 != ""}
            ours[(m, format_labels(dict(sorted(labels.items()))), None if math.isnan(le) else le)] = v
        theirs = {}
        for m, lab, v in got[n]:
            le = lab.pop("le", None)
            theirs[(m, format_labels(dict(sorted(lab.items()))), None if le is None else float(le))] = v
        assert theirs.keys() == ours.keys(), n
        for k, v in ours.items():
            assert theirs[k] == v or (math.isnan(v) and math.isnan(theirs[k])), (n, k)


# ------------------------------------------------------------------------------------------ access logs
def _reference_reading(line: str, fmt: str = ISTIO_TEXT_FORMAT) -> dict[str, str]:
    """A plain reading of one line by Istio's default format string: each quoted operator is the text up to the next
    quote, each bare one the next space-free token, the last (%ROUTE_NAME%) the rest of the line."""
    fmt = fmt.rstrip("\n")
    ops = re.findall(r"%([A-Za-z_()?:.\-]+)%", fmt)
    pattern, pos = "^", 0
    for i, m in enumerate(re.finditer(r"%([A-Za-z_()?:.\-]+)%", fmt)):
        pattern += re.escape(fmt[pos:m.start()])
        quoted = fmt[m.start() - 1:m.start()] == '"' and fmt[m.end():m.end() + 1] == '"'
        pattern += "(.*)" if i == len(ops) - 1 else ('([^"]*)' if quoted else r"(\S+)")
        pos = m.end()
    hit = re.match(pattern + "$", line)
    assert hit, line
    return dict(zip(ops, hit.groups()))


@pytest.mark.parametrize("name", ACCESS_LOGS)
def test_istio_access_log_lines_read_as_the_format_says(name):
    """Every line of istio.io's printed access logs is read, and each field equals a plain reading of the line by the
    format string ('-' is empty, and 0 for numbers)."""
    raw = _bytes(name)
    lines = [line for line in raw.decode().splitlines() if line.strip()]
    ctx = LogContext("istio.io", "sleep", "foo", "spiffe://cluster.local/ns/foo/sa/sleep")
    result = parse_text_log(raw, ctx)
    assert [str(e) for e in result.errors] == []
    rows = result.table.to_pylist()
    assert len(rows) == len(lines)

    def text(v: str) -> str:
        return "" if v == "-" else v

    def num(v: str) -> int:
        return 0 if v == "-" else int(v)

    for row, line in zip(rows, lines):
        ref = _reference_reading(line)
        assert row[sc.START_TIME] == pd.Timestamp(ref["START_TIME"]), line
        assert (row[sc.METHOD], row[sc.PATH], row[sc.PROTOCOL]) == (
            text(ref["REQ(:METHOD)"]), text(ref["REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"]), text(ref["PROTOCOL"])), line
        assert row[sc.RESPONSE_CODE] == num(ref["RESPONSE_CODE"]), line
        assert row[sc.RESPONSE_FLAGS] == ref["RESPONSE_FLAGS"] and row[sc.RESPONSE_CODE_DETAILS] == text(ref["RESPONSE_CODE_DETAILS"])
        assert (row[sc.BYTES_RECEIVED], row[sc.BYTES_SENT], row[sc.DURATION_MS]) == (
            num(ref["BYTES_RECEIVED"]), num(ref["BYTES_SENT"]), float(num(ref["DURATION"]))), line
        assert (row[sc.REQUEST_ID], row[sc.AUTHORITY], row[sc.UPSTREAM_HOST]) == (
            text(ref["REQ(X-REQUEST-ID)"]), text(ref["REQ(:AUTHORITY)"]), text(ref["UPSTREAM_HOST"])), line
        assert row[sc.UPSTREAM_CLUSTER] == text(ref["UPSTREAM_CLUSTER_RAW"]) and row[sc.ROUTE_NAME] == text(ref["ROUTE_NAME"])


# Istio 1.1's default text format (pilot/pkg/networking/core/v1alpha3/listener.go at istio/istio 1.1.0)
_ISTIO_11_FORMAT = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
                    '%RESPONSE_FLAGS% "%DYNAMIC_METADATA(istio.mixer:status)%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
                    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
                    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% '
                    '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%')


def test_istio_1_1_access_log_lines_read_by_their_format():
    """istio.io's access-log task as of Istio 1.1 (before 1.9: the mixer status where today's details are, no route
    name): both lines read, each field equal to a plain reading of the line by 1.1's format string."""
    raw = _bytes("istio.io/access-log-task-1.1.log")
    result = parse_text_log(raw, LogContext("istio.io", "sleep", "default", ""))
    assert [str(e) for e in result.errors] == []
    rows = result.table.to_pylist()
    lines = raw.decode().splitlines()
    assert len(rows) == len(lines) == 2
    for row, line in zip(rows, lines):
        ref = _reference_reading(line, _ISTIO_11_FORMAT)
        assert row[sc.START_TIME] == pd.Timestamp(ref["START_TIME"])
        assert (row[sc.METHOD], row[sc.PATH], row[sc.PROTOCOL], str(row[sc.RESPONSE_CODE])) == (
            ref["REQ(:METHOD)"], ref["REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"], ref["PROTOCOL"], ref["RESPONSE_CODE"])
        assert (str(row[sc.BYTES_RECEIVED]), str(row[sc.BYTES_SENT]), str(int(row[sc.DURATION_MS]))) == (
            ref["BYTES_RECEIVED"], ref["BYTES_SENT"], ref["DURATION"])
        assert (row[sc.REQUEST_ID], row[sc.AUTHORITY], row[sc.UPSTREAM_HOST], row[sc.UPSTREAM_CLUSTER]) == (
            ref["REQ(X-REQUEST-ID)"], ref["REQ(:AUTHORITY)"], ref["UPSTREAM_HOST"], ref["UPSTREAM_CLUSTER"])
        assert row[sc.ROUTE_NAME] == ""
    assert [(r[sc.REPORTER], r[sc.DESTINATION_SERVICE], r[sc.MTLS]) for r in rows] == [
        ("source", "httpbin.default.svc.cluster.local", False), ("destination", "httpbin.default.svc.cluster.local", True)]


def test_ztunnel_access_log_lines():
    """istio.io's ztunnel troubleshooting page: six completed connections (its header's tabs printed as spaces), each
    one TCP row naming both peers from the line itself, as read by hand."""
    result = parse_text_log(_bytes("istio.io/troubleshoot-ztunnel.log"), LogContext("zt", "ztunnel", "istio-system", ""))
    assert [str(e) for e in result.errors] == []
    rows = result.table.to_pylist()
    assert [(r[sc.REPORTER], r[sc.DESTINATION_WORKLOAD], r[sc.DESTINATION_SERVICE]) for r in rows] == [
        ("destination", "productpage-v1", "productpage.default.svc.cluster.local"),
        ("source", "productpage-v1", "productpage.default.svc.cluster.local"),
        ("source", "reviews-v3", "reviews.default.svc.cluster.local"),
        ("source", "reviews-v3", "reviews.default.svc.cluster.local"),
        ("source", "reviews-v1", "reviews.default.svc.cluster.local"),
        ("source", "reviews-v2", "reviews.default.svc.cluster.local")]
    assert {(r[sc.SOURCE_WORKLOAD], r[sc.SOURCE_WORKLOAD_NAMESPACE], r[sc.SOURCE_PRINCIPAL]) for r in rows} == {
        ("sleep", "default", "spiffe://cluster.local/ns/default/sa/sleep")}
    # the request is what the client sent: 80 bytes to productpage (175 back), 84 to reviews (169 back)
    assert [(r[sc.BYTES_RECEIVED], r[sc.BYTES_SENT]) for r in rows] == [(80, 175)] * 2 + [(84, 169)] * 4
    assert [r[sc.DURATION_MS] for r in rows] == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert rows[0][sc.START_TIME] == pd.Timestamp("2024-05-04T09:59:05.027709Z")  # 09:59:05.028709 less 1 ms
    assert rows[0][sc.DESTINATION_WORKLOAD_NAMESPACE] == "productpage"  # as the page prints it
    assert all(r[sc.MTLS] and r[sc.RESPONSE_CODE] == 0 and r[sc.RESPONSE_FLAGS] == "-" for r in rows)
    assert rows[2][sc.UPSTREAM_HOST] == "10.244.1.9:15008"


def test_istio_access_log_task_lines_name_both_sides():
    """access-log task: the sleep sidecar's outbound line and httpbin's inbound line of the same request."""
    rows = parse_text_log(_bytes("istio.io/access-log-task.log"), LogContext("t", "sleep", "foo", "")).table.to_pylist()
    assert [(r[sc.REPORTER], r[sc.DESTINATION_SERVICE], r[sc.RESPONSE_CODE]) for r in rows] == [
        ("source", "httpbin.foo.svc.cluster.local", 418), ("destination", "httpbin.foo.svc.cluster.local", 418)]
    assert rows[0][sc.REQUEST_ID] == rows[1][sc.REQUEST_ID] == "84961386-6d84-929d-98bd-c5aee93b5c88"
    assert rows[1][sc.MTLS]  # inbound with the mesh SNI outbound_.8000_._.httpbin...


def test_egress_gateway_tcp_lines():
    """egress-sni blog: TCP lines ("- - -", response code 0) through an egress gateway, the sidecar's through the
    gateway's wildcard subset and straight out through PassthroughCluster."""
    rows = parse_text_log(_bytes("istio.io/egress-sni-blog.log"), LogContext("t", "sleep", "foo", "")).table.to_pylist()
    assert len(rows) == 7 and {r[sc.RESPONSE_CODE] for r in rows} == {0} and {r[sc.METHOD] for r in rows} == {""}
    assert [r[sc.BYTES_SENT] for r in rows] == [111152, 111950, 92848, 93646, 111152, 92848, 15199]
    sidecar = rows[4:]
    assert [(r[sc.REPORTER], r[sc.DESTINATION_SERVICE]) for r in sidecar] == [
        ("source", "egressgateway.istio-egress.svc.cluster.local")] * 2 + [("source", "PassthroughCluster")]


# ------------------------------------------------------------------------------------------ OTLP
_OTLP_IDS = ("traceId", "spanId", "parentSpanId")


def _proto(name: str):
    """The example as the protobuf library reads it (its own JSON mapping): the independent reading. OTLP/JSON differs
    from that mapping in one point (the spec's "JSON Protobuf Encoding"): trace and span ids are hex, not base64."""
    import base64

    def ids_to_base64(node):
        if isinstance(node, dict):
            return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in _OTLP_IDS and isinstance(v, str)
                    else ids_to_base64(v) for k, v in node.items()}
        return [ids_to_base64(v) for v in node] if isinstance(node, list) else node

    cls = ExportTraceServiceRequest if OTLP[name] == "otlp-json-traces" else ExportLogsServiceRequest
    return json_format.ParseDict(ids_to_base64(json.loads(_bytes(name))), cls())


def _attrs(kvs) -> dict[str, str]:
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = {"string_value": kv.value.string_value, "bool_value": str(kv.value.bool_value).lower(),
                       "int_value": str(kv.value.int_value), "double_value": repr(kv.value.double_value)}.get(which, which)
    return out


@pytest.mark.parametrize("name", [n for n, f in OTLP.items() if f == "otlp-json-traces"])
def test_otlp_json_trace_examples_agree_with_the_protobuf_reading(name):
    ours = decode_traces(_bytes(name), "application/json")
    assert ours.rejected == 0 and ours.errors == []
    spans = [(rs, sp) for rs in _proto(name).resource_spans for ss in rs.scope_spans for sp in ss.spans]
    rows = ours.table.to_pylist()
    assert len(rows) == len(spans) > 0
    for row, (rs, sp) in zip(rows, spans):
        assert (row[sc.TRACE_ID], row[sc.SPAN_ID], row[sc.PARENT_SPAN_ID]) == (
            sp.trace_id.hex(), sp.span_id.hex(), sp.parent_span_id.hex())
        assert row[sc.SPAN_NAME] == sp.name and row[sc.SERVICE_NAME] == _attrs(rs.resource.attributes)["service.name"]
        assert row[sc.START_TIME] == pd.Timestamp(sp.start_time_unix_nano, tz="UTC")
        assert row[sc.DURATION_MS] == (sp.end_time_unix_nano - sp.start_time_unix_nano) / 1e6
        assert dict(row[sc.ATTRIBUTES]) == _attrs(sp.attributes)


@pytest.mark.parametrize("name", [n for n, f in OTLP.items() if f == "otlp-json-logs"])
def test_otlp_json_log_examples_agree_with_the_protobuf_reading(name):
    ours = decode_logs(_bytes(name), "application/json")
    recs = [(rl, lr) for rl in _proto(name).resource_logs for sl in rl.scope_logs for lr in sl.log_records]
    rows = ours.table.to_pylist()
    assert len(rows) == len(recs) > 0
    for row, (rl, lr) in zip(rows, recs):
        assert row[sc.TIME] == pd.Timestamp(lr.time_unix_nano, tz="UTC")
        assert (row[sc.TRACE_ID], row[sc.SPAN_ID]) == (lr.trace_id.hex(), lr.span_id.hex())
        assert row[sc.SEVERITY] == lr.severity_text and row[sc.SERVICE_NAME] == "my.service"
        body = lr.body.WhichOneof("value")
        if body == "string_value":
            assert row[sc.BODY] == lr.body.string_value
        else:  # a structured body is kept whole, as JSON of its values
            assert json.loads(row[sc.BODY]) == {kv.key: _attrs([kv])[kv.key] for kv in lr.body.kvlist_value.values}
        attrs = dict(row[sc.ATTRIBUTES])
        for key, value in _attrs(lr.attributes).items():
            if value in ("array_value", "kvlist_value"):
                assert key in attrs  # kept, as JSON text
            else:
                assert attrs[key] == value, key


@pytest.mark.parametrize("as_json", [True, False])
def test_otlp_examples_through_the_real_receiver(as_json):
    """Each example POSTed to the OTLP/HTTP receiver over 127.0.0.1, as JSON and as the protobuf the library encodes
    from it: each answered 200 and every span and record stored (a store whose clock is the examples' 2018)."""
    store = TelemetryStore(clock=lambda: 1544712662.0)
    want = {"traces": 0, "logs": 0}
    with OtlpReceiver(store, port=0) as rx:
        import httpx
        with httpx.Client(base_url=rx.endpoint, timeout=10) as client:
            for name, fmt in OTLP.items():
                signal = fmt.rsplit("-", 1)[1]
                body = _bytes(name) if as_json else _proto(name).SerializeToString()
                ctype = "application/json" if as_json else "application/x-protobuf"
                r = client.post(f"/v1/{signal}", content=body, headers={"content-type": ctype})
                assert r.status_code == 200, (name, r.text)
                want[signal] += (decode_traces if signal == "traces" else decode_logs)(_bytes(name), "application/json").table.num_rows
    assert len(store.spans()) == want["traces"] > 0
    assert len(store.logs()) == want["logs"] > 0


@pytest.mark.parametrize("name", list(OTLP))
def test_otlp_json_streams_read_every_document(name):
    """Several exports in one body (concatenated files, the collector's file exporter's JSON lines, pretty-printed
    one after another): every document's items, in order, as each body alone gives them; a document that cannot be
    read between them is refused alone (one refused item, its reason given) and the others kept."""
    raw = _bytes(name)
    decode = decode_traces if OTLP[name] == "otlp-json-traces" else decode_logs
    one = decode(raw, "application/json")
    compact = json.dumps(json.loads(raw)).encode()
    for body in (raw + raw, compact + b"\n" + compact + b"\n", raw + b"\n" + raw + b"\n" + raw):
        got = decode(body, "application/json")
        copies = body.count(b'"resource')  // raw.count(b'"resource')
        assert got.rejected == one.rejected and got.table.num_rows == copies * one.table.num_rows > 0
        assert got.table.slice(0, one.table.num_rows).equals(one.table)
    bad = decode(compact + b'\n{"resourceSpans": [\n' + compact + b"\n", "application/json")
    assert bad.rejected == one.rejected + 1 and bad.table.num_rows == 2 * one.table.num_rows
    assert any("document 2 (line 2) refused" in e for e in bad.errors), bad.errors
