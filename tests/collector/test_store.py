"""The store: window eviction, memory budget, persistence across restarts and crashes."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from collector import schema as s
from collector.store import TelemetryStore


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def requests(times: list[float], path: str = "/p", code: int = 200) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({
        s.START_TIME: pd.to_datetime(times, unit="s", utc=True), s.PATH: [path] * n,
        s.RESPONSE_CODE: [code] * n, s.DURATION_MS: np.arange(n, dtype=float), s.MTLS: [True] * n,
        s.REQUEST_ID: [f"id-{path}-{i}" for i in range(n)],
    })


def test_documented_columns_and_types():
    st = TelemetryStore(clock=Clock(100))
    st.add_requests(requests([99, 99.5]))
    df = st.requests()
    assert tuple(df.columns) == s.REQUESTS_COLUMNS
    assert str(df[s.START_TIME].dtype) == "datetime64[ns, UTC]"
    assert list(df[s.RESPONSE_CODE]) == [200, 200]
    assert df[s.MTLS].dtype == bool
    assert list(df[s.SOURCE_WORKLOAD]) == ["", ""]  # missing string columns are empty, never NaN


def test_time_range_queries():
    st = TelemetryStore(clock=Clock(100))
    st.add_requests(requests([10, 20, 30]))
    st.add_requests(requests([40, 50]))
    assert len(st.requests(start=20, end=40)) == 3
    assert len(st.requests(start=41)) == 1
    assert len(st.requests()) == 5


def test_eviction_by_age_keeps_the_window():
    clock = Clock(1000)
    st = TelemetryStore(window_s=100, clock=clock)
    st.add_requests(requests([880, 905, 950]))
    assert sorted(st.requests()[s.START_TIME].astype("int64") // 10**9) == [905, 950]  # 880 already out
    clock.t = 1060
    st.add_requests(requests([1059]))
    assert sorted(st.requests()[s.START_TIME].astype("int64") // 10**9) == [1059]
    assert st.evicted_rows == 3


def test_eviction_by_memory_budget_drops_oldest_first():
    st = TelemetryStore(window_s=10**6, max_bytes=400_000, clock=Clock(10**5))
    for k in range(20):
        st.add_requests(requests(list(np.linspace(k * 100, k * 100 + 99, 1000)), path=f"/p{k}"))
    assert st.nbytes <= 400_000
    left = st.requests()
    assert len(left) < 20_000
    assert "/p19" in set(left[s.PATH])  # newest survives
    assert "/p0" not in set(left[s.PATH])


def test_restart_loses_nothing_after_close(tmp_path):
    clock = Clock(100)
    st = TelemetryStore(tmp_path, clock=clock)
    st.add_requests(requests([1, 2, 3], path="/a"))
    st.add_spans(pd.DataFrame({s.TRACE_ID: ["ab" * 16], s.SPAN_ID: ["cd" * 8], s.START_TIME: pd.to_datetime([5], unit="s", utc=True),
                               s.ATTRIBUTES: [{"http.method": "GET"}]}))
    st.close()
    again = TelemetryStore(tmp_path, clock=clock)
    assert sorted(again.requests()[s.REQUEST_ID]) == ["id-/a-0", "id-/a-1", "id-/a-2"]
    assert again.spans()[s.ATTRIBUTES][0] == {"http.method": "GET"}


def test_crash_without_close_replays_write_ahead_once(tmp_path):
    clock = Clock(100)
    st = TelemetryStore(tmp_path, clock=clock)
    st.add_requests(requests([1, 2], path="/a"))
    st.flush()
    st.add_requests(requests([3], path="/b"))  # only in the write-ahead file
    del st  # no close(): as if the process was killed
    again = TelemetryStore(tmp_path, clock=clock)
    assert sorted(again.requests()[s.PATH]) == ["/a", "/a", "/b"]
    again.add_requests(requests([4], path="/c"))
    del again
    third = TelemetryStore(tmp_path, clock=clock)  # replayed data must not be loaded twice
    assert sorted(third.requests()[s.PATH]) == ["/a", "/a", "/b", "/c"]


def test_torn_write_ahead_tail_is_dropped_not_fatal(tmp_path):
    clock = Clock(100)
    st = TelemetryStore(tmp_path, clock=clock)
    st.add_requests(requests([1], path="/a"))
    st.add_requests(requests([2], path="/b"))
    del st
    wal = next((tmp_path / "requests").glob("wal-*.arrows"))
    data = wal.read_bytes()
    wal.write_bytes(data[: len(data) - 50])  # the second append was cut by a crash
    again = TelemetryStore(tmp_path, clock=clock)
    assert list(again.requests()[s.PATH]) == ["/a"]


def test_checkpoints_are_committed_with_their_rows(tmp_path):
    clock = Clock(100)
    st = TelemetryStore(tmp_path, clock=clock)
    st.add_requests(requests([1], path="/a"), checkpoint={"log:a": {"offset": 10}})
    st.flush()  # /a and its checkpoint leave the write-ahead file
    st.add_requests(requests([2], path="/b"), checkpoint={"log:a": {"offset": 20}, "log:b": {"offset": 5}})
    st.add_requests(requests([], path="/x"), checkpoint={"log:b": {"offset": 9}})  # a batch of only bad lines
    st.add_requests(requests([3], path="/c"), checkpoint={"log:a": {"offset": 30}})
    assert st.checkpoints() == {"log:a": {"offset": 30}, "log:b": {"offset": 9}}
    del st  # killed
    wal = next((tmp_path / "requests").glob("wal-*.arrows"))
    data = wal.read_bytes()
    wal.write_bytes(data[: len(data) - 50])  # ... in the middle of writing the last batch
    again = TelemetryStore(tmp_path, clock=clock)
    # the torn batch is gone with its checkpoint; everything before it is there with its own
    assert sorted(again.requests()[s.PATH]) == ["/a", "/b"]
    assert again.checkpoints() == {"log:a": {"offset": 20}, "log:b": {"offset": 9}}
    del again  # the replayed write-ahead file is gone now; its checkpoints must not be
    assert TelemetryStore(tmp_path, clock=clock).checkpoints() == {"log:a": {"offset": 20}, "log:b": {"offset": 9}}


def test_segments_older_than_window_are_deleted(tmp_path):
    clock = Clock(1000)
    st = TelemetryStore(tmp_path, window_s=100, clock=clock)
    st.add_requests(requests([950]))
    st.flush()
    assert list((tmp_path / "requests").glob("seg-*.parquet"))
    clock.t = 2000
    st.add_requests(requests([1999]))
    st.flush()
    segs = list((tmp_path / "requests").glob("seg-*.parquet"))
    assert len(segs) == 1 and "1999" in segs[0].name
    st.close()


def test_bad_input_is_refused_whole_and_nothing_stored_is_lost():
    st = TelemetryStore(clock=Clock(100))
    st.add_requests(requests([1]))
    with pytest.raises(ValueError, match="response_code"):
        st.add_requests(pd.DataFrame({s.START_TIME: pd.to_datetime([2], unit="s", utc=True), s.RESPONSE_CODE: ["abc"]}))
    assert len(st.requests()) == 1


def test_concurrent_adds(tmp_path):
    import threading
    st = TelemetryStore(tmp_path, clock=Clock(10**4))
    def work(k):
        for i in range(20):
            st.add_requests(requests([9000 + k * 100 + i], path=f"/{k}"))
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(st.requests()) == 80
    st.close()
    assert len(TelemetryStore(tmp_path, clock=Clock(10**4)).requests()) == 80
    assert not list((tmp_path / "requests").glob("*.tmp"))
    assert os.path.isdir(tmp_path / "metrics")



def test_readers_do_not_wait_for_writers():
    """A query answers while a writer holds the store's lock (readers work on the published chunks)."""
    import threading

    store = TelemetryStore(clock=Clock(10**4))
    store.add_requests(requests([9000 + i for i in range(10)]))
    before = store.generation("requests")
    with store._lock:  # a writer mid-commit (say, on a slow disk)
        got: list[int] = []
        reader = threading.Thread(target=lambda: got.append(len(store.requests())))
        reader.start()
        reader.join(timeout=5)
        assert got == [10]
    assert store.generation("requests") == before  # reading changes nothing


def test_generation_moves_only_when_its_table_changes():
    store = TelemetryStore(clock=Clock(10**4))
    g0 = store.generation()
    store.add_requests(requests([9000]))
    assert store.generation("requests") > 0 and store.generation() > g0
    spans_before, requests_before = store.generation("spans"), store.generation("requests")
    store.add_requests(requests([9001]))
    assert store.generation("spans") == spans_before and store.generation("requests") > requests_before
    store.add_requests(requests([]))
    assert store.generation("requests") == requests_before + 1


def test_concurrent_writers_group_commit_every_row_once(tmp_path):
    """Many writers at once (batches coalesce into shared commits): each row is stored exactly once,
    with its checkpoint, in memory and after a restart."""
    import threading

    store = TelemetryStore(tmp_path, clock=Clock(10**4))
    n_threads, per = 8, 25

    def writer(k: int) -> None:
        for i in range(per):
            store.add_requests(requests([9000 + i, 9000 + i], path=f"/{k}-{i}"), checkpoint={f"w{k}": i})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = sorted(f"/{k}-{i}" for k in range(n_threads) for i in range(per) for _ in range(2))
    assert sorted(store.requests()[s.PATH].tolist()) == expected
    assert store.checkpoints() == {f"w{k}": per - 1 for k in range(n_threads)}
    assert store.generation("requests") <= n_threads * per
    store.close()
    again = TelemetryStore(tmp_path, clock=Clock(10**4))
    assert sorted(again.requests()[s.PATH].tolist()) == expected
    assert again.checkpoints() == {f"w{k}": per - 1 for k in range(n_threads)}


def _ids(df: pd.DataFrame) -> list[str]:
    return sorted(df[s.REQUEST_ID])


def _fill_over_budget(st: TelemetryStore, reference: TelemetryStore, flush_every: int) -> None:
    """Twenty batches of 1,000 rows, one per 100 s, some flushed to a segment, the last ones not."""
    for k in range(20):
        batch = requests(list(np.linspace(k * 100, k * 100 + 99, 1000)), path=f"/p{k}")
        st.add_requests(batch)
        reference.add_requests(batch)
        if k % flush_every == flush_every - 1:
            st.flush()


@pytest.mark.parametrize("flush_every", [1, 3, 7])
def test_a_past_range_reads_back_what_left_memory_exactly_once(tmp_path, flush_every):
    """Rows the memory budget pushed out are still the window's: a query with an explicit start reads
    them back from the segments (and from rows evicted before their flush), never twice; memory-only
    reads (no start) keep their meaning."""
    st = TelemetryStore(tmp_path, window_s=10**6, max_bytes=400_000, clock=Clock(10**5), flush_interval_s=10**9)
    everything = TelemetryStore(window_s=10**6, max_bytes=2**40, clock=Clock(10**5))
    _fill_over_budget(st, everything, flush_every)
    assert "/p0" not in set(st.requests()[s.PATH])  # memory lost the oldest batches
    for lo, hi in [(0, None), (0, 2000), (150, 450.5), (1234, 1899), (99.5, 100.0), (1990, None), (3000, None)]:
        assert _ids(st.requests(lo, hi)) == _ids(everything.requests(lo, hi)), (lo, hi)
    assert st.disk_reads > 0
    # columns and filters apply to the rows read back as to the rest
    got = st.arrow("requests", 0, 999, columns=[s.PATH])
    assert got.column_names == [s.PATH] and got.num_rows == 10_000


def test_a_past_range_after_a_restart_reads_segments_that_did_not_fit_in_memory(tmp_path):
    st = TelemetryStore(tmp_path, window_s=10**6, max_bytes=2**40, clock=Clock(10**5), flush_interval_s=10**9)
    everything = TelemetryStore(window_s=10**6, max_bytes=2**40, clock=Clock(10**5))
    _fill_over_budget(st, everything, flush_every=1)
    st.close()
    again = TelemetryStore(tmp_path, window_s=10**6, max_bytes=400_000, clock=Clock(10**5))
    assert "/p0" not in set(again.requests()[s.PATH])
    assert _ids(again.requests(0, None)) == _ids(everything.requests(0, None))
    assert _ids(again.requests(500, 1500)) == _ids(everything.requests(500, 1500))
    # the window still bounds what is read back: rows older than it are gone from disk too
    short = TelemetryStore(tmp_path, window_s=10**5 - 1000, max_bytes=400_000, clock=Clock(10**5))
    assert _ids(short.requests(0, None)) == _ids(everything.requests(1000, None))


def test_without_a_data_dir_memory_is_all_there_is():
    st = TelemetryStore(window_s=10**6, max_bytes=400_000, clock=Clock(10**5))
    for k in range(20):
        st.add_requests(requests(list(np.linspace(k * 100, k * 100 + 99, 1000)), path=f"/p{k}"))
    assert len(st.requests(0, None)) == len(st.requests()) < 20_000


def test_past_reads_during_ingest_eviction_and_flushes_never_count_a_row_twice(tmp_path):
    """Readers race the writer's evictions and flushes (rows moving from memory to pending to a segment)."""
    import threading
    st = TelemetryStore(tmp_path, window_s=10**6, max_bytes=200_000, clock=Clock(10**5), flush_interval_s=10**9)
    done, seen = threading.Event(), []

    def write() -> None:
        try:
            for k in range(40):
                st.add_requests(requests(list(np.linspace(k * 10, k * 10 + 9.9, 300)), path=f"/p{k}"))
                if k % 4 == 3:
                    st.flush()
        finally:
            done.set()

    w = threading.Thread(target=write)
    w.start()
    while not done.is_set() or not seen:
        ids = list(st.requests(0, None)[s.REQUEST_ID])
        assert len(ids) == len(set(ids)), "a row read twice"
        seen.append(len(ids))
    w.join()
    assert len(st.requests(0, None)) == 40 * 300
