"""The live trace list and trace view over a real store holding a real Envoy export: the list is summarised from the
few columns it needs (no attributes) and equals the summary of every column; a trace is read by its id in Arrow."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from collector.parse.otlp import decode_traces
from collector.store import TelemetryStore
from dashboard.query import TraceFilters
from dashboard.snapshot_source import filter_traces, summarize_traces
from meshscope.live_source import _SPAN_COLUMNS, LiveSource

REAL = Path(__file__).parents[1] / "collector" / "data" / "envoy_otlp_traces.pb"


def _store(traces: int) -> TelemetryStore:
    """`traces` copies of the real export, each its own trace id, a second apart over the last minutes."""
    real = decode_traces(REAL.read_bytes()).table
    store = TelemetryStore(window_s=3600)
    now = time.time()
    for i in range(traces):
        at = np.full(real.num_rows, int((now - 300 + i) * 1e9))
        start, end = (pa.array(at + shift, pa.int64()).cast(real.schema.field("start_time").type)
                      for shift in (0, 2_000_000 * (i % 5)))
        t = real.set_column(real.schema.get_field_index("trace_id"), "trace_id",
                            pa.array([f"{i:032x}"] * real.num_rows).cast(real.schema.field("trace_id").type))
        t = t.set_column(t.schema.get_field_index("start_time"), "start_time", start)
        t = t.set_column(t.schema.get_field_index("end_time"), "end_time", end)
        store.add_spans(t)
    return store


def test_the_trace_list_is_the_summary_of_every_column_and_a_trace_has_its_attributes():
    store = _store(40)
    try:
        src = LiveSource(SimpleNamespace(store=store, backend=None))
        every_column = summarize_traces(src._spans(900.0, columns=_SPAN_COLUMNS))
        for filters in (TraceFilters(), TraceFilters(status="error"), TraceFilters(service="productpage-v1", limit=7)):
            listed = src.traces(filters)
            assert listed == filter_traces(every_column, filters) and (listed or filters.status == "error")
        listed = src.traces(TraceFilters(limit=1000))
        assert len(listed) == 40
        spans = src.trace(listed[5]["trace_id"].upper())  # ids in any case, as the API takes them
        assert spans is not None and len(spans) == listed[5]["spans"]
        assert all(s["trace_id"] == listed[5]["trace_id"] for s in spans)
        assert any(s["attributes"] for s in spans)  # the view of one trace keeps every column
        assert src.trace("f" * 32) is None
    finally:
        store.close()
