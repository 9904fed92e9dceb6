"""Diagnosis speed: runtime rules and SLOs over a large synthetic window, and time to finding on the real mesh.

Figures:
- the window summary (the one pass over requests) vs a per-request Python loop doing the same
  summary, and all runtime rules over N requests (16 of 200 services broken), on the same table;
- the same rules in a "storm" window where every service fails every way (1,600 findings);
- SLO engine: ingesting the same window into 50 SLOs and evaluating every window;
- one live evaluation (store read + rules + correlation + SLOs) over a TelemetryStore;
- correlation and incident grouping of 500 open findings on a 10k-workload config (goal < 200 ms), beside it;
- time from applying each bundled-mesh scenario to its finding at `GET /api/v1/findings` of the real
  composition root (MESHSCOPE_BENCH_MESH=inprocess: at the live diagnoser, with the first Envoy log
  line showing the fault as baseline; MESHSCOPE_BENCH_MESH=0 skips the mesh).
N defaults to 200,000 requests (MESHSCOPE_BENCH_REQUESTS to change) so `make bench` stays short on 2 cores.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from bench.common import best_of, live_diagnosed_mesh, report
from collector import schema as s

OUTCOMES = [  # (code, flags, details) of each failure kind; index 0 is a healthy answer
    (200, "-", "via_upstream"), (500, "-", "via_upstream"),
    (503, "UC", "upstream_reset_before_response_started{connection_termination}"),
    (503, "NC", "cluster_not_found"), (503, "UO", "upstream_reset_before_response_started{overflow}"),
    (504, "UT", "response_timeout"), (503, "UH", "no_healthy_upstream"),
    (503, "URX,UF", "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}"),
    (404, "NR", "route_not_found"),
]


def synthetic_requests(n: int, services: int = 200, callers: int = 5, broken: int | None = 16,
                       t0: float = 1_795_000_000.0, span_s: float = 60.0, seed: int = 7) -> pd.DataFrame:
    """`n` client-side requests over `services` destinations, a few callers each.

    `broken` services fail 30 % of their requests with one failure kind each (the rest are
    healthy); `broken=None` is a storm where every service fails every way (1 % each).
    """
    rng = np.random.default_rng(seed)
    dst_i = rng.integers(0, services, n)
    src_i = (dst_i * 7 + rng.integers(0, callers, n)) % services
    if broken is None:
        p = np.array([0.92] + [0.01] * (len(OUTCOMES) - 1))
        k = rng.choice(len(OUTCOMES), n, p=p)
    else:
        kind = np.where(dst_i < broken, 1 + dst_i % (len(OUTCOMES) - 1), 0)  # service i < broken fails one way
        k = np.where(rng.random(n) < 0.3, kind, 0)
    codes = np.array([o[0] for o in OUTCOMES])[k]
    flags = np.array([o[1] for o in OUTCOMES], dtype=object)[k]
    details = np.array([o[2] for o in OUTCOMES], dtype=object)[k]
    names = np.array([f"svc-{i}" for i in range(services)], dtype=object)
    times = t0 + np.sort(rng.random(n)) * span_s
    return pd.DataFrame({
        s.START_TIME: pd.to_datetime(times, unit="s", utc=True),
        s.REPORTER: "source",
        s.SOURCE_WORKLOAD: names[src_i] + "-v1",
        s.SOURCE_WORKLOAD_NAMESPACE: "bench",
        s.DESTINATION_SERVICE: names[dst_i] + ".bench.svc.cluster.local",
        s.DESTINATION_WORKLOAD: names[dst_i] + "-v1",
        s.AUTHORITY: names[dst_i] + ":9080",
        s.RESPONSE_CODE: codes,
        s.RESPONSE_FLAGS: flags,
        s.RESPONSE_CODE_DETAILS: details,
        s.UPSTREAM_TRANSPORT_FAILURE_REASON: "",
        s.DURATION_MS: rng.gamma(2.0, 5.0, n),
        s.TRACE_ID: [f"{i:032x}" for i in range(n)],
    })


def naive_summary(df: pd.DataFrame) -> dict:
    """The per-request way of the same first step: walk every row, count totals and outcomes per edge,
    keep first/last time and up to 5 trace ids per (edge, outcome). Baseline only."""
    out: dict = {}
    cols = [df[c].tolist() for c in (s.SOURCE_WORKLOAD, s.SOURCE_WORKLOAD_NAMESPACE, s.DESTINATION_SERVICE,
                                     s.RESPONSE_CODE, s.RESPONSE_FLAGS, s.RESPONSE_CODE_DETAILS, s.TRACE_ID)]
    times = (df[s.START_TIME].astype("int64") / 1e9).tolist()
    for src, ns, dst, code, flags, details, trace, t in zip(*cols, times):
        key = (src, ns, dst, code, flags, details)
        rec = out.get(key)
        if rec is None:
            rec = out[key] = [0, t, t, []]
        rec[0] += 1
        rec[1] = min(rec[1], t)
        rec[2] = max(rec[2], t)
        if len(rec[3]) < 5:
            rec[3].append(trace)
    return out


def bench_rules(df: pd.DataFrame, storm: pd.DataFrame) -> None:
    from diagnose.rules.runtime import RuntimeContext, analyze_runtime
    from diagnose.rules.runtime.traffic import summarize_requests

    def window(frame: pd.DataFrame) -> RuntimeContext:
        return RuntimeContext(start=frame[s.START_TIME].min().timestamp(), end=frame[s.START_TIME].max().timestamp(),
                              requests=frame)
    found: list = []

    def run(frame: pd.DataFrame) -> None:
        found[:] = analyze_runtime(window(frame))
    n = len(df)
    t_summary = best_of(lambda: summarize_requests(df), 3)
    t_naive = best_of(lambda: naive_summary(df), 1)
    report("diagnose.window_summary_requests_per_s", n / t_summary, "req/s", ("per_request_loop", n / t_naive))
    t_rules = best_of(lambda: run(df), 3)
    report("diagnose.runtime_rules_requests_per_s", n / t_rules, "req/s", ("per_request_loop_summary_only", n / t_naive))
    report("diagnose.runtime_findings", float(len(found)), "findings")
    t_storm = best_of(lambda: run(storm), 1)
    report("diagnose.runtime_rules_storm_seconds", t_storm, "s", ("healthy_mostly_window", t_rules))
    report("diagnose.runtime_findings_storm", float(len(found)), "findings")


def bench_slos(df: pd.DataFrame) -> None:
    from diagnose.rules.runtime import RuntimeContext
    from diagnose.slo import SLO, SloEngine
    from diagnose.slo.windows import DAY

    slos = [SLO(name=f"svc-{i}-{kind}", namespace="bench", service=f"svc-{i}.bench.svc.cluster.local",
                objective=99.9, sli=kind, threshold_ms=25.0 if kind == "latency" else None, period_s=30 * DAY)
            for i in range(25) for kind in ("availability", "latency")]
    end = df[s.START_TIME].max().timestamp()
    er = RuntimeContext(start=end - 60, end=end, requests=df).edge_requests

    def ingest() -> None:
        eng = SloEngine(slos)
        eng.ingest_requests(er, end)
    eng = SloEngine(slos)
    eng.ingest_requests(er, end)
    t_ingest = best_of(ingest, 3)
    t_eval = best_of(lambda: eng.status(end), 3)
    report("diagnose.slo_ingest_50_slos_seconds", t_ingest, "s")
    report("diagnose.slo_evaluate_50_slos_seconds", t_eval, "s", ("slo_ingest", t_ingest))


def bench_live(df: pd.DataFrame) -> float:
    from collector.store import TelemetryStore
    from diagnose.live import LiveDiagnoser, LiveSources

    end = df[s.START_TIME].max().timestamp()
    store = TelemetryStore(window_s=3600, clock=lambda: end)
    store.add_requests(df)
    diag = LiveDiagnoser(LiveSources.from_store(store), window_s=60, ingest_lag_s=0, clock=lambda: end)
    t_read = best_of(lambda: store.requests(end - 60, end), 3)
    t_eval = best_of(diag.evaluate, 3)
    report("diagnose.live_evaluation_seconds", t_eval, "s", ("store_read_only", t_read))
    store.close()
    return t_eval


def correlation_inputs(workloads: int = 10_000, open_findings: int = 500) -> tuple:
    """A config of `workloads` services (Service, Deployment, DestinationRule, VirtualService each, 8 namespaces,
    a STRICT PeerAuthentication per namespace) and `open_findings` open findings: half runtime failures of
    several kinds on distinct services, half config findings with declared signatures (some predicting them)."""
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef
    from mesh.config import ConfigObject, Snapshot, Source

    objs = []
    for i in range(workloads):
        ns, name = f"team{i % 8}", f"svc{i}"
        src = Source(f"mesh-{i // 100:03d}.yaml", (i % 100) * 40 + 1)
        objs += [
            ConfigObject("v1", "Service", name, ns, {"selector": {"app": name}, "ports": [{"port": 8080, "name": "http"}]},
                         source=src),
            ConfigObject("apps/v1", "Deployment", f"{name}-v1", ns,
                         {"template": {"metadata": {"labels": {"app": name, "version": "v1"}},
                                       "spec": {"containers": [{"name": "app"}]}}}, source=src),
            ConfigObject("networking.istio.io/v1", "DestinationRule", name, ns,
                         {"host": name, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}, source=src),
            ConfigObject("networking.istio.io/v1", "VirtualService", name, ns,
                         {"hosts": [name], "http": [{"route": [{"destination": {"host": name, "subset": "v1"}}]}]},
                         source=src)]
    objs += [ConfigObject("security.istio.io/v1", "PeerAuthentication", "strict", f"team{k}", {"mtls": {"mode": "STRICT"}})
             for k in range(8)]
    snap = Snapshot(objs)
    kinds = [("NC", 503, "cluster_not_found", "MS1002", "VirtualService", "spec/http[0]/route[0]/destination/subset"),
             ("UH", 503, "no_healthy_upstream", "MS1102", "DestinationRule", "spec/subsets[0]"),
             ("UC", 503, "upstream_reset_before_response_started{connection_termination}", "MS2010",
              "DestinationRule", "spec/trafficPolicy/tls/mode"),
             ("UO", 503, "upstream_reset_before_response_started{overflow}", None, None, None)]
    runtime, config = [], []
    n_rt = open_findings // 2
    for k in range(n_rt):
        i = k * (workloads // n_rt)
        ns, name = f"team{i % 8}", f"svc{i}"
        host = f"{name}.{ns}.svc.cluster.local"
        flag, code, details, ccode, kind, path = kinds[k % len(kinds)]
        caller = f"svc{(i + 1) % workloads}-v1"
        f = make("MS3006", resource=ResourceRef("Service", name, ns), source=caller, destination=host, count=30,
                 total=100)
        f.evidence = {"edge_key": host, "reporter": "source", "response_flags": {flag: 30},
                      "response_codes": {str(code): 30}, "response_code_details": {details: 30},
                      "edges": [{"source": f"{ns}/{caller}", "source_workload": caller, "source_namespace": ns,
                                 "destination": host, "count": 30, "rps": 1.0, "share": 0.3}]}
        f.impact = {"rps": 1.0, "share": 0.3, "requests": 30}
        runtime.append(f)
        if ccode and len(config) < open_findings - n_rt:
            config.append(make("MS1006", resource=ResourceRef(kind, name, ns, path=path), total=90))
            config[-1].code = ccode
    while len(config) < open_findings - n_rt:  # config findings nothing in traffic shows
        i = len(config) * 7 + 3
        c = make("MS1006", resource=ResourceRef("VirtualService", f"svc{i}", f"team{i % 8}", path="spec/http"), total=90)
        c.code = "MS1002"
        config.append(c)
    return snap, runtime, config


def bench_correlation(live_eval_s: float | None) -> None:
    """Correlation (signatures x live-config scopes) and incident grouping for 500 open findings, 10k workloads."""
    import copy

    from diagnose.correlate import correlate
    from diagnose.incidents import group

    snap, runtime, config = correlation_inputs()
    found: list = []

    def cycle() -> None:
        rt, cfg = copy.deepcopy(runtime), copy.deepcopy(config)
        out = correlate(rt, cfg, snap)
        for f in out:
            f.status = "open"
        found[:] = group(out)
    t_copy = best_of(lambda: (copy.deepcopy(runtime), copy.deepcopy(config)), 3)
    t = best_of(cycle, 3) - t_copy
    report("diagnose.correlate_and_group_500_findings_10k_workloads_seconds", t, "s",
           ("live_evaluation", live_eval_s) if live_eval_s else None)
    report("diagnose.incidents_for_500_findings", float(len(found)), "incidents")


def bench_mesh_time_to_finding() -> None:
    """Apply each scenario on a real bundled mesh; seconds until its runtime finding is open."""
    from mesh.scenarios import SCENARIOS

    with live_diagnosed_mesh() as (mesh, files, diag):
        times = []
        for sc in SCENARIOS:
            want = [c for c in sc.expected_codes if c.startswith("MS3")]
            if not want:
                continue
            deadline = time.monotonic() + 60
            while [f for f in diag.findings(status="open") if f.code.startswith("MS3")]:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            marks = _log_marks(sc)
            sizes = {f.path: _size(f.path) for f in files}
            t0 = time.monotonic()
            mesh.apply_scenario(sc.name)
            elapsed = evidence = None
            while time.monotonic() - t0 < 30 and elapsed is None:
                if evidence is None and marks and _logged(sizes, marks):
                    evidence = time.monotonic() - t0
                if any(f.code in want and f.evidence.get("edge_key") == sc.edge[1]
                       for f in diag.findings(status="open")):
                    elapsed = time.monotonic() - t0
                time.sleep(0.02)
            mesh.clear_scenario()
            if elapsed is None:
                print(f"bench diagnose.time_to_finding.{sc.name}: not found within 30 s", flush=True)
                continue
            times.append(elapsed)
            # baseline: when the raw evidence (the flag in an Envoy access log line) first hit the disk
            report(f"diagnose.time_to_finding.{sc.name}", elapsed, "s",
                   ("first_envoy_log_evidence", evidence) if evidence else None)
        if times:
            report("diagnose.time_to_finding.max", max(times), "s")


def bench_api_time_to_finding() -> None:
    """`meshscope up` as users run it (the composition root), timed at `GET /api/v1/findings`."""
    import socket
    import tempfile

    import httpx

    from mesh.bundled import BundledConfig
    from mesh.scenarios import SCENARIOS
    from meshscope.app import BundledBackend, Stack, StackOptions

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        gateway_port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        backend = BundledBackend(BundledConfig(gateway_port=gateway_port, control_port=None,
                                               data_dir=f"{tmp}/mesh", traffic_rate=10.0), scrape_interval=5.0)
        stack = Stack(backend, StackOptions(port=0, otlp_port=0, data_dir=f"{tmp}/data", diagnose_interval=1.0))
        stack.start()
        mesh, url = backend.mesh, stack.ui.url.rstrip("/") + "/api/v1/findings"
        times = []

        def open_on(code: str, dst: str) -> bool:
            try:
                items = httpx.get(url, params={"status": "open", "code": code}, timeout=30).json()
            except httpx.HTTPError:
                return False
            items = items.get("findings", items) if isinstance(items, dict) else items
            return any((f.get("evidence") or {}).get("edge_key") == dst for f in items)
        try:
            time.sleep(3)  # let the diagnoser watch some healthy traffic first (bench only: no assertion)
            for sc in SCENARIOS:
                want = [c for c in sc.expected_codes if c.startswith("MS3")]
                if not want:
                    continue
                deadline = time.monotonic() + 60
                while open_on(want[0], sc.edge[1]) and time.monotonic() < deadline:
                    time.sleep(0.2)
                t0 = time.monotonic()
                mesh.apply_scenario(sc.name)
                elapsed = None
                while time.monotonic() - t0 < 30:
                    if open_on(want[0], sc.edge[1]):
                        elapsed = time.monotonic() - t0
                        break
                    time.sleep(0.25)  # a request builds the graph too: polling harder would slow what it times
                mesh.clear_scenario()
                if elapsed is None:
                    print(f"bench diagnose.api_time_to_finding.{sc.name}: not found within 30 s", flush=True)
                    continue
                times.append(elapsed)
                report(f"diagnose.api_time_to_finding.{sc.name}", elapsed, "s")
        finally:
            stack.stop()
        if times:
            report("diagnose.api_time_to_finding.max", max(times), "s")


def _log_marks(sc) -> list[bytes]:
    """Byte patterns that show a scenario's raw evidence in a JSON access-log line."""
    marks = [f'"response_flags":"{f}"'.encode() for f in sc.expected_flags]
    marks += [f'"response_flags":"{f},'.encode() for f in sc.expected_flags]
    if "MS3012" in sc.expected_codes:
        marks.append(b"rbac_access_denied")
    return marks


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _logged(sizes: dict[str, int], marks: list[bytes]) -> bool:
    for path, offset in sizes.items():
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            continue
        if any(m in data for m in marks):
            return True
    return False


def as_stored(df: pd.DataFrame) -> pd.DataFrame:
    """The frame as the collector's store hands it out (Arrow-backed strings), what the live loop reads."""
    from collector.store import TelemetryStore

    end = df[s.START_TIME].max().timestamp()
    store = TelemetryStore(window_s=3600, clock=lambda: end)
    store.add_requests(df)
    out = store.requests()
    store.close()
    return out


def main() -> None:
    n = int(os.environ.get("MESHSCOPE_BENCH_REQUESTS", "200000"))
    df = as_stored(synthetic_requests(n))
    bench_rules(df, as_stored(synthetic_requests(n, broken=None)))
    bench_slos(df)
    bench_correlation(bench_live(df))
    mode = os.environ.get("MESHSCOPE_BENCH_MESH", "api")
    if mode == "api":
        try:
            bench_api_time_to_finding()
        except ImportError as exc:  # the composition root is not there: time the diagnoser in process
            print(f"# api bench unavailable ({exc}); timing the live diagnoser in process", flush=True)
            bench_mesh_time_to_finding()
    elif mode != "0":
        bench_mesh_time_to_finding()


if __name__ == "__main__":
    main()
