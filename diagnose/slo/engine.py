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


@dataclass
class _Tracker:
    slo: SLO
    history: SliHistory
    edges: deque = field(default_factory=deque)  # (time, by_source frame) per batch, trimmed to the longest window
    fed_until: float | None = None  # events up to here are in the history (also the saved part, after a restart)

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
            self.edges.append((t, ev.by_source))
        horizon = max(w.long_s for w in self.slo.windows)
        while self.edges and self.edges[0][0] < t - horizon:
            self.edges.popleft()

    def burning_edges(self, window_s: float, now: float, limit: int = 10) -> list[dict]:
        frames = [f for t, f in self.edges if t > now - window_s]
        if not frames:
            return []
        agg = pd.concat(frames).groupby([SRC, SRC_NS], sort=False)[["total", "bad"]].sum()
        agg = agg[agg["bad"] > 0].sort_values("bad", ascending=False).head(limit)
        all_bad = float(agg["bad"].sum()) or 1.0
        return [{"source": f"{ns}/{src}", "source_workload": src, "source_namespace": ns,
                 "destination": self.slo.service, "bad": round(float(r.bad), 3), "total": round(float(r.total), 3),
                 "error_ratio": round(float(r.bad) / float(r.total), 6) if r.total else None,
                 "bad_rps": round(float(r.bad) / window_s, 4), "share_of_burn": round(float(r.bad) / all_bad, 4)}
                for (src, ns), r in agg.iterrows()]


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
