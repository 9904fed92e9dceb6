"""Sample snapshots: a Bookinfo incident and synthetic meshes of any size.

They exist so the UI can be tried, tested and benchmarked without a running
mesh (`meshscope serve --snapshot`, browser tests, `bench/bench_ui.py`). They
follow the snapshot JSON that `SnapshotSource` reads (see `snapshot_source.py`);
the numbers are made up but internally consistent (edge rates add up to node
rates, error % matches the code breakdown, health follows Kiali's defaults).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np

SNAPSHOT_VERSION = 1
_T0 = 1_795_000_000.0  # a fixed "now" so saved samples are reproducible
_STEP = 10.0
_POINTS = 31


def _series(rng: np.random.Generator, rps: float, err: float, p95: float, n: int = _POINTS) -> dict[str, list]:
    """A noisy but plausible golden-metric series ending at `_T0`."""
    t = _T0 - _STEP * np.arange(n - 1, -1, -1)
    r = np.clip(rps * (1 + 0.08 * rng.standard_normal(n)), 0, None)
    e = np.clip(err * (1 + 0.2 * rng.standard_normal(n)), 0, 100)
    p95s = np.clip(p95 * (1 + 0.1 * rng.standard_normal(n)), 0.1, None)
    return {"t": t.tolist(), "rps": r.round(3).tolist(), "error_pct": e.round(2).tolist(),
            "p50": (p95s * 0.45).round(2).tolist(), "p95": p95s.round(2).tolist(), "p99": (p95s * 1.6).round(2).tolist()}


def _health(error_pct: float, rps: float) -> str:
    if rps <= 0:
        return "idle"
    if error_pct >= 10:
        return "failing"
    return "degraded" if error_pct > 0 else "healthy"


def _edge(src: str, dst: str, rps: float, codes: dict[str, float], p95: float, mtls: float | None,
          state: str, flags: dict[str, float] | None = None, protocol: str = "http") -> dict[str, Any]:
    err = sum(v for c, v in codes.items() if c[0] in "45" or c == "0")
    err_pct = round(100 * err / rps, 1) if rps else 0.0
    return {"id": f"{src}->{dst}", "source": src, "target": dst, "protocol": protocol, "rps": rps,
            "error_pct": err_pct, "p50_ms": round(p95 * 0.45, 1), "p95_ms": p95, "p99_ms": round(p95 * 1.6, 1),
            "mtls_pct": mtls, "mtls_state": state, "health": _health(err_pct, rps), "codes": codes,
            "flags": flags or {}}


def _node(nid: str, ntype: str, name: str, ns: str, app: str = "", version: str = "", badges=()) -> dict[str, Any]:
    return {"id": nid, "type": ntype, "name": name, "namespace": ns, "app": app, "version": version,
            "badges": list(badges)}


def _finish_nodes(nodes: list[dict], edges: list[dict]) -> None:
    """Node rates and health from the edges, as the topology appenders would."""
    by_id = {n["id"]: n for n in nodes}
    for n in nodes:
        n.update(rps_in=0.0, rps_out=0.0, err_in=0.0)
    for e in edges:
        by_id[e["source"]]["rps_out"] += e["rps"]
        by_id[e["target"]]["rps_in"] += e["rps"]
        by_id[e["target"]]["err_in"] += e["rps"] * e["error_pct"] / 100
    for n in nodes:
        rps = n["rps_in"] or n["rps_out"]
        n["error_pct"] = round(100 * n.pop("err_in") / n["rps_in"], 1) if n["rps_in"] else 0.0
        n["health"] = _health(n["error_pct"], rps)
        n["rps_in"], n["rps_out"] = round(n["rps_in"], 3), round(n["rps_out"], 3)


_DR_RATINGS = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
  namespace: bookinfo
spec:
  host: ratings.bookinfo.svc.cluster.local
  trafficPolicy:
    tls:
      mode: DISABLE
  subsets:
  - name: v1
    labels:
      version: v1
"""
_PA_STRICT = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
"""
_VS_REVIEWS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 40
    - destination:
        host: reviews
        subset: v2
      weight: 30
    - destination:
        host: reviews
        subset: v3
      weight: 30
"""
_DR_REVIEWS = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
  - name: v3
    labels: {version: v3}
"""


def _config() -> list[dict[str, Any]]:
    def obj(kind, ns, name, text, first_line, lines):
        return {"api_version": text.split("\n", 1)[0].split(": ", 1)[1], "kind": kind, "namespace": ns,
                "name": name, "source": f"samples/bookinfo.yaml:{first_line}", "yaml": text, "lines": lines}
    return [
        obj("PeerAuthentication", "istio-system", "default", _PA_STRICT, 1, {"spec/mtls/mode": 8}),
        obj("DestinationRule", "bookinfo", "ratings", _DR_RATINGS, 10,
            {"spec/host": 7, "spec/trafficPolicy": 8, "spec/trafficPolicy/tls": 9, "spec/trafficPolicy/tls/mode": 10,
             "spec/subsets[0]": 12}),
        obj("VirtualService", "bookinfo", "reviews", _VS_REVIEWS, 26,
            {"spec/hosts": 7, "spec/http[0]": 9, "spec/http[0]/route[0]": 10, "spec/http[0]/route[1]": 14,
             "spec/http[0]/route[2]": 18}),
        obj("DestinationRule", "bookinfo", "reviews", _DR_REVIEWS, 49,
            {"spec/host": 7, "spec/subsets[0]": 9, "spec/subsets[1]": 11, "spec/subsets[2]": 13}),
    ]


def _findings() -> list[dict[str, Any]]:
    def ref(kind, ns, name, path=None, source=None):
        return {"kind": kind, "name": name, "namespace": ns, "path": path, "source": source}
    seen = {"first_seen": _T0 - 240, "last_seen": _T0}
    return [
        {"code": "MS2001", "severity": "error", "category": "mtls",
         "message": "DestinationRule bookinfo/ratings disables TLS for ratings, but PeerAuthentication "
                    "istio-system/default requires STRICT mTLS: every call to ratings is refused",
         "resource": ref("DestinationRule", "bookinfo", "ratings", "spec/trafficPolicy/tls/mode", "samples/bookinfo.yaml:19"),
         "related": [ref("PeerAuthentication", "istio-system", "default", "spec/mtls/mode", "samples/bookinfo.yaml:8")],
         "equivalents": ["KIA0501"], "remediation": "Set spec.trafficPolicy.tls.mode to ISTIO_MUTUAL (or remove it) "
         "in DestinationRule bookinfo/ratings.",
         "evidence": {"edge_key": "wl:bookinfo/reviews-v2->svc:bookinfo/ratings", "namespace": "bookinfo",
                      "response_flags": {"UC": 2.1}, "requests": 630, "sample_trace_ids": ["4bf92f3577b34da6a3ce929d0e0e4736"]},
         "impact": {"rps": 2.1, "share": 0.33}, "status": "open", **seen,
         "elements": ["wl:bookinfo/reviews-v2->svc:bookinfo/ratings", "wl:bookinfo/reviews-v3->svc:bookinfo/ratings"]},
        {"code": "MS3002", "severity": "error", "category": "runtime",
         "message": "62% of requests from reviews-v2 and reviews-v3 to ratings fail with 503 (UC: upstream connection "
                    "termination)",
         "resource": ref("Service", "bookinfo", "ratings"), "related": [ref("DestinationRule", "bookinfo", "ratings")],
         "remediation": "Check the TLS settings between the callers and ratings; see the related mTLS finding.",
         "evidence": {"edge_key": "wl:bookinfo/reviews-v2->svc:bookinfo/ratings", "namespace": "bookinfo",
                      "response_codes": {"503": 2.6, "200": 1.6}, "response_flags": {"UC": 2.6},
                      "edges": [{"source": "bookinfo/reviews-v2", "destination": "ratings.bookinfo.svc.cluster.local",
                                 "rps": 1.3, "flags": "UC"},
                                {"source": "bookinfo/reviews-v3", "destination": "ratings.bookinfo.svc.cluster.local",
                                 "rps": 1.3, "flags": "UC"}]},
         "impact": {"rps": 2.6, "share": 0.62}, "status": "open", **seen,
         "elements": ["wl:bookinfo/reviews-v2->svc:bookinfo/ratings", "wl:bookinfo/reviews-v3->svc:bookinfo/ratings"]},
        {"code": "MS1004", "severity": "warning", "category": "route",
         "message": "VirtualService bookinfo/reviews weights sum to 100 but route[0] sends 40% to subset v1, which "
                    "has no ratings calls; the traffic split differs from the intended 34/33/33",
         "resource": ref("VirtualService", "bookinfo", "reviews", "spec/http[0]/route[0]", "samples/bookinfo.yaml:35"),
         "remediation": "Review the weights in spec.http[0].route.", "evidence": {}, "impact": {},
         "status": "open", **seen, "elements": ["svc:bookinfo/reviews"]},
        {"code": "MS4001", "severity": "warning", "category": "slo",
         "message": "SLO ratings-availability burns its 30-day error budget 62x too fast (1h and 5m windows)",
         "resource": ref("Service", "bookinfo", "ratings"), "evidence": {"burn_rate_1h": 62.0, "burn_rate_5m": 64.1},
         "impact": {"budget_remaining": 0.71}, "status": "open", **seen, "elements": ["svc:bookinfo/ratings"]},
        {"code": "MS1101", "severity": "info", "category": "route",
         "message": "Service bookinfo/details has no VirtualService; default round-robin routing applies",
         "resource": ref("Service", "bookinfo", "details"), "evidence": {}, "impact": {}, "status": "resolved",
         "first_seen": _T0 - 900, "last_seen": _T0 - 600, "elements": ["svc:bookinfo/details"]},
    ]


def _slos(rng: np.random.Generator) -> list[dict[str, Any]]:
    """In the SLO engine's status shape (`diagnose.slo.SloStatus.to_dict()`)."""
    t = (_T0 - 3600 * np.arange(23, -1, -1)).tolist()

    def series(end: float) -> list[list[float]]:
        values = np.round(np.linspace(1.0, end, 24) + 0.005 * rng.standard_normal(24), 4).clip(-1, 1)
        return [[ts, float(v)] for ts, v in zip(t, values)]

    def windows(burn: dict[str, float]) -> list[dict[str, Any]]:
        pairs = (("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6.0), ("ticket", "1d", "2h", 3.0),
                 ("ticket", "3d", "6h", 1.0))
        return [{"severity": sev, "long_window": lw, "short_window": sw, "factor": f,
                 "long_burn_rate": burn.get(lw), "short_burn_rate": burn.get(sw, burn.get(lw)),
                 "firing": burn.get(lw, 0) >= f and burn.get(sw, burn.get(lw, 0)) >= f} for sev, lw, sw, f in pairs]

    def slo(name, service, sli, objective, remaining, burn, alert, threshold_ms=None):
        return {"name": name, "namespace": "bookinfo", "service": f"{service}.bookinfo.svc.cluster.local", "sli": sli,
                "threshold_ms": threshold_ms, "objective": objective, "period": "30d", "state": alert or "no_data",
                "alert": alert, "budget_remaining": remaining, "burn_rates": burn, "windows": windows(burn),
                "budget_series": series(remaining)}
    return [
        slo("ratings-availability", "ratings", "availability", 99.5, 0.71,
            {"5m": 64.1, "30m": 55.0, "1h": 62.0, "2h": 30.2, "6h": 11.3, "1d": 2.9, "3d": 1.0}, "page"),
        slo("productpage-latency", "productpage", "latency", 99.0, 0.93,
            {"5m": 0.8, "30m": 0.9, "1h": 0.7, "2h": 0.7, "6h": 0.6, "1d": 0.5, "3d": 0.5}, "ok", threshold_ms=300),
        slo("details-availability", "details", "availability", 99.9, 0.99,
            {"5m": 0.0, "30m": 0.0, "1h": 0.1, "2h": 0.1, "6h": 0.1, "1d": 0.1, "3d": 0.1}, "ok"),
    ]


def _spans(rng: random.Random, n_traces: int = 40) -> list[dict[str, Any]]:
    """Bookinfo request trees; about a third call ratings through reviews-v2/v3 and fail there."""
    spans: list[dict[str, Any]] = []
    for i in range(n_traces):
        tid = "4bf92f3577b34da6a3ce929d0e0e4736" if i == 1 else f"{rng.getrandbits(128):032x}"
        start = _T0 - 280 + i * 7
        counter = iter(range(1, 100))

        def span(parent, service, name, s, dur, code=200, flags="-", attrs=None):
            sid = f"{rng.getrandbits(64):016x}"
            st = "ERROR" if code >= 500 else "OK"
            spans.append({"trace_id": tid, "span_id": sid, "parent_span_id": parent, "service_name": service,
                          "name": name, "kind": "SERVER" if next(counter) % 2 else "CLIENT", "start_time": s,
                          "end_time": s + dur / 1000, "duration_ms": round(dur, 2), "status_code": st,
                          "response_code": str(code), "response_flags": flags,
                          "attributes": {"http.method": "GET", "http.status_code": str(code), **(attrs or {})}})
            return sid
        version = ("v1", "v2", "v3")[i % 3]
        fail = version != "v1" and i % 5 < 3
        total = 60 + 20 * rng.random()
        root = span("", "istio-ingressgateway", "productpage.bookinfo.svc.cluster.local:9080/productpage", start,
                    total, attrs={"http.url": "http://127.0.0.1:8080/productpage"})
        pp = span(root, "productpage", "productpage.bookinfo.svc.cluster.local:9080/productpage", start + 0.001,
                  total - 2 - 3 * rng.random(), attrs={"node_id": "productpage-v1"})
        span(pp, "details", "details.bookinfo.svc.cluster.local:9080/details/0", start + 0.003, 4 + 3 * rng.random())
        rv = span(pp, "reviews", "reviews.bookinfo.svc.cluster.local:9080/reviews/0", start + 0.009,
                  30 + 10 * rng.random(), attrs={"node_id": f"reviews-{version}"})
        if version != "v1":
            span(rv, "ratings", "ratings.bookinfo.svc.cluster.local:9080/ratings/0", start + 0.012,
                 1.5 if fail else 6 + 2 * rng.random(), code=503 if fail else 200, flags="UC" if fail else "-",
                 attrs={"upstream_cluster": "outbound|9080||ratings.bookinfo.svc.cluster.local"})
    return spans


def _merge(nodes: list[dict], edges: list[dict], key) -> tuple[list[dict], list[dict]]:
    """Collapse nodes by `key(node)` (None drops the node), summing the edges between groups."""
    groups: dict[str, dict] = {}
    node_key = {}
    for n in nodes:
        k = key(n)
        if k is None:
            continue
        node_key[n["id"]] = k[0]
        groups.setdefault(k[0], {**n, "id": k[0], "type": k[1], "name": k[2], "version": ""})
    merged: dict[tuple, dict] = {}
    for e in edges:
        s, t = node_key.get(e["source"]), node_key.get(e["target"])
        if s is None or t is None or s == t:
            continue
        m = merged.setdefault((s, t), {**e, "id": f"{s}->{t}", "source": s, "target": t, "rps": 0.0, "codes": {},
                                       "flags": {}, "_mtls": 0.0})
        m["rps"] = round(m["rps"] + e["rps"], 3)
        m["_mtls"] += e["rps"] * (e.get("mtls_pct") or 0.0)
        for table in ("codes", "flags"):
            for c, v in e[table].items():
                m[table][c] = round(m[table].get(c, 0.0) + v, 3)
        if e["mtls_state"] == "mismatch":
            m["mtls_state"] = "mismatch"
    out = []
    for m in merged.values():
        err = sum(v for c, v in m["codes"].items() if c[0] in "45")
        m["error_pct"] = round(100 * err / m["rps"], 1) if m["rps"] else 0.0
        m["health"] = _health(m["error_pct"], m["rps"])
        m["mtls_pct"] = round(m.pop("_mtls") / m["rps"], 1) if m["rps"] else None
        if m["mtls_state"] != "mismatch" and m["mtls_pct"] is not None:
            m["mtls_state"] = "full" if m["mtls_pct"] >= 99.95 else "partial" if m["mtls_pct"] > 0 else "none"
        out.append(m)
    merged_nodes = list(groups.values())
    _finish_nodes(merged_nodes, out)
    return merged_nodes, out


def _other_graph_types(nodes: list[dict], edges: list[dict]) -> dict[str, dict]:
    """app (versions merged), versionedApp (one node per app version) and service graphs, as Kiali draws them."""
    def app(n):
        if n["type"] != "workload":
            return n["id"], n["type"], n["name"]
        return f"app:{n['namespace']}/{n['app']}", "app", n["app"]

    def vapp(n):
        if n["type"] != "workload":
            return n["id"], n["type"], n["name"]
        return f"vapp:{n['namespace']}/{n['app']}/{n['version']}", "app", f"{n['app']} {n['version']}".strip()

    def service(n):
        # service graphs keep services and the roots that call them (the ingress, outside traffic)
        return (n["id"], n["type"], n["name"]) if n["type"] in ("service", "unknown") or "ingress" in n["name"] else None

    out = {}
    for name, key in (("app", app), ("versionedApp", vapp), ("service", service)):
        if name == "service":
            # a workload's outbound calls are drawn from the service it backs: service -> service
            backs = {e["target"]: e["source"] for e in edges if e["source"].startswith("svc:")}
            edges_for = [dict(e, source=backs.get(e["source"], e["source"])) for e in edges
                         if e["target"].startswith("svc:") or e["source"] == "unknown"]
        else:
            edges_for = edges
        ns, es = _merge(nodes, edges_for, key)
        out[name] = {"nodes": ns, "edges": es}
    return out


def bookinfo_snapshot() -> dict[str, Any]:
    """Bookinfo during an mTLS incident: a DestinationRule disables TLS to ratings under STRICT mTLS."""
    ns, sys_ns = "bookinfo", "istio-system"
    nodes = [
        _node("unknown", "unknown", "unknown", "unknown"),
        _node("wl:istio-system/istio-ingressgateway", "workload", "istio-ingressgateway", sys_ns, "istio-ingressgateway"),
        _node("svc:bookinfo/productpage", "service", "productpage", ns, "productpage"),
        _node("wl:bookinfo/productpage-v1", "workload", "productpage-v1", ns, "productpage", "v1"),
        _node("svc:bookinfo/details", "service", "details", ns, "details"),
        _node("wl:bookinfo/details-v1", "workload", "details-v1", ns, "details", "v1"),
        _node("svc:bookinfo/reviews", "service", "reviews", ns, "reviews", badges=["vs", "dr"]),
        *[_node(f"wl:bookinfo/reviews-{v}", "workload", f"reviews-{v}", ns, "reviews", v) for v in ("v1", "v2", "v3")],
        _node("svc:bookinfo/ratings", "service", "ratings", ns, "ratings", badges=["dr"]),
        _node("wl:bookinfo/ratings-v1", "workload", "ratings-v1", ns, "ratings", "v1"),
    ]
    edges = [
        _edge("unknown", "wl:istio-system/istio-ingressgateway", 10.0, {"200": 10.0}, 80.0, None, "none"),
        _edge("wl:istio-system/istio-ingressgateway", "svc:bookinfo/productpage", 10.0, {"200": 10.0}, 78.0, 100.0, "full"),
        _edge("svc:bookinfo/productpage", "wl:bookinfo/productpage-v1", 10.0, {"200": 10.0}, 76.0, 100.0, "full"),
        _edge("wl:bookinfo/productpage-v1", "svc:bookinfo/details", 10.0, {"200": 10.0}, 7.0, 100.0, "full"),
        _edge("svc:bookinfo/details", "wl:bookinfo/details-v1", 10.0, {"200": 10.0}, 6.5, 100.0, "full"),
        _edge("wl:bookinfo/productpage-v1", "svc:bookinfo/reviews", 10.0, {"200": 10.0}, 41.0, 100.0, "full"),
        _edge("svc:bookinfo/reviews", "wl:bookinfo/reviews-v1", 4.0, {"200": 4.0}, 18.0, 100.0, "full"),
        _edge("svc:bookinfo/reviews", "wl:bookinfo/reviews-v2", 3.0, {"200": 3.0}, 39.0, 100.0, "full"),
        _edge("svc:bookinfo/reviews", "wl:bookinfo/reviews-v3", 3.0, {"200": 3.0}, 44.0, 62.0, "partial"),
        _edge("wl:bookinfo/reviews-v2", "svc:bookinfo/ratings", 2.1, {"503": 1.3, "200": 0.8}, 3.1, 0.0,
              "mismatch", {"UC": 1.3}),
        _edge("wl:bookinfo/reviews-v3", "svc:bookinfo/ratings", 2.1, {"503": 1.3, "200": 0.8}, 3.4, 0.0,
              "mismatch", {"UC": 1.3}),
        _edge("svc:bookinfo/ratings", "wl:bookinfo/ratings-v1", 1.6, {"200": 1.6}, 6.0, 100.0, "full"),
    ]
    _finish_nodes(nodes, edges)
    rng = np.random.default_rng(7)
    series = {e["id"]: _series(rng, e["rps"], e["error_pct"], e["p95_ms"]) for e in edges}
    series.update({n["id"]: _series(rng, n["rps_in"] or n["rps_out"], n["error_pct"], 40.0) for n in nodes})
    service_series = {}
    for svc, versions in {"productpage": ("v1",), "details": ("v1",), "reviews": ("v1", "v2", "v3"), "ratings": ("v1",)}.items():
        node = next(n for n in nodes if n["id"] == f"svc:bookinfo/{svc}")
        inbound = {v: _series(rng, node["rps_in"] / len(versions), node["error_pct"], 30.0) for v in versions}
        outbound = {v: _series(rng, 2.0 if svc == "reviews" and v != "v1" else 0.0,
                               62.0 if svc == "reviews" and v != "v1" else 0.0, 3.0) for v in versions}
        service_series[f"{svc}.bookinfo.svc.cluster.local"] = {"inbound": inbound, "outbound": outbound}
    return {
        "meshscope_snapshot": SNAPSHOT_VERSION, "generated_at": _T0, "window_s": 300.0, "mesh": "bundled demo",
        "graphs": {"workload": {"nodes": nodes, "edges": edges}, **_other_graph_types(nodes, edges)}, "series": series,
        "service_series": service_series, "findings": _findings(), "slos": _slos(rng),
        "spans": _spans(random.Random(11)), "config": _config(), "scenarios": [],
    }


def synthetic_snapshot(n_nodes: int, seed: int = 1, namespaces: int = 10, extra_callers: int = 0) -> dict[str, Any]:
    """A layered mesh of `n_nodes` workloads (about 1.5 + `extra_callers` edges per node), some failing, for scale tests."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    layers = max(3, int(n_nodes ** 0.5 / 2))
    nodes, edges, by_layer = [], [], [[] for _ in range(layers)]
    for i in range(n_nodes):
        ns = f"ns-{i % namespaces}"
        nid = f"wl:{ns}/svc-{i}-v1"
        nodes.append(_node(nid, "workload", f"svc-{i}-v1", ns, f"svc-{i}", "v1"))
        by_layer[min(layers - 1, i * layers // n_nodes)].append(nid)
    seen = set()
    for layer in range(1, layers):
        for dst in by_layer[layer]:
            for _ in range(1 + (rng.random() < 0.5) + extra_callers):
                src = rng.choice(by_layer[layer - 1])
                if (src, dst) in seen:
                    continue
                seen.add((src, dst))
                rps = round(rng.uniform(0.2, 50), 2)
                bad = rng.random() < 0.04
                err = round(rps * (0.3 if bad else (0.02 if rng.random() < 0.1 else 0.0)), 3)
                codes = {"200": round(rps - err, 3), **({"503": err} if err else {})}
                state = rng.choice(("full",) * 8 + ("partial", "mismatch"))
                edges.append(_edge(src, dst, rps, codes, round(rng.uniform(2, 300), 1),
                                   {"full": 100.0, "partial": 50.0, "mismatch": 0.0}[state], state,
                                   {"UF": err} if bad else None))
    _finish_nodes(nodes, edges)
    series = {e["id"]: _series(nrng, e["rps"], e["error_pct"], e["p95_ms"], 12) for e in edges[:2000]}
    return {"meshscope_snapshot": SNAPSHOT_VERSION, "generated_at": _T0, "window_s": 300.0,
            "mesh": f"synthetic {n_nodes} nodes", "graphs": {"workload": {"nodes": nodes, "edges": edges}},
            "series": series, "service_series": {}, "findings": [], "slos": [], "spans": [], "config": [],
            "scenarios": []}
