"""Tail Envoy access-log files into the store: rotation-safe, resumable, never twice.

How the guarantees hold:
- Offsets are kept per file *identity* (device + inode), not per name. When the name points
  to a new inode (rename rotation), the old file is still open: it is read to its end first,
  then the new one from 0. When a file shrinks under us (copytruncate), reading restarts at 0.
- Only complete lines are consumed; a half-written last line waits for the next poll.
- Each batch goes to the store with the cursor it reaches as a checkpoint, committed in the
  same write-ahead record as its rows, so even a crash (SIGKILL) between two batches leaves
  rows and position in step. On restart the tailer seeks to the store's checkpoint (or, for a
  store without a data dir, to the offsets in `state_path`, saved by atomic rename after each
  poll); if the name was rotated while meshscope was down, the old inode is looked up in the
  same directory and its tail read first, so nothing written while we were away is skipped.
- Polling (default 1 s) instead of inotify: Envoy sidecars already use inotify instances and
  the per-user limit is small (see the feasibility notes). A file with nothing new costs a stat and
  an empty read.
- One parse and one store commit per poll, not per file: what a batch costs is mostly per call
  (~150 Arrow calls to derive a batch however few lines it has), and steady traffic brings a few
  lines to every sidecar's log each second. The new lines of all files are parsed together (one
  call per format) and stored as one write-ahead record whose checkpoint moves every file's cursor;
  each row gets its own file's identity and source, each refused line is named by its file and line
  there. When rows cannot be told apart by file, or the parse or the store fails, each file is
  ingested alone, as before (with its retries and skips).
- No line stops the tailer: the parser refuses bad lines one by one (counted per file and
  reason in `collector.selfmetrics`, with a sample of the bytes in `recent_rejects()`) and the
  checkpoint moves past them with the good lines of the batch. A batch the parser or the store
  fails on outright is retried on the next polls; after `MAX_ATTEMPTS` failures at the same
  position it is refused whole (reason `unreadable` / `store_failed`) and the cursor passes it,
  so a restart never resumes in front of it again. One file's failure never stops the others.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from collector import schema as s
from collector import selfmetrics
from collector.parse.access_log import MAX_LINE_BYTES, LogContext, parse_json_log, parse_text_log
from collector.parse.otel_access_log import patch_identity, proxy_marker
from collector.store import TelemetryStore
from collector.tables import REQUESTS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # polls a failing batch is retried at the same position before it is skipped
# what one parse reads at most (a file's piece, or the poll's pieces of several files together): a backlog after the
# process was starved of CPU, or a burst, is read in pieces of this size, each stored before the next is read, instead
# of whole (a 15 MB joint parse peaked at 61 MB of Arrow memory and 30 MB of Python objects, 4 MB at 5 and 0.2) (#18)
MAX_BATCH_BYTES = 4 * 2**20
HEAD_BYTES = 4096  # first bytes fingerprinted with a cursor (whole first lines: timestamps, request ids)


@dataclass(frozen=True)
class LogFile:
    """A log file and who writes it; `format` is 'json', 'text' or 'auto' (decided from content)."""

    path: str
    workload: str = "unknown"
    namespace: str = "unknown"
    principal: str = "unknown"
    format: str = "auto"


@dataclass
class _Cursor:
    dev: int
    ino: int
    offset: int = 0
    line: int = 0  # lines consumed, for error line numbers
    format: str = "auto"
    head: str = ""  # "n:sha256" of the file's first n bytes: an inode number reused by a new file is not mistaken for it


@dataclass
class _Tail:
    """A file's new whole lines this poll, and where its cursor goes once they are stored."""

    spec: LogFile
    cur: _Cursor
    chunk: bytes
    after: _Cursor


# where the joint parse writes the reporting proxy's identity; each row's own file's identity replaces it
_MARKER = proxy_marker()
_BLANK = re.compile(rb"^[ \t\r\x0b\x0c]*\n", re.M)


def _blank_lines(chunk: bytes) -> int:
    """Lines of `chunk` the parsers skip without a row or a refusal: empty or only ASCII whitespace (and not over
    MAX_LINE_BYTES: such a line is refused as too long)."""
    return sum(1 for m in _BLANK.finditer(chunk) if m.end() - m.start() <= MAX_LINE_BYTES + 1)


def _runs(tails: list[_Tail], max_bytes: int) -> list[list[_Tail]]:
    """`tails` in order, cut into runs of at most `max_bytes` of lines each (a piece over it alone): what one joint
    parse holds at once stays bounded in bytes, however many files have a backlog (#18)."""
    runs: list[list[_Tail]] = []
    size = max_bytes + 1
    for t in tails:
        if size + len(t.chunk) > max_bytes:
            runs.append([])
            size = 0
        runs[-1].append(t)
        size += len(t.chunk)
    return runs


@dataclass
class _Open:
    spec: LogFile
    cursor: _Cursor
    fh: object = None
    retired: list = field(default_factory=list)  # (fh, cursor) of rotated-away files still to drain


_NAMED = re.compile(r"^(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<wl>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)\.log$")


def _as_logfile(f) -> LogFile:
    if isinstance(f, LogFile):
        return f
    if isinstance(f, (str, os.PathLike)):
        # a bare path named <namespace>.<workload>.log (the bundled mesh's naming) still tells
        # who wrote it; pass a LogFile to give the principal too
        m = _NAMED.match(Path(f).name)
        return LogFile(str(f), m.group("wl"), m.group("ns")) if m else LogFile(str(f))
    if isinstance(f, tuple):
        return LogFile(*f)
    return LogFile(str(f.path), **{k: getattr(f, k) for k in ("workload", "namespace", "principal", "format") if hasattr(f, k)})


class AccessLogTailer:
    """Follows `files()` (asked again every poll) and adds their requests to `store`.

    Every `interval` (1 s, was 0.5): each poll costs a parse and a store commit per file with new lines whatever
    their number, so steady traffic costs about half as many; the live diagnoser reads a window ending 1 s back
    anyway, so lines a second old are as fresh as it uses them (#18)."""

    name = "access_log"

    def __init__(self, files: Callable[[], Iterable] | Iterable, store: TelemetryStore, state_path: str | Path | None = None,
                 interval: float = 1.0, max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        self._files = files if callable(files) else (lambda f=list(files): f)
        self.store = store
        self.state_path = Path(state_path) if state_path else None
        self.interval = interval
        self.max_batch_bytes = max_batch_bytes
        self._open: dict[str, _Open] = {}
        self._saved = self._load_state()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.malformed = 0
        self._failures: dict[tuple[str, int, int, int], int] = {}  # (path, dev, ino, offset) -> failed attempts
        selfmetrics.watch_store(store)

    # -- Source protocol
    @selfmetrics.counts_cpu("access_log")
    def poll(self) -> int:
        """Read everything new in every file; returns requests stored."""
        with self._lock:
            try:
                wanted = [_as_logfile(f) for f in self._files()]
            except Exception as exc:
                log.warning("access log discovery failed: %s", exc)
                return 0
            total = 0
            tails: list[_Tail] = []  # each file's new lines, parsed and stored together after the loop
            for spec in wanted:
                if self._stop.is_set():
                    break  # stopping: the saved offsets pick up from here next time
                try:
                    total += self._poll_file(spec, tails)
                except OSError as exc:
                    log.debug("access log %s: %s", spec.path, exc)
                except Exception:  # noqa: BLE001 - one file's trouble must not stop the files after it
                    log.exception("access log %s: poll failed; the other files go on", spec.path)
            total += self._ingest_tails(tails)
            for path in set(self._open) - {w.path for w in wanted}:
                self._close(self._open.pop(path))
            self._save_state()
            return total

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="access-log-tailer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            self._save_state()
            for o in self._open.values():
                self._close(o)
            self._open.clear()

    def backlog_bytes(self) -> int:
        """Bytes written to the followed files and not stored yet: what waits on disk (for the memory probe, #18)."""
        total = 0
        for o in list(self._open.values()):
            try:
                total += max(0, os.fstat(o.fh.fileno()).st_size - o.cursor.offset)
            except (OSError, ValueError, AttributeError):  # closed or being reopened by the poll right now
                pass
        return total

    # -- internals
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("access log poll failed")
            self._stop.wait(self.interval)

    def _poll_file(self, spec: LogFile, tails: list[_Tail] | None = None) -> int:
        o = self._open.get(spec.path)
        try:
            st = os.stat(spec.path)
        except FileNotFoundError:
            st = None
        if o is None:
            if st is None:
                return 0
            o = self._resume(spec, st)
            self._open[spec.path] = o
        total = 0
        if st is not None and (st.st_dev, st.st_ino) != (o.cursor.dev, o.cursor.ino):
            # renamed away: drain the old inode (still open) before switching to the new file
            total += self._drain(o.spec, o.fh, o.cursor, final=True)
            self._close_fh(o.fh)
            o.fh = open(spec.path, "rb")
            st = os.fstat(o.fh.fileno())
            o.cursor = _Cursor(st.st_dev, st.st_ino, 0, 0, spec.format)
        elif st is not None and st.st_size < o.cursor.offset:
            log.info("access log %s was truncated; reading from the start", spec.path)
            o.cursor.offset, o.cursor.line = 0, 0
        for fh, cur in list(o.retired):
            total += self._drain(o.spec, fh, cur, final=True)
            self._close_fh(fh)
        o.retired.clear()
        total += self._drain(spec, o.fh, o.cursor, final=False, tails=tails)
        return total

    def _resume(self, spec: LogFile, st: os.stat_result) -> _Open:
        saved = self.store.checkpoints().get(checkpoint_key(spec.path)) or self._saved.get(spec.path)
        fh = open(spec.path, "rb")
        st = os.fstat(fh.fileno())  # the file we actually hold, even if renamed since stat()
        if saved is None:
            return _Open(spec, _Cursor(st.st_dev, st.st_ino, 0, 0, spec.format), fh)
        cur = _Cursor(**{k: v for k, v in saved.items() if k in _Cursor.__dataclass_fields__})
        if _same_file(cur, st, fh):
            if st.st_size < cur.offset:  # truncated while we were away
                cur.offset, cur.line = 0, 0
            return _Open(spec, cur, fh)
        # rotated while we were away: finish the old inode from the cursor, then every generation
        # rotated after it (<log>.k, newest .1), then the live file from 0
        o = _Open(spec, _Cursor(st.st_dev, st.st_ino, 0, 0, spec.format), fh)
        gens = _generations(Path(spec.path))
        idents = [(g, os.stat(g)) for g in gens if g.exists()]
        at = next((i for i, (g, gst) in enumerate(idents) if _same_file(cur, gst, g)), None)
        if at is None:
            old = _find_inode(Path(spec.path).parent, cur.dev, cur.ino, cur.head or None)  # renamed some other way
            if old is not None:
                o.retired.append((open(old, "rb"), cur))
            elif idents:
                log.warning("access log %s: the file read last is gone; reading the %d rotated generations left",
                            spec.path, len(idents))
            else:
                log.warning("access log %s was rotated while stopped and the old file is gone; some lines may be missing", spec.path)
            newer = idents if old is None else []
        else:
            o.retired.append((open(idents[at][0], "rb"), cur))
            newer = idents[at + 1:]
        for g, gst in newer:
            if (gst.st_dev, gst.st_ino) != (st.st_dev, st.st_ino):
                o.retired.append((open(g, "rb"), _Cursor(gst.st_dev, gst.st_ino, 0, 0, spec.format)))
        return o

    def _drain(self, spec: LogFile, fh, cur: _Cursor, final: bool, tails: list[_Tail] | None = None) -> int:
        """Read complete lines from cur.offset to EOF (and a trailing partial line when `final`). With `tails`,
        the live file's last piece (the whole of it in steady traffic) is left there for the poll's joint ingest."""
        total = 0
        while True:
            fh.seek(cur.offset)
            data = fh.read(self.max_batch_bytes)
            if not data:
                return total
            end = data.rfind(b"\n") + 1
            if end == 0:
                if not final and len(data) < self.max_batch_bytes:
                    return total  # a line still being written
                end = len(data)
            chunk = data[:end]
            if tails is not None and not final and len(data) < self.max_batch_bytes:
                after = self._after(cur, chunk)
                if after.format != "auto":  # the rest of the file is at most a line still being written
                    tails.append(_Tail(spec, cur, chunk, after))
                    return total
            total += self._ingest(spec, cur, chunk)  # moves the cursor past the chunk
            if len(data) < self.max_batch_bytes and end == len(data):
                return total
            if self._stop.is_set() and not final:
                return total  # a big backlog: stop between batches, the offset is kept

    @staticmethod
    def _after(cur: _Cursor, chunk: bytes) -> _Cursor:
        """The cursor past `chunk` (its format decided by its first non-blank byte when still 'auto')."""
        after = replace(cur, offset=cur.offset + len(chunk),
                        line=cur.line + chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1))
        if cur.offset == 0:
            after.head = _fingerprint(chunk[:HEAD_BYTES])
        if after.format == "auto" and (head := chunk.lstrip()[:1]):
            after.format = "json" if head == b"{" else "text"
        return after

    def _ingest_tails(self, tails: list[_Tail]) -> int:
        """The poll's new lines of every file, parsed in one call per format and stored in one commit whose
        checkpoint moves every file's cursor (#18: parsing and committing cost mostly per call, and steady traffic
        brings a few lines to every sidecar's log each poll). Each row gets its own file's identity and source;
        refused lines are counted per file with their line in that file. Anything unexpected (the parse raising,
        rows that cannot be attributed to their files, the store refusing the commit) falls back to ingesting each
        file alone, with its retries and skips. The pieces go in runs of at most `max_batch_bytes` (`_runs`)."""
        total = 0
        for fmt in ("json", "text"):
            for group in _runs([t for t in tails if t.after.format == fmt], self.max_batch_bytes):
                total += self._ingest_group(group, fmt)
        return total

    def _ingest_group(self, group: list[_Tail], fmt: str) -> int:
        """One joint batch (at most `max_batch_bytes` of lines, or one file's piece), else each file alone."""
        joint = None
        if len(group) > 1:
            try:
                joint = self._joint(group, fmt)
            except Exception as exc:  # noqa: BLE001 - each file alone below, as before
                log.debug("access logs: joint ingest of %d files failed (%s); one by one", len(group), exc)
        total = 0
        if joint is None:
            for t in group:
                try:
                    total += self._ingest(t.spec, t.cur, t.chunk)
                except OSError as exc:
                    log.debug("access log %s: %s", t.spec.path, exc)
                except Exception:  # noqa: BLE001 - retried on the next polls, then skipped (_ingest)
                    log.exception("access log %s: poll failed; the other files go on", t.spec.path)
            return total
        n, per_file_errors = joint
        for t, errors in zip(group, per_file_errors):
            self._failures.pop((t.spec.path, t.cur.dev, t.cur.ino, t.cur.offset), None)
            self._count_errors(t.spec.path, errors)
            t.cur.offset, t.cur.line, t.cur.format = t.after.offset, t.after.line, t.after.format
        selfmetrics.count_ingested(self.name, "requests", n)
        return n

    def _joint(self, group: list[_Tail], fmt: str) -> tuple[int, list[list]] | None:
        """Parse and store `group` (chunks of whole lines, one per file) as one batch: (rows stored, each file's
        refused lines), or None when the rows cannot be told apart by file (then nothing was stored)."""
        parse = parse_json_log if fmt == "json" else parse_text_log
        result = parse(b"".join(t.chunk for t in group), _MARKER, first_line=1)
        lines = np.array([t.chunk.count(b"\n") for t in group], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(lines)])  # 0-based joint line where each file's chunk starts
        per_file: list[list] = [[] for _ in group]
        for e in result.errors:
            j = int(np.searchsorted(first, e.line - 1, side="right") - 1)
            e.line += group[j].cur.line - int(first[j])  # its line in its own file
            per_file[j].append(e)
        # every line that is not blank gives one row or one refusal, in file order (the parsers' contract):
        # so each file's rows are its non-blank lines less its refused ones
        rows = np.array([t.chunk.count(b"\n") - _blank_lines(t.chunk) - len(errs) for t, errs in zip(group, per_file)])
        if (rows < 0).any() or int(rows.sum()) != result.table.num_rows:
            return None
        owner = np.repeat(np.arange(len(group), dtype=np.int32), rows)
        idents = [pa.array([getattr(t.spec, k) for t in group], pa.string()).take(pa.array(owner))
                  for k in ("workload", "namespace", "principal")]
        table = patch_identity(result.table, *idents)
        i = table.schema.get_field_index(s.LOG_SOURCE)
        source = pa.DictionaryArray.from_arrays(pa.array(owner), pa.array([t.spec.path for t in group], pa.string()))
        table = table.set_column(i, s.LOG_SOURCE, source.cast(table.schema.field(i).type))
        checkpoint = {checkpoint_key(t.spec.path): asdict(t.after) for t in group}
        return self.store.add_requests(table, checkpoint=checkpoint), per_file

    def _ingest(self, spec: LogFile, cur: _Cursor, chunk: bytes) -> int:
        """Store the chunk's requests with the cursor past it as their checkpoint, then move `cur` there."""
        after = self._after(cur, chunk)
        checkpoint = {checkpoint_key(spec.path): asdict(after)}
        key = (spec.path, cur.dev, cur.ino, cur.offset)
        n = 0
        if after.format == "auto":  # only blank lines so far: nothing to store, just the position
            self.store.add_requests(REQUESTS.empty_table(), checkpoint=checkpoint)
        else:
            ctx = LogContext(spec.path, spec.workload, spec.namespace, spec.principal)
            parse = parse_json_log if after.format == "json" else parse_text_log
            stage = "unreadable"
            try:
                result = parse(chunk, ctx, first_line=cur.line + 1)
                stage = "store_failed"
                n = self.store.add_requests(result.table, checkpoint=checkpoint)
            except Exception as exc:  # noqa: BLE001 - retried, then skipped: never stuck in front of it
                tries = self._failures.get(key, 0) + 1
                self._failures[key] = tries
                if tries < MAX_ATTEMPTS:
                    raise
                log.error("access log %s: lines %d-%d skipped after %d failed attempts: %s",
                          spec.path, cur.line + 1, after.line, tries, exc)
                lines = after.line - cur.line
                self.malformed += lines
                selfmetrics.reject("access_log", spec.path, stage, chunk, line=cur.line + 1, message=str(exc), n=lines)
                self.store.add_requests(REQUESTS.empty_table(), checkpoint=checkpoint)
                result = None
            self._failures.pop(key, None)
            if result is not None:
                self._count_errors(spec.path, result.errors)
                selfmetrics.count_ingested(self.name, "requests", n)
        cur.offset, cur.line, cur.format = after.offset, after.line, after.format
        return n

    def _count_errors(self, path: str, errors: list) -> None:
        """Refused lines -> per-reason counters, plus a sample of the first few of each reason."""
        if errors:
            self.malformed += len(errors)
            selfmetrics.reject_errors("access_log", path, errors)
            log.debug("%s: %d malformed lines, first: %s", path, len(errors), errors[0])

    def _close(self, o: _Open) -> None:
        self._close_fh(o.fh)
        for fh, _ in o.retired:
            self._close_fh(fh)

    @staticmethod
    def _close_fh(fh) -> None:
        try:
            if fh:
                fh.close()
        except OSError:
            pass

    def _load_state(self) -> dict[str, dict]:
        if not self.state_path or not self.state_path.exists():
            return {}
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("access log offsets in %s unreadable (%s); starting from the beginning", self.state_path, exc)
            return {}

    def _save_state(self) -> None:
        if not self.state_path:
            return
        state = dict(self._saved)
        for path, o in self._open.items():
            # a rotated-away file not fully read yet keeps the resume point on the old inode
            cur = o.retired[0][1] if o.retired else o.cursor
            state[path] = asdict(cur)
        self._saved = state
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        # a name of its own: a stopping and a starting tailer on one data dir must not rename each other's file
        tmp = self.state_path.with_suffix(f".{os.getpid()}.{id(self):x}.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)


def checkpoint_key(path: str) -> str:
    """The store checkpoint under which a log file's cursor is kept."""
    return f"access_log:{path}"


def _generations(path: Path) -> list[Path]:
    """Rotated generations <log>.1, <log>.2, ... (logrotate's and mesh.dataplane.logrotate's
    naming), oldest first."""
    found = []
    try:
        for p in path.parent.iterdir():
            suffix = p.name[len(path.name) + 1:]
            if p.name.startswith(path.name + ".") and suffix.isdigit():
                found.append((int(suffix), p))
    except OSError:
        return []
    return [p for _, p in sorted(found, reverse=True)]


def _fingerprint(data: bytes) -> str:
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()}"


def _head_of(f, head: str) -> str | None:
    """The fingerprint of `f`'s first bytes, as many as `head` covers (f: a path or an open binary file)."""
    try:
        n = int(head.split(":", 1)[0])
        if isinstance(f, (str, os.PathLike)):
            with open(f, "rb") as fh:
                return _fingerprint(fh.read(n))
        pos = f.tell()
        f.seek(0)
        data = f.read(n)
        f.seek(pos)
        return _fingerprint(data)
    except (OSError, ValueError):
        return None


def _same_file(cur: _Cursor, st: os.stat_result, f) -> bool:
    """Same inode, and (when the cursor knows them) the same first bytes: after a restart an inode
    number freed by a deleted generation may belong to a brand-new file."""
    if (cur.dev, cur.ino) != (st.st_dev, st.st_ino):
        return False
    return not cur.head or _head_of(f, cur.head) == cur.head


def _find_inode(directory: Path, dev: int, ino: int, head: str | None = None) -> Path | None:
    try:
        for p in directory.iterdir():
            try:
                st = p.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (dev, ino) and (head is None or _head_of(p, head) == head):
                return p
    except OSError:
        return None
    return None
