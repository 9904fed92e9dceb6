"""A rates read allocates a small multiple of the rows it reads (#18): the label columns are never spelled out as strings.

Why a bound on allocation: the metrics table holds 27 dictionary-encoded label columns; turned into pandas
strings for the computation, a read allocated 3-12x its own size (a 9-minute read at 10 rps: +252 MB of
Arrow strings and their copies), the largest transient of `meshscope up`. The bound is on bytes
Arrow allocates during the call (a proxy pool counts them exactly, whatever else the machine runs); the
frames stay the ones a plain-strings computation gives (the rates tests check values; here, the dtypes).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from collector import schema as s, tables
from collector.query import istio_rates_range, rates_from_samples
from collector.store import TelemetryStore

T0 = 1_700_000_000.0
# peak Arrow bytes per byte read: 1.3x (one read) and 1.6x (a range of 11 frames) with the labels kept as codes;
# 11.7x and 6.4x when they were spelled out as strings (measured on these samples)
BOUND = 3.0


def _samples(targets: int = 6, series: int = 120, scrapes: int = 80, interval: float = 5.0) -> pa.Table:
    """Counters of `series` label sets per target, scraped every `interval` s, as the store holds them."""
    rng = np.random.default_rng(7)
    n = targets * series * scrapes
    tgt = np.repeat(np.arange(targets), series * scrapes)
    ser = np.tile(np.repeat(np.arange(series), scrapes), targets)
    k = np.tile(np.arange(scrapes), targets * series)
    cols: dict[str, object] = {
        s.TIME: pd.to_datetime((T0 + k * interval) * 1e9, utc=True),
        s.TARGET: np.char.add("10.0.0.", tgt.astype(str)),
        s.METRIC: np.where(ser % 3 == 0, "istio_request_duration_milliseconds_bucket", "istio_requests_total"),
        s.LE: np.where(ser % 3 == 0, (ser % 7 + 1) * 10.0, np.nan),
        s.VALUE: k * (1.0 + ser % 5) + rng.integers(0, 3, n).cumsum() % 2,
        s.LABELS: np.char.add("pod=p", (ser % 4).astype(str)),
    }
    for i, label in enumerate(s.ISTIO_LABELS):  # every Istio label set, distinct per series
        cols[label] = np.char.add(f"{label}-", ((ser + i) % (series // 2 + i + 1)).astype(str))
    return tables.conform(pd.DataFrame(cols), tables.SPECS["metrics"])


_POOLS: list[pa.MemoryPool] = []  # a proxy pool outlives every buffer it handed out (they free through it)


def _peak_allocated(fn) -> tuple[object, int]:
    """(fn(), the most Arrow bytes live at once during it, beyond those live before)."""
    parent = pa.default_memory_pool()
    proxy = pa.proxy_memory_pool(parent)
    _POOLS.append(proxy)
    pa.set_memory_pool(proxy)
    try:
        return fn(), proxy.max_memory()
    finally:
        pa.set_memory_pool(parent)


@pytest.fixture(scope="module")
def samples() -> pa.Table:
    return _samples()


def test_a_rates_read_allocates_a_small_multiple_of_the_rows_it_reads(samples):
    end = T0 + 79 * 5.0
    frame, peak = _peak_allocated(lambda: rates_from_samples(samples, prefix="istio_", window=(end - 300, end)))
    assert len(frame) > 0
    assert peak < BOUND * samples.nbytes, f"a rates read of {samples.nbytes:,} bytes allocated {peak:,} bytes at its peak"


def test_rate_frames_hand_out_plain_strings_not_categoricals(samples):
    end = T0 + 79 * 5.0
    frame = rates_from_samples(samples, prefix="istio_", window=(end - 300, end))
    plain = tables.to_pandas(samples.slice(0, 1))
    for col in (*s.ISTIO_LABELS, s.METRIC):
        assert not isinstance(frame[col].dtype, pd.CategoricalDtype), col
        assert frame[col].dtype == plain[col].dtype, col


def test_a_range_of_rate_frames_allocates_a_small_multiple_of_its_read(samples):
    store = TelemetryStore(window_s=24 * 3600, clock=lambda: T0 + 3600)
    store.add_samples(samples)
    end = T0 + 79 * 5.0
    frames, peak = _peak_allocated(lambda: istio_rates_range(store, 60.0, end - 200, end, 20.0))
    assert len(frames) == 11 and all(len(f) > 0 for _, f in frames)
    assert not any(isinstance(f[s.SOURCE_WORKLOAD].dtype, pd.CategoricalDtype) for _, f in frames)
    assert peak < BOUND * samples.nbytes, f"a range read of {samples.nbytes:,} bytes allocated {peak:,} bytes at its peak"


def _spans(n: int, t0: float, traces: int) -> pd.DataFrame:
    """`n` spans of `traces` traces from t0 on, one a millisecond, each with the attributes a sidecar's span carries."""
    i = np.arange(n)
    return pd.DataFrame({
        s.TRACE_ID: [f"{k % traces:032x}" for k in i], s.SPAN_ID: [f"{k:016x}" for k in i],
        s.START_TIME: pd.to_datetime((t0 + i / 1000.0) * 1e9, utc=True), s.DURATION_MS: 1.0,
        s.SERVICE_NAME: "reviews.bookinfo", s.SPAN_NAME: "reviews.bookinfo.svc.cluster.local:9080/*",
        s.ATTRIBUTES: [{"http.url": f"http://reviews:9080/reviews/{k}", "upstream_cluster": "outbound|9080||reviews",
                        "user_agent": "python-httpx/0.27", "guid:x-request-id": f"{k:036x}"} for k in i],
    })


def test_a_past_window_read_of_some_columns_decodes_only_those(tmp_path):
    """Rows older than memory holds come from the segments on disk: only the asked columns are decoded."""
    store = TelemetryStore(tmp_path, window_s=10**6, max_bytes=50_000, clock=lambda: T0 + 3600, flush_interval_s=10**9)
    for k in range(4):  # four segments, all but the newest rows out of memory
        store.add_spans(_spans(3000, T0 + 10 * k, traces=300))
        store.flush()
    full = store.arrow("spans", T0 - 1, T0 + 60)
    assert store.disk_reads > 0 and full.num_rows == 12_000
    cols = [s.TRACE_ID, s.START_TIME]
    got, peak = _peak_allocated(lambda: store.arrow("spans", T0 - 1, T0 + 60, columns=cols))
    assert got.equals(full.select(cols))
    attributes = full.column(s.ATTRIBUTES).nbytes
    assert peak < attributes, f"a read of {cols} allocated {peak:,} bytes; the attributes it did not ask for are {attributes:,}"


def test_one_trace_is_read_without_copying_the_window(tmp_path):
    """A trace's spans are picked before the window is cut: the read allocates about one trace, not 15 minutes."""
    from collector.query import spans

    store = TelemetryStore(window_s=10**6, clock=lambda: T0 + 60)
    store.add_spans(_spans(20_000, T0, traces=2000))
    whole = store.arrow("spans").nbytes
    trace = f"{7:032X}"  # any case: ids are matched in lower case
    got, peak = _peak_allocated(lambda: spans(store, 900.0, T0 + 30, trace_id=trace))
    assert sorted(got[s.SPAN_ID]) == sorted(f"{k:016x}" for k in range(7, 20_000, 2000))
    assert peak < whole / 10, f"one trace's read allocated {peak:,} bytes of a {whole:,}-byte window"


def test_a_past_window_read_has_every_row_whatever_its_nanoseconds(tmp_path):
    """Spans are stamped to the nanosecond: a read across the memory/disk boundary returns what a memory-only
    store returns (the segment filter once cut its bound to the microsecond and lost the row just below it)."""
    disk = TelemetryStore(tmp_path, window_s=10**6, max_bytes=50_000, clock=lambda: T0 + 3600, flush_interval_s=10**9)
    memory = TelemetryStore(window_s=10**6, clock=lambda: T0 + 3600)
    for k in range(4):
        batch = _spans(3000, T0 + 10 * k + 0.000_000_123 * k, traces=300)
        disk.add_spans(batch)
        disk.flush()
        memory.add_spans(batch)
    assert disk.disk_reads == 0 and disk.arrow("spans", T0 - 1, T0 + 60).num_rows == 12_000 and disk.disk_reads > 0
    for lo, hi in [(T0 - 1, T0 + 60), (T0 + 5, T0 + 32.9), (T0 + 12.5, T0 + 32.904999)]:
        assert disk.arrow("spans", lo, hi).equals(memory.arrow("spans", lo, hi)), (lo, hi)
