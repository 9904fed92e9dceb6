"""Span and log attributes are held dictionary-encoded: the same dicts come back, in a fraction of the bytes (#18).

Why it matters: a span's attributes were ~425 of its ~550 bytes in the store as plain strings, though nearly
every value repeats from span to span (peer, cluster, method, code); the store's memory budget is in bytes, so
plain strings held half the minutes of spans. What must hold for every kind of attribute set (all repeated, all
distinct, empty, a key with no value, unicode): what is read back is what was stored, through memory, the
Parquet segments and a restart; a data directory written when attributes were plain strings is still read.
"""
from __future__ import annotations

import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collector import schema as s
from collector import tables
from collector.store import TelemetryStore

T0 = 1_700_000_000.0

KINDS = {
    "repeated": lambda i: {"http.method": "GET", "upstream_cluster": "outbound|9080||reviews.default.svc.cluster.local",
                           "peer.address": f"127.0.0.1:{30050 + i % 3}", "http.status_code": "200"},
    "distinct": lambda i: {"guid:x-request-id": f"{i:08x}-{random.Random(i).getrandbits(64):016x}", "n": str(i)},
    "empty": lambda i: {},
    "empty value": lambda i: {"zone": "", "k": ""},
    "unicode": lambda i: {"name": "caf\u00e9 \u2603", "\u00fcber": str(i % 2)},
}


def _spans(kind: str, n: int, t0: float = T0) -> pd.DataFrame:
    attrs = [KINDS[kind](i) for i in range(n)]
    return pd.DataFrame({
        s.TRACE_ID: [f"{i:032x}" for i in range(n)], s.SPAN_ID: [f"{i:016x}" for i in range(n)],
        s.SERVICE_NAME: "reviews.default", s.SPAN_NAME: "GET /reviews", s.SPAN_KIND: "server",
        s.START_TIME: pd.to_datetime([t0 + i * 0.01 for i in range(n)], unit="s", utc=True),
        s.END_TIME: pd.to_datetime([t0 + i * 0.01 + 0.005 for i in range(n)], unit="s", utc=True),
        s.ATTRIBUTES: attrs,
    })


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_attributes_read_back_as_stored_from_memory_disk_and_a_restart(tmp_path, kind):
    df = _spans(kind, 300)
    with TelemetryStore(tmp_path, window_s=10**9, clock=lambda: T0 + 10) as store:
        store.add_spans(df.iloc[:150])
        store.add_spans(df.iloc[150:])
        assert store.spans()[s.ATTRIBUTES].tolist() == df[s.ATTRIBUTES].tolist()
    again = TelemetryStore(tmp_path, window_s=10**9, clock=lambda: T0 + 10)  # from the segments
    assert again.spans()[s.ATTRIBUTES].tolist() == df[s.ATTRIBUTES].tolist()
    again.close()


def test_repeated_attributes_cost_a_fraction_of_plain_strings():
    """The realistic case: a few keys whose values repeat; the column costs under a third of plain strings."""
    df = _spans("repeated", 5_000)
    stored = tables.conform(df, tables.SPECS["spans"])
    plain = pa.array([list(d.items()) for d in df[s.ATTRIBUTES]], pa.map_(pa.string(), pa.string()))
    assert stored.column(s.ATTRIBUTES).nbytes < plain.nbytes / 3, (stored.column(s.ATTRIBUTES).nbytes, plain.nbytes)


def test_a_segment_written_with_plain_string_attributes_is_still_read(tmp_path):
    """A data directory from before the change: its segments hold map<string, string>."""
    df = _spans("repeated", 50)
    old_schema = pa.schema([f if f.name != s.ATTRIBUTES else pa.field(s.ATTRIBUTES, pa.map_(pa.string(), pa.string()))
                            for f in tables.SPANS])
    new = tables.conform(df, tables.SPECS["spans"])
    old = pa.Table.from_arrays([c if f.name != s.ATTRIBUTES else c.cast(f.type) for f, c in zip(old_schema, new.columns)],
                               schema=old_schema)
    d = tmp_path / "spans"
    d.mkdir()
    t_ns = [int(x) for x in new.column(s.START_TIME).cast(pa.int64()).to_pylist()]
    pq.write_table(old, d / f"seg-0000000000-000000-{min(t_ns)}-{max(t_ns)}.parquet")
    store = TelemetryStore(tmp_path, window_s=10**9, clock=lambda: T0 + 10)
    got = store.spans()
    assert got[s.ATTRIBUTES].tolist() == df[s.ATTRIBUTES].tolist()
    store.add_spans(_spans("distinct", 10, T0 + 5))  # new rows beside the old ones: one table, one type
    assert len(store.spans()) == 60
    store.close()
