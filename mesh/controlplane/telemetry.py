"""Istio-shaped telemetry for a sidecar: standard metrics, JSON access logs, tracing.

Upstream Envoy has no `istio.stats` filter, so `istio_requests_total` & co. come
from the stats access logger (`envoy.access_loggers.stats`), whose tags are
command operators. Peer identity that Istio exchanges through metadata exchange
travels here in request headers the source sidecar adds (`x-ms-src-*`, like
Istio's `x-envoy-peer-metadata`) and in endpoint metadata (`istio.workload` ...)
the control plane attaches to every endpoint. Missing values are `unknown`, as Istio
reports them. The stats are created under the `wasmcustom` stat namespace, which
Envoy strips in `/stats/prometheus`, so the series read `istio_requests_total`
exactly (see bootstrap.py for how that namespace gets registered).
"""
from __future__ import annotations

from typing import Any

from mesh.controlplane.registry import Workload
from mesh.controlplane.ca import spiffe_id

STATS_NAMESPACE = "wasmcustom"
PEER_HEADERS = {  # request header -> Istio label on the destination side
    "x-ms-src-workload": "source_workload",
    "x-ms-src-namespace": "source_workload_namespace",
    "x-ms-src-app": "source_app",
    "x-ms-src-version": "source_version",
}
DEST_HEADERS = {
    "x-ms-dst-service": "service",
    "x-ms-dst-service-name": "service_name",
    "x-ms-dst-service-namespace": "service_namespace",
}
ALL_MESH_HEADERS = [*PEER_HEADERS, *DEST_HEADERS]

DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                    300000, 600000, 1800000, 3600000]
BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000]

ACCESS_LOG_JSON = {  # Istio's JSON access log shape (meshConfig.accessLogEncoding: JSON)
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "downstream_transport_failure_reason": "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%",
    "downstream_peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
    "upstream_peer_uri_san": "%UPSTREAM_PEER_URI_SAN%",
    "downstream_tls_version": "%DOWNSTREAM_TLS_VERSION%",
    "traceparent": "%REQ(TRACEPARENT)%",
    "access_log_type": "%ACCESS_LOG_TYPE%",
}


_TLS_USED = "has(upstream.uri_san_peer_certificate) && upstream.uri_san_peer_certificate != ''"
_UPSTREAM_PEER = f"%CEL({_TLS_USED} ? upstream.uri_san_peer_certificate : 'unknown')%"


def _header(name: str, default: str = "unknown") -> str:
    return f"%CEL('{name}' in request.headers ? request.headers['{name}'] : '{default}')%"


def _upstream_meta(key: str) -> str:
    return (f"%CEL(has(xds.upstream_host_metadata) ? "
            f"xds.upstream_host_metadata.filter_metadata.istio.{key} : 'unknown')%")


def _dest_service(key: str) -> str:
    """Destination service as Istio's stats filter names it on the client side (istio/proxy,
    source/extensions/filters/http/istio_stats/istio_stats.cc, IstioStatsFilter::populatePeerInfo): the
    cluster's istio metadata; a request that reached no cluster carrying it (`NC`: the route names a cluster
    that does not exist) is named by its Host header, verbatim (`details:9080`), for the service and its name
    alike, and its namespace is unknown (no peer). The access log's `authority` is the same header, so the
    graph and the log views file such a request under one name."""
    fallback = ("(has(request.host) && request.host != '' ? request.host : 'unknown')"
                if key != "service_namespace" else "'unknown'")
    return (f"%CEL(has(xds.cluster_metadata) && has(xds.cluster_metadata.filter_metadata.istio) && "
            f"has(xds.cluster_metadata.filter_metadata.istio.{key}) ? "
            f"xds.cluster_metadata.filter_metadata.istio.{key} : {fallback})%")


def identity_labels(w: Workload, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}_workload": w.name,
        f"{prefix}_workload_namespace": w.namespace,
        f"{prefix}_principal": spiffe_id(w.namespace, w.service_account),
        f"{prefix}_app": w.app,
        f"{prefix}_version": w.version,
        f"{prefix}_cluster": "Kubernetes",
        f"{prefix}_canonical_service": w.app,
    }


def source_reporter_tags(w: Workload) -> dict[str, str]:
    """Tags of the metrics a client sidecar (or the gateway) reports, reporter=source."""
    tags = {"reporter": "source", **identity_labels(w, "source")}
    # principals are only known when the hop used mTLS, as in Istio
    tags["source_principal"] = (f"%CEL({_TLS_USED} ? '{tags['source_principal']}' : 'unknown')%")
    tags.update({
        "destination_workload": _upstream_meta("workload"),
        "destination_workload_namespace": _upstream_meta("namespace"),
        "destination_principal": _UPSTREAM_PEER,
        "destination_app": _upstream_meta("app"),
        "destination_version": _upstream_meta("version"),
        "destination_service": _dest_service("service"),
        "destination_service_name": _dest_service("service_name"),
        "destination_service_namespace": _dest_service("service_namespace"),
        "destination_cluster": "Kubernetes",
        "destination_canonical_service": _upstream_meta("app"),
        "connection_security_policy": "unknown",  # what Istio's source reporter says
    })
    return tags


def destination_reporter_tags(w: Workload, mtls: bool, default_service: tuple[str, str, str] | None) -> dict[str, str]:
    """Tags of the metrics a server sidecar reports (reporter=destination), for one filter chain."""
    svc, svc_name, svc_ns = default_service or ("unknown", "unknown", "unknown")
    tags = {"reporter": "destination"}
    for header, label in PEER_HEADERS.items():
        tags[label] = _header(header)
    tags["source_principal"] = "%DOWNSTREAM_PEER_URI_SAN%" if mtls else "unknown"
    tags["source_cluster"] = "Kubernetes"
    tags["source_canonical_service"] = _header("x-ms-src-app")
    tags.update(identity_labels(w, "destination"))
    if not mtls:
        tags["destination_principal"] = "unknown"
    tags.update({
        "destination_service": _header("x-ms-dst-service", svc),
        "destination_service_name": _header("x-ms-dst-service-name", svc_name),
        "destination_service_namespace": _header("x-ms-dst-service-namespace", svc_ns),
        "connection_security_policy": "mutual_tls" if mtls else "none",
    })
    return tags


def _common_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    full = dict(tags)
    full.update({"request_protocol": "http", "response_code": "%RESPONSE_CODE%",
                 "grpc_response_status": "", "response_flags": "%RESPONSE_FLAGS%"})
    return [{"name": k, "value_format": v} for k, v in full.items() if v != ""]


def stats_logger(tags: dict[str, str]) -> dict[str, Any]:
    """The access logger producing Istio's four standard HTTP metrics."""
    t = _common_tags(tags)
    return {
        "name": "envoy.access_loggers.stats",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config",
            "stats_scope": {"prefix": STATS_NAMESPACE},
            "counters": [{"stat": {"name": "istio_requests_total", "tags": t}, "value_fixed": 1}],
            "histograms": [
                {"stat": {"name": "istio_request_duration_milliseconds", "tags": t}, "unit": "Milliseconds",
                 "value_format": "%DURATION%"},
                {"stat": {"name": "istio_request_bytes", "tags": t}, "unit": "Bytes", "value_format": "%BYTES_RECEIVED%"},
                {"stat": {"name": "istio_response_bytes", "tags": t}, "unit": "Bytes", "value_format": "%BYTES_SENT%"},
            ],
        },
    }


def file_logger(path: str) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": ACCESS_LOG_JSON},
        },
    }


# --- the OpenTelemetry telemetry mode (issue 13): access logs as Istio's envoyOtelAls ships them ----------------
OTLP_GRPC_CLUSTER = "otlp-grpc"  # meshscope's OTLP/gRPC receiver (HTTP/2), see bootstrap.build_bootstrap
OTEL_LOG_NAME = "otel_envoy_accesslog"  # Istio's default log name for an envoyOtelAls provider
# Istio's EnvoyTextLogFormat: the record body Istio sends by default
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% '
    '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% '
    '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n'
)


def otel_logger(w: Workload) -> dict[str, Any]:
    """Envoy's OpenTelemetry access logger over gRPC, shaped like Istio's envoyOtelAls provider.

    Body: Istio's default text line. Attributes: the provider's `logFormat.labels` that docs/cluster.md
    recommends: Istio's JSON access-log fields, plus the writer's identity (in Istio
    `%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%`, `%ENVIRONMENT(POD_NAMESPACE)%`, `%ENVIRONMENT(SERVICE_ACCOUNT)%`;
    the control plane knows them, so they are literal here).
    """
    labels = {**ACCESS_LOG_JSON, "workload": w.name, "namespace": w.namespace, "service_account": w.service_account}
    return {
        "name": "envoy.access_loggers.open_telemetry",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
            "log_name": OTEL_LOG_NAME,
            # a call that times out is dropped by Envoy with its records: 10 s rides out a receiver starved of CPU
            # (a loaded CI box), where 2 s lost every batch for minutes
            "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_GRPC_CLUSTER}, "timeout": "10s"},
            "body": {"string_value": ISTIO_TEXT_FORMAT},
            "attributes": {"values": [{"key": k, "value": {"string_value": v}} for k, v in labels.items()]},
        },
    }


def otel_logger_for(ctx: Any) -> dict[str, Any] | None:
    """The OpenTelemetry logger when the proxy's telemetry mode is `otel`, else None (file logs)."""
    return otel_logger(ctx.workload) if getattr(ctx, "access_log", "file") == "otel" else None


def request_logger(ctx: Any) -> dict[str, Any]:
    """The HTTP access logger of a proxy: JSON file (tailed) or OpenTelemetry over gRPC (no file)."""
    return otel_logger_for(ctx) or file_logger(ctx.log_path)


def listener_logger(path: str, otel: dict[str, Any] | None = None) -> dict[str, Any]:
    """Listener-level log: the only place a server-side TLS failure shows up (no HTTP stream exists).

    Only failed connections are logged (a response flag such as NR, or a transport
    failure reason); healthy connections already have their requests in the HCM log.
    In the OpenTelemetry mode the same records go through `otel` instead of the file.
    """
    log = dict(otel) if otel else file_logger(path)
    log["filter"] = {"or_filter": {"filters": [
        {"response_flag_filter": {}},
        {"extension_filter": {"name": "envoy.access_loggers.extension_filters.cel", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": "connection.transport_failure_reason != ''"}}},
    ]}}
    return log


def tracing(service_name: str, otlp_cluster: str | None, sampling: float = 100.0,
            grpc: bool = False) -> dict[str, Any] | None:
    """Envoy's OpenTelemetry tracer: OTLP/HTTP to `otlp_cluster`, or OTLP/gRPC (Istio's `opentelemetry` provider)."""
    if not otlp_cluster and not grpc:
        return None
    export: dict[str, Any] = (
        {"grpc_service": {"envoy_grpc": {"cluster_name": OTLP_GRPC_CLUSTER}, "timeout": "2s"}} if grpc else
        {"http_service": {"http_uri": {"uri": "/v1/traces", "cluster": otlp_cluster, "timeout": "2s"}}})
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "service_name": service_name,
                **export,
            },
        },
        "random_sampling": {"value": sampling},
        "spawn_upstream_span": True,
        "custom_tags": [{"tag": "istio.canonical_service", "literal": {"value": service_name.split(".")[0]}},
                        {"tag": "istio.mesh_id", "literal": {"value": "cluster.local"}}],
    }
