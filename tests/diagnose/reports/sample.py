"""A realistic report snapshot: config findings from the real loader and analyzer over a Bookinfo
config, plus runtime/SLO findings, graph elements and SLO states shaped like the live parts emit.

One service name carries markup on purpose: every format must escape it.
"""
from __future__ import annotations

from pathlib import Path

import diagnose
from diagnose.findings import Finding, ResourceRef
from diagnose.reports import Snapshot, build_snapshot
from mesh.config import MeshConfig, load_text
from mesh.config import Snapshot as ConfigSnapshot

DATA = Path(__file__).parent / "data"
T1 = 1_795_220_000.0  # 2026-11-20
T0 = T1 - 3600
EVIL = "evil<script>alert('x')</script>|svc"


def _graph() -> list[dict]:
    nodes = [
        ("wl-gw", "workload", "istio-system", "istio-ingressgateway", "healthy"),
        ("wl-pp", "workload", "bookinfo", "productpage-v1", "healthy"),
        ("svc-reviews", "service", "bookinfo", "reviews", "degraded"),
        ("wl-rv1", "workload", "bookinfo", "reviews-v1", "healthy"),
        ("wl-rv2", "workload", "bookinfo", "reviews-v2", "degraded"),
        ("svc-ratings", "service", "bookinfo", "ratings", "failing"),
        ("wl-ra", "workload", "bookinfo", "ratings-v1", "failing"),
        ("svc-details", "service", "bookinfo", "details", "healthy"),
        ("wl-de", "workload", "bookinfo", "details-v1", "healthy"),
        ("svc-evil", "service", "bookinfo", EVIL, "idle"),
    ]
    edges = [
        ("wl-gw", "wl-pp", 10.0, 0.0, "healthy"), ("wl-pp", "svc-reviews", 10.0, 0.02, "degraded"),
        ("svc-reviews", "wl-rv1", 5.0, 0.0, "healthy"), ("svc-reviews", "wl-rv2", 5.0, 0.04, "degraded"),
        ("wl-rv2", "svc-ratings", 5.0, 0.35, "failing"), ("svc-ratings", "wl-ra", 3.2, 0.0, "healthy"),
        ("wl-pp", "svc-details", 10.0, 0.0, "healthy"), ("svc-details", "wl-de", 10.0, 0.0, "healthy"),
        ("wl-pp", "svc-evil", 0.0, 0.0, "idle"),
    ]
    els = []
    for nid, typ, ns, name, health in nodes:
        key = "service" if typ == "service" else "workload"
        els.append({"data": {"id": nid, "nodeType": typ, "namespace": ns, key: name, "health": health}})
    for s, t, rps, err, health in edges:
        els.append({"data": {"id": f"{s}->{t}", "source": s, "target": t, "rps": rps, "error_rate": err, "health": health}})
    return els


def _runtime_findings() -> list[Finding]:
    uf = Finding(
        code="MS3002", severity="error", category="runtime",
        message="Requests from reviews-v2 to ratings are reset: upstream connection termination (UC)",
        resource=ResourceRef("DestinationRule", "ratings", "bookinfo", "spec/trafficPolicy/tls/mode", "bookinfo.yaml:33"),
        related=[ResourceRef("PeerAuthentication", "default", "bookinfo", None, "bookinfo.yaml:23")],
        equivalents=["MS2010"],
        remediation="Set tls.mode ISTIO_MUTUAL in DestinationRule bookinfo/ratings, or drop the DISABLE override.",
        evidence={"edge_key": "bookinfo/reviews-v2->ratings.bookinfo.svc.cluster.local", "response_flags": {"UC": 1750},
                  "response_codes": {"503": 1750},
                  "edges": [{"source": "bookinfo/reviews-v2", "destination": "ratings.bookinfo.svc.cluster.local",
                             "count": 1750, "total": 1800, "rps": 1.75, "share": 0.972}],
                  "sample_trace_ids": ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"],
                  "time_range": {"start": "2026-11-20T23:33:20Z", "end": "2026-11-21T00:33:20Z"}},
        impact={"rps": 1.75, "share": 0.972, "requests": 1750, "service_rps": 1.8},
        first_seen=T0 + 60, last_seen=T1,
    )
    slow = Finding(
        code="MS3010", severity="warning", category="runtime",
        message=f"p95 latency of {EVIL} rose to 740 ms",
        resource=ResourceRef("Service", EVIL, "bookinfo"),
        evidence={"p95_ms": 740.0, "baseline_p95_ms": 80.0},
        impact={"rps": 0.3, "share": 0.05},
        remediation="Check the | pipe and `backtick` handling | too.",
    )
    slo = Finding(
        code="MS4001", severity="error", category="slo",
        message="SLO ratings-availability burns its error budget at 14.6x (page)",
        resource=ResourceRef("Service", "ratings", "bookinfo"),
        evidence={"burn_rates": {"5m": 15.1, "1h": 14.6}},
        impact={"rps": 1.2, "share": 0.35},
    )
    return [uf, slow, slo]


def _slos() -> list[dict]:
    series = [[T0 + i * 300, 1.0 - 0.09 * i] for i in range(13)]
    return [
        {"name": "ratings-availability", "service": "ratings.bookinfo", "objective": 0.999, "budget_remaining": series[-1][1],
         "burn_rates": {"5m": 15.1, "1h": 14.6, "6h": 3.1, "3d": 0.9}, "alert": "page", "budget_series": series},
        {"name": "productpage-latency", "service": "productpage.bookinfo", "objective": 99.0, "budget_remaining": 0.97,
         "burn_rates": {"5m": 0.2, "1h": 0.3}, "alert": "ok",
         "budget_series": [[T0 + i * 600, 1.0 - 0.005 * i] for i in range(7)]},
    ]


def config_findings() -> tuple[list, list[Finding]]:
    loaded = load_text((DATA / "bookinfo.yaml").read_text(), "bookinfo.yaml")
    snap = ConfigSnapshot(loaded.objects, MeshConfig())
    return loaded.objects, diagnose.analyze(snap)


def sample_snapshot() -> Snapshot:
    objects, findings = config_findings()
    return build_snapshot(findings + _runtime_findings(), graph=_graph(), slos=_slos(), config_objects=objects,
                          window=(T0, T1), generated_at=T1 + 5, source="bookinfo test mesh")
