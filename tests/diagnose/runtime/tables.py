"""Small but real requests tables: rows shaped like the collector's parsed Istio access logs.

The outcome strings (flags, details, transport failure reasons) are the exact
ones Envoy 1.40 wrote in the failure matrix of envoy-feasibility.md §3.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from collector import schema as s

T0 = 1_795_000_000.0  # a fixed epoch second for every test window

# (code, flags, details, upstream transport failure reason) as logged by the client-side sidecar
OUTCOMES = {
    "ok": (200, "-", "via_upstream", None),
    "5xx": (500, "-", "via_upstream", None),
    "mtls_plaintext": (503, "UC", "upstream_reset_before_response_started{connection_termination}", None),
    "san_mismatch": (503, "URX,UF",
                     "upstream_reset_before_response_started{remote_connection_failure|TLS_error:|268435581:SSL_routines:"
                     "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:_SAN_matcher,_certificate_SANs_are_"
                     "[spiffe://cluster.local/ns/default/sa/b]:TLS_error_end}",
                     "TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:"
                     "_SAN_matcher,_certificate_SANs_are_[spiffe://cluster.local/ns/default/sa/b]:TLS_error_end"),
    "refused": (503, "URX,UF", "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:"
                "_Connection_refused}", "delayed_connect_error:_Connection_refused"),
    "no_endpoints": (503, "UH", "no_healthy_upstream", None),
    "no_route": (404, "NR", "route_not_found", None),
    "no_cluster": (503, "NC", "cluster_not_found", None),
    "overflow": (503, "UO", "upstream_reset_before_response_started{overflow}", None),
    "timeout": (504, "UT", "response_timeout", None),
    "fault_abort": (503, "FI", "fault_filter_abort", None),
    "fault_delay": (200, "DI", "via_upstream", None),
}
# server side (reporter=destination)
SERVER_OUTCOMES = {
    "ok": (200, "-", "via_upstream", None),
    "rbac_deny": (403, "-", "rbac_access_denied_matched_policy[ns[bookinfo]-policy[deny-reviews]-rule[0]]", None),
    "rbac_no_allow": (403, "-", "rbac_access_denied_matched_policy[none]", None),
    "disconnect": (0, "DC", "downstream_remote_disconnect", None),
    "listener_tls": (0, "NR", "filter_chain_not_found",
                     "TLS_error|error:1000009c:SSL_routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end"),
}

_ids = itertools.count(1)


def fqdn(name: str, ns: str = "bookinfo") -> str:
    return f"{name}.{ns}.svc.cluster.local"


def requests(source: str, destination: str, outcome: str, n: int, *, start: float = T0, end: float | None = None,
             reporter: str = "source", duration_ms: float = 5.0, source_ns: str = "bookinfo",
             destination_workload: str | None = None) -> pd.DataFrame:
    """`n` requests from workload `source` to service FQDN `destination`, spread evenly over [start, end)."""
    table = SERVER_OUTCOMES if reporter == "destination" else OUTCOMES
    code, flags, details, tfr = table[outcome]
    end = start + 30.0 if end is None else end
    times = start + (end - start) * (np.arange(n) / max(n, 1))
    ids = [next(_ids) for _ in range(n)]
    name, ns = destination.split(".")[0], destination.split(".")[1]
    return pd.DataFrame({
        s.START_TIME: pd.to_datetime(times, unit="s", utc=True),
        s.REPORTER: reporter,
        # a server-side log line knows its caller only by identity (as the collector's parser reports it)
        s.SOURCE_WORKLOAD: source if reporter == "source" else "unknown",
        s.SOURCE_WORKLOAD_NAMESPACE: source_ns,
        s.SOURCE_PRINCIPAL: f"spiffe://cluster.local/ns/{source_ns}/sa/{source}",
        s.DESTINATION_WORKLOAD: destination_workload or f"{name}-v1",
        s.DESTINATION_WORKLOAD_NAMESPACE: ns,
        s.DESTINATION_PRINCIPAL: f"spiffe://cluster.local/ns/{ns}/sa/{name}",
        s.DESTINATION_SERVICE: destination,
        s.METHOD: "GET",
        s.PATH: "/",
        s.AUTHORITY: f"{name}:9080",
        s.PROTOCOL: "HTTP/1.1",
        s.RESPONSE_CODE: code,
        s.RESPONSE_FLAGS: flags,
        s.RESPONSE_CODE_DETAILS: details,
        s.UPSTREAM_TRANSPORT_FAILURE_REASON: tfr,
        s.DURATION_MS: float(duration_ms),
        s.BYTES_RECEIVED: 0,
        s.BYTES_SENT: 100,
        s.UPSTREAM_CLUSTER: f"outbound|9080||{destination}",
        s.UPSTREAM_HOST: "127.0.0.1:9080",
        s.REQUEST_ID: [f"req-{i}" for i in ids],
        s.TRACE_ID: [f"{i:032x}" for i in ids],
        s.MTLS: outcome != "mtls_plaintext",
        s.LOG_SOURCE: f"{source}.log",
    })


def table(*parts: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True)
