"""The live diagnoser: re-evaluates runtime rules, config findings and SLOs every few seconds.

Each evaluation reads a sliding window of telemetry (default 20 s, ending a
little before now so late log lines are in), runs the runtime rules, correlates
them with the config findings of the current snapshot, feeds the SLO engine
with the telemetry not fed before, and then updates the finding states:

- a finding *opens* the first time it is seen (`open_after` evaluations in a row),
- it stays open while seen and is *updated* (message, evidence, impact, last_seen),
- it *resolves* after `resolve_after` evaluations in a row without it,
- a finding that reopens `flap_limit` times within `flap_window_s` is marked
  flapping and needs three times as long without it to resolve (damping),
- resolved findings are kept `retention_s` for the UI and alerts, then dropped,
- a config finding that a runtime finding absorbs (correlation) resolves at once
  with `evidence.merged_into` naming the runtime finding.

The composition root builds it with `LiveSources` (collector store, bundled mesh
or a real cluster) and reads `findings(...)`/`slo_status()` for the API;
alerting subscribes with `subscribe(callback)`.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from diagnose.correlate import correlate, rank
from diagnose.findings import Finding, ResourceRef
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from diagnose.rules.runtime.latency import EdgeLatencyAnomaly, client_rows, p95_by_service, rate_p95
from diagnose.rules.runtime.traffic import DST
from diagnose.slo import SLO, SloEngine, SloLoad, is_slo_kind, load_slos, slos_from_objects

log = logging.getLogger(__name__)

RequestsFn = Callable[[float, float], pd.DataFrame]  # (start, end) epoch seconds -> requests table
RatesFn = Callable[[float, float], pd.DataFrame]  # (window_s, end) -> Istio rate frame


@dataclass
class LiveSources:
    """Where the live loop reads from; any part may be missing (None)."""

    requests: RequestsFn | None = None
    rates: RatesFn | None = None
    snapshot: Callable[[], Any] | None = None  # -> mesh.config.Snapshot
    analyze: Callable[[Any], list[Finding]] | None = None  # snapshot -> config findings

    @classmethod
    def from_store(cls, store: Any, snapshot: Callable[[], Any] | None = None,
                   analyze: Callable[[Any], list[Finding]] | None = None) -> LiveSources:
        """Sources over the collector's TelemetryStore (and a snapshot provider such as `BundledMesh.snapshot`)."""
        from collector.query import istio_rates

        return cls(requests=lambda start, end: store.requests(start, end),
                   rates=lambda window, end: istio_rates(store, window, end), snapshot=snapshot,
                   analyze=analyze)

    @classmethod
    def from_prometheus(cls, client: Any, snapshot: Callable[[], Any] | None = None,
                        analyze: Callable[[Any], list[Finding]] | None = None) -> LiveSources:
        """Sources over a Prometheus server (`collector.sources.prom_api.PrometheusClient`): rates only."""
        return cls(rates=lambda window, end: client.istio_rates(window, end), snapshot=snapshot, analyze=analyze)


@dataclass
class _Track:
    finding: Finding
    status: str = "pending"  # pending | open | resolved
    seen_streak: int = 0
    missing_streak: int = 0
    reopenings: deque = field(default_factory=deque)  # times it reopened, for flapping


def _default_analyze() -> Callable[[Any], list[Finding]] | None:
    try:
        from diagnose import analyze  # type: ignore[attr-defined]  # config analysis (another part)
    except ImportError:
        return None
    return analyze


class LiveDiagnoser:
    """Findings that open, update and resolve over time, plus SLO statuses; see the module doc."""

    def __init__(self, sources: LiveSources, slos: Iterable[SLO] = (), *, interval_s: float = 2.0,
                 window_s: float = 20.0, ingest_lag_s: float = 1.0, open_after: int = 1, resolve_after: int = 3,
                 flap_window_s: float = 300.0, flap_limit: int = 3, retention_s: float = 3600.0,
                 ignore: Iterable[str] = (), clock: Callable[[], float] = time.time,
                 prometheus: Callable[[str, float], float | None] | None = None) -> None:
        """`prometheus` (see `diagnose.slo.scalar_query`): evaluate SLOs with PromQL over the server's
        history instead of counting events locally (a real cluster: `meshscope serve --prometheus`)."""
        self.sources = sources
        self.slo_engine = SloEngine(slos, prometheus=prometheus, prometheus_for_all=prometheus is not None)
        self.interval_s, self.window_s, self.ingest_lag_s = interval_s, window_s, ingest_lag_s
        self.open_after, self.resolve_after = open_after, resolve_after
        self.flap_window_s, self.flap_limit, self.retention_s = flap_window_s, flap_limit, retention_s
        self.ignore = set(ignore)
        self.clock = clock
        self._slo_problems: dict[str, list[Finding]] = {}
        self._snapshot_slo_sig: tuple = ()
        self._snapshot_slo_keys: set[str] = set()
        self.last_evaluation: dict[str, Any] = {}
        self._tracks: dict[str, _Track] = {}
        self._lock = threading.RLock()
        self._eval_lock = threading.Lock()
        self._baseline: dict[str, float] = {}
        self._slo_mark: float | None = None
        self._config_cache: tuple[Any, list[Finding]] | None = None
        self._listeners: list[Callable[[list[Finding], float], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if sources.analyze is None:
            sources.analyze = _default_analyze()

    # -- SLO declarations ---------------------------------------------------------------------------
    def load_slos(self, paths: Iterable[str]) -> SloLoad:
        """Add (or replace) the SLOs of files/folders; their problems become MS4004 findings."""
        loaded = load_slos(paths)
        self.slo_engine.upsert(loaded.slos)
        self._note_problems(loaded)
        return loaded

    def apply_objects(self, objects: Iterable[Any]) -> list[Any]:
        """Take the SLO objects out of a `meshscope apply` batch; return the other objects untouched."""
        objects = list(objects)
        loaded = slos_from_objects(o for o in objects if is_slo_kind(o))
        self.slo_engine.upsert(loaded.slos)
        self._note_problems(loaded)
        return [o for o in objects if not is_slo_kind(o)]

    def delete_objects(self, objects: Iterable[Any]) -> list[Any]:
        """Remove the SLOs named in a `meshscope delete` batch; return the other objects."""
        objects = list(objects)
        self.slo_engine.remove(f"{o.namespace}/{o.name}" if o.namespace else o.name
                               for o in objects if is_slo_kind(o))
        return [o for o in objects if not is_slo_kind(o)]

    def _sync_snapshot_slos(self, snapshot: Any) -> None:
        """SLO objects applied to the mesh (`meshscope apply -f slo.yaml`) come and go with the config."""
        objs = [o for o in getattr(snapshot, "objects", None) or [] if is_slo_kind(o)]
        signature = tuple(sorted((o.kind, o.namespace or "", o.name, repr(o.spec)) for o in objs))
        if signature == self._snapshot_slo_sig:
            return
        self._snapshot_slo_sig = signature
        loaded = slos_from_objects(objs)
        gone = self._snapshot_slo_keys - {s.key for s in loaded.slos}
        self.slo_engine.remove(gone)
        self.slo_engine.upsert(loaded.slos)
        self._snapshot_slo_keys = {s.key for s in loaded.slos}
        self._note_problems(loaded, scope="snapshot")

    def _note_problems(self, loaded: SloLoad, scope: str = "files") -> None:
        from diagnose.catalog import make

        found = []
        for p in loaded.problems:
            f = make("MS4004", resource=ResourceRef(kind=p.kind or "ServiceLevelObjective", name=p.name or "?",
                                                    namespace=getattr(p, "namespace", None), path=p.field,
                                                    source=f"{p.file}:{p.line}" if p.line else p.file),
                     file=p.file, line=p.line, name=p.name or "?", problem=p.message)
            f.evidence = {"edge_key": f"{p.file}:{p.line}:{p.field}"}
            found.append(f)
        with self._lock:
            self._slo_problems[scope] = [f for f in self._slo_problems.get(scope, [])
                                         if f.fingerprint not in {x.fingerprint for x in found}] + found
            if scope == "snapshot":  # the snapshot is the whole truth for its SLOs: stale problems go
                self._slo_problems[scope] = found

    @property
    def slo_problems(self) -> list[Finding]:
        return [f for fs in self._slo_problems.values() for f in fs]

    # -- evaluation ---------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[list[Finding], float], None]) -> None:
        """Call `callback(findings, now)` after every evaluation with every tracked (open or resolved) finding."""
        self._listeners.append(callback)

    def evaluate(self, now: float | None = None) -> list[Finding]:
        """Run one evaluation at `now` (default: the clock); returns the open findings, most impact first."""
        now = self.clock() if now is None else now
        with self._eval_lock:
            t0 = time.perf_counter()
            current = self._current(now)
            with self._lock:
                self._update(current, now)
                tracked = [t.finding for t in self._tracks.values() if t.status != "pending"]
            self.last_evaluation.update(time=now, seconds=time.perf_counter() - t0, found=len(current),
                                        open=sum(f.status == "open" for f in tracked))
        for cb in list(self._listeners):
            try:
                cb(tracked, now)
            except Exception:  # a broken subscriber must not stop diagnosis
                log.exception("live diagnoser subscriber failed")
        return self.findings({"status": "open"})

    def _current(self, now: float) -> list[Finding]:
        end = now - self.ingest_lag_s
        start = end - self.window_s
        requests = self._read(self.sources.requests, start, end)
        rates = None
        if (requests is None or requests.empty) and self.sources.rates is not None:
            rates = self._read(self.sources.rates, self.window_s, end)
        snapshot = self._read(self.sources.snapshot)
        self._sync_snapshot_slos(snapshot)
        ctx = RuntimeContext(start=start, end=end, requests=requests, rates=rates, snapshot=snapshot,
                             latency_baseline=dict(self._baseline))
        runtime = analyze_runtime(ctx, ignore=self.ignore)
        self._learn_baseline(ctx, runtime)
        self._feed_slos(ctx, end)
        config = [f for f in self._config_findings(snapshot) if f.code not in self.ignore]
        statuses = self.slo_engine.status(end)
        slo = [f for f in self.slo_engine.findings(end, statuses) if f.code not in self.ignore]
        self.last_evaluation["window"] = {"start": start, "end": end}
        merged = correlate(runtime, config, snapshot)
        return [*suppress_runtime(merged, snapshot), *slo, *self.slo_problems]

    @staticmethod
    def _read(fn: Callable[..., Any] | None, *args: Any) -> Any:
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception:  # a source that is down (scrape target, Prometheus) is not fatal
            log.warning("live diagnoser source %r failed", fn, exc_info=True)
            return None

    def _config_findings(self, snapshot: Any) -> list[Finding]:
        if snapshot is None or self.sources.analyze is None:
            return []
        if self._config_cache is None or self._config_cache[0] is not snapshot:  # holds it: no id reuse
            try:
                found = list(self.sources.analyze(snapshot))
            except Exception:
                log.exception("config analysis failed")
                found = []
            self._config_cache = (snapshot, found)
        # correlation mutates nothing in config findings, but hand out copies so trackers own theirs
        return [_copy(f) for f in self._config_cache[1]]

    def _learn_baseline(self, ctx: RuntimeContext, runtime: list[Finding]) -> None:
        """Slowly follow each service's p95 while it is not anomalous, so a regression is not learned."""
        rows = client_rows(ctx)
        rule = EdgeLatencyAnomaly()
        if rows.empty:  # Prometheus only: histogram buckets
            per = rate_p95(ctx, [DST]) if ctx.rates is not None and len(ctx.rates) else None
            if per is None or per.empty:
                return
            per = per[per["n"] >= rule.min_requests]
            p95 = pd.Series(per["value"].to_numpy(), index=per[DST].to_numpy())
        else:
            counts = rows.groupby(DST, sort=False).size()
            p95 = p95_by_service(rows[rows[DST].isin(counts[counts >= rule.min_requests].index)])
        hot = {f.evidence.get("edge_key") for f in runtime if f.code == "MS3014"}
        for dst, value in p95.items():
            if dst in hot:
                continue
            old = self._baseline.get(dst)
            self._baseline[dst] = float(value) if old is None else 0.8 * old + 0.2 * float(value)

    def _feed_slos(self, ctx: RuntimeContext, end: float) -> None:
        mark = self._slo_mark if self._slo_mark is not None else ctx.start
        if end <= mark:
            return
        if ctx.requests is not None and len(ctx.requests):
            er = ctx.edge_requests
            self.slo_engine.ingest_requests(er[(er["t"] > mark) & (er["t"] <= end)], end)
        elif self.sources.rates is not None:
            rates = self._read(self.sources.rates, end - mark, end)
            if rates is not None and len(rates):
                self.slo_engine.ingest_rates(rates, end - mark, end)
        self._slo_mark = end

    def _update(self, current: list[Finding], now: float) -> None:
        seen: set[str] = set()
        for f in current:
            fp = f.fingerprint
            if fp in seen:
                continue
            seen.add(fp)
            t = self._tracks.get(fp)
            if t is None:
                t = self._tracks[fp] = _Track(f)
                f.first_seen = now
            else:
                if t.status == "resolved":
                    t.status, t.seen_streak = "pending", 0
                    t.reopenings.append(now)
                f.first_seen = t.finding.first_seen
                t.finding = f
            t.seen_streak += 1
            t.missing_streak = 0
            f.last_seen = now
            f.resolved_at = None
            while t.reopenings and t.reopenings[0] < now - self.flap_window_s:
                t.reopenings.popleft()
            if len(t.reopenings) >= self.flap_limit:
                f.evidence["flapping"] = True
            if t.status == "pending" and t.seen_streak >= self.open_after:
                t.status = "open"
            f.status = "open" if t.status == "open" else "pending"
        merged = {c["fingerprint"]: f.fingerprint for f in current
                  for c in f.evidence.get("config_findings", []) if "fingerprint" in c}
        for fp, t in list(self._tracks.items()):
            if fp in seen:
                continue
            if fp in merged and t.status == "open":  # now reported inside a runtime finding: not twice
                t.status = t.finding.status = "resolved"
                t.finding.resolved_at = now
                t.finding.evidence["merged_into"] = merged[fp]
                continue
            if t.status == "pending":
                if not t.reopenings:
                    del self._tracks[fp]
                else:  # a reopening that did not last: back to resolved
                    t.status = t.finding.status = "resolved"
                    t.finding.resolved_at = now
                continue
            if t.status == "open":
                t.missing_streak += 1
                needed = self.resolve_after * (3 if len(t.reopenings) >= self.flap_limit else 1)
                if t.missing_streak >= needed:
                    t.status = t.finding.status = "resolved"
                    t.finding.resolved_at = now
            elif t.status == "resolved" and (t.finding.resolved_at or now) < now - self.retention_s:
                del self._tracks[fp]

    # -- reading the state (API, UI, alerts, reports) -----------------------------------------------
    def findings(self, filters: dict[str, Any] | None = None, **kw: Any) -> list[Finding]:
        """Tracked findings (open first, by impact) matching filters: category, severity, namespace,
        status (open | resolved | all; default all), code. Values may be comma-separated lists."""
        want = {**(filters or {}), **kw}
        with self._lock:
            items = [t.finding for t in self._tracks.values() if t.status in ("open", "resolved")]
        items = [f for f in items if _matches(f, want)]
        opened = rank([f for f in items if f.status == "open"])
        resolved = sorted((f for f in items if f.status == "resolved"), key=lambda f: -(f.resolved_at or 0))
        return [*opened, *resolved]

    def finding(self, fingerprint: str) -> Finding | None:
        with self._lock:
            t = self._tracks.get(fingerprint)
            return t.finding if t and t.status != "pending" else None

    def slo_status(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every SLO's numbers (objective, budget remaining, burn rate per window, alert state, budget series)."""
        now = self.clock() - self.ingest_lag_s if now is None else now
        return [st.to_dict() for st in self.slo_engine.status(now)]

    # -- background loop ----------------------------------------------------------------------------
    def start(self) -> LiveDiagnoser:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="meshscope-live-diagnoser", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.evaluate()
            except Exception:
                log.exception("live diagnoser evaluation failed")
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def suppress_runtime(findings: list[Finding], snapshot: Any) -> list[Finding]:
    """Honour `meshscope.io/ignore` (and its expiry) on the object a runtime finding blames.

    Only the runtime finding's own code counts: ignoring a config code (say MS2010) on a
    DestinationRule must not hide the traffic it breaks. Config findings were already
    filtered by the config analysis.
    """
    runtime = [f for f in findings if f.code.startswith("MS3")]
    if snapshot is None or not runtime:
        return findings
    try:
        from diagnose.suppression import apply_suppressions
    except ImportError:
        return findings
    probes = {id(f): dataclasses.replace(f, equivalents=[]) for f in runtime}
    kept = {id(p) for p in apply_suppressions(list(probes.values()), snapshot)}
    return [f for f in findings if not f.code.startswith("MS3") or id(probes[id(f)]) in kept]


def _copy(f: Finding) -> Finding:
    return dataclasses.replace(f, related=list(f.related), evidence=dict(f.evidence), impact=dict(f.impact))


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

