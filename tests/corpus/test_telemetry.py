"""Real-world telemetry corpus: payloads meshscope was not written for, read by its own parsers and sources.

Files under telemetry/files/ are byte for byte as upstream ships them (telemetry/sources.yaml: repo, path,
tag, licence, git blob). What each test asserts is read by hand from the file itself: how many records it
holds, fields of named records, and that nothing the format allows is refused. Cheap: no mesh, no Envoy;
the scraper case serves the files from 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prometheus_client.parser import text_string_to_metric_families

from collector.parse.exposition import format_labels, parse_exposition, parse_sample_line
from collector.sources.prom_api import PrometheusClient
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore
from tests.util import BodyServer, wait_until

ROOT = Path(__file__).parent / "telemetry"
SOURCES: list[dict] = yaml.safe_load((ROOT / "sources.yaml").read_text())
EXPOSITION = [s["file"] for s in SOURCES if s["format"] == "prometheus-text-0.0.4"]


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
    assert {s["file"] for s in SOURCES} == {str(p.relative_to(ROOT / "files")) for p in (ROOT / "files").rglob("*") if p.is_file()}
    for s in SOURCES:
        data = _bytes(s["file"])
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == s["blob"], s["file"]
        assert s["licence"] in ("Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause"), s["file"]


@pytest.mark.parametrize("name", EXPOSITION)
def test_exposition_reads_every_sample_and_refuses_nothing(name):
    raw = _bytes(name)
    result = parse_exposition(raw)
    assert [str(e) for e in result.errors] == []
    assert len(result.samples) == _sample_lines(raw)
    assert (result.samples[["reporter", "destination_service"]] == "unknown").all().all()  # no Istio labels here


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
