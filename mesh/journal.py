"""The config journal: every change to a watched object, kept durably in the data dir.

"What changed?" is the first question of every incident, and the answer must
survive a restart of `serve`, so the journal is its own SQLite file (WAL mode:
one writer, readers never blocked) bounded by age and row count. Beside the
changes it keeps the last seen state of each object (a hash of spec, labels and
annotations plus resourceVersion/generation), so a restart or a relist after
410 Gone records nothing for objects that did not change.

Only `spec`, labels and annotations are compared: status and bookkeeping
(resourceVersion, managedFields, the last-applied annotation) change without
anyone changing intent. A watch gap is a `gap` entry, never a fake
delete-and-create; an object whose content is too large to diff is recorded as
such; a kind the source does not know is recorded with `unknown_kind`; a source
timestamp far from ours is noted as clock skew.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

JOURNAL_FILE = "journal.sqlite"
MAX_AGE_S = 7 * 86400.0
MAX_ROWS = 200_000
MAX_DIFF_BYTES = 256 * 1024  # content larger than this is recorded as too large, not diffed
MAX_DIFF_FIELDS = 200
SKEW_NOTE_S = 5.0  # a source clock further off than this is noted on the entry
IGNORED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration",
                                 "deployment.kubernetes.io/revision"})
OPS = ("create", "update", "delete", "gap")


@dataclass
class Change:
    """One journal entry; `diff` lists {path, old, new} with None for an absent side."""

    time: float
    kind: str
    namespace: str | None
    name: str
    op: str
    who: str = ""
    api_version: str = ""
    resource_version: str | None = None
    generation: int | None = None
    diff: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, Any] | None = None  # spec/labels/annotations before the change (for a rollback)
    after: dict[str, Any] | None = None
    too_large: bool = False
    unknown_kind: bool = False
    skew_s: float | None = None
    initial: bool = False  # from the journal's first listing: meshscope first saw it, nobody changed it then
    note: str = ""
    seq: int = 0

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: asdict's deep copy is most of an append
        d["ref"] = self.ref
        return d


def content_of(spec: Any, labels: dict | None = None, annotations: dict | None = None) -> dict[str, Any]:
    """The part of an object whose change is a change of intent."""
    ann = {k: v for k, v in (annotations or {}).items() if k not in IGNORED_ANNOTATIONS}
    return {"spec": spec if spec is not None else {}, "labels": dict(labels or {}), "annotations": ann}


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    elif prefix:  # the empty root (a side that does not exist) has no fields
        out[prefix] = value


def field_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Leaf-level differences as {path, old, new}: `spec.trafficPolicy.tls.mode: ISTIO_MUTUAL -> DISABLE`."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(before or {}, "", a)
    _flatten(after or {}, "", b)
    out = []
    for path in sorted(a.keys() | b.keys()):
        old, new = a.get(path), b.get(path)
        if old != new or (path in a) != (path in b):
            out.append({"path": path, "old": old, "new": new})
    return out


def who_from_managed_fields(metadata: dict[str, Any]) -> tuple[str, float | None]:
    """The manager and operation of the newest managedFields entry, and its time (for clock skew)."""
    entries = [e for e in (metadata.get("managedFields") or []) if isinstance(e, dict)]
    if not entries:
        return "", None
    newest = max(entries, key=lambda e: str(e.get("time") or ""))
    who = str(newest.get("manager") or "unknown manager")
    if newest.get("operation"):
        who += f" ({newest['operation']})"
    stamp = None
    if newest.get("time"):
        from datetime import datetime
        try:
            stamp = datetime.fromisoformat(str(newest["time"]).replace("Z", "+00:00")).timestamp()
        except ValueError:
            stamp = None
    return who, stamp


def is_change(row: dict[str, Any]) -> bool:
    """A row that records a change: not a watch gap, and not the first listing of an object (what was there)."""
    return row.get("op") != "gap" and not row.get("initial")


def summary(change: dict[str, Any], fields: int = 2) -> str:
    """`spec.trafficPolicy.tls.mode: ISTIO_MUTUAL -> DISABLE` for the first few changed fields."""
    if change.get("op") == "gap":
        return change.get("note") or "watch gap"
    if change.get("too_large"):
        return "content too large to diff"
    diff = change.get("diff") or []
    parts = [f"{d['path']}: {_short(d['old'])} -> {_short(d['new'])}" for d in diff[:fields]]
    if len(diff) > fields:
        parts.append(f"{len(diff) - fields} more fields")
    return ", ".join(parts) or change.get("op", "")


def _short(v: Any) -> str:
    s = "(none)" if v is None else json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."


class Journal:
    """A bounded, durable store of changes plus the last known state of each object."""

    def __init__(self, path: Path | str, max_age_s: float = MAX_AGE_S, max_rows: int = MAX_ROWS,
                 max_diff_bytes: int = MAX_DIFF_BYTES, clock: Any = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_age_s, self.max_rows, self.max_diff_bytes = max_age_s, max_rows, max_diff_bytes
        self.clock = clock
        self._lock = threading.RLock()
        self._depth = 0  # nesting of _tx(): one transaction per observe, or one for a whole listing
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL, kind TEXT,
                namespace TEXT, name TEXT, op TEXT, body TEXT);
            CREATE INDEX IF NOT EXISTS changes_object ON changes (kind, namespace, name, seq);
            CREATE INDEX IF NOT EXISTS changes_time ON changes (time);
            CREATE TABLE IF NOT EXISTS objects (kind TEXT, namespace TEXT, name TEXT, hash TEXT, rv TEXT,
                generation INTEGER, content TEXT, PRIMARY KEY (kind, namespace, name));
        """)
        self._appends = 0

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One transaction (one commit) for everything inside, however deeply nested."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def batch(self) -> Any:
        """`with journal.batch():` many observations in one commit (a listing, a bulk import)."""
        return self._tx()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -----------------------------------------------------------------------
    def observe(self, kind: str, namespace: str | None, name: str, content: dict[str, Any] | None, *,
                who: str = "", resource_version: str | None = None, generation: int | None = None,
                at: float | None = None, source_time: float | None = None, unknown_kind: bool = False,
                deleted: bool = False, api_version: str = "", initial: bool = False) -> Change | None:
        """Record `content` (None with `deleted`) as the object's state; None when nothing changed."""
        ns = namespace or ""
        now = self.clock() if at is None else at
        with self._tx():
            row = self._db.execute("SELECT hash, rv, generation, content FROM objects WHERE kind=? AND namespace=? "
                                   "AND name=?", (kind, ns, name)).fetchone()
            if deleted:
                if row is None:
                    return None
                op, new_hash = "delete", None
            else:
                after_json = json.dumps(content or {}, sort_keys=True, default=str)  # once: hash, size, stored
                new_hash = hashlib.sha256(after_json.encode()).hexdigest()[:32]
                if row is not None and row[0] == new_hash:
                    if resource_version is not None and row[1] != resource_version:  # bookkeeping only
                        self._db.execute("UPDATE objects SET rv=?, generation=? WHERE kind=? AND namespace=? AND name=?",
                                         (resource_version, generation, kind, ns, name))
                    return None
                op = "create" if row is None else "update"
            before = json.loads(row[3]) if row is not None and row[3] else None
            after = None if deleted else (content or {})
            ch = Change(time=now, kind=kind, namespace=namespace or None, name=name, op=op, who=who,
                        api_version=api_version, initial=initial, resource_version=resource_version, generation=generation, unknown_kind=unknown_kind)
            if source_time is not None and abs(source_time - now) > SKEW_NOTE_S:
                ch.skew_s = round(source_time - now, 3)
                ch.note = f"source clock differs from meshscope's by {ch.skew_s:+.1f} s"
            size = (len(row[3]) if row is not None and row[3] else 0) + (0 if deleted else len(after_json))
            if size > self.max_diff_bytes or (row is not None and not row[3]):  # now, or its last version was
                ch.too_large = True
                ch.note = (ch.note + "; " if ch.note else "") + f"content of {size} bytes too large to diff"
            else:
                ch.diff = field_diff(before, after)[:MAX_DIFF_FIELDS]
                ch.before, ch.after = before, after
            if deleted:
                self._db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, ns, name))
            else:
                stored = after_json if size <= self.max_diff_bytes else None
                self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?)",
                                 (kind, ns, name, new_hash, resource_version, generation, stored))
            self._insert(ch)
            return ch

    def sync(self, objects: list[tuple], *, who: str = "",
             scope_kinds: set[str] | None = None, at: float | None = None) -> list[Change]:
        """A full listing (start, relist after 410): record what differs, and deletes of what is gone.

        Objects equal to the stored state are not re-recorded. Only kinds in
        `scope_kinds` (default: the kinds listed) can be found deleted, so a
        partial listing does not delete the other kinds.
        """
        with self._tx():
            return self._sync(objects, who, scope_kinds, at)

    def _sync(self, objects: list[tuple], who: str, scope_kinds: set[str] | None, at: float | None) -> list[Change]:
        out = []
        seen = set()
        initial = not self.known()  # an empty journal: this listing is what was there, not a change
        for item in objects:  # (kind, namespace, name, content[, api_version])
            kind, ns, name, content = item[:4]
            seen.add((kind, ns or "", name))
            ch = self.observe(kind, ns, name, content, who=who, at=at, api_version=item[4] if len(item) > 4 else "",
                              initial=initial)
            if ch:
                out.append(ch)
        kinds = scope_kinds if scope_kinds is not None else {item[0] for item in objects}
        for kind, ns, name in self.known():
            if kind in kinds and (kind, ns or "", name) not in seen:
                ch = self.observe(kind, ns, name, None, who=who, at=at, deleted=True)
                if ch:
                    out.append(ch)
        return out

    def gap(self, since: float | None, until: float | None = None, reason: str = "watch gap") -> Change:
        """A marker where the journal may have missed changes (watch expired, meshscope down)."""
        now = self.clock() if until is None else until
        note = reason if since is None else f"{reason}: changes between {since:.0f} and {now:.0f} may be missing"
        ch = Change(time=now, kind="", namespace=None, name="", op="gap", note=note)
        with self._lock:
            self._insert(ch)
        return ch

    def _insert(self, ch: Change) -> None:
        body = ch.to_dict()
        cur = self._db.execute("INSERT INTO changes (time, kind, namespace, name, op, body) VALUES (?,?,?,?,?,?)",
                               (ch.time, ch.kind, ch.namespace or "", ch.name, ch.op, json.dumps(body, default=str)))
        ch.seq = int(cur.lastrowid or 0)
        self._appends += 1
        if self._appends % 1000 == 0:
            self._prune()

    def _prune(self) -> None:
        cutoff = self.clock() - self.max_age_s
        self._db.execute("DELETE FROM changes WHERE time < ?", (cutoff,))
        self._db.execute("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?", (self.max_rows,))

    def prune(self) -> None:
        with self._lock:
            self._prune()

    # --- reading -----------------------------------------------------------------------
    def known(self) -> list[tuple[str, str | None, str]]:
        with self._lock:
            rows = self._db.execute("SELECT kind, namespace, name FROM objects").fetchall()
        return [(k, ns or None, n) for k, ns, n in rows]

    def query(self, since: float | None = None, until: float | None = None, namespace: str | None = None,
              kind: str | None = None, name: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Changes, newest first; gap markers in the window are always included (they concern every object)."""
        where, args = [], []
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if until is not None:
            where.append("time <= ?")
            args.append(until)
        obj = []
        for col, val in (("namespace", namespace), ("kind", kind), ("name", name)):
            if val is not None:
                obj.append(f"{col} = ?")
                args.append(val)
        if obj:
            where.append("((" + " AND ".join(obj) + ") OR op = 'gap')")
        sql = "SELECT seq, body FROM changes" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for seq, body in rows:
            d = json.loads(body)
            d["seq"] = seq
            out.append(d)
        return out

    def history(self, kind: str, namespace: str | None, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """One object's changes, newest first (the indexed lookup a finding's detail needs)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, body FROM changes WHERE kind=? AND namespace=? AND name=? "
                                    "ORDER BY seq DESC LIMIT ?", (kind, namespace or "", name, limit)).fetchall()
        return [{**json.loads(b), "seq": s} for s, b in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM changes").fetchone()[0])

    def last_seq(self) -> int:
        """The newest change's sequence number (0: none): a cheap version of the journal for caches to key on."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])


def open_journal(data_dir: Path | str) -> Journal:
    return Journal(Path(data_dir) / JOURNAL_FILE)
