"""The SLO engine: the declared SLOs, each with its event history, fed batch by batch and evaluated on demand.

The live loop feeds each new slice of telemetry once (`ingest_requests` or
`ingest_rates`); SLOs can be added, replaced or removed at any time (files,
`meshscope apply -f`), and a replaced SLO keeps its history when its service
and SLI did not change. With `persist_to(dir)` each SLO's history is saved there
every few seconds and read back at start, so budgets and alert state survive a
restart (or kill -9: at most the last few seconds are lost, never counted twice).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from diagnose.findings import Finding
from diagnose.rules.runtime.traffic import SRC, SRC_NS
from diagnose.slo.evaluate import SloStatus, evaluate, findings_for
from diagnose.slo.history import SliHistory
from diagnose.slo.promql import ScalarQuery, ratio_from_prometheus
from diagnose.slo.sli import Events, events_from_rates, events_from_requests
from diagnose.slo.spec import SLO

MIN_RESOLUTION_S = 1.0
SAVE_EVERY_S = 5.0
log = logging.getLogger(__name__)


class _EdgeLedger:
    """Per-caller (total, bad) event counts in time buckets, for "who is burning this budget".

    Why buckets and small arrays: it spans the SLO's longest alert window (days), and the live loop
    feeds it every cycle. One frame per cycle was thousands of pandas objects per SLO (memory that
    grew for days) re-concatenated on every status call (CPU that grew with uptime). Here each
    bucket holds three short arrays (caller code, total, bad) and a cycle's counts merge into the
    newest bucket, so memory is bounded by the number of buckets and a query sums arrays.
    """

    def __init__(self, resolution_s: float, horizon_s: float) -> None:
        self.resolution_s = float(resolution_s)
        self.horizon_s = float(horizon_s)
        self._codes: dict[tuple[str, str], int] = {}
        self.callers: list[tuple[str, str]] = []  # (workload, namespace) per code
        self.buckets: deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = deque()

    def add(self, t: float, by_source: pd.DataFrame) -> None:
        """Counts of one batch (columns src, src_ns, total, bad: one row per caller) observed at `t`."""
        codes = np.array([self._code(k) for k in zip(by_source[SRC].astype(str), by_source[SRC_NS].astype(str))],
                         dtype=np.int64)  # one per caller of the batch, not per request
        total = by_source["total"].to_numpy(dtype=float)
        bad = by_source["bad"].to_numpy(dtype=float)
        b = int(np.floor(t / self.resolution_s))
        if self.buckets and self.buckets[-1][0] == b:
            _, c0, t0, b0 = self.buckets.pop()
            codes, total, bad = np.concatenate([c0, codes]), np.concatenate([t0, total]), np.concatenate([b0, bad])
        if len(codes) > 1:
            codes, inv = np.unique(codes, return_inverse=True)
            total, bad = np.bincount(inv, total, len(codes)), np.bincount(inv, bad, len(codes))
        self.buckets.append((b, codes, total, bad))
        while self.buckets and (self.buckets[0][0] + 1) * self.resolution_s <= t - self.horizon_s:
            self.buckets.popleft()

    def _code(self, key: tuple[str, str]) -> int:
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self.callers)
            self.callers.append(key)
        return code

    def sums(self, window_s: float, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(total, bad) per caller code over the buckets overlapping (now - window, now]."""
        lo = now - window_s
        picked = [x for x in self.buckets if (x[0] + 1) * self.resolution_s > lo and x[0] * self.resolution_s <= now]
        n = len(self.callers)
        if not picked:
            return np.zeros(n), np.zeros(n)
        codes = np.concatenate([x[1] for x in picked])
        return (np.bincount(codes, np.concatenate([x[2] for x in picked]), n),
                np.bincount(codes, np.concatenate([x[3] for x in picked]), n))


@dataclass
class _Tracker:
    slo: SLO
    history: SliHistory
    fed_until: float | None = None  # events up to here are in the history (also the saved part, after a restart)
    edges: _EdgeLedger | None = None  # per caller, over the longest alert window

    def __post_init__(self) -> None:
        if self.edges is None:
            self.edges = _EdgeLedger(self.history.resolution_s, max(w.long_s for w in self.slo.windows))

    def add(self, ev: Events, t: float, interval_s: float | None = None) -> None:
        if ev.empty:
            return
        times, total, bad = ev.times, np.broadcast_to(ev.total, ev.times.shape), np.broadcast_to(ev.bad, ev.times.shape)
        if self.fed_until is not None:
            if interval_s:  # counts over (t - interval, t]: keep only the share after what was fed
                share = min(max((t - self.fed_until) / interval_s, 0.0), 1.0)
                total, bad = total * share, bad * share
            else:
                new = times > self.fed_until
                times, total, bad = times[new], total[new], bad[new]
            if times.size == 0 or not total.sum():
                return
        self.history.add(times, total, bad)
        self.fed_until = max(float(times.max()), self.fed_until or float("-inf"))
        if len(ev.by_source):
            self.edges.add(t, ev.by_source)

    def burning_edges(self, window_s: float, now: float, limit: int = 10) -> list[dict]:
        total, bad = self.edges.sums(window_s, now)
        burning = np.flatnonzero(bad > 0)
        if not len(burning):
            return []
        top = burning[np.argsort(-bad[burning], kind="stable")][:limit]  # most bad first; ties: first seen first
        all_bad = float(bad[top].sum()) or 1.0
        out = []
        for i in top:
            src, ns = self.edges.callers[int(i)]
            b, n = float(bad[i]), float(total[i])
            out.append({"source": f"{ns}/{src}", "source_workload": src, "source_namespace": ns,
                        "destination": self.slo.service, "bad": round(b, 3), "total": round(n, 3),
                        "error_ratio": round(b / n, 6) if n else None, "bad_rps": round(b / window_s, 4),
                        "share_of_burn": round(b / all_bad, 4)})
        return out


def _signature(slo: SLO) -> str:
    """What the saved events mean: a history is reused only for the same service, SLI and period."""
    return json.dumps([slo.key, slo.service, slo.sli, slo.threshold_ms, slo.period_s, slo.reporter], default=str)


def _no_data(window_s: float) -> tuple[float, float]:
    return 0.0, 0.0


def _resolution(slo: SLO) -> float:
    shortest = min(min(w.short_s for w in slo.windows), slo.period_s)
    return max(MIN_RESOLUTION_S, shortest / 5.0)


class SloEngine:
    """Declared SLOs and their histories; thread-safe (the live loop feeds, the API reads)."""

    def __init__(self, slos: Iterable[SLO] = (), prometheus: ScalarQuery | None = None,
                 prometheus_for_all: bool = False) -> None:
        """`prometheus` answers PromQL (see `promql.scalar_query`): SLOs with a PromQL SLI are evaluated
        there, and every SLO when `prometheus_for_all` (a real cluster whose history Prometheus keeps)."""
        self._lock = threading.Lock()
        self._trackers: dict[str, _Tracker] = {}
        self.prometheus = prometheus
        self.prometheus_for_all = prometheus_for_all
        self._dir: Path | None = None
        self._saved_at = 0.0
        self.set_slos(slos)

    def persist_to(self, directory: str | Path) -> None:
        """Keep every SLO's history in `directory`: read what is there now, save as events arrive."""
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            for t in self._trackers.values():
                self._restore(t)

    def save(self) -> None:
        """Write every SLO's history now (the live loop does it every few seconds; stop does it last)."""
        if self._dir is None:
            return
        with self._lock:
            for t in self._trackers.values():
                try:
                    t.history.save(self._path(t.slo), signature=_signature(t.slo))
                except OSError as exc:
                    log.warning("SLO %s: could not save its history in %s: %s", t.slo.key, self._dir, exc)
            self._saved_at = time.monotonic()

    def _path(self, slo: SLO) -> Path:
        return self._dir / f"slo-{hashlib.sha256(slo.key.encode()).hexdigest()[:16]}.npz"

    def _restore(self, t: _Tracker) -> None:
        path = self._path(t.slo)
        if not path.exists():
            return
        try:
            history, meta = SliHistory.load(path, t.slo.period_s, t.history.resolution_s)
        except ValueError as exc:
            log.warning("SLO %s: saved history not used: %s", t.slo.key, exc)
            return
        if meta.get("signature") != _signature(t.slo):
            return  # the SLO changed (service, SLI, threshold or period): its old events mean something else
        t.history, t.fed_until = history, history.last_t

    def _maybe_save(self) -> None:
        if self._dir is not None and time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def set_slos(self, slos: Iterable[SLO]) -> None:
        """Replace the whole set (history kept for SLOs whose key, service and SLI are unchanged)."""
        slos = list(slos)
        with self._lock:
            keep = {s.key for s in slos}
            for key in list(self._trackers):
                if key not in keep:
                    del self._trackers[key]
        self.upsert(slos)

    def upsert(self, slos: Iterable[SLO]) -> None:
        with self._lock:
            for slo in slos:
                old = self._trackers.get(slo.key)
                same = old is not None and (old.slo.service, old.slo.sli, old.slo.threshold_ms, old.slo.period_s,
                                            old.slo.reporter) == (slo.service, slo.sli, slo.threshold_ms,
                                                                  slo.period_s, slo.reporter)
                if same:
                    old.slo = slo
                    old.edges.horizon_s = max(w.long_s for w in slo.windows)
                else:
                    self._trackers[slo.key] = t = _Tracker(slo, SliHistory(slo.period_s, _resolution(slo)))
                    if self._dir is not None:
                        self._restore(t)

    def remove(self, keys: Iterable[str]) -> list[str]:
        with self._lock:
            return [k for k in keys if self._trackers.pop(k, None) is not None]

    @property
    def slos(self) -> list[SLO]:
        with self._lock:
            return [t.slo for t in self._trackers.values()]

    def ingest_requests(self, edge_requests: pd.DataFrame, now: float) -> None:
        """Feed one batch of per-request rows (`RuntimeContext.edge_requests`) not fed before."""
        with self._lock:
            for t in self._trackers.values():
                t.add(events_from_requests(edge_requests, t.slo), now)
        self._maybe_save()

    def ingest_rates(self, rates: pd.DataFrame, interval_s: float, now: float) -> None:
        """Feed the Istio rate frame over the last `interval_s` seconds."""
        with self._lock:
            for t in self._trackers.values():
                t.add(events_from_rates(rates, t.slo, interval_s, now), now, interval_s)
        self._maybe_save()

    def status(self, now: float) -> list[SloStatus]:
        with self._lock:
            out = []
            for t in self._trackers.values():
                ratio = None
                if self.prometheus is not None and (self.prometheus_for_all or t.slo.sli == "promql"):
                    ratio = ratio_from_prometheus(self.prometheus, t.slo, now)
                elif t.slo.sli == "promql":
                    ratio = _no_data  # nothing can evaluate it without a Prometheus server: state no_data
                try:
                    st = evaluate(t.slo, None if ratio else t.history, now, ratio)
                except Exception:  # Prometheus down or a bad query: skip this SLO this time
                    log.warning("SLO %s: evaluation failed", t.slo.key, exc_info=True)
                    continue
                firing = [a for a in st.alerts if a.firing]
                window = max((a.window.short_s for a in firing), default=min(w.long_s for w in t.slo.windows))
                st.edges = t.burning_edges(window, now)
                out.append(st)
            return out

    def findings(self, now: float, statuses: list[SloStatus] | None = None) -> list[Finding]:
        return [f for st in (statuses if statuses is not None else self.status(now)) for f in findings_for(st)]
