"""Every node, edge and graph attribute name the topology package writes.

networkx accepts any string as an attribute key, so a typo silently creates a
new key; appenders, exports and the UI import these constants instead.
"""
from __future__ import annotations

# --- graph-level (G.graph[...]) ----------------------------------------------------
GRAPH_TYPE = "graph_type"  # workload | app | versionedApp | service
NAMESPACES = "namespaces"  # requested namespaces (list) or None for all
WINDOW_S = "window_s"  # the rate window the frame was computed over
QUERY_TIME = "query_time"  # unix seconds the window ends at (may be None)
SKIPPED_SERIES = "skipped_series"  # malformed/bad-telemetry series counted and dropped
APPENDERS_RUN = "appenders_run"  # names of the appenders that ran, in order

# --- node identity ------------------------------------------------------------------
NODE_TYPE = "node_type"  # workload | app | service | unknown | box
KEY = "key"  # Kiali's internal node key, e.g. wl_east_bookinfo_reviews-v1 (the node id is its sha256)
CLUSTER = "cluster"
NAMESPACE = "namespace"
WORKLOAD = "workload"
APP = "app"
VERSION = "version"
SERVICE = "service"
DEST_SERVICES = "dest_services"  # list of (cluster, namespace, service) the node was asked for

# --- node traffic ---------------------------------------------------------------------
# Kiali-style keys per protocol, values in req/s (bytes/s for tcp), e.g.
# {"httpIn": 170.0, "httpIn5xx": 20.0, "httpOut": 160.0, "tcpOut": 62.0}
RATES = "rates"

# --- node flags -----------------------------------------------------------------------
IS_ROOT = "is_root"  # outgoing but no incoming traffic (a traffic generator)
IS_OUTSIDE = "is_outside"  # namespace not among the requested ones
IS_INACCESSIBLE = "is_inaccessible"  # unknown, egress, or a namespace the user cannot see
IS_INJECTED = "is_injected"  # a service node split into a workload->workload edge
IS_BOX = "is_box"  # "app" for compound app boxes
PARENT = "parent"  # id of the box a node sits in
IS_EGRESS_CLUSTER = "is_egress_cluster"  # PassthroughCluster / BlackHoleCluster
IS_IDLE = "is_idle"  # exists in config/registry but had no traffic in the window
IS_DEAD = "is_dead"  # traffic seen earlier but the workload is gone / scaled to 0
IS_GATEWAY = "is_gateway"  # an ingress/egress gateway workload
IS_WAYPOINT = "is_waypoint"  # an ambient waypoint proxy
IS_SERVICE_ENTRY = "is_service_entry"  # {"name": ns/name, "hosts": [...], "location": MESH_EXTERNAL|MESH_INTERNAL}

# --- edge ----------------------------------------------------------------------------
PROTOCOL = "protocol"  # http | grpc | tcp (also the MultiDiGraph edge key)
RATE = "rate"  # total rate of the edge's protocol (req/s, bytes/s for tcp)
EDGE_RATES = "rates"  # Kiali-style keys: http, http3xx, http4xx, http5xx, httpNoResponse, grpcErr ...
RESPONSES = "responses"  # code -> {"flags": {flag: rate}, "hosts": {host: rate}} (rates, not %)
PERCENT_ERR = "percent_err"  # errors / total * 100 (http: 4xx+5xx+no response; grpc: status != 0)
PERCENT_REQ = "percent_req"  # edge total / source node's outbound total of the protocol * 100

# --- appender outputs -------------------------------------------------------------------
RATE_BY_CLASS = "rate_by_class"  # {"2xx": r, "3xx": r, "4xx": r, "5xx": r, "-": r} (http/grpc edges)
ERROR_RATE = "error_rate"  # share 0..1 of requests that failed (same rule as PERCENT_ERR)
THROUGHPUT = "throughput"  # bytes/s (tcp: the edge rate; http: response bytes/s when measured)
LATENCY_P50 = "latency_p50_ms"
LATENCY_P95 = "latency_p95_ms"
LATENCY_P99 = "latency_p99_ms"
RESPONSE_FLAGS = "response_flags"  # {flag: rate} for every Envoy flag other than "-"
FLAGGED_RATE = "flagged_rate"  # sum of rates with any response flag
MTLS_PERCENT = "mtls_percent"  # 0..100: share of the edge's requests that were mutual TLS (failures included)
MTLS_RATE = "mtls_rate"  # mutual_tls rate (kept so merged edges can be re-summed)
MTLS_MEASURED_RATE = "mtls_measured_rate"  # rate the share is of: policy-labelled, or all the edge's requests if more
MTLS_INTENT = "mtls_intent"  # STRICT | PERMISSIVE | DISABLE | None (from PeerAuthentication)
MTLS_MISMATCH = "mtls_mismatch"  # True when intent is STRICT but plaintext (or failed) traffic was seen
SOURCE_PRINCIPALS = "source_principals"
DEST_PRINCIPALS = "dest_principals"
HEALTH = "health"  # Healthy | Degraded | Failure | NA (nodes and edges)
HEALTH_COLOR = "health_color"  # green | amber | red | grey | blue (tcp edges with traffic)
HEALTH_REASON = "health_reason"  # the tolerance that decided the status, e.g. "5xx 33.3% >= 10%"
BADGES = "badges"  # sorted list: VS, DR, FAULT, CB, TIMEOUT, MIRROR, SHIFT, MTLS_STRICT, MTLS_PERMISSIVE ...
CB_TRIPPED = "cb_tripped"  # edge into a node with a circuit breaker saw UO/UH flags
WAYPOINT = "waypoint"  # {"direction": "to"|"from", "from_edge": {id, source, target, attrs}} on ambient edges
