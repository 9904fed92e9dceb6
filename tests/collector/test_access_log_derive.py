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
