"""A read of some columns is the read of every column, cut to them (#18: only those columns are filtered).

The store cuts a window on its time column; a read that names columns filters only those (and the time),
from memory and from the segments read back alike. Whatever the range (memory only, disk and memory, disk
only, open-ended) and the columns (with or without the time column, in any order), the rows and their order
are those of the full read.
"""
from __future__ import annotations

import pyarrow.compute as pc
import pytest

from collector import schema as s
from collector.store import TelemetryStore
from tests.collector.test_store import Clock, _fill_over_budget

RANGES = [(0, None), (0, 2000), (150, 450.5), (1234, 1899), (1990, None), (3000, None), (None, None)]
COLUMNS = [[s.PATH], [s.PATH, s.REQUEST_ID], [s.REQUEST_ID, "start_time", s.PATH], ["start_time"]]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = TelemetryStore(tmp_path_factory.mktemp("columns"), window_s=10**6, max_bytes=400_000, clock=Clock(10**5),
                        flush_interval_s=10**9)
    _fill_over_budget(st, TelemetryStore(window_s=10**6, clock=Clock(10**5)), 3)
    return st


@pytest.mark.parametrize("lo, hi", RANGES)
def test_a_read_of_some_columns_is_the_full_read_cut_to_them(store, lo, hi):
    full = store.arrow("requests", lo, hi)
    for columns in COLUMNS:
        got = store.arrow("requests", lo, hi, columns=columns)
        assert got.column_names == columns and got.equals(full.select(columns)), (lo, hi, columns)
    where = pc.field(s.PATH) == "/p3"  # a filter may name a column the read does not return
    got = store.arrow("requests", lo, hi, columns=[s.REQUEST_ID], filter_expr=where)
    assert got.equals(full.filter(where).select([s.REQUEST_ID]))
