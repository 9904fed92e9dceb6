"""A synthetic mesh as an Istio rate frame, for benchmarks and scale tests (vectorized, seeded)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from collector import schema

LE_BOUNDS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, np.inf)


def synthetic_rates(workloads: int = 10_000, services: int = 2_000, edges: int = 30_000, namespaces: int = 50,
                    seed: int = 7, error_share: float = 0.1, scale: float = 1.0) -> pd.DataFrame:
    """Both reporters' request series, 5xx on a share of edges, duration buckets and mTLS labels.

    Each service is backed by workloads/services workloads (versions v1..vN); an
    edge is a (client workload, server workload) pair reached through the server's service.
    `scale` multiplies every rate (a later scrape interval of the same mesh).
    """
    rng = np.random.default_rng(seed)
    per_svc = max(1, workloads // services)
    w_idx = np.arange(workloads)
    w_svc = w_idx % services
    w_ns = w_svc % namespaces
    w_name = np.array([f"svc{s}-v{(i // services) % per_svc + 1}" for i, s in zip(w_idx, w_svc)], dtype=object)
    w_ver = np.array([f"v{(i // services) % per_svc + 1}" for i in w_idx], dtype=object)
    ns_name = np.array([f"ns{n}" for n in range(namespaces)], dtype=object)
    svc_name = np.array([f"svc{s}" for s in range(services)], dtype=object)
    pairs = np.unique(rng.integers(0, workloads, size=(int(edges * 1.05), 2)), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]][:edges]
    src, dst = pairs[:, 0], pairs[:, 1]
    n = len(src)
    rate = rng.uniform(0.5, 50.0, n) * scale
    errors = rng.random(n) < error_share
    err_rate = np.where(errors, rate * rng.uniform(0.01, 0.3, n), 0.0)

    def frame(reporter: str, code: str, r: np.ndarray, mask: np.ndarray, metric: str, le=np.nan) -> pd.DataFrame:
        s, d = src[mask], dst[mask]
        cols = {
            schema.REPORTER: reporter,
            schema.SOURCE_WORKLOAD: w_name[s], schema.SOURCE_WORKLOAD_NAMESPACE: ns_name[w_ns[s]],
            schema.SOURCE_CANONICAL_SERVICE: svc_name[w_svc[s]], schema.SOURCE_VERSION: w_ver[s],
            schema.SOURCE_APP: svc_name[w_svc[s]], schema.SOURCE_CLUSTER: "Kubernetes",
            schema.SOURCE_PRINCIPAL: "unknown",
            schema.DESTINATION_WORKLOAD: w_name[d], schema.DESTINATION_WORKLOAD_NAMESPACE: ns_name[w_ns[d]],
            schema.DESTINATION_CANONICAL_SERVICE: svc_name[w_svc[d]], schema.DESTINATION_VERSION: w_ver[d],
            schema.DESTINATION_APP: svc_name[w_svc[d]], schema.DESTINATION_CLUSTER: "Kubernetes",
            schema.DESTINATION_PRINCIPAL: "unknown",
            schema.DESTINATION_SERVICE: svc_name[w_svc[d]] + "." + ns_name[w_ns[d]] + ".svc.cluster.local",
            schema.DESTINATION_SERVICE_NAME: svc_name[w_svc[d]], schema.DESTINATION_SERVICE_NAMESPACE: ns_name[w_ns[d]],
            schema.REQUEST_PROTOCOL: "http", schema.RESPONSE_CODE: code, schema.GRPC_RESPONSE_STATUS: "unknown",
            schema.RESPONSE_FLAGS: "-",
            schema.CONNECTION_SECURITY_POLICY: "mutual_tls" if reporter == "destination" else "unknown",
            schema.METRIC: metric, schema.LE: le, schema.RATE: r[mask],
        }
        return pd.DataFrame(cols)

    everyone = np.ones(n, dtype=bool)
    parts = []
    for reporter in ("destination", "source"):
        parts.append(frame(reporter, "200", rate - err_rate, everyone, schema.ISTIO_REQUESTS_TOTAL))
        parts.append(frame(reporter, "503", err_rate, errors, schema.ISTIO_REQUESTS_TOTAL))
    # cumulative duration buckets (destination-reported), latency scale varies per edge
    typical = rng.uniform(3.0, 300.0, n)
    for le in LE_BOUNDS:
        share = 1.0 if np.isinf(le) else 1.0 - np.exp(-le / typical)
        parts.append(frame("destination", "200", rate * share, everyone, schema.ISTIO_REQUEST_DURATION_MS + "_bucket", le))
    out = pd.concat(parts, ignore_index=True)
    for col in out.columns:  # labels as the store hands them over: dictionary-encoded
        if col not in (schema.LE, schema.RATE):
            out[col] = out[col].astype("category")
    return out
