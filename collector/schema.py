"""Column names of the tables the collector hands to the rest of meshscope.

Topology, diagnose and dashboard read telemetry only through these names, so a
typo becomes an ImportError instead of a silently empty column. Istio's label
names are used verbatim wherever Istio has one, so the same code reads the
bundled mesh, a Prometheus server and a real Istio/ASM cluster.
"""
from __future__ import annotations

# --- Istio standard metric labels (istio_requests_total & friends) ---------------
REPORTER = "reporter"  # "source" | "destination" (| "waypoint")
SOURCE_WORKLOAD = "source_workload"
SOURCE_WORKLOAD_NAMESPACE = "source_workload_namespace"
SOURCE_PRINCIPAL = "source_principal"
SOURCE_APP = "source_app"
SOURCE_VERSION = "source_version"
SOURCE_CLUSTER = "source_cluster"
SOURCE_CANONICAL_SERVICE = "source_canonical_service"
DESTINATION_WORKLOAD = "destination_workload"
DESTINATION_WORKLOAD_NAMESPACE = "destination_workload_namespace"
DESTINATION_PRINCIPAL = "destination_principal"
DESTINATION_APP = "destination_app"
DESTINATION_VERSION = "destination_version"
DESTINATION_SERVICE = "destination_service"  # FQDN, e.g. reviews.bookinfo.svc.cluster.local
DESTINATION_SERVICE_NAME = "destination_service_name"
DESTINATION_SERVICE_NAMESPACE = "destination_service_namespace"
DESTINATION_CLUSTER = "destination_cluster"
DESTINATION_CANONICAL_SERVICE = "destination_canonical_service"
REQUEST_PROTOCOL = "request_protocol"  # http | grpc | tcp
RESPONSE_CODE = "response_code"
GRPC_RESPONSE_STATUS = "grpc_response_status"
RESPONSE_FLAGS = "response_flags"  # "-" when none, else comma list e.g. "URX,UF"
CONNECTION_SECURITY_POLICY = "connection_security_policy"  # mutual_tls | none | unknown

ISTIO_LABELS = (
    REPORTER, SOURCE_WORKLOAD, SOURCE_WORKLOAD_NAMESPACE, SOURCE_PRINCIPAL, SOURCE_APP,
    SOURCE_VERSION, SOURCE_CLUSTER, SOURCE_CANONICAL_SERVICE, DESTINATION_WORKLOAD,
    DESTINATION_WORKLOAD_NAMESPACE, DESTINATION_PRINCIPAL, DESTINATION_APP, DESTINATION_VERSION,
    DESTINATION_SERVICE, DESTINATION_SERVICE_NAME, DESTINATION_SERVICE_NAMESPACE,
    DESTINATION_CLUSTER, DESTINATION_CANONICAL_SERVICE, REQUEST_PROTOCOL, RESPONSE_CODE,
    GRPC_RESPONSE_STATUS, RESPONSE_FLAGS, CONNECTION_SECURITY_POLICY,
)

# Istio metric names
ISTIO_REQUESTS_TOTAL = "istio_requests_total"
ISTIO_REQUEST_DURATION_MS = "istio_request_duration_milliseconds"
ISTIO_REQUEST_BYTES = "istio_request_bytes"
ISTIO_RESPONSE_BYTES = "istio_response_bytes"
ISTIO_TCP_SENT_BYTES = "istio_tcp_sent_bytes_total"
ISTIO_TCP_RECEIVED_BYTES = "istio_tcp_received_bytes_total"

# --- metrics table: one row per scraped or queried sample ------------------------
# Istio label columns above (missing labels are "unknown", as Istio reports them) plus:
TIME = "time"  # pandas datetime64[ns, UTC]
METRIC = "metric"  # full sample name, e.g. istio_request_duration_milliseconds_bucket
LE = "le"  # histogram bucket bound as float (inf for +Inf); NaN for non-bucket samples
VALUE = "value"  # float sample value (a counter's cumulative value)
TARGET = "target"  # scrape target (sidecar admin URL) or "prometheus"
RATE = "rate"  # per-second rate over a window, in derived tables
LABELS = "labels"  # the series' label text as scraped (k="v",...) without `le`: with LE, the series identity incl. non-Istio labels

METRICS_COLUMNS = (TIME, TARGET, METRIC, *ISTIO_LABELS, LE, VALUE, LABELS)

# --- requests table: one row per request, from access logs -----------------------
START_TIME = "start_time"  # datetime64[ns, UTC]
METHOD = "method"
PATH = "path"
AUTHORITY = "authority"
PROTOCOL = "protocol"  # HTTP/1.1, HTTP/2 ...
RESPONSE_CODE_DETAILS = "response_code_details"
UPSTREAM_TRANSPORT_FAILURE_REASON = "upstream_transport_failure_reason"
DURATION_MS = "duration_ms"
BYTES_RECEIVED = "bytes_received"
BYTES_SENT = "bytes_sent"
UPSTREAM_CLUSTER = "upstream_cluster"  # outbound|9080|v1|reviews.bookinfo.svc.cluster.local
UPSTREAM_HOST = "upstream_host"
REQUEST_ID = "request_id"
TRACE_ID = "trace_id"
MTLS = "mtls"  # bool: the connection this request used was mutual TLS
LOG_SOURCE = "log_source"  # the file (or sidecar) the line came from
ROUTE_NAME = "route_name"  # %ROUTE_NAME%: the route that matched (Istio: the VirtualService http[].name)

REQUESTS_COLUMNS = (
    START_TIME, REPORTER, SOURCE_WORKLOAD, SOURCE_WORKLOAD_NAMESPACE, SOURCE_PRINCIPAL,
    DESTINATION_WORKLOAD, DESTINATION_WORKLOAD_NAMESPACE, DESTINATION_PRINCIPAL,
    DESTINATION_SERVICE, METHOD, PATH, AUTHORITY, PROTOCOL, RESPONSE_CODE, RESPONSE_FLAGS,
    RESPONSE_CODE_DETAILS, UPSTREAM_TRANSPORT_FAILURE_REASON, DURATION_MS, BYTES_RECEIVED,
    BYTES_SENT, UPSTREAM_CLUSTER, UPSTREAM_HOST, REQUEST_ID, TRACE_ID, MTLS, LOG_SOURCE, ROUTE_NAME,
)

# --- spans table: one row per span, from OTLP ------------------------------------
SPAN_ID = "span_id"  # hex
PARENT_SPAN_ID = "parent_span_id"  # hex, "" for a root span
SERVICE_NAME = "service_name"  # resource service.name
SPAN_NAME = "name"
SPAN_KIND = "kind"  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER
END_TIME = "end_time"
STATUS_CODE = "status_code"  # UNSET | OK | ERROR
ATTRIBUTES = "attributes"  # dict of span attributes (strings)

SPANS_COLUMNS = (
    TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SERVICE_NAME, SPAN_NAME, SPAN_KIND, START_TIME, END_TIME,
    DURATION_MS, STATUS_CODE, RESPONSE_CODE, RESPONSE_FLAGS, ATTRIBUTES,
)

# --- logs table: one row per OTLP log record -------------------------------------
SEVERITY = "severity"  # severity text (or number as text when no text was sent)
BODY = "body"  # the record body rendered as a string

LOGS_COLUMNS = (TIME, TRACE_ID, SPAN_ID, SERVICE_NAME, SEVERITY, BODY, ATTRIBUTES)
