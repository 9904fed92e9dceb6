"""Access logs as other proxies write them: Istio's text formats before 1.9, and ambient's ztunnel.

The older formats are written by a real Envoy: one static Envoy logs every request with today's format and with each
older release's format string at once, and every older file must read back as the same requests, field for field
(what the older format carries). ztunnel lines are built from the fields ztunnel's `access_log!` writes, in each of
the shapes it has written them (quoted 1.23+, bare 1.22, tab- or space-separated headers, the tracing default), and
checked by hand-read values; lines that cannot carry a record are refused with a reason, never silently lost.
"""
from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pytest

from collector import schema as sc
from collector.parse.access_log import LogContext, parse_text_log
from collector.parse.istio_formats import FORMATS
from tests.collector.envoy_static import static_envoy
from tests.util import wait_until

CTX = LogContext("t", "productpage-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/productpage")
# what every format carries, and what only some do (1.0's TCP format: no request line, no response code)
_ALWAYS = [sc.START_TIME, sc.RESPONSE_FLAGS, sc.BYTES_RECEIVED, sc.BYTES_SENT, sc.DURATION_MS, sc.UPSTREAM_HOST,
           sc.UPSTREAM_CLUSTER, sc.REPORTER, sc.SOURCE_WORKLOAD]
# a request that reached no cluster is named by its authority, which only the HTTP formats carry
_HTTP = [sc.METHOD, sc.PATH, sc.PROTOCOL, sc.RESPONSE_CODE, sc.REQUEST_ID, sc.AUTHORITY, sc.DESTINATION_SERVICE]


def test_every_older_istio_format_reads_as_todays(tmp_path):
    """A real Envoy writes the same requests (200, 503 from the upstream, 503 UF/URX with retries, 404 NR) in each
    release's format: each file gives the same rows as today's format, and nothing is refused."""
    formats = {release: fmt for release, fmt in FORMATS}
    with static_envoy(tmp_path, text_formats=formats) as envoy:
        sent = [*envoy.get("/ok", 3), *envoy.get("/fail", 2), *envoy.get("/down", 1), *envoy.get("/nowhere?q=a%20b", 1)]
        files = {r: tmp_path / f"access.{r}.log" for r in formats}

        def complete():
            texts = {r: p.read_bytes() if p.exists() else b"" for r, p in files.items()}
            texts["now"] = envoy.text_log.read_bytes() if envoy.text_log.exists() else b""
            return texts if all(t.count(b"\n") == len(sent) for t in texts.values()) else None
        texts = wait_until(complete, timeout=30, interval=0.2, what="every format's file holds every request")
    today = parse_text_log(texts.pop("now"), CTX)
    assert today.errors == [] and today.table.num_rows == len(sent)
    want = today.table.to_pandas()
    assert sorted(want[sc.RESPONSE_CODE]) == sorted(sent)
    for release, raw in texts.items():
        got = parse_text_log(raw, CTX)
        assert [str(e) for e in got.errors] == [], release
        cols = _ALWAYS + ([] if release.endswith("tcp") else _HTTP)
        pd.testing.assert_frame_equal(got.table.to_pandas()[cols].astype(str), want[cols].astype(str), obj=release)
        if release.endswith("tcp"):
            assert set(got.table.column(sc.RESPONSE_CODE).to_pylist()) == {0}
            routed = want[sc.UPSTREAM_CLUSTER] != ""
            assert list(got.table.to_pandas()[sc.DESTINATION_SERVICE][routed]) == list(want[sc.DESTINATION_SERVICE][routed])
        if release in ("1.8", "1.3-1.7"):  # formats with %ROUTE_NAME%
            assert got.table.column(sc.ROUTE_NAME).to_pylist() == today.table.column(sc.ROUTE_NAME).to_pylist()


def test_older_format_lines_mixed_with_todays_keep_file_order():
    """One batch holding lines of several releases (a cluster mid-upgrade, one file per node): every line is one
    row, in file order, each read by its own format."""
    lines = []
    for i, (release, fmt) in enumerate([("now", None), *FORMATS]):
        if fmt is None:
            lines.append(f'[2020-01-01T00:00:0{i}.000Z] "GET /r{i} HTTP/1.1" 200 - via_upstream - "-" 0 {i} 1 1 "-" "ua" "id{i}" '
                         f'"a" "10.0.0.1:80" outbound|80||a.ns.svc.cluster.local - 10.0.0.2:80 10.0.0.3:1 - default')
            continue
        values = {"START_TIME": f"2020-01-01T00:00:0{i}.000Z", "REQ(:METHOD)": "GET", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)": f"/r{i}",
                  "PROTOCOL": "HTTP/1.1", "RESPONSE_CODE": "200", "BYTES_SENT": str(i), "REQ(X-REQUEST-ID)": f"id{i}",
                  "UPSTREAM_CLUSTER": "outbound|80||a.ns.svc.cluster.local", "REQ(USER-AGENT)": 'a "quoted" agent'}
        line = fmt
        for op in re.findall(r"%([A-Z_]+(?:\([^)]*\))?)%", fmt):
            line = line.replace(f"%{op}%", values.get(op, "-"), 1)
        lines.append(line)
    result = parse_text_log("\n".join(lines) + "\n", CTX)
    assert [str(e) for e in result.errors] == []
    rows = result.table.to_pylist()
    assert [r[sc.BYTES_SENT] for r in rows] == list(range(len(lines)))
    assert [r[sc.START_TIME].second for r in rows] == list(range(len(lines)))
    assert all(r[sc.DESTINATION_SERVICE] == "a.ns.svc.cluster.local" for r in rows)


# ------------------------------------------------------------------------------------------ ztunnel
_ZT = ('src.addr=10.244.1.12:35520 src.workload={q}sleep-7656cf8794-r7zb9{q} src.namespace={q}default{q} '
       'src.identity="spiffe://cluster.local/ns/default/sa/sleep" dst.addr=10.244.1.9:15008 dst.hbone_addr=10.244.1.9:9080 '
       'dst.service={q}reviews.default.svc.cluster.local{q} dst.workload={q}reviews-v3-7d99fd7978-zznnq{q} '
       'dst.namespace={q}default{q} dst.identity="spiffe://cluster.local/ns/default/sa/bookinfo-reviews" '
       'direction="{d}" bytes_sent={s} bytes_recv={r} duration="{ms}ms"')


@pytest.mark.parametrize("head", [
    "2024-05-04T10:11:04.964851Z\tinfo\taccess\tconnection complete\t",  # Istio's format (tabs)
    "2024-05-04T10:11:04.964851Z info    access  connection complete ",  # the same pasted where tabs became spaces
    "2024-05-04T10:11:04.964851Z  INFO access: connection complete ",  # the tracing default (ztunnel's README)
])
@pytest.mark.parametrize("quote", ['"', ""])  # 1.23+ quotes strings, 1.22 wrote them bare
def test_ztunnel_connection_lines_become_tcp_rows(head, quote):
    out = head + _ZT.format(q=quote, d="outbound", s=84, r=169, ms=2)
    into = head + _ZT.format(q=quote, d="inbound", s=169, r=84, ms=1)
    result = parse_text_log(f"{out}\n{into}\n", LogContext("ztunnel.log", "ztunnel", "istio-system", ""))
    assert [str(e) for e in result.errors] == []
    a, b = result.table.to_pylist()
    assert (a[sc.REPORTER], b[sc.REPORTER]) == ("source", "destination")
    for r in (a, b):  # both ztunnels name both peers: the rows say the same connection from each side
        assert (r[sc.SOURCE_WORKLOAD], r[sc.SOURCE_WORKLOAD_NAMESPACE]) == ("sleep", "default")
        assert (r[sc.DESTINATION_WORKLOAD], r[sc.DESTINATION_WORKLOAD_NAMESPACE]) == ("reviews-v3", "default")
        assert r[sc.DESTINATION_SERVICE] == "reviews.default.svc.cluster.local" and r[sc.MTLS]
        assert r[sc.DESTINATION_PRINCIPAL] == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        assert (r[sc.RESPONSE_CODE], r[sc.RESPONSE_FLAGS], r[sc.METHOD]) == (0, "-", "")
        assert (r[sc.BYTES_RECEIVED], r[sc.BYTES_SENT]) == (84, 169)  # request 84 bytes, response 169, from either side
        assert r[sc.UPSTREAM_HOST] == "10.244.1.9:15008" and r[sc.LOG_SOURCE] == "ztunnel.log"
    assert a[sc.START_TIME] == pd.Timestamp("2024-05-04T10:11:04.962851Z")  # the log time less the 2 ms it lasted
    assert (a[sc.DURATION_MS], b[sc.DURATION_MS]) == (2.0, 1.0)


def test_ztunnel_failures_escapes_and_lines_without_a_record():
    """A failed connection keeps ztunnel's own response flag for the error and the error text; quoted values are
    unescaped; lines that carry no connection record are refused one by one with their reason, the rest kept."""
    t = "2026-10-09T11:39:41.876395Z\t{lvl}\t{target}\t{msg}\t{fields}"
    ok = _ZT.format(q='"', d="inbound", s=0, r=0, ms=0)
    lines = [
        t.format(lvl="error", target="access", msg="connection complete",
                 fields=ok + ' error="connection closed due to policy rejection: allow policies exist, but none allowed"'),
        t.format(lvl="error", target="access", msg="connection complete", fields=ok + ' error="io error: Connection refused (os error 111)"'),
        t.format(lvl="info", target="access", msg="connection complete", fields=ok.replace(
            'src.workload="sleep-7656cf8794-r7zb9"', r'src.workload="odd\"name\\x"')),
        t.format(lvl="debug", target="access", msg="connection opened", fields='src.addr=10.0.0.1:1 direction="outbound"'),
        t.format(lvl="info", target="xds::client:xds{id=1}", msg="received response", fields='type_url="Address" size=3'),
        t.format(lvl="warn", target="access", msg="connection failed",
                 fields='src.addr=10.0.0.1:1 dst.addr=10.0.0.2:15008 direction="inbound" error="no such workload"'),
        "2023-06-01T10:00:00.000000Z\tinfo\tproxy::inbound_passthrough\tconnection complete\tsource=10.0.0.1:1234 destination=10.0.0.2:80",
        t.format(lvl="info", target="access", msg="connection complete", fields=ok.replace('duration="0ms"', 'duration="soon"')),
    ]
    result = parse_text_log("\n".join(lines) + "\n", LogContext("z", "ztunnel", "istio-system", ""))
    rows = result.table.to_pylist()
    assert [r[sc.RESPONSE_FLAGS] for r in rows] == ["DENY", "CONNECT", "-"]
    assert rows[0][sc.RESPONSE_CODE_DETAILS].startswith("connection closed due to policy rejection")
    assert rows[2][sc.SOURCE_WORKLOAD] == 'odd"name\\x'
    assert [(e.line, e.reason) for e in result.errors] == [
        (4, "not_a_connection"), (5, "not_a_connection"), (6, "no_peers"), (7, "not_a_connection"), (8, "bad_number")]
    assert len(rows) + len(result.errors) == len(lines)  # every line is one row or one refusal


def test_ztunnel_and_sidecar_lines_in_one_batch_keep_file_order():
    """Readers attribute rows to files by order (the tailer's joint parse): ztunnel rows interleaved with a sidecar's
    come back in line order."""
    side = ('[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl" "id" '
            '"httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 '
            '10.44.1.23:46520 - default')
    zt = "2024-05-04T10:11:04.964851Z\tinfo\taccess\tconnection complete\t" + _ZT.format(q='"', d="outbound", s=1, r=2, ms=2)
    bad = '[2020-11-25T21:26:18.409Z] "GET / HTTP/1.1" oops'
    lines = [zt, side, bad, zt, side, side, zt]
    result = parse_text_log("\n".join(lines) + "\n", CTX)
    assert [e.line for e in result.errors] == [3]
    assert [r[sc.RESPONSE_CODE] for r in result.table.to_pylist()] == [0, 418, 0, 418, 418, 0]
    assert isinstance(result.table, pa.Table) and result.table.schema == parse_text_log(side + "\n", CTX).table.schema


def test_ztunnel_json_lines_read_as_their_text_shape():
    """ztunnel with LOG_FORMAT=json writes the same fields as JSON keys (level, time, scope, message first): the same
    records give the same rows as the text shape, mixed with an Envoy sidecar's JSON lines in one batch, in order;
    its other lines and a line with a field of the wrong type are refused one by one."""
    import json

    from collector.parse.access_log import parse_access_log, parse_json_log

    def as_json(text: str) -> str:
        time, level, _target, message, fields = text.split("\t")
        obj = {"level": level, "time": time, "scope": "access", "message": message}
        for key, quoted, bare in re.findall(r'(\S+?)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', fields):
            obj[key] = json.loads(f'"{quoted}"') if quoted else (int(bare) if bare.isdigit() else bare)
        return json.dumps(obj, separators=(",", ":"))

    text = [f"2024-05-04T10:11:04.96485{i}Z\tinfo\taccess\tconnection complete\t" + _ZT.format(q='"', d=d, s=s, r=r, ms=i)
            for i, (d, s, r) in enumerate([("outbound", 84, 169), ("inbound", 169, 84), ("outbound", 1, 2)])]
    text.append(text[0].replace("\tinfo\t", "\terror\t") + ' error="tls error: handshake failure"')
    ctx = LogContext("zt", "ztunnel", "istio-system", "")
    want = parse_text_log("\n".join(text) + "\n", ctx)
    assert want.errors == [] and want.table.num_rows == 4
    envoy = json.dumps({"start_time": "2024-05-04T10:11:05.000Z", "method": "GET", "path": "/", "protocol": "HTTP/1.1",
                        "response_code": 200, "response_flags": "-", "bytes_received": 0, "bytes_sent": 5, "duration": 1,
                        "upstream_cluster": "outbound|80||a.ns.svc.cluster.local"})
    other = '{"level":"info","time":"2024-05-04T10:11:04.1Z","scope":"xds::client","message":"received response"}'
    wrong = as_json(text[0]).replace('"bytes_sent":84', '"bytes_sent":"84x"')
    lines = [as_json(text[0]), envoy, as_json(text[1]), other, as_json(text[2]), wrong, as_json(text[3]), envoy]
    got = parse_access_log("\n".join(lines) + "\n", ctx)
    assert [(e.line, e.reason) for e in got.errors] == [(4, "not_a_connection"), (6, "invalid_json")]
    rows = got.table.to_pandas()
    assert list(rows[sc.RESPONSE_CODE]) == [0, 200, 0, 0, 0, 200]
    zt_rows = rows[rows[sc.RESPONSE_CODE] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(zt_rows.astype(str), want.table.to_pandas().astype(str))
    assert list(zt_rows[sc.RESPONSE_FLAGS]) == ["-", "-", "-", "TLS_FAILURE"]
    only = parse_json_log("\n".join(as_json(t) for t in text) + "\n", ctx)  # a ztunnel-only file: no fast path mistakes
    assert only.errors == [] and only.table.to_pandas().astype(str).equals(want.table.to_pandas().astype(str))
