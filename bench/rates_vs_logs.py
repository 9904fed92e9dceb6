"""Graph vs access logs: does each edge's rps, error % and code mix equal what the sidecars logged?

For every scenario (and the healthy mesh) the workload graph of a window is compared
edge by edge with the access-log lines of the same window, right after the change
(the window still holds the change) and once the window holds only the new state,
then again after meshscope restarts on the same data directory with a new mesh
(new sidecars: new scrape targets, counters from 0). Prints one line per scenario
and moment: the largest rps error (% of the logged rps) and error-% difference
(percentage points) over the edges.

Logged truth: the requests that completed in the window (start + duration: when Envoy logs a
request and counts it), the caller's log line per request where the caller has a sidecar
(it saw every request it sent, including those that never reached the server),
else the server's (for services no sidecar calls); `response_code` 0 (no response) counts as an error, like the
graph's "-" (Kiali's percentErr: 4xx + 5xx + no response).

    python -m bench.rates_vs_logs [--window 10] [--dwell 10] [--scenarios timeout,fault-abort]

Ends with a table: per scenario, the worst edge's rps error and error-% difference for the first
window after the change and a later one, both judged live and again from the store a restarted
meshscope read back; the healthy mesh and a new mesh after the restart get rows of their own.
A scenario the measured code does not have reads n/a (run from an older worktree for a baseline).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from collector import schema as s


@dataclass
class EdgeCount:
    rps: float
    error_pct: float
    codes: dict[str, float]  # code ("-" = no response) -> share of the edge's requests


def _is_error(code: pd.Series) -> np.ndarray:
    c = pd.to_numeric(code, errors="coerce").fillna(0).to_numpy()
    return (c >= 400) | (c == 0)


def _short(host: str) -> str:
    """A host as both sides can name it: the log's authority ("reviews:9080") or the metric's FQDN."""
    return str(host).split(":")[0].split(".")[0]


def completed_at(requests: pd.DataFrame) -> np.ndarray:
    """Each request's completion time (epoch s): its start plus its duration.

    Envoy writes the access-log line and increments `istio_requests_total` when the stream ends,
    so a window's requests are those that completed in it; counting by start time would put a
    request delayed 1 s across a window edge in the logs but not yet in the counters.
    """
    t = requests[s.START_TIME].astype("int64").to_numpy() / 1e9
    d = pd.to_numeric(requests[s.DURATION_MS], errors="coerce").fillna(0).to_numpy(dtype=float) \
        if s.DURATION_MS in requests else 0.0
    return t + d / 1000.0


def log_edges(requests: pd.DataFrame, start: float, end: float) -> dict[tuple[str, str], EdgeCount]:
    """(caller workload, destination host) -> what the access logs say about requests completed in (start, end]."""
    t = completed_at(requests)
    r = requests[(t > start) & (t <= end)]
    r = r[r[s.METHOD].astype(str).str.len() > 0]  # requests only: a listener's refused TLS handshake is no request
    src = r[r[s.REPORTER] == "source"]
    # a server's log line does not name its caller: server lines count only for services no caller logged
    called = set(src[s.DESTINATION_SERVICE].astype(str).map(_short))
    dst = r[(r[s.REPORTER] == "destination") & ~r[s.DESTINATION_SERVICE].astype(str).map(_short).isin(called)]
    rows = pd.concat([src, dst])
    out: dict[tuple[str, str], EdgeCount] = {}
    length = end - start
    for (caller, host), g in rows.groupby([rows[s.SOURCE_WORKLOAD].astype(str),
                                           rows[s.DESTINATION_SERVICE].astype(str).map(_short)]):
        codes = g[s.RESPONSE_CODE].astype(str).replace({"0": "-"})
        n = len(g)
        out[(caller, host)] = EdgeCount(n / length, 100.0 * _is_error(g[s.RESPONSE_CODE]).sum() / n,
                                        (codes.value_counts() / n).to_dict())
    return out


def graph_edges(rates: pd.DataFrame) -> dict[tuple[str, str], EdgeCount]:
    """(caller workload, destination host) -> what the workload graph shows on the caller's edges.

    Each edge's responses name the hosts asked for (Kiali's `traffic.responses`), so requests that
    reached no workload (no route, no healthy upstream) count for their host too.
    """
    from topology import attrs as A
    from topology import build_graph

    g = build_graph(rates, "workload", inject_service_nodes=True, appenders=[])
    acc: dict[tuple[str, str], dict[str, float]] = {}
    for a, _, _, d in g.edges(keys=True, data=True):
        na = g.nodes[a]
        if na.get(A.NODE_TYPE) == "service":
            continue  # the service -> workload half of an injected edge: counted on the caller's half
        for code, v in (d.get(A.RESPONSES) or {}).items():
            for host, rate in (v.get("hosts") or {}).items():
                codes = acc.setdefault((na.get(A.WORKLOAD) or "unknown", _short(host)), {})
                codes[code] = codes.get(code, 0.0) + float(rate)
    out: dict[tuple[str, str], EdgeCount] = {}
    for key, codes in acc.items():
        total = sum(codes.values())
        if total <= 0:
            continue
        bad = sum(r for c, r in codes.items() if c == "-" or c[:1] in ("4", "5"))
        out[key] = EdgeCount(total, 100.0 * bad / total, {c: r / total for c, r in codes.items()})
    return out


def compare(graph: dict, logs: dict, min_rps: float = 0.2) -> dict[str, float]:
    """Worst rps error (% of logged), error-% difference (points) and code-share difference over logged edges."""
    worst = {"rps_err_pct": 0.0, "error_pct_diff": 0.0, "code_share_diff": 0.0, "edges": 0, "extra_edges": 0,
             "worst": ""}
    for key, want in logs.items():
        if want.rps < min_rps:
            continue
        got = graph.get(key, EdgeCount(0.0, 0.0, {}))
        worst["edges"] += 1
        err = 100.0 * abs(got.rps - want.rps) / want.rps
        if err > worst["rps_err_pct"]:
            worst["worst"] = (f"{key[0]} -> {key[1].split('.')[0]}: graph {got.rps:.2f} rps {got.error_pct:.1f} %err, "
                              f"logs {want.rps:.2f} rps {want.error_pct:.1f} %err")
        worst["rps_err_pct"] = max(worst["rps_err_pct"], err)
        worst["error_pct_diff"] = max(worst["error_pct_diff"], abs(got.error_pct - want.error_pct))
        for code in set(got.codes) | set(want.codes):
            worst["code_share_diff"] = max(worst["code_share_diff"], abs(got.codes.get(code, 0.0) - want.codes.get(code, 0.0)))
    extra = [k for k, e in graph.items() if k not in logs and e.rps >= min_rps and k[0] != "unknown"]
    worst["extra_edges"] = len(extra)
    if extra:
        worst["worst"] += f"; extra: {', '.join(f'{a} -> {b} {graph[(a, b)].rps:.2f} rps' for a, b in extra)}"
    return worst


def settled(store, start: float, end: float, timeout: float = 30.0) -> bool:
    """Wait until every sidecar's log and scrape has been read past `end` (a loaded box tails late)."""
    deadline = time.monotonic() + timeout
    while True:
        req = store.requests(start, None)
        t = completed_at(req)
        src = req[s.LOG_SOURCE].astype(str).to_numpy()
        logged = set(src[t <= end])
        past_logs = set(src[t > end + 1.0])
        span = store.time_range("metrics")
        if logged <= past_logs and span is not None and span[1].timestamp() > end + 1.0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def measure(store, start: float, end: float) -> dict[str, float]:
    from collector.query import istio_rates

    settled(store, start, end)
    return compare(graph_edges(istio_rates(store, end - start, end)), log_edges(store.requests(), start, end))


def _line(name: str, r: dict[str, float]) -> None:
    print(f"bench rates_vs_logs {name}: rps error {r['rps_err_pct']:.1f} %, error-% diff {r['error_pct_diff']:.1f} pts, "
          f"code share diff {100 * r['code_share_diff']:.1f} pts over {r['edges']} edges, {r['extra_edges']} extra"
          + (f"; worst: {r['worst']}" if r["worst"] else ""), flush=True)


def _wait_until(t: float) -> None:
    while time.time() < t:
        time.sleep(min(0.5, max(t - time.time(), 0.0)))


def _cell(r: dict[str, float] | None) -> str:
    return "n/a" if r is None else f"{r['rps_err_pct']:5.1f} / {r['error_pct_diff']:4.1f}"


def table(rows: dict[str, dict[str, dict]]) -> str:
    """One line per scenario: worst edge 'rps error % / error-% diff (pts)' per moment."""
    cols = ["first window", "later window", "first, after restart", "later, after restart"]
    out = [f"{'scenario':<22} " + " ".join(f"{c:>22}" for c in cols)]
    for name, r in rows.items():
        out.append(f"{name:<22} " + " ".join(f"{_cell(r.get(c)):>22}" for c in cols))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--dwell", type=float, default=10.0, help="seconds each scenario stays applied")
    ap.add_argument("--scenarios", default="", help="comma list (default: every scenario of the registry)")
    ap.add_argument("--lag", type=float, default=4.0, help="seconds the logs may trail the window end")
    args = ap.parse_args()
    from collector.store import TelemetryStore
    from mesh.bundled import BundledConfig, BundledMesh
    from mesh.controlplane.registry import free_local_port
    from mesh.scenarios import names
    from meshscope.app import BundledBackend

    w, dwell = args.window, args.dwell
    chosen = [x for x in args.scenarios.split(",") if x] or list(names())
    missing = [x for x in chosen if x not in names()]  # e.g. a scenario newer than the code measured
    chosen = [x for x in chosen if x in names()]
    data = Path(tempfile.mkdtemp(prefix="bench-rates-"))

    def run():
        mesh = BundledMesh(BundledConfig(gateway_port=free_local_port(), control_port=None, data_dir=data / "mesh",
                                         traffic_rate=10.0)).start()
        store = TelemetryStore(data_dir=data / "telemetry")
        backend = BundledBackend(mesh=mesh, scrape_interval=1.0)
        backend.start(store, "http://127.0.0.1:9", lambda m: None)
        return mesh, store, backend

    began = time.time()
    mesh, store, backend = run()
    rows: dict[str, dict[str, dict]] = {}
    windows: list[tuple[str, str, float, float]] = []  # (row, column, start, end)
    try:
        t0 = time.time() + 2
        _wait_until(t0 + w)
        windows.append(("healthy", "later window", t0, t0 + w))
        # every scenario in one pass; its windows are judged once all are past (closed, exact)
        for name in chosen:
            changed = time.time()
            mesh.apply_scenario(name)
            windows.append((name, "first window", changed + 3 - w, changed + 3))
            _wait_until(changed + dwell)
            windows.append((name, "later window", changed + dwell - w, changed + dwell))
        mesh.clear_scenario()
        _wait_until(windows[-1][3] + args.lag)
        for row, col, a, b in windows:
            r = rows.setdefault(row, {})[col] = measure(store, a, b)
            _line(f"{row} {col}", r)
        # meshscope restarts on the same data directory: a new mesh, new sidecars and ports, the same store;
        # every window is judged again from what the restarted store read back
        backend.stop()
        mesh.stop()
        store.close()
        mesh, store, backend = run()
        restarted = time.time()
        for row, col, a, b in windows:
            r = rows[row][col.replace(" window", ", after restart")] = measure(store, a, b)
            _line(f"{row} {col} after restart", r)
        _wait_until(restarted + 10 + args.lag)
        r = rows.setdefault("new mesh after restart", {})["first window"] = measure(store, restarted + 10 - w,
                                                                                   restarted + 10)
        _line("after restart first window", r)
        _wait_until(restarted + w + args.lag)
        r = rows["new mesh after restart"]["later window"] = measure(store, restarted - w, restarted + w)
        _line(f"after restart {2 * w:g}s window over both runs", r)
    finally:
        backend.stop()
        mesh.stop()
        store.close()
    for name in missing:
        rows[name] = {}
    print(f"bench rates_vs_logs table (worst edge: rps error % / error-% diff pts; {w:g} s windows, "
          f"{dwell:g} s per scenario, {time.time() - began:.0f} s in all):")
    print(table(rows), flush=True)


if __name__ == "__main__":
    main()
