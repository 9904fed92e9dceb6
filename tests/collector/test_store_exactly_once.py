"""Exactly once when the disk fails (#18): a batch whose commit fails is stored not at all, a batch whose commit
stood is never raised back to its writer (who would retry it), in memory and after a restart.

The failures are real: a directory where the store writes a file, and a file size limit (RLIMIT_FSIZE) that cuts
a write-ahead append short half way."""
from __future__ import annotations

import json
import resource
import signal
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from collector import schema as s
from collector import store as store_module
from collector.sources.access_log import AccessLogTailer, LogFile, checkpoint_key
from collector.store import CHECKPOINTS_FILE, TelemetryStore

NOW = 1_790_000_000.0
TEMPLATE = json.loads((Path(__file__).parent / "data" / "envoy_access_json.log").read_bytes().splitlines()[0])


def _clock() -> float:
    return NOW


def _rows(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({s.START_TIME: pd.to_datetime([NOW - 5] * len(ids), unit="s", utc=True),
                         s.PATH: ["/p"] * len(ids), s.RESPONSE_CODE: [200] * len(ids), s.REQUEST_ID: ids})


def _once(store: TelemetryStore, ids: list[str]) -> None:
    got = store.requests()[s.REQUEST_ID].tolist()
    assert sorted(got) == sorted(ids), f"{len(got)} rows for {len(ids)} ids"


def _add_retrying(store: TelemetryStore, ids: list[str], checkpoint: dict) -> int:
    """What every source does: a commit that raised is sent again (the tailer next poll, OTLP senders on 503)."""
    for _ in range(3):
        try:
            return store.add_requests(_rows(ids), checkpoint=checkpoint)
        except OSError:
            continue
    raise AssertionError("never committed")


def test_a_flush_failing_after_the_commit_does_not_fail_the_writer(tmp_path):
    """A flush runs inside the commit that crossed its interval; when it fails (here: `checkpoints.json` cannot be
    replaced), the rows are already in the write-ahead file and in memory, so the writer must not hear of it."""
    store = TelemetryStore(tmp_path, flush_interval_s=0, clock=_clock)
    (tmp_path / CHECKPOINTS_FILE).with_suffix(".tmp").mkdir()  # every checkpoint save fails
    ids = [f"a-{i}" for i in range(5)]
    _add_retrying(store, ids[:3], {"log": 3})
    _add_retrying(store, ids[3:], {"log": 5})
    assert store.housekeeping_errors >= 1
    _once(store, ids)
    assert store.checkpoints() == {"log": 5}
    del store  # killed: what the failed flushes left (segments, the write-ahead files they came from) is loaded once
    (tmp_path / CHECKPOINTS_FILE).with_suffix(".tmp").rmdir()
    again = TelemetryStore(tmp_path, clock=_clock)
    _once(again, ids)
    assert again.checkpoints() == {"log": 5}
    again.close()
    third = TelemetryStore(tmp_path, clock=_clock)
    _once(third, ids)
    assert third.checkpoints() == {"log": 5}


def test_a_table_directory_that_cannot_be_written_refuses_the_batch_whole(tmp_path):
    store = TelemetryStore(tmp_path, clock=_clock)
    store.add_requests(_rows(["a"]), checkpoint={"log": 1})
    store.flush()
    table_dir = tmp_path / "requests"
    table_dir.rename(tmp_path / "aside")
    table_dir.write_text("not a directory")  # where the write-ahead file goes
    with pytest.raises(OSError):
        store.add_requests(_rows(["b"]), checkpoint={"log": 2})
    _once(store, ["a"])  # nothing of the refused batch, rows or position
    assert store.checkpoints() == {"log": 1}
    table_dir.unlink()
    (tmp_path / "aside").rename(table_dir)
    store.add_requests(_rows(["b"]), checkpoint={"log": 2})  # the retry
    _once(store, ["a", "b"])
    del store
    again = TelemetryStore(tmp_path, clock=_clock)
    _once(again, ["a", "b"])
    assert again.checkpoints() == {"log": 2}


@pytest.fixture
def file_size_limit():
    """Set RLIMIT_FSIZE (soft) for this process; SIGXFSZ ignored so an over-long write fails with EFBIG."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield lambda n: resource.setrlimit(resource.RLIMIT_FSIZE, (n, hard))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)


def test_a_write_ahead_append_cut_short_is_cut_back_and_the_retry_stored_once(tmp_path, file_size_limit):
    """The file size limit stops an append half way through its record: that batch fails whole, and its retry and
    every later batch replay after a crash (a torn record in the middle used to end the replay there)."""
    store = TelemetryStore(tmp_path, clock=_clock)
    store.add_requests(_rows(["a"]), checkpoint={"log": 1})
    wal = next((tmp_path / "requests").glob("wal-*.arrows"))
    file_size_limit(wal.stat().st_size + 200)  # the next record is longer than 200 bytes
    with pytest.raises(OSError):
        store.add_requests(_rows(["b", "c"]), checkpoint={"log": 3})
    _once(store, ["a"])
    assert store.checkpoints() == {"log": 1}
    file_size_limit(resource.RLIM_INFINITY)
    store.add_requests(_rows(["b", "c"]), checkpoint={"log": 3})  # the retry
    store.add_requests(_rows(["d"]), checkpoint={"log": 4})
    _once(store, ["a", "b", "c", "d"])
    del store  # killed before any flush: everything is in the write-ahead file only
    again = TelemetryStore(tmp_path, clock=_clock)
    _once(again, ["a", "b", "c", "d"])
    assert again.checkpoints() == {"log": 4}


def _line(request_id: str) -> bytes:
    stamp = datetime.fromtimestamp(NOW - 5, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({**TEMPLATE, "request_id": request_id, "start_time": stamp}).encode() + b"\n"


def test_the_tailer_stores_each_line_once_while_flushes_fail(tmp_path, monkeypatch):
    """The real source: two logs tailed into a store whose flushes fail. Each poll commits once; a commit that
    raised after storing made the tailer store the lines again (file by file, then on every later poll)."""
    monkeypatch.setattr(store_module, "FLUSH_RETRY_S", 0.0, raising=False)  # every commit tries (and fails) to flush
    data = tmp_path / "data"
    store = TelemetryStore(data, flush_interval_s=0, clock=_clock)
    (data / CHECKPOINTS_FILE).with_suffix(".tmp").mkdir()
    files = [LogFile(str(tmp_path / f"s{k}.log"), f"wl-{k}", "ns") for k in range(2)]
    tailer = AccessLogTailer(files, store)
    ids: list[str] = []
    for round_ in range(3):
        for k, f in enumerate(files):
            new = [f"r{round_}-{k}-{i}" for i in range(4)]
            with open(f.path, "ab") as fh:
                fh.write(b"".join(_line(i) for i in new))
            ids += new
        tailer.poll()
    _once(store, ids)
    ends = {checkpoint_key(f.path): Path(f.path).stat().st_size for f in files}
    assert {k: v["offset"] for k, v in store.checkpoints().items()} == ends
    del store, tailer
    (data / CHECKPOINTS_FILE).with_suffix(".tmp").rmdir()
    again = TelemetryStore(data, clock=_clock)
    _once(again, ids)
    assert {k: v["offset"] for k, v in again.checkpoints().items()} == ends
    tailer = AccessLogTailer(files, again)  # resumes from the checkpoints: reads nothing twice
    tailer.poll()
    _once(again, ids)


def test_an_otlp_logs_export_stores_its_log_records_and_requests_both_or_neither(tmp_path):
    """OTLP/HTTP /v1/logs feeds two tables from one export. When the second cannot be written the first keeps
    nothing either, so the sender's retry of the whole export (it got a 503) stores each record once."""
    import httpx

    from collector.sources.otlp import OtlpReceiver
    from tests.collector.test_otel_access_log import IDENTITY, _text_lines, request

    body = request([{"body": ln, "attrs": IDENTITY} for ln in _text_lines()[:5]])
    store = TelemetryStore(tmp_path, window_s=10**9)
    table_dir = tmp_path / "requests"
    table_dir.rename(tmp_path / "aside")
    table_dir.write_text("not a directory")  # the requests' write-ahead file cannot be written; the logs' can
    with OtlpReceiver(store, port=0) as rx:
        post = lambda: httpx.post(rx.endpoint + "/v1/logs", content=body,  # noqa: E731
                                  headers={"content-type": "application/x-protobuf"}, timeout=10)
        assert post().status_code == 503
        assert len(store.logs()) == 0 and len(store.requests()) == 0
        table_dir.unlink()
        (tmp_path / "aside").rename(table_dir)
        assert post().status_code == 200  # the sender's retry
    ids = store.requests()[s.REQUEST_ID].tolist()
    assert len(ids) == len(set(ids)) == 5 and len(store.logs()) == 5
    del store  # killed: the write-ahead files hold each record once
    again = TelemetryStore(tmp_path, window_s=10**9)
    assert sorted(again.requests()[s.REQUEST_ID]) == sorted(ids) and len(again.logs()) == 5
