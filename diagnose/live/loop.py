"""The live loop: every few seconds, read a window of telemetry and config, diagnose, update finding states.

Each evaluation reads a sliding window (default 20 s, ending `ingest_lag_s`
before now so late log lines are in), runs the runtime rules, correlates them
with the config findings of the current snapshot (re-analysed only when the
snapshot changes), honours `meshscope.io/ignore` on the blamed objects, feeds
the SLO engine with the telemetry not fed before (or asks Prometheus), and
hands everything to the `FindingTracker` (open / update / resolve / flapping).

The composition root builds it with `LiveSources` (collector store, bundled mesh
or a real cluster) and reads `findings(...)`/`slo_status()` for the API;
alerting subscribes with `subscribe(callback)`.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from diagnose.correlate import correlate
from diagnose.findings import Finding, ResourceRef
from diagnose.live import selfmetrics
from diagnose.live.sources import LiveSources, default_analyze
from diagnose.live.tracker import FindingTracker
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from diagnose.rules.runtime.latency import EdgeLatencyAnomaly, client_rows, p95_by_service, rate_p95
from diagnose.rules.runtime.traffic import DST, KeyCache
from diagnose.slo import SLO, SloEngine, SloLoad, is_slo_kind, load_slos, slos_from_objects

log = logging.getLogger(__name__)


class LiveDiagnoser:
    """Findings that open, update and resolve over time, plus SLO statuses; see the module doc."""

    def __init__(self, sources: LiveSources, slos: Iterable[SLO] = (), *, interval_s: float = 2.0,
                 window_s: float = 20.0, ingest_lag_s: float = 1.0, open_after: int = 1, resolve_after: int = 3,
                 flap_window_s: float = 300.0, flap_limit: int = 3, retention_s: float = 3600.0,
                 ignore: Iterable[str] = (), clock: Callable[[], float] = time.time,
                 prometheus: Callable[[str, float], float | None] | None = None,
                 data_version: Callable[[], Any] | None = None, idle_interval_s: float = 10.0,
                 max_busy_share: float = 0.25, steady: bool = False) -> None:
        """`prometheus` (see `diagnose.slo.scalar_query`): evaluate SLOs with PromQL over the server's
        history instead of counting events locally (a real cluster: `meshscope serve --prometheus`).

        Scheduling (idle is idle): with `data_version` (a value that changes whenever telemetry or config
        does, e.g. the store's generations), a cycle whose inputs did not change is skipped, except every
        `idle_interval_s` so windows still slide (findings resolve when traffic stops). A cycle never
        starts sooner than its last duration / `max_busy_share` after the previous one, so under load
        the diagnoser takes at most that share of a core and the API keeps answering.

        `steady` (with `data_version` and a requests source): new telemetry alone does not start a cycle
        while it is steady, only every `idle_interval_s` (windows slide, baselines and SLOs catch up). Steady:
        no finding that telemetry moves is open (SLO burns, judged over minutes, do not count), the config is
        the one last diagnosed, and no request logged in
        the window is an error (code 0 or >= 400, or Envoy response flags) or slow (at least twice its
        service's usual p95 and 100 ms more, or over a second). Anything else runs a cycle at the usual
        `interval_s`, so a fault opens its finding as fast as before; a steady mesh costs a read of the
        window's requests per interval instead of a diagnosis (issue #18, idle is idle)."""
        self.sources = sources
        self.slo_engine = SloEngine(slos, prometheus=prometheus, prometheus_for_all=prometheus is not None)
        self.interval_s, self.window_s, self.ingest_lag_s = interval_s, window_s, ingest_lag_s
        self.tracker = FindingTracker(open_after, resolve_after, flap_window_s, flap_limit, retention_s)
        self.ignore = set(ignore)
        self.clock = clock
        self._slo_problems: dict[str, list[Finding]] = {}
        self._snapshot_slo_sig: tuple = ()
        self._snapshot_slo_keys: set[str] = set()
        self.last_evaluation: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._eval_lock = threading.Lock()
        self._baseline: dict[str, float] = {}
        self._slo_mark: float | None = None
        self._config_cache: tuple[Any, list[Finding]] | None = None
        self._listeners: list[Callable[[list[Finding], float], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.data_version = data_version
        self.idle_interval_s = idle_interval_s
        self.max_busy_share = max_busy_share
        self._evaluated_version: Any = None
        self._evaluated_at = float("-inf")  # monotonic
        self._slo_status: list[dict[str, Any]] | None = None  # the latest cycle's, served to the API
        self.skipped_cycles = 0
        self.steady = steady
        self.steady_skips = 0  # cycles skipped because the telemetry that changed was steady
        self._open_live = True  # a finding telemetry can move is open (until a cycle says otherwise)
        self._config_sig: Any = _UNSEEN  # the config objects (identities) the latest cycle diagnosed
        self._learned_at: float | None = None  # evaluation time the baseline last learned at
        self._phases = _Phases()  # the running cycle's CPU per phase
        self._keys = KeyCache()  # edge keys of the request combinations seen, kept across windows (#18)
        if sources.analyze is None:
            sources.analyze = default_analyze()

    # -- SLO declarations ---------------------------------------------------------------------------
    def load_slos(self, paths: Iterable[str]) -> SloLoad:
        """Add (or replace) the SLOs of files/folders; their problems become MS4004 findings."""
        loaded = load_slos(paths)
        self.slo_engine.upsert(loaded.slos)
        self._note_problems(loaded)
        self._slo_status = None  # the API shows the new set at once
        return loaded

    def apply_objects(self, objects: Iterable[Any]) -> list[Any]:
        """Take the SLO objects out of a `meshscope apply` batch; return the other objects untouched."""
        objects = list(objects)
        loaded = slos_from_objects(o for o in objects if is_slo_kind(o))
        self.slo_engine.upsert(loaded.slos)
        self._note_problems(loaded)
        self._slo_status = None
        return [o for o in objects if not is_slo_kind(o)]

    def delete_objects(self, objects: Iterable[Any]) -> list[Any]:
        """Remove the SLOs named in a `meshscope delete` batch; return the other objects."""
        objects = list(objects)
        self.slo_engine.remove(f"{o.namespace}/{o.name}" if o.namespace else o.name
                               for o in objects if is_slo_kind(o))
        self._slo_status = None
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
            self._phases = phases = _Phases()
            current = self._current(now)
            tracked = self.tracker.update(current, now)
            phases.mark("track")
            static = {f.fingerprint for f in self.slo_problems}
            if self._config_cache is not None:
                static |= {f.fingerprint for f in self._config_cache[1]}
            # SLO burn findings are judged over windows of minutes: a cycle every idle interval moves them on time
            self._open_live = any(f.status == "open" and f.category != "slo" and f.fingerprint not in static
                                  for f in tracked)
            self.last_evaluation.update(time=now, seconds=time.perf_counter() - t0, found=len(current),
                                        open=sum(f.status == "open" for f in tracked),
                                        count=self.last_evaluation.get("count", 0) + 1)
        for cb in list(self._listeners):
            try:
                cb(tracked, now)
            except Exception:  # a broken subscriber must not stop diagnosis
                log.exception("live diagnoser subscriber failed")
        phases.mark("subscribers")
        phases.publish()
        self.last_evaluation["phases"] = phases.spent
        return self.findings({"status": "open"})

    def _current(self, now: float) -> list[Finding]:
        end = now - self.ingest_lag_s
        start = end - self.window_s
        requests = self._read(self.sources.requests, start, end)
        rates = None
        if (requests is None or requests.empty) and self.sources.rates is not None:
            rates = self._read(self.sources.rates, self.window_s, end)
        snapshot = self._read(self.sources.snapshot)
        self._config_sig = _config_signature(snapshot)
        self._sync_snapshot_slos(snapshot)
        phases = self._phases
        phases.mark("read")
        ctx = RuntimeContext(start=start, end=end, requests=requests, rates=rates, snapshot=snapshot,
                             latency_baseline=dict(self._baseline), key_cache=self._keys)
        runtime = analyze_runtime(ctx, ignore=self.ignore)
        phases.mark("rules")
        # the baseline follows wall time, not cycles: as fast with steady cycles spaced out as with every one
        steps = 1.0 if self._learned_at is None else max(0.0, end - self._learned_at) / max(self.interval_s, 1e-9)
        self._learned_at = end
        self._learn_baseline(ctx, runtime, steps)
        phases.mark("baseline")
        config = [f for f in self._config_findings(snapshot) if f.code not in self.ignore]
        phases.mark("config")
        self._feed_slos(ctx, end)
        statuses = self.slo_engine.status(end)
        self._slo_status = [st.to_dict() for st in statuses]
        slo = [f for f in self.slo_engine.findings(end, statuses) if f.code not in self.ignore]
        phases.mark("slo")
        self.last_evaluation["window"] = {"start": start, "end": end}
        merged = suppress_runtime(correlate(runtime, config, snapshot), snapshot)
        phases.mark("correlate")
        extra = [f for f in self._read(self.sources.extra, end) or [] if f.code not in self.ignore]  # e.g. crash loops
        phases.mark("extra")
        return [*merged, *slo, *self.slo_problems, *extra]

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
        # a provider may build a new Snapshot per call over the same objects: re-analyse only when the
        # objects themselves change (the cache holds them, so their identities cannot be reused)
        objects = list(getattr(snapshot, "objects", None) or [snapshot])
        cached = self._config_cache[0] if self._config_cache is not None else None
        if cached is None or len(cached) != len(objects) or any(a is not b for a, b in zip(cached, objects)):
            try:
                found = list(self.sources.analyze(snapshot))
            except Exception:
                log.exception("config analysis failed")
                found = []
            self._config_cache = (objects, found)
        # correlation mutates nothing in config findings, but hand out copies so trackers own theirs
        return [_copy(f) for f in self._config_cache[1]]

    def _learn_baseline(self, ctx: RuntimeContext, runtime: list[Finding], steps: float = 1.0) -> None:
        """Follow each service's p95 while it is not anomalous, so a regression is not learned.

        `steps`: how many `interval_s` passed since the last learning (a spaced-out cycle counts as the
        cycles it stands for, capped so one reading never replaces the baseline outright)."""
        rows = client_rows(ctx)
        rule = EdgeLatencyAnomaly()
        if rows.empty:  # Prometheus only: histogram buckets
            per = rate_p95(ctx, [DST]) if ctx.rates is not None and len(ctx.rates) else None
            if per is None or per.empty:
                return
            per = per[per["n"] >= rule.min_requests]
            p95 = pd.Series(per["value"].to_numpy(), index=per[DST].to_numpy())
        else:  # healthy answers only: an incident's fast failures are not anyone's usual latency
            rows = rows[(rows["code"] > 0) & (rows["code"] < 500)]
            counts = rows.groupby(DST, sort=False).size()
            p95 = p95_by_service(rows[rows[DST].isin(counts[counts >= rule.min_requests].index)])
        # and only from services nothing is wrong with in this window (any runtime finding on them)
        hot = {f.evidence.get("edge_key") for f in runtime if f.code.startswith("MS3")}
        for dst, value in p95.items():
            if dst in hot:
                continue
            old, value = self._baseline.get(dst), float(value)
            # falls fast (a slow start-up is forgotten), rises slowly (a creeping regression is not learned)
            rate = 1.0 - (1.0 - (0.3 if value < old else 0.03)) ** min(steps, 5.0) if old is not None else 1.0
            self._baseline[dst] = value if old is None else old + rate * (value - old)

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

    # -- reading the state (API, UI, alerts, reports) -----------------------------------------------
    def findings(self, filters: dict[str, Any] | None = None, **kw: Any) -> list[Finding]:
        """Tracked findings (open first, by impact) matching filters: category, severity, namespace,
        status (open | resolved | all; default all), code. Values may be comma-separated lists."""
        return self.tracker.findings(filters, **kw)

    def finding(self, fingerprint: str) -> Finding | None:
        return self.tracker.finding(fingerprint)

    @property
    def latency_baseline(self) -> dict[str, float]:
        """The usual p95 (ms) per destination service, as learned so far."""
        return dict(self._baseline)

    def slo_status(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every SLO's numbers (objective, budget remaining, burn rate per window, alert state, budget series).

        Without `now`: as of the latest evaluation when the loop runs (requests never wait for, or
        repeat, a cycle's work); computed now otherwise."""
        cached = self._slo_status
        if now is None and cached is not None and self._thread is not None:
            return cached
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

    def _due(self) -> tuple[bool, Any]:
        """(run this cycle?, the data version it would see)."""
        if self.data_version is None:
            return True, None
        try:
            version = self.data_version()
        except Exception:  # noqa: BLE001 - unknown version: evaluate
            return True, None
        idle_for = time.monotonic() - self._evaluated_at
        if idle_for >= self.idle_interval_s:
            return True, version
        if version == self._evaluated_version:
            selfmetrics.CYCLES.labels("unchanged").inc()
            return False, version
        if self.steady:
            why = self._not_steady()
            selfmetrics.STEADY_CHECKS.labels(why or "steady").inc()
            self.last_evaluation["steady_check"] = why or "steady"
            if why is None:
                self.steady_skips += 1
                selfmetrics.CYCLES.labels("steady").inc()
                return False, version
        return True, version

    def _is_steady(self) -> bool:
        """Would a cycle now find what the latest one found? (see `steady` in __init__)"""
        return self._not_steady() is None

    def _not_steady(self) -> str | None:
        """Why a cycle must run now (the steady check's result), or None when the telemetry is steady: counted per
        reason on /metrics, so cycles that keep running on a busy box are explained (slow answers, errors...)."""
        if self.sources.requests is None:
            return "rates_only"
        if self._config_sig is _UNSEEN:
            return "first_cycle"
        if self._open_live:
            return "open_finding"
        if _config_signature(self._read(self.sources.snapshot)) != self._config_sig:
            return "config_changed"
        end = self.clock() - self.ingest_lag_s
        rows = self._read(self.sources.requests, end - self.window_s, end)
        if rows is None:
            return "unreadable"
        if not len(rows) and self.sources.rates is not None:
            return "rates_only"  # no logged requests: a cycle diagnoses from the rate frame, which this check cannot judge
        return remarkable_reason(rows, self._baseline, end=end, recent_s=recent_part(self.window_s))

    def _run(self) -> None:
        while not self._stop.is_set():
            started, cpu0 = time.monotonic(), time.thread_time()
            due, version = self._due()
            cpu = 0.0
            if due:
                try:
                    self.evaluate()
                except Exception:
                    log.exception("live diagnoser evaluation failed")
                self._evaluated_version, self._evaluated_at = version, started
                cpu = time.thread_time() - cpu0  # CPU, not wall time: other processes' load must not slow diagnosis
                selfmetrics.CYCLES.labels("run").inc()
                selfmetrics.CYCLE_CPU.inc(cpu)
            else:
                self.skipped_cycles += 1
            pause = max(self.interval_s, cpu / self.max_busy_share if self.max_busy_share > 0 else 0.0)
            self._stop.wait(max(0.0, pause - (time.monotonic() - started)))


_UNSEEN = object()  # no cycle has run yet


class _Phases:
    """One cycle's CPU (this thread's) per phase: `mark(phase)` charges the time since the previous mark."""

    def __init__(self) -> None:
        self._at = time.thread_time()
        self.spent: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.thread_time()
        self.spent[phase] = self.spent.get(phase, 0.0) + now - self._at
        self._at = now

    def publish(self) -> None:
        for phase, seconds in self.spent.items():
            selfmetrics.PHASE_CPU.labels(phase).inc(max(0.0, seconds))


def _config_signature(snapshot: Any) -> tuple | None:
    """The config objects' identities: a provider hands out the same objects until the config changes."""
    if snapshot is None:
        return None
    return tuple(map(id, getattr(snapshot, "objects", None) or [snapshot]))


def recent_part(window_s: float) -> float:
    """The stretch at the end of a window the latency rule judges (`EdgeLatencyAnomaly`: a third, at least 5 s)."""
    return max(window_s / 3, min(5.0, window_s / 2))


def remarkable(requests: pd.DataFrame, baseline: dict[str, float], **kw: Any) -> bool:
    """Does the window look like trouble: an error (code 0 or >= 400, any Envoy response flag) or a slow service
    (see `remarkable_reason`)? Vectorized."""
    return remarkable_reason(requests, baseline, **kw) is not None


def remarkable_reason(requests: pd.DataFrame, baseline: dict[str, float], *, end: float | None = None,
                      recent_s: float | None = None) -> str | None:
    """Why a window of requests could change what a cycle finds, or None: "error" (a code >= 400), "no_answer" (an
    HTTP request with code 0; a TCP connection logs 0 when all is well), "response_flags" (any Envoy flag), "slow".

    Errors count per request (one is enough for a rule to fire). Slowness counts as the latency rule judges it
    (`EdgeLatencyAnomaly`, whose thresholds these are, less its allowance for a host where everything slowed
    down): per service over the last `recent_s` before `end` (all rows without them), at least `min_requests`
    callers' requests whose p95 is at least twice the usual p95 and 100 ms more with the median above the usual
    p95, or whose p95 is over a second; the usual p95 is the lower of the learned `baseline` and the p95 of the
    window's older part, as the rule takes it. A lone slow request among
    a service's usual ones cannot make the rule fire, so it does not run a cycle (on a busy 2-core box, one
    did on nearly every check: session 11, 30 of 30 checks in a minute failed as "slow")."""
    from collector import schema as s

    if requests is None or not len(requests):
        return None
    if s.RESPONSE_CODE in requests:
        code = pd.to_numeric(requests[s.RESPONSE_CODE], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if (code >= 400).any():
            return "error"
        no_answer = code == 0
        if no_answer.any():
            if s.PROTOCOL in requests:
                no_answer &= requests[s.PROTOCOL].astype(str).str.contains("HTTP|GRPC", case=False).to_numpy(dtype=bool)
            if no_answer.any():
                return "no_answer"
    if s.RESPONSE_FLAGS in requests:
        flags = requests[s.RESPONSE_FLAGS].astype(str).to_numpy()
        if (~pd.Series(flags).isin(["-", "", "None", "nan", "<NA>"])).any():
            return "response_flags"
    if s.DURATION_MS in requests and s.DESTINATION_SERVICE in requests and _slow_service(requests, baseline, end,
                                                                                        recent_s):
        return "slow"
    return None


def _slow_service(requests: pd.DataFrame, baseline: dict[str, float], end: float | None,
                  recent_s: float | None) -> bool:
    """Would the latency rule find a service slow in these rows? (see `remarkable_reason`)"""
    from collector import schema as s
    from diagnose.rules.runtime.latency import Q, EdgeLatencyAnomaly

    rule = EdgeLatencyAnomaly()
    ms = pd.to_numeric(requests[s.DURATION_MS], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    codes, services = pd.factorize(requests[s.DESTINATION_SERVICE].astype(str).to_numpy())
    keep = ~np.isnan(ms)
    if s.REPORTER in requests:  # callers' view, the server's only for services no caller reports (`client_rows`)
        server = requests[s.REPORTER].astype(str).to_numpy() == "destination"
        keep &= ~server | ~np.isin(codes, np.unique(codes[keep & ~server]))
    recent = keep.copy()
    if end is not None and recent_s is not None and s.START_TIME in requests:
        t = requests[s.START_TIME]
        t = (t.astype("int64").to_numpy() / 1e9 if isinstance(t.dtype, pd.DatetimeTZDtype) or
             pd.api.types.is_datetime64_dtype(t) else pd.to_numeric(t, errors="coerce").to_numpy(dtype=float))
        recent &= t >= end - recent_s
    if not recent.any():
        return False
    older = keep & ~recent
    for k in np.unique(codes[recent]):  # one pass per service (a handful), numpy inside
        mine = codes == k
        now = ms[recent & mine]
        if now.size < rule.min_requests:
            continue
        p95, p50 = np.quantile(now, [Q, 0.5])
        if p95 >= rule.absolute_ms:
            return True
        usual = baseline.get(services[k], np.nan)
        before = ms[older & mine]
        if before.size >= rule.min_requests:
            usual = np.nanmin([usual, np.quantile(before, Q)])
        # a regression moves the whole distribution (the median passes the usual p95); a busy host only the tail
        if not np.isnan(usual) and p95 >= max(usual * rule.ratio, usual + rule.min_increase_ms) and p50 > usual:
            return True
    return False


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


