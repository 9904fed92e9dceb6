"""Small hand-written Istio rate frames for topology tests (rows as Istio would report them)."""
from __future__ import annotations

import pandas as pd

from collector import schema

NS = "bookinfo"


def series(src: str, dst: str, rate: float, *, reporter: str = "destination", code: str = "200",
           flags: str = "-", protocol: str = "http", metric: str = schema.ISTIO_REQUESTS_TOTAL, le: float | None = None,
           csp: str | None = None, src_ns: str = NS, dst_ns: str = NS, service: str | None = None,
           cluster: str = "Kubernetes", src_principal: str = "unknown", dst_principal: str = "unknown") -> dict:
    """One series from workload `src` (e.g. "reviews-v2") to workload `dst` via its service.

    App and version come from the workload name ("reviews-v2" -> app reviews, version v2);
    `src="unknown"` is traffic from outside the mesh, `dst="unknown"` a request nobody served.
    """
    def split(wl: str) -> tuple[str, str]:
        if wl == "unknown":
            return "unknown", "unknown"
        app, _, ver = wl.rpartition("-")
        return (app, ver) if app else (wl, "unknown")

    s_app, s_ver = split(src)
    d_app, d_ver = split(dst)
    svc = service if service is not None else (d_app if dst != "unknown" else "unknown")
    host = f"{svc}.{dst_ns}.svc.cluster.local" if svc != "unknown" else "unknown"
    if csp is None:
        csp = "mutual_tls" if reporter == "destination" else "unknown"
    return {
        schema.REPORTER: reporter,
        schema.SOURCE_WORKLOAD: src, schema.SOURCE_WORKLOAD_NAMESPACE: src_ns if src != "unknown" else "unknown",
        schema.SOURCE_CANONICAL_SERVICE: s_app, schema.SOURCE_APP: s_app, schema.SOURCE_VERSION: s_ver,
        schema.SOURCE_CLUSTER: cluster if src != "unknown" else "unknown", schema.SOURCE_PRINCIPAL: src_principal,
        schema.DESTINATION_WORKLOAD: dst, schema.DESTINATION_WORKLOAD_NAMESPACE: dst_ns if dst != "unknown" else "unknown",
        schema.DESTINATION_CANONICAL_SERVICE: d_app, schema.DESTINATION_APP: d_app, schema.DESTINATION_VERSION: d_ver,
        schema.DESTINATION_CLUSTER: cluster if dst != "unknown" else "unknown", schema.DESTINATION_PRINCIPAL: dst_principal,
        schema.DESTINATION_SERVICE: host, schema.DESTINATION_SERVICE_NAME: svc,
        schema.DESTINATION_SERVICE_NAMESPACE: dst_ns if svc != "unknown" else "unknown",
        schema.REQUEST_PROTOCOL: protocol, schema.RESPONSE_CODE: code, schema.GRPC_RESPONSE_STATUS: "unknown",
        schema.RESPONSE_FLAGS: flags, schema.CONNECTION_SECURITY_POLICY: csp,
        schema.METRIC: metric, schema.LE: float("nan") if le is None else le, schema.RATE: rate,
    }


def both(src: str, dst: str, rate: float, **kw) -> list[dict]:
    """The same requests as both proxies report them."""
    return [series(src, dst, rate, reporter="destination", **kw), series(src, dst, rate, reporter="source", **kw)]


def buckets(src: str, dst: str, bounds_and_counts: list[tuple[float, float]], **kw) -> list[dict]:
    """Cumulative duration histogram buckets (destination-reported) for one edge."""
    return [series(src, dst, c, metric=schema.ISTIO_REQUEST_DURATION_MS + "_bucket", le=b, **kw)
            for b, c in bounds_and_counts]


def frame(*rows: dict | list[dict]) -> pd.DataFrame:
    flat: list[dict] = []
    for r in rows:
        flat.extend(r if isinstance(r, list) else [r])
    return pd.DataFrame(flat)


def bookinfo(ratings_5xx: float = 0.0) -> pd.DataFrame:
    """Bookinfo at steady state: gateway -> productpage -> details/reviews, reviews v2/v3 -> ratings."""
    return frame(
        both("istio-ingressgateway", "productpage-v1", 10.0, src_ns="istio-system"),
        both("productpage-v1", "details-v1", 10.0),
        both("productpage-v1", "reviews-v1", 3.0),
        both("productpage-v1", "reviews-v2", 3.0),
        both("productpage-v1", "reviews-v3", 4.0),
        both("reviews-v2", "ratings-v1", 3.0 - ratings_5xx),
        both("reviews-v3", "ratings-v1", 4.0),
        both("reviews-v2", "ratings-v1", ratings_5xx, code="503", flags="UF") if ratings_5xx else [],
    )
