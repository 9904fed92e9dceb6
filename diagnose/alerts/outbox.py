"""The durable outbox: every notification is in SQLite before anyone tries to send it.

One file under the data dir holds the notifications (with their delivery
state, attempts and next attempt time) and the grouper's state, written in the
same transaction, so a crash at any point either loses nothing or repeats a
send (at-least-once), never drops one. Delivery is FIFO per (receiver, group):
a group's resolved notice cannot overtake its firing one while that is retried.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diagnose.alerts.model import Notification

PENDING, DELIVERED, FAILED, EXPIRED = "pending", "delivered", "failed", "expired"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    content_key TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (state, receiver, group_key, seq);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Entry:
    """A notification as the outbox holds it."""

    seq: int
    notification: Notification
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None

    @property
    def id(self) -> str:
        return self.notification.id


class Outbox:
    """Thread-safe; one connection, serialized by a lock (volumes are tiny, durability matters)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def commit(self, notifications: list[Notification], state: dict[str, Any] | None = None) -> list[Notification]:
        """Persist new notifications (and the grouper state) atomically; returns those actually queued.

        A notification whose content equals one still pending for the same receiver
        and group is a duplicate (a repeat while the receiver is down) and is dropped.
        """
        queued = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for n in notifications:
                    ck = n.content_key()
                    dup = self._db.execute(
                        "SELECT 1 FROM notifications WHERE state=? AND receiver=? AND group_key=? AND content_key=?",
                        (PENDING, n.receiver, n.group_key, ck),
                    ).fetchone()
                    if dup:
                        continue
                    self._db.execute(
                        "INSERT INTO notifications (id, receiver, group_key, content_key, body, state, created_at, next_attempt_at)"
                        " VALUES (?,?,?,?,?,?,?,?)",
                        (n.id, n.receiver, n.group_key, ck, json.dumps(n.to_dict(), default=str), PENDING, n.created_at, n.created_at),
                    )
                    queued.append(n)
                if state is not None:
                    self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('grouper', ?)", (json.dumps(state, default=str),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return queued

    def load_state(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key='grouper'").fetchone()
        return json.loads(row[0]) if row else None

    def due(self, now: float, receiver: str | None = None, limit: int = 100) -> list[Entry]:
        """The oldest pending notification of each group, if its next attempt time has come."""
        q = (
            "SELECT n.* FROM notifications n JOIN ("
            " SELECT MIN(seq) AS seq FROM notifications WHERE state=?" + (" AND receiver=?" if receiver else "") +
            " GROUP BY receiver, group_key) h ON n.seq = h.seq"
            " WHERE n.next_attempt_at <= ? ORDER BY n.seq LIMIT ?"
        )
        args: tuple = (PENDING, receiver, now, limit) if receiver else (PENDING, now, limit)
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        return [self._entry(r) for r in rows]

    def next_attempt_at(self, receiver: str | None = None) -> float | None:
        """When the next attempt is due: the earliest among each group's oldest pending notification
        (a later one in the same group waits for its head, so it must not wake the sender)."""
        q = (
            "SELECT MIN(n.next_attempt_at) FROM notifications n JOIN ("
            " SELECT MIN(seq) AS seq FROM notifications WHERE state=?" + (" AND receiver=?" if receiver else "") +
            " GROUP BY receiver, group_key) h ON n.seq = h.seq"
        )
        with self._lock:
            row = self._db.execute(q, (PENDING, receiver) if receiver else (PENDING,)).fetchone()
        return row[0]

    def mark(self, seq: int, state: str, now: float, error: str | None = None, next_attempt_at: float | None = None) -> None:
        """Record one attempt: delivered, failed (permanent), expired, or still pending with a next time."""
        with self._lock:
            self._db.execute(
                "UPDATE notifications SET state=?, attempts=attempts+1, last_error=?,"
                " next_attempt_at=COALESCE(?, next_attempt_at), done_at=? WHERE seq=?",
                (state, error, next_attempt_at, None if state == PENDING else now, seq),
            )

    def entries(self, state: str | None = None, receiver: str | None = None) -> list[Entry]:
        q, args = "SELECT * FROM notifications WHERE 1=1", []
        if state:
            q, args = q + " AND state=?", args + [state]
        if receiver:
            q, args = q + " AND receiver=?", args + [receiver]
        with self._lock:
            rows = self._db.execute(q + " ORDER BY seq", args).fetchall()
        return [self._entry(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """receiver -> state -> count, for status pages and self-metrics."""
        with self._lock:
            rows = self._db.execute("SELECT receiver, state, COUNT(*) FROM notifications GROUP BY receiver, state").fetchall()
        out: dict[str, dict[str, int]] = {}
        for rec, state, n in rows:
            out.setdefault(rec, {})[state] = n
        return out

    def prune(self, older_than: float) -> int:
        """Forget finished notifications (delivered/failed/expired) that ended before `older_than`."""
        with self._lock:
            cur = self._db.execute("DELETE FROM notifications WHERE state!=? AND done_at < ?", (PENDING, older_than))
        return cur.rowcount

    @staticmethod
    def _entry(r: tuple) -> Entry:
        seq, _id, _rec, _gk, _ck, body, state, attempts, _created, next_at, err, _done = r
        return Entry(seq, Notification.from_dict(json.loads(body)), state, attempts, next_at, err)
