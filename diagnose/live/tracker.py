"""Finding states over time: open, update, resolve, flapping damping, retention.

Each evaluation hands over the findings it sees; a finding is identified by its
fingerprint (code, resource, edge). It opens when seen `open_after` times in a
row, is updated while seen, resolves after `resolve_after` evaluations without
it (three times that once it flaps: reopened `flap_limit` times within
`flap_window_s`), and is forgotten `retention_s` after resolving. A config
finding stays open as long as its object is wrong: a runtime finding that it
explains links to it (`evidence.explains`), it never resolves it.

What counts as a flap: a reopening that became open (a pending return that lasts
shorter than `open_after` is no reopening, and the finding keeps its resolution
time), with nothing changed that concerns it. With `changed` (the composition
root passes one over the config journal, `diagnose.live.episodes`), a finding
that comes back after a change to its subject since its previous episode began
(the fault cleared and applied again, a fix that did not hold) is a new episode:
its flap count starts again, so its next clear resolves as fast as the first.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagnose.correlate import rank

# Evaluations in a row a finding from a statistic (`evidence.statistical`, e.g. MS3014's p95 against its usual)
# must be seen before it opens.
STATISTICAL_OPEN_AFTER = 2
# Clean evaluations in a row a finding needs at least before it resolves, however long they took
MIN_QUIET_EVALUATIONS = 2
from diagnose.findings import Finding

log = logging.getLogger(__name__)
STATE_FILE = "findings-state.json"
STATE_VERSION = 1


@dataclass
class _Track:
    finding: Finding
    status: str = "pending"  # pending | open | resolved
    seen_streak: int = 0
    missing_streak: int = 0
    reopenings: deque = field(default_factory=deque)  # when it reopened with nothing changed (flaps), for damping
    # while pending after a resolution: the resolution to restore if this return does not last until it opens
    returning: tuple[float | None, float | None] | None = None


class FindingTracker:
    """Thread-safe finding states (the live loop writes, the API and alerts read)."""

    def __init__(self, open_after: int = 1, resolve_after: int = 3, flap_window_s: float = 300.0,
                 flap_limit: int = 3, retention_s: float = 3600.0, state_path: str | Path | None = None,
                 changed: Callable[[Finding, float, float], bool] | None = None,
                 interval_s: float | None = None) -> None:
        """`state_path`: a JSON file the states are written to after every change (atomically: write, fsync,
        rename) and read back at start, so open findings (and the incidents made of them) keep their identity
        and `first_seen` across a restart, even a kill -9; a damaged file is logged and ignored.

        `changed(finding, since, until)`: whether something that concerns the finding changed in that span
        (asked only when a resolved finding reopens); True makes the reopening a new episode, not a flap.

        `interval_s`: the evaluations' intended pace. The quiet evaluations a resolution needs stand for that
        much quiet time: when cycles run slower (a loaded host, a cycle spaced out to keep the diagnoser's
        share of a core), `MIN_QUIET_EVALUATIONS` in a row that span it are enough, so a slow host does not
        keep an incident open minutes after it ended. None: count evaluations only."""
        self.changed = changed
        self.interval_s = interval_s
        self.open_after, self.resolve_after = open_after, resolve_after
        self.flap_window_s, self.flap_limit, self.retention_s = flap_window_s, flap_limit, retention_s
        self.tracks: dict[str, _Track] = {}
        self.lock = threading.RLock()
        self.state_path = Path(state_path) if state_path else None
        self._saved: str | None = None
        self._save_lock = threading.Lock()
        # each track's saved JSON while neither its finding nor its state changed (a resolved finding stays
        # tracked for `retention_s`: hundreds of them late in a busy day were re-serialised on every save)
        self._json: dict[str, tuple[Finding, tuple, str]] = {}
        if self.state_path is not None:
            self.load()

    def update(self, current: list[Finding], now: float) -> list[Finding]:
        """Fold one evaluation's findings into the states; returns every tracked (open or resolved) finding."""
        with self.lock:
            self._update(current, now)
            payload = self._payload() if self.state_path is not None else None
            tracked = [t.finding for t in self.tracks.values() if t.status != "pending"]
        if payload is not None:  # written outside the lock: readers never wait for an fsync
            self._write(*payload)
        return tracked

    # -- persistence ----------------------------------------------------------------------------------
    def persist_to(self, path: str | Path) -> int:
        """Keep the states in `path` from now on (the composition root passes its data dir); returns how many
        findings an earlier process left there."""
        with self.lock:
            self.state_path = Path(path)
            return self.load()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"version": STATE_VERSION, "tracks": [
                {"finding": t.finding.to_dict(), "status": t.status, "seen_streak": t.seen_streak,
                 "missing_streak": t.missing_streak, "reopenings": list(t.reopenings)}
                for t in self.tracks.values() if t.status != "pending"]}

    def save(self) -> None:
        """Write the states when they changed (status, membership or evidence), atomically."""
        assert self.state_path is not None
        with self.lock:
            payload = self._payload()
        if payload is not None:
            self._write(*payload)

    def _payload(self) -> tuple[str, str] | None:
        """(digest, file text) when the states changed since the last save, else None; under the lock."""
        # what identifies a state change: which findings, their status and streaks (not every fresh count)
        digest = json.dumps(sorted((fp, t.status, t.missing_streak, len(t.reopenings))
                                   for fp, t in self.tracks.items()))
        if digest == self._saved:
            return None
        parts, cache = [], {}
        for fp, t in self.tracks.items():
            if t.status == "pending":
                continue
            key = (t.status, t.seen_streak, t.missing_streak, tuple(t.reopenings))
            hit = self._json.get(fp)
            if hit is None or hit[0] is not t.finding or hit[1] != key:
                hit = (t.finding, key, json.dumps({"finding": t.finding.to_dict(), "status": t.status,
                                                   "seen_streak": t.seen_streak, "missing_streak": t.missing_streak,
                                                   "reopenings": list(t.reopenings)}, default=str))
            cache[fp] = hit
            parts.append(hit[2])
        self._json = cache
        return digest, f'{{"version": {STATE_VERSION}, "tracks": [{", ".join(parts)}]}}'

    def _write(self, digest: str, text: str) -> None:
        assert self.state_path is not None
        with self._save_lock:
            try:
                self.state_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.state_path.with_suffix(".tmp")
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.state_path)
                self._saved = digest
            except OSError:
                log.warning("cannot save finding states to %s", self.state_path, exc_info=True)

    def load(self) -> int:
        """Read states saved by an earlier process; returns how many findings came back."""
        from diagnose.incidents import finding_from_dict

        assert self.state_path is not None
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("finding states %s unreadable (%s); starting empty", self.state_path, exc)
            return 0
        tracks = data.get("tracks") if isinstance(data, dict) else None
        n = 0
        for i, rec in enumerate(tracks if isinstance(tracks, list) else []):
            try:
                f = finding_from_dict(rec["finding"])
                status = rec.get("status") if rec.get("status") in ("open", "resolved") else "open"
                f.status = status
                t = _Track(f, status=status, seen_streak=int(rec.get("seen_streak", 1)),
                           missing_streak=int(rec.get("missing_streak", 0)),
                           reopenings=deque(float(x) for x in rec.get("reopenings") or []))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("finding states %s: track %d skipped (%s)", self.state_path, i, exc)
                continue
            with self.lock:
                self.tracks[f.fingerprint] = t
            n += 1
        return n

    def _update(self, current: list[Finding], now: float) -> None:
        seen: set[str] = set()
        for f in current:
            fp = f.fingerprint
            if fp in seen:
                continue
            seen.add(fp)
            t = self.tracks.get(fp)
            if t is None:
                t = self.tracks[fp] = _Track(f)
                f.first_seen = f.opened_at = now
            else:
                f.opened_at = t.finding.opened_at or t.finding.first_seen
                if t.status == "resolved":
                    t.status, t.seen_streak = "pending", 0
                    t.returning = (t.finding.opened_at, t.finding.resolved_at)
                    f.opened_at = now  # a new episode: what changed before *it* matters, not before the first one
                f.first_seen = t.finding.first_seen
                f.episodes = t.finding.episodes  # the closed episodes follow the finding across evaluations
                t.finding = f
            t.seen_streak += 1
            t.missing_streak = 0
            f.last_seen = now
            f.resolved_at = None
            # a statistic (a p95 over a few seconds of requests) opens only once it has lasted: a busy host's
            # passing spike is not a finding; facts (a flag, a denial in the log) open at first sight
            needed = max(self.open_after, STATISTICAL_OPEN_AFTER if f.evidence.get("statistical") else 1)
            if t.status == "pending" and t.seen_streak >= needed:
                t.status = "open"
                if t.returning is not None:
                    self._reopened(t, now)
            self._recent_flaps(t, now)
            if len(t.reopenings) >= self.flap_limit:
                f.evidence["flapping"] = True
            f.status = "open" if t.status == "open" else "pending"
        for fp, t in list(self.tracks.items()):
            if fp in seen:
                continue
            if t.status == "pending":
                if t.returning is None:  # first seen, never opened: it never was a finding
                    del self.tracks[fp]
                else:  # a return that did not last: still the resolved finding it was, resolved when it was
                    t.status = t.finding.status = "resolved"
                    t.finding.opened_at, t.finding.resolved_at = t.returning
                    t.returning = None
                continue
            if t.status == "open":
                t.missing_streak += 1
                if self._quiet_enough(t, now):
                    t.status = t.finding.status = "resolved"
                    t.finding.resolved_at = now
                    _close_episode(t.finding, now)
            elif t.status == "resolved" and (t.finding.resolved_at or now) < now - self.retention_s:
                del self.tracks[fp]

    def quiet_needed(self, t: _Track, now: float) -> int:
        """Evaluations in a row without the finding before it resolves: `resolve_after`, 3x while it flaps."""
        return self.resolve_after * (3 if self._recent_flaps(t, now) >= self.flap_limit else 1)

    def _quiet_enough(self, t: _Track, now: float) -> bool:
        needed = self.quiet_needed(t, now)
        if t.missing_streak >= needed:
            return True
        if not self.interval_s or t.missing_streak < min(needed, MIN_QUIET_EVALUATIONS):
            return False  # one clean evaluation may be a source that failed to read: never enough alone
        return now - (t.finding.last_seen or now) >= needed * self.interval_s

    def _recent_flaps(self, t: _Track, now: float) -> int:
        while t.reopenings and t.reopenings[0] < now - self.flap_window_s:
            t.reopenings.popleft()
        return len(t.reopenings)

    def _reopened(self, t: _Track, now: float) -> None:
        """A resolved finding is open again: a flap, unless what it concerns changed since its last episode began
        (then a new episode: the flaps of the previous config no longer count)."""
        t.returning = None
        episodes = t.finding.episodes
        since = max(episodes[-1][0] if episodes else (t.finding.first_seen or now), now - self.flap_window_s)
        new = False
        if self.changed is not None:
            try:
                new = bool(self.changed(t.finding, since, now))
            except Exception:  # noqa: BLE001 - an unreadable journal must not stop tracking: count it as a flap
                log.warning("cannot tell whether %s came back after a change", t.finding.fingerprint, exc_info=True)
        if new:
            t.reopenings.clear()
        else:
            t.reopenings.append(now)

    def findings(self, filters: dict[str, Any] | None = None, **kw: Any) -> list[Finding]:
        """Tracked findings (open first, by impact) matching filters: category, severity, namespace,
        status (open | resolved | all; default all), code. Values may be comma-separated lists."""
        want = {**(filters or {}), **kw}
        with self.lock:
            items = [t.finding for t in self.tracks.values() if t.status in ("open", "resolved")]
        items = [f for f in items if _matches(f, want)]
        opened = rank([f for f in items if f.status == "open"])
        resolved = sorted((f for f in items if f.status == "resolved"), key=lambda f: -(f.resolved_at or 0))
        return [*opened, *resolved]

    def finding(self, fingerprint: str) -> Finding | None:
        with self.lock:
            t = self.tracks.get(fingerprint)
            return t.finding if t and t.status != "pending" else None

def _close_episode(f: Finding, now: float) -> None:
    """Record the episode that just resolved (bounded: the last EPISODES_KEPT)."""
    from diagnose.findings import EPISODES_KEPT

    start = f.opened_at or f.first_seen
    if start is not None:
        f.episodes = [*f.episodes, [float(start), float(now)]][-EPISODES_KEPT:]


def _values(v: Any) -> set[str]:
    if v is None or v == "":
        return set()
    if isinstance(v, (list, tuple, set)):
        return {str(x) for x in v}
    return {x.strip() for x in str(v).split(",") if x.strip()}


def _namespaces(f: Finding) -> set[str]:
    out = {r.namespace for r in [f.resource, *f.related] if r is not None and r.namespace}
    for e in f.evidence.get("edges", []) if isinstance(f.evidence, dict) else []:
        out.add(str(e.get("source_namespace", "")))
        parts = str(e.get("destination", "")).split(".")
        if len(parts) >= 2:
            out.add(parts[1])
    return out


def _matches(f: Finding, want: dict[str, Any]) -> bool:
    for key in ("category", "code"):
        vals = _values(want.get(key))
        if vals and getattr(f, key) not in vals:
            return False
    sev = _values(want.get("severity"))
    if sev and f.severity not in sev:
        return False
    status = _values(want.get("status")) - {"all"}
    if status and f.status not in status:
        return False
    ns = _values(want.get("namespace"))
    return not ns or bool(ns & _namespaces(f))

