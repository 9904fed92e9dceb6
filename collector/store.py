"""The telemetry store: a time window of metrics, requests, spans and logs, kept in Arrow.

Why this shape:
- Each `add_*` call becomes one Arrow chunk (dictionary-encoded strings), so ingest is a
  cast, not a Python loop, and memory per row stays small.
- Every chunk is appended to a write-ahead file (Arrow IPC) before `add_*` returns, and
  `flush()` turns the write-ahead file into a Parquet segment. A restart reloads segments and
  replays the write-ahead file, so stopping (even killing) meshscope loses nothing ingested.
  Segment and write-ahead files share a generation number, so a crash between writing a
  segment and deleting its write-ahead file does not load rows twice.
- Checkpoints: a source may hand a position with its rows (`add_requests(rows, checkpoint=
  {key: position})`). It goes into the same write-ahead record as the rows, so after any crash
  the rows are stored if and only if the position is: a tailer resuming from `checkpoints()`
  reads no line twice and skips none. `flush()` keeps them in `checkpoints.json`.
- Exactly once, even when the disk fails: a commit is the write-ahead append, all or nothing (a record
  cut short is cut back off the file); rows reach memory only after it, and what follows (compaction,
  eviction, a flush) is housekeeping that is logged and retried, never raised to the writer, who
  would retry a batch that is already stored.
- Eviction: chunks older than the window go (memory and disk); when memory passes
  `max_bytes`, the oldest chunks leave memory first (their segments stay on disk until they
  age out; a restart loads newest first, within the budget). A query that asks for an
  explicit start older than what memory still holds reads those rows back from the segments
  (and from rows not yet flushed), so a past window (replay, compare, `?end=`) reads the same
  numbers an hour later as it did live; memory is a cache of the window, not its limit.
- Readers never wait for writers: each table's chunks are an immutable tuple of immutable
  chunks that writers replace in one assignment (copy-on-write), so a query takes the
  current tuple and works on it while ingest goes on. Writers batch (group commit): a writer
  that finds the lock taken leaves its rows in a queue, and whoever holds the lock writes
  every queued batch of that table as one write-ahead record and one new tuple.
- `generation(name)` counts changes to a table, so consumers can cache what they computed
  from it and recompute only when new rows arrived ("idle is idle").
"""
from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collector import tables
from collector.tables import SPECS, TableSpec

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"seg-(\d+)-(\d+)-(-?\d+)-(-?\d+)\.parquet$")
_WAL = re.compile(r"wal-(\d+)\.arrows$")
_NS = 1_000_000_000
_CHECKPOINT = b"meshscope.checkpoint"  # write-ahead stream metadata: the positions these rows reach
CHECKPOINTS_FILE = "checkpoints.json"
FLUSH_RETRY_S = 10.0  # after a failed automatic flush (disk full, ...), wait this long before the next attempt
_ROW_GROUP = 32_768  # rows per Parquet row group: a past-window read decodes only the groups it overlaps


_SERIALS = itertools.count()


@dataclass(frozen=True, eq=False)
class _Chunk:
    table: pa.Table
    t_min: int  # ns since epoch
    t_max: int
    serial: int = field(default_factory=lambda: next(_SERIALS))  # unique per chunk made: `chunk_ranges`' version

    @functools.cached_property
    def nbytes(self) -> int:  # Table.nbytes walks every buffer (dictionaries too): once per chunk, not per add
        return self.table.nbytes


@dataclass(eq=False)
class _Write:
    """One writer's batch on its way into a group commit; `error` is set when its commit failed."""

    table: pa.Table
    checkpoint: dict[str, Any] | None
    error: BaseException | None = None


@dataclass
class _TableState:
    spec: TableSpec
    chunks: tuple[_Chunk, ...] = ()  # replaced whole under the write lock, never changed in place
    pending: list[_Chunk] = field(default_factory=list)  # in the write-ahead file, not yet in a segment
    generation: int = 0  # of the write-ahead file / segments on disk
    changes: int = 0  # bumped whenever `chunks` is replaced: the table's version for caches
    floor: int = 0  # ns: rows older than this may have left memory for the memory budget (still on disk)
    wal_bytes: int = 0
    seq: int = 0
    queue: list[_Write] = field(default_factory=list)  # group commit: batches waiting for the lock
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    stale_wals: list[Path] = field(default_factory=list)  # flushed into segments; go once checkpoints.json is saved


class TelemetryStore:
    """Windowed, persistent tables of telemetry; thread-safe (scrapers and receivers add concurrently,
    readers never block on them)."""

    def __init__(self, data_dir: str | Path | None = None, window_s: float = 3600.0,
                 max_bytes: int = 512 * 2**20, flush_interval_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.data_dir = Path(data_dir) if data_dir else None
        self.window_s = float(window_s)
        self.max_bytes = int(max_bytes)
        self.flush_interval_s = flush_interval_s
        self.clock = clock
        self._lock = threading.RLock()
        self._tables = {name: _TableState(spec) for name, spec in SPECS.items()}
        self._last_flush = time.monotonic()
        self._closed = False
        self._checkpoints: dict[str, Any] = {}
        self.evicted_rows = 0
        self.housekeeping_errors = 0  # compaction, eviction or flush failed after a commit (the commit stood)
        self._flush_retry_at = 0.0  # monotonic: no automatic flush before this after one failed
        self.disk_reads = 0  # segments read back for queries older than memory
        if self.data_dir:
            self._load()

    # ----------------------------------------------------------------- ingest
    def add_samples(self, data: pd.DataFrame | pa.Table) -> int:
        """Scraped or queried metric samples (columns of `schema.METRICS_COLUMNS`)."""
        return self._add("metrics", data)

    def add_requests(self, data: pd.DataFrame | pa.Table, checkpoint: dict[str, Any] | None = None) -> int:
        """Access-log requests (columns of `schema.REQUESTS_COLUMNS`).

        `checkpoint` ({key: JSON-able position}, e.g. a file offset after these rows) is committed
        with the rows in one write-ahead record, even when no row survived parsing.
        """
        return self._add("requests", data, checkpoint)

    def checkpoints(self) -> dict[str, Any]:
        """The newest position stored under each checkpoint key (survives restarts with a data dir)."""
        return dict(self._checkpoints)  # replaced whole by writers

    def add_spans(self, data: pd.DataFrame | pa.Table) -> int:
        """Trace spans (columns of `schema.SPANS_COLUMNS`)."""
        return self._add("spans", data)

    def add_logs(self, data: pd.DataFrame | pa.Table) -> int:
        """OTLP log records (columns of `schema.LOGS_COLUMNS`)."""
        return self._add("logs", data)

    def add_logs_and_requests(self, logs: pd.DataFrame | pa.Table, requests: pd.DataFrame | pa.Table) -> tuple[int, int]:
        """OTLP log records and the requests derived from them, committed together: both or neither. One export
        feeds both tables and its sender retries it whole, so storing one without the other would store it twice."""
        parts = {name: self._conformed(name, data) for name, data in (("logs", logs), ("requests", requests))}
        parts = {name: t for name, t in parts.items() if t.num_rows}
        if len(parts) < 2:  # one table: the usual commit
            return (self._add("logs", parts["logs"]) if "logs" in parts else 0,
                    self._add("requests", parts["requests"]) if "requests" in parts else 0)
        with self._lock:
            if self._closed:
                raise RuntimeError("telemetry store is closed")
            for name in parts:  # batches queued before these are committed first, in their own records
                self._drain(self._tables[name])
            self._commit_together(parts)
        return parts["logs"].num_rows, parts["requests"].num_rows

    def _conformed(self, name: str, data: pd.DataFrame | pa.Table) -> pa.Table:
        """`data` in table `name`'s schema, rows without a time dropped (ValueError before anything changes)."""
        spec = self._tables[name].spec
        table = tables.conform(data, spec)
        times = table.column(spec.time_column)
        return table.filter(pc.is_valid(times)) if times.null_count else table

    def _add(self, name: str, data: pd.DataFrame | pa.Table, checkpoint: dict[str, Any] | None = None) -> int:
        state = self._tables[name]
        table = self._conformed(name, data)
        if table.num_rows == 0 and not checkpoint:
            return 0
        if self._closed:
            raise RuntimeError("telemetry store is closed")
        mine = _Write(table, checkpoint)
        with state.queue_lock:
            state.queue.append(mine)
        # group commit: whoever gets the lock writes every batch queued so far. When this writer gets
        # it, its batch is either committed already (by an earlier holder) or in the queue it takes now.
        with self._lock:
            self._drain(state)
        if mine.error is not None:
            raise mine.error
        return table.num_rows

    def _drain(self, state: _TableState) -> None:
        """Commit every batch queued for `state` (caller holds the lock); a failure goes to each of its writers."""
        with state.queue_lock:
            batch, state.queue = state.queue, []
        if batch:
            try:
                self._commit(state, batch)
            except BaseException as exc:
                for w in batch:
                    w.error = exc

    def _commit_together(self, parts: dict[str, pa.Table]) -> None:
        """One write-ahead record per table, all or none: a failing append cuts the ones before it back off their
        files, then raises (caller holds the lock, so no other record came in between)."""
        states = [(self._tables[name], table, _chunk_of(table, self._tables[name].spec)) for name, table in parts.items()]
        if self.data_dir:
            written: list[tuple[_TableState, int]] = []
            try:
                for state, table, _ in states:
                    before = state.wal_bytes
                    self._wal_append(state, table)
                    written.append((state, before))
            except BaseException:
                for state, before in written:
                    self._wal_cut(state, before)
                raise
        for state, _, chunk in states:  # every chunk in memory before a flush may move them to a segment
            self._apply(state, chunk)
        for state, _, _ in states:
            self._housekeep(state)

    def _commit(self, state: _TableState, batch: list[_Write]) -> None:
        """Write queued batches as one write-ahead record and one new chunk (caller holds the lock)."""
        if self._closed:
            raise RuntimeError("telemetry store is closed")
        checkpoint: dict[str, Any] = {}
        for w in batch:
            checkpoint.update(w.checkpoint or {})
        parts = [w.table for w in batch if w.table.num_rows]
        table = (pa.concat_tables(parts) if len(parts) > 1 else parts[0]) if parts else batch[0].table
        chunk = _chunk_of(table, state.spec)
        if self.data_dir:
            self._wal_append(state, table, checkpoint or None)  # the commit point: raises with nothing written
        # committed: from here on nothing may fail the writers, who would retry and store the batch twice (#18)
        if checkpoint:
            self._checkpoints = {**self._checkpoints, **checkpoint}
        if chunk is not None:
            self._apply(state, chunk)
            self._housekeep(state)

    def _apply(self, state: _TableState, chunk: _Chunk) -> None:
        """A committed chunk into memory (its rows are in the current write-ahead file)."""
        state.pending.append(chunk)
        self._publish(state, (*state.chunks, chunk))

    def _housekeep(self, state: _TableState) -> None:
        """Compaction, eviction and the periodic flush after a commit: failures are logged and retried, never
        raised (the commit stood)."""
        try:
            self._compact(state)
            self._evict()
            now = time.monotonic()
            if self.data_dir and now >= self._flush_retry_at and (
                    state.wal_bytes > 64 * 2**20 or now - self._last_flush > self.flush_interval_s):
                self.flush()
        except Exception as exc:  # noqa: BLE001 - the rows are safe in the write-ahead file; housekeeping retries later
            self.housekeeping_errors += 1
            self._flush_retry_at = time.monotonic() + FLUSH_RETRY_S
            log.warning("telemetry store: housekeeping after a commit failed (rows kept, retried in %.0f s): %s",
                        FLUSH_RETRY_S, exc)

    def _publish(self, state: _TableState, chunks: tuple[_Chunk, ...] | list[_Chunk]) -> None:
        """Swap in a new tuple of chunks (one assignment: readers see the old or the new, never a mix)."""
        state.chunks = tuple(chunks)
        state.changes += 1

    def generation(self, name: str | None = None) -> int:
        """How many times table `name` (or, without a name, any table) changed: equal numbers, equal data."""
        if name is not None:
            return self._tables[name].changes
        return sum(st.changes for st in self._tables.values())

    def chunk_ranges(self, name: str) -> tuple[tuple[tuple[int, int, int], ...], int, int]:
        """((serial, t_min, t_max) per chunk of table `name` in memory, the memory floor, the window's cutoff), ns.

        For readers that cache what they derived from a time range (the trace list's buckets): chunks never change in
        place (new rows, compaction and trims make new chunks with new serials), so a range above the floor and the
        cutoff holds the same rows while the serials of the chunks overlapping it are the same."""
        state = self._tables[name]
        held = state.chunks  # before the floor, as `arrow` reads them
        return tuple((c.serial, c.t_min, c.t_max) for c in held), state.floor, self._cutoff_ns()

    # ----------------------------------------------------------------- queries
    def metrics(self, start=None, end=None) -> pd.DataFrame:
        return tables.to_pandas(self.arrow("metrics", start, end))

    def requests(self, start=None, end=None) -> pd.DataFrame:
        return tables.to_pandas(self.arrow("requests", start, end))

    def spans(self, start=None, end=None) -> pd.DataFrame:
        return tables.to_pandas(self.arrow("spans", start, end))

    def logs(self, start=None, end=None) -> pd.DataFrame:
        return tables.to_pandas(self.arrow("logs", start, end))

    def arrow(self, name: str, start=None, end=None, columns: list[str] | None = None,
              filter_expr=None) -> pa.Table:
        """Rows of table `name` with start <= time <= end (seconds, datetime or Timestamp; None = open)."""
        state = self._tables[name]
        lo, hi = _to_ns(start), _to_ns(end)
        cutoff = self._cutoff_ns()  # rows past the window are gone even if not yet trimmed
        held = state.chunks  # before the floor: an eviction in between raises the floor, and these still hold its rows
        # only the asked columns (and the time the window is cut on) are concatenated and filtered: filtering every
        # column copied all of them (15 min of spans with their attributes for a 7-column trace list, #18);
        # a filter expression may name any column, so then every column is kept until it has run
        keep = None if columns is None or filter_expr is not None else \
            list(dict.fromkeys([*columns, state.spec.time_column]))
        older = None
        floor = state.floor
        if lo is not None and self.data_dir is not None and max(lo, cutoff) < floor:
            # asked for rows memory no longer holds: those below the floor come from disk, the rest from memory
            older = self._older(state, max(lo, cutoff), floor - 1 if hi is None else min(hi, floor - 1), keep)
            lo = floor
        lo = cutoff if lo is None else max(lo, cutoff)
        picked = [c for c in held if (lo is None or c.t_max >= lo) and (hi is None or c.t_min <= hi)]
        if not picked:
            out = state.spec.schema.empty_table()
        else:
            out = pa.concat_tables([c.table if keep is None else c.table.select(keep) for c in picked])
            if filter_expr is not None:  # first: it usually keeps a few rows (one trace), so the time cut copies only those
                out = out.filter(filter_expr)
            tcol = out.column(state.spec.time_column).cast(pa.int64())
            mask = None
            if lo is not None:
                mask = pc.greater_equal(tcol, lo)
            if hi is not None:
                m2 = pc.less_equal(tcol, hi)
                mask = m2 if mask is None else pc.and_(mask, m2)
            if mask is not None:
                out = out.filter(mask)
        if older is not None and filter_expr is not None:
            older = older.filter(filter_expr)
        if older is not None and older.num_rows:
            out = pa.concat_tables([older, out.select(older.column_names)]) if out.num_rows else older
        if columns is not None:
            out = out.select(columns)
        return out

    def _older(self, state: _TableState, lo: int, hi: int, keep: list[str] | None = None) -> pa.Table | None:
        """Rows with lo <= time <= hi from the segments on disk and the rows not yet flushed to one.

        Taken under the write lock so a flush cannot move rows from `pending` into a segment between
        the two reads (which would count them twice); the segment files themselves are immutable."""
        if hi < lo:
            return None
        with self._lock:
            pending = [c.table for c in state.pending if c.t_max >= lo and c.t_min <= hi]
            paths = [s.path for s in _segments(self.data_dir / state.spec.name) if s.t_max >= lo and s.t_min <= hi]
        # only the asked columns are decoded: a 15-minute trace list otherwise decoded every span's attributes
        # from each segment it reads, on every poll (#18)
        parts = [t for t in (_read_segment(p, state.spec, lo, hi, keep) for p in sorted(paths)) if t is not None]
        self.disk_reads += len(parts)
        parts += [t if keep is None else t.select(keep) for t in pending]
        if not parts:
            return None
        out = pa.concat_tables(parts)
        tcol = out.column(state.spec.time_column).cast(pa.int64())
        return out.filter(pc.and_(pc.greater_equal(tcol, lo), pc.less_equal(tcol, hi)))

    def time_range(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Oldest and newest time held in table `name`, or None when empty."""
        chunks = self._tables[name].chunks
        if not chunks:
            return None
        return (pd.Timestamp(min(c.t_min for c in chunks), tz="UTC"), pd.Timestamp(max(c.t_max for c in chunks), tz="UTC"))

    def row_count(self, name: str) -> int:
        return sum(c.table.num_rows for c in self._tables[name].chunks)

    @property
    def nbytes(self) -> int:
        """Bytes held in memory by all tables (Arrow buffers, dictionaries included)."""
        return sum(c.nbytes for st in self._tables.values() for c in st.chunks)

    # ----------------------------------------------------------------- lifecycle
    def flush(self) -> None:
        """Write pending chunks as Parquet segments and drop their write-ahead files."""
        if not self.data_dir:
            return
        with self._lock:
            for state in self._tables.values():
                self._flush_table(state)
            self._delete_old_segments(self._cutoff_ns())
            self._last_flush = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.flush()
            self._closed = True

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- internals
    def _dir(self, state: _TableState) -> Path:
        assert self.data_dir is not None
        d = self.data_dir / state.spec.name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _wal_path(self, state: _TableState) -> Path:
        return self._dir(state) / f"wal-{state.generation:010d}.arrows"

    def _wal_append(self, state: _TableState, table: pa.Table, checkpoint: dict[str, Any] | None = None) -> None:
        if checkpoint:  # in the stream's schema: a torn record loses rows and position together
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   _CHECKPOINT: json.dumps(checkpoint).encode()})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        buf = sink.getvalue()
        # all or nothing: a record cut short (disk full, file size limit) would end the replay there and lose every
        # record after it, the retry of this one included; so the file is cut back to its committed length
        fd = os.open(self._wal_path(state), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if os.fstat(fd).st_size > state.wal_bytes:  # an earlier append failed and could not be cut back
                os.ftruncate(fd, state.wal_bytes)
            view = memoryview(buf)
            try:
                while view:
                    view = view[os.write(fd, view):]
            except BaseException:
                try:
                    os.ftruncate(fd, state.wal_bytes)
                except OSError:
                    pass  # the next append cuts it back first
                raise
        finally:
            os.close(fd)
        state.wal_bytes += buf.size

    def _wal_cut(self, state: _TableState, length: int) -> None:
        """Take back the records after `length` (a joint commit that failed on another table)."""
        state.wal_bytes = length
        try:
            os.truncate(self._wal_path(state), length)
        except OSError as exc:  # the next append cuts it back first
            log.warning("write-ahead file %s: could not cut back a failed joint commit yet: %s", self._wal_path(state), exc)

    def _flush_table(self, state: _TableState) -> None:
        cutoff = self._cutoff_ns()
        pending = [c for c in state.pending if c.t_max >= cutoff]
        wal = self._wal_path(state)
        gen = state.generation
        if pending:  # raises with nothing changed: the rows stay pending and in the write-ahead file
            table = pa.concat_tables([c.table for c in pending]).combine_chunks()
            self._write_segment(state, gen, _Chunk(table, min(c.t_min for c in pending), max(c.t_max for c in pending)))
        # the segment holds the rows: were they kept pending, the next flush would write them again
        state.pending = []
        state.generation += 1
        state.wal_bytes = 0
        state.stale_wals.append(wal)
        self._save_checkpoints()  # before the write-ahead files holding the newest ones go
        for p in state.stale_wals:  # all of them: a file left by a failed save would replay older positions
            p.unlink(missing_ok=True)
        state.stale_wals = []

    def _save_checkpoints(self) -> None:
        if not self._checkpoints:
            return
        path = self.data_dir / CHECKPOINTS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._checkpoints))
        os.replace(tmp, path)

    def _write_segment(self, state: _TableState, gen: int, chunk: _Chunk) -> None:
        path = self._dir(state) / f"seg-{gen:010d}-{state.seq:06d}-{chunk.t_min}-{chunk.t_max}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(chunk.table, tmp, compression="zstd", row_group_size=_ROW_GROUP)
        os.replace(tmp, path)
        state.seq += 1

    def _compact(self, state: _TableState) -> None:
        """Merge many small chunks into one so queries concatenate a handful, not thousands."""
        small = [c for c in state.chunks if c.table.num_rows < 50_000]
        if len(small) < 64:
            return
        merged = pa.concat_tables([c.table for c in small]).combine_chunks()
        keep = [c for c in state.chunks if c.table.num_rows >= 50_000]
        keep.append(_Chunk(merged, min(c.t_min for c in small), max(c.t_max for c in small)))
        keep.sort(key=lambda c: c.t_min)
        self._publish(state, keep)

    def _cutoff_ns(self) -> int:
        return int((self.clock() - self.window_s) * _NS)

    def _evict(self) -> None:
        cutoff = self._cutoff_ns()
        for state in self._tables.values():
            chunks = list(state.chunks)
            changed = False
            old = [c for c in chunks if c.t_max < cutoff]
            if old:
                self.evicted_rows += sum(c.table.num_rows for c in old)
                chunks = [c for c in chunks if c.t_max >= cutoff]
                state.pending = [c for c in state.pending if c.t_max >= cutoff]
                changed = True
            # trim rows that left the window from chunks that did not, once enough has aged
            # (queries already hide them; trimming a big chunk on every add would cost a copy each time)
            slack = int(0.05 * self.window_s * _NS)
            for i, c in enumerate(chunks):
                if c.t_min >= cutoff - slack:
                    continue
                times = c.table.column(state.spec.time_column).cast(pa.int64())
                kept = c.table.filter(pc.greater_equal(times, cutoff))
                self.evicted_rows += c.table.num_rows - kept.num_rows
                chunks[i] = _Chunk(kept, pc.min(kept.column(state.spec.time_column).cast(pa.int64())).as_py(), c.t_max)
                changed = True
            if changed:
                self._publish(state, chunks)
        total = sum(c.nbytes for st in self._tables.values() for c in st.chunks)
        if total <= self.max_bytes:
            return
        work = {name: list(st.chunks) for name, st in self._tables.items()}
        while total > self.max_bytes:
            oldest_name, oldest = None, None
            for name, chunks in work.items():
                for c in chunks:
                    if oldest is None or c.t_min < oldest.t_min:
                        oldest_name, oldest = name, c
            if oldest is None or oldest_name is None:
                break
            chunks = work[oldest_name]
            spec = self._tables[oldest_name].spec
            if len(chunks) == 1 and oldest.nbytes > self.max_bytes // 2 and oldest.table.num_rows > 1:
                half = oldest.table.num_rows // 2  # one huge chunk: drop its older half
                rest = oldest.table.slice(half)
                smaller = _Chunk(rest, pc.min(rest.column(spec.time_column).cast(pa.int64())).as_py(), oldest.t_max)
                chunks[0] = smaller
                dropped = oldest.table.slice(0, half).column(spec.time_column).cast(pa.int64())
                st = self._tables[oldest_name]
                st.floor = max(st.floor, pc.max(dropped).as_py() + 1)
                self.evicted_rows += half
                total -= oldest.nbytes - smaller.nbytes
                continue
            chunks.remove(oldest)
            st = self._tables[oldest_name]
            st.floor = max(st.floor, oldest.t_max + 1)
            self.evicted_rows += oldest.table.num_rows
            total -= oldest.nbytes
        for name, chunks in work.items():
            before = self._tables[name].chunks
            if len(chunks) != len(before) or any(a is not b for a, b in zip(chunks, before)):
                self._publish(self._tables[name], chunks)

    def _delete_old_segments(self, cutoff: int) -> None:
        for state in self._tables.values():
            if not self.data_dir:
                continue
            for seg in _segments(self.data_dir / state.spec.name):
                if seg.t_max < cutoff:
                    seg.path.unlink(missing_ok=True)

    def _load(self) -> None:
        cutoff = self._cutoff_ns()
        try:
            self._checkpoints = json.loads((self.data_dir / CHECKPOINTS_FILE).read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("checkpoints in %s unreadable (%s); sources start from their own state",
                        self.data_dir / CHECKPOINTS_FILE, exc)
        for state in self._tables.values():
            d = self._dir(state)
            segs, gens_with_segment, max_gen = [], set(), -1
            for seg in _segments(d):
                max_gen = max(max_gen, seg.gen)
                gens_with_segment.add(seg.gen)
                if seg.t_max < cutoff:
                    seg.path.unlink(missing_ok=True)
                    continue
                segs.append((seg.t_min, seg.t_max, seg.path))
            for p in sorted(d.glob("*.tmp")):
                p.unlink(missing_ok=True)  # a segment write that never completed: its WAL still exists
            loaded: list[_Chunk] = []
            budget = self.max_bytes
            for lo, hi, p in sorted(segs, key=lambda x: -x[1]):  # newest first, within the budget
                t = _read_segment(p, state.spec)
                if t is None:
                    continue
                if t.nbytes > budget:  # this and every older segment stay on disk, read back on demand
                    state.floor = max(state.floor, hi + 1)
                    break
                budget -= t.nbytes
                loaded.append(_Chunk(t, lo, hi))
            for p in sorted(d.glob("wal-*.arrows")):
                m = _WAL.search(p.name)
                if not m:
                    continue
                gen = int(m.group(1))
                max_gen = max(max_gen, gen)
                replayed, checkpoints = _read_wal(p, state.spec)
                for cp in checkpoints:  # in write order, newest last
                    self._checkpoints.update(cp)
                if gen not in gens_with_segment:  # else: crashed after writing its segment
                    if sum(t.num_rows for t in replayed):
                        table = pa.concat_tables(replayed).combine_chunks()
                        times = table.column(state.spec.time_column).cast(pa.int64())
                        mm = pc.min_max(times)
                        chunk = _Chunk(table, mm["min"].as_py(), mm["max"].as_py())
                        self._write_segment(state, gen, chunk)
                        loaded.append(chunk)
                self._save_checkpoints()  # the file is the only other copy of its checkpoints
                p.unlink(missing_ok=True)
            state.generation = max_gen + 1
            self._publish(state, sorted(loaded, key=lambda c: c.t_min))
        self._evict()


def _chunk_of(table: pa.Table, spec: TableSpec) -> _Chunk | None:
    """`table` as a chunk with its time span (None when it has no rows)."""
    if not table.num_rows:
        return None
    mm = pc.min_max(table.column(spec.time_column).cast(pa.int64()))
    return _Chunk(table, mm["min"].as_py(), mm["max"].as_py())


class _Segment(NamedTuple):
    """A segment file and what its name says: write-ahead generation and the time span of its rows."""
    path: Path
    gen: int
    t_min: int
    t_max: int


def _segments(d: Path) -> list[_Segment]:
    """The segment files of one table's directory (names that do not parse are not segments)."""
    out = []
    for p in d.glob("seg-*.parquet") if d.exists() else ():
        m = _SEGMENT.search(p.name)
        if m:
            out.append(_Segment(p, int(m.group(1)), int(m.group(3)), int(m.group(4))))
    return out


def _read_segment(path: Path, spec: TableSpec, lo: int | None = None, hi: int | None = None,
                  columns: list[str] | None = None) -> pa.Table | None:
    """A segment's rows (with lo <= time <= hi when given: its row groups' time statistics skip the rest
    unread; only `columns` when given, which must name the time column), or None when it is unreadable
    (warned: a damaged segment must not stop a load or a query) or aged out since it was listed."""
    bounds = None
    if lo is not None and hi is not None:
        col = spec.time_column
        # Arrow scalars in nanoseconds: a pandas Timestamp is cut to microseconds on its way into the filter,
        # which lost a span stamped within the microsecond below `hi` (at the memory/disk boundary of a read)
        ts = spec.schema.field(col).type
        bounds = (pc.field(col) >= pa.scalar(lo, ts)) & (pc.field(col) <= pa.scalar(hi, ts))
    if columns is not None:  # the segment's other columns stay undecoded; conform fills only these
        spec = TableSpec(spec.name, pa.schema([spec.schema.field(c) for c in columns]), spec.time_column,
                         spec.string_default)
    try:
        if columns is not None:  # a segment written before a column existed lacks it: conform fills it
            present = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in present]
        return tables.conform(pq.read_table(path, columns=columns, filters=bounds), spec)
    except FileNotFoundError:
        return None
    except Exception as exc:
        log.warning("skipping unreadable segment %s: %s", path, exc)
        return None


def _read_wal(path: Path, spec: TableSpec) -> tuple[list[pa.Table], list[dict[str, Any]]]:
    """Every complete stream in a write-ahead file, and the checkpoints they carry, in write order.

    A torn tail (crash mid-write) is dropped, rows and checkpoint together.
    """
    out: list[pa.Table] = []
    checkpoints: list[dict[str, Any]] = []
    data = path.read_bytes()
    reader_src = pa.BufferReader(data)
    while reader_src.tell() < len(data):
        try:
            with pa.ipc.open_stream(reader_src) as r:
                t = r.read_all()
            cp = (t.schema.metadata or {}).get(_CHECKPOINT)
            out.append(tables.conform(t, spec))
            if cp:
                checkpoints.append(json.loads(cp))
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            log.warning("write-ahead file %s: dropped a torn tail: %s", path, exc)
            break
    return out, checkpoints


def _to_ns(t) -> int | None:
    if t is None:
        return None
    if isinstance(t, (int, float)):
        return int(t * _NS)
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)
