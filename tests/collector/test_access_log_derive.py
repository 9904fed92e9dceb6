"""derive_requests works out the peer columns once per distinct combination of the fields they depend on
and spreads them to the rows: a batch must give exactly what each row gives alone, in the same
dictionary order as encoding the whole column (first appearance)."""
from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from collector.parse.access_log import _PEER_FIELDS, LogContext, derive_requests
from collector.tables import REQUESTS

CTX = LogContext("f.log", "reviews-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/reviews")
# every shape each peer field takes: missing (null, '', '-'), each cluster kind, odd values
POOLS = {
    "upstream_cluster": [None, "", "-", "outbound|9080||ratings.bookinfo.svc.cluster.local",
                         "outbound|9080|v2|reviews.bookinfo.svc.cluster.local", "inbound|9080||",
                         "InboundPassthroughClusterIpv4", "PassthroughCluster", "BlackHoleCluster",
                         "inbound-vip|9080|http|ratings.bookinfo.svc.cluster.local", "odd|cluster", "outbound|x"],
    "requested_server_name": [None, "", "-", "outbound_.9080_._.ratings.bookinfo.svc.cluster.local",
                              "outbound_.9080_.v1_.reviews.bookinfo.svc.cluster.local", "example.com"],
    "downstream_peer_uri_san": [None, "", "-", "spiffe://cluster.local/ns/bookinfo/sa/productpage",
                                "spiffe://cluster.local/ns/other/sa/x", "not-a-spiffe-id"],
    "upstream_peer_uri_san": [None, "", "-", "spiffe://cluster.local/ns/bookinfo/sa/ratings", "spiffe://td/ns/a/sa/b"],
    "downstream_tls_version": [None, "", "-", "TLSv1.3"],
    "authority": [None, "", "-", "ratings:9080", "reviews.bookinfo.svc.cluster.local", "ünïcode:1", "h"],
}


def _raw(rows: int, seed: int, kinds: int | None = None) -> pa.Table:
    """`rows` rows; with `kinds`, drawn from that many random combinations (repeats, as in real batches)."""
    rnd = random.Random(seed)
    combos = [{k: rnd.choice(v) for k, v in POOLS.items()} for _ in range(kinds or rows)]
    picked = [rnd.choice(combos) for _ in range(rows)] if kinds else combos
    cols = {k: pa.array([c[k] for c in picked], pa.string()) for k in POOLS}
    cols["start_time"] = pa.array(["2026-12-07T04:00:00.000Z"] * rows)
    cols["response_code"] = pa.array([200] * rows, pa.int64())
    cols["_line"] = pa.array(range(rows), pa.int64())
    return pa.table(cols)


def test_a_batch_gives_what_each_row_gives_alone_for_every_peer_field_combination():
    assert set(_PEER_FIELDS) <= set(POOLS)
    for seed, kinds in ((0, None), (1, 25), (2, 3)):
        raw = _raw(120, seed, kinds)
        batch, bad = derive_requests(raw, CTX)
        assert not bad and batch.num_rows == raw.num_rows
        alone = pa.concat_tables([derive_requests(raw.slice(i, 1), CTX)[0] for i in range(raw.num_rows)])
        for f in REQUESTS:
            assert batch.column(f.name).to_pylist() == alone.column(f.name).to_pylist(), f.name
            col = batch.column(f.name).combine_chunks()
            assert col.type == f.type
            if pa.types.is_dictionary(f.type):  # first-appearance order, no duplicate entries
                assert col.dictionary.to_pylist() == pc.dictionary_encode(col.cast(pa.string())).dictionary.to_pylist()


def test_one_combination_and_all_distinct_combinations_alike():
    raw = _raw(1, 7)
    same = pa.concat_tables([raw] * 50).combine_chunks()
    got, _ = derive_requests(same, CTX)
    one, _ = derive_requests(raw, CTX)
    for f in REQUESTS:
        if f.name != "start_time":
            assert got.column(f.name).to_pylist() == one.column(f.name).to_pylist() * 50, f.name
    empty, bad = derive_requests(raw.slice(0, 0), CTX)
    assert empty.num_rows == 0 and not bad and empty.schema.equals(REQUESTS)


# -- the text split's tokens: each distinct run split once (a batch that repeats its runs) ------------------
LINE = ('[2026-12-07T04:00:{s:02d}.000Z] "{req}" {status} "-" {nums} "-" "ua" "rid-{i}" "reviews:9080" '
        '"10.0.0.1:9080" {tail}')
# every layout a space-separated run may take: the usual, tabs, doubled or trailing blanks, a token short or
# over (the path with spaces; an older format without route name), empty
REQS = ["GET /a HTTP/1.1", "POST /b/c HTTP/2", "GET /with space HTTP/1.1", "GET\t/t HTTP/1.1", "GET  /d HTTP/1.1",
        "GET /e", "- - -", ""]
STATUSES = ["200 - via_upstream -", "503 UC upstream_reset_before_response_started{connection_termination} -",
            "200 -\tvia_upstream -", "200  - via_upstream -", "200 - via_upstream", "200 - via_upstream - extra",
            "404 NR route_not_found - ", " 200 - via_upstream -"]
NUMS = ["0 295 3 2", "0 1 - -", "10 20 30", "0\t295 3 2", "1 2 3 4 5"]
TAILS = ["inbound|9080|| 127.0.0.1:1 127.0.0.1:15006 10.0.0.2:{p} outbound_.9080_._.reviews.bookinfo.svc.cluster.local default",
         "outbound|9080||ratings.bookinfo.svc.cluster.local 10.0.0.1:2 10.0.0.3:9080 127.0.0.1:{p} - -",
         "outbound|9080||ratings.bookinfo.svc.cluster.local 10.0.0.1:2 10.0.0.3:9080 127.0.0.1:{p} -",
         "PassthroughCluster  10.0.0.1:2 10.0.0.3:9080 127.0.0.1:{p} - -", "x"]


def _plain_tokens(seg):
    import numpy as np
    toks = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(seg))
    n_tok = pc.list_value_length(toks).to_numpy(zero_copy_only=False).astype(np.int64)
    return n_tok, np.concatenate([[0], np.cumsum(n_tok)[:-1]]).astype(np.int64), pc.list_flatten(toks)


def test_text_runs_split_once_per_distinct_value_read_as_every_row_split_alone(monkeypatch):
    from collector.parse import access_log

    rnd = random.Random(5)
    for kinds in (4, 60, 5000):  # few layouts repeated (the dictionary path) ... all distinct (split as is)
        variants = [(REQS[0], STATUSES[0], NUMS[0], TAILS[0])]  # one that fits, then any mix
        variants += [(rnd.choice(REQS), rnd.choice(STATUSES), rnd.choice(NUMS), rnd.choice(TAILS)) for _ in range(kinds - 1)]
        lines = []
        for i in range(5000):
            req, status, nums, tail = variants[i % kinds] if kinds < 5000 else variants[i]
            lines.append(LINE.format(s=i % 60, req=req, status=status, nums=nums, i=i, tail=tail.format(p=30000 + i % 7)))
        arr = pa.array(lines, pa.string())
        got = access_log.parse_text_lines(arr, CTX)
        with monkeypatch.context() as m:
            m.setattr(access_log, "_tokens", _plain_tokens)
            want = access_log.parse_text_lines(arr, CTX)
        assert 0 < got.table.num_rows < len(lines) and got.table.to_pylist() == want.table.to_pylist()
        assert [(e.line, e.message, e.reason) for e in got.errors] == [(e.line, e.message, e.reason) for e in want.errors]
