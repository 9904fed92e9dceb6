"""A realistic report snapshot: config findings from the real loader and analyzer over a Bookinfo
config, plus runtime/SLO findings, graph elements and SLO states shaped like the live parts emit.

One service name carries markup on purpose: every format must escape it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

import diagnose
import topology
from collector import schema as S
from diagnose.findings import Finding, ResourceRef
from diagnose.reports import Snapshot, build_snapshot
from mesh.config import MeshConfig, load_text
from mesh.config import Snapshot as ConfigSnapshot

DATA = Path(__file__).parent / "data"
T1 = 1_795_220_000.0  # 2026-11-20
T0 = T1 - 3600
EVIL = "evil<script>alert('x')</script>|svc"


def _rate_rows(src_wl: str, dst_wl: str, dst_svc: str, code: int, rate: float, flags: str = "-",
               src_ns: str = "bookinfo") -> list[dict]:
    """Both reporters' `istio_requests_total` series for one edge, as the collector's rate frame holds them."""
    rows = []
    for reporter in ("source", "destination"):
        d = {k: "unknown" for k in S.ISTIO_LABELS}
        d.update({
            S.REPORTER: reporter, S.SOURCE_WORKLOAD: src_wl, S.SOURCE_WORKLOAD_NAMESPACE: src_ns,
            S.SOURCE_APP: src_wl.rsplit("-", 1)[0], S.SOURCE_VERSION: src_wl.rsplit("-", 1)[-1],
            S.SOURCE_CANONICAL_SERVICE: src_wl.rsplit("-", 1)[0], S.SOURCE_CLUSTER: "Kubernetes",
            S.DESTINATION_WORKLOAD: dst_wl, S.DESTINATION_WORKLOAD_NAMESPACE: "bookinfo",
            S.DESTINATION_APP: dst_svc, S.DESTINATION_VERSION: dst_wl.rsplit("-", 1)[-1],
            S.DESTINATION_CANONICAL_SERVICE: dst_svc, S.DESTINATION_CLUSTER: "Kubernetes",
            S.DESTINATION_SERVICE: f"{dst_svc}.bookinfo.svc.cluster.local", S.DESTINATION_SERVICE_NAME: dst_svc,
            S.DESTINATION_SERVICE_NAMESPACE: "bookinfo", S.REQUEST_PROTOCOL: "http", S.RESPONSE_CODE: str(code),
            S.RESPONSE_FLAGS: flags, S.CONNECTION_SECURITY_POLICY: "mutual_tls" if reporter == "destination" else "unknown",
            S.METRIC: S.ISTIO_REQUESTS_TOTAL, S.LE: float("nan"), S.RATE: rate,
        })
        rows.append(d)
    return rows


# (source workload, destination workload, destination service, response code, rate, flags, source namespace)
TRAFFIC = [
    ("istio-ingressgateway", "productpage-v1", "productpage", 200, 10.0, "-", "istio-system"),
    ("productpage-v1", "reviews-v1", "reviews", 200, 5.0, "-", "bookinfo"),
    ("productpage-v1", "reviews-v2", "reviews", 200, 4.8, "-", "bookinfo"),
    ("productpage-v1", "reviews-v2", "reviews", 503, 0.2, "URX", "bookinfo"),
    ("reviews-v2", "ratings-v1", "ratings", 200, 3.2, "-", "bookinfo"),
    ("reviews-v2", "ratings-v1", "ratings", 503, 1.75, "UC", "bookinfo"),
    ("productpage-v1", "details-v1", "details", 200, 10.0, "-", "bookinfo"),
    ("productpage-v1", EVIL + "-v1", EVIL, 200, 0.3, "-", "bookinfo"),
]
TOTAL_RPS = sum(t[4] for t in TRAFFIC)


def rate_frame() -> pd.DataFrame:
    return pd.DataFrame([r for src, dst, svc, code, rate, flags, ns in TRAFFIC
                         for r in _rate_rows(src, dst, svc, code, rate, flags, ns)])


def _graph() -> list[dict]:
    """Cytoscape elements from the real topology builder (health, rates, boxes and all)."""
    return topology.to_cytoscape(topology.build_graph(rate_frame(), graph_type="versionedApp", inject_service_nodes=True, window_s=T1 - T0))


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
