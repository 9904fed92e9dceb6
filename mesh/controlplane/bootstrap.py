"""The static bootstrap each Envoy starts with: identity, admin, where xDS and OTLP are, stats naming.

Envoy's admin API (config dumps, /quitquitquit, log levels ...) listens only on a unix
socket with mode 0600 in the sidecar's private run directory, so other local users cannot
reach it. What a scraper and a readiness check need is served on the workload's stats port
by a static listener, as Istio splits 15090 and 15021 from the admin port: `GET
/stats/prometheus` and `GET /ready` are proxied to the admin socket, anything else is 404.

The xDS cluster speaks mutual TLS: Envoy presents its workload certificate (from a
0600 file in its own run directory, read through filesystem SDS so a rotated
certificate is picked up without a restart) and accepts only a server certificate
signed by the mesh root that carries istiod's SPIFFE id.

Two details matter for telemetry:
- stat tags: Envoy's default extractor cuts a cluster name at its first dot, so
  `outbound|9080||reviews.bookinfo.svc.cluster.local` would become a mangled stat;
  Istio's `cluster_name` regex keeps the whole name (the other default tags are
  re-listed by name only).
- the `wasmcustom` stat namespace: Envoy prints stats under a registered custom
  namespace without the `envoy_` prefix. The Wasm service extension registers it;
  a tiny valid proxy-wasm module (an ABI marker and an allocator, no logic) is
  enough, so `istio_requests_total` reads exactly as in Istio.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from mesh.controlplane.ca import IssuedCert
from mesh.controlplane.context import OTLP_CLUSTER, XDS_CLUSTER, rest_source
from mesh.controlplane.registry import Workload
from mesh.controlplane.telemetry import BYTES_BUCKETS, DURATION_BUCKETS, OTLP_GRPC_CLUSTER

DEFAULT_TAGS = ("envoy.http_conn_manager_prefix", "envoy.listener_address", "envoy.response_code",
                "envoy.response_code_class", "envoy.tcp_prefix", "envoy.http_user_agent", "envoy.virtual_host",
                "envoy.virtual_cluster", "envoy.rds_route_config", "envoy.worker_id")
ISTIO_CLUSTER_TAG = {"tag_name": "envoy.cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"}
XDS_CLIENT_SECRET = "xds-client-cert"
XDS_CLIENT_FILE = "xds-client-cert.json"  # in the sidecar's own run directory, mode 0600
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
ADMIN_CLUSTER = "admin_socket"
STATS_LISTENER = "meshscope_stats"
STATS_PATHS = ("/stats/prometheus", "/ready")  # what the stats port passes on to the admin API


def uleb128(n: int) -> bytes:
    """An unsigned LEB128 integer: WebAssembly's section sizes, and protobuf's varint (the same encoding)."""
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def namespace_wasm() -> bytes:
    """A minimal proxy-wasm module: exports memory, the ABI version marker and an allocator."""
    def sec(i: int, data: bytes) -> bytes:
        return bytes([i]) + uleb128(len(data)) + data

    def vec(items: list[bytes]) -> bytes:
        return uleb128(len(items)) + b"".join(items)

    def name(s: str) -> bytes:
        return uleb128(len(s)) + s.encode()

    types = vec([b"\x60\x00\x00", b"\x60\x01\x7f\x01\x7f"])  # () -> () ; (i32) -> i32
    funcs = vec([b"\x00", b"\x01"])
    memory = vec([b"\x00\x01"])
    exports = vec([name("memory") + b"\x02\x00", name("proxy_abi_version_0_2_1") + b"\x00\x00",
                   name("malloc") + b"\x00\x01", name("proxy_on_memory_allocate") + b"\x00\x01"])
    bodies = [b"\x00\x0b", b"\x00\x41\x00\x0b"]  # nop ; i32.const 0
    code = vec([uleb128(len(b)) + b for b in bodies])
    return b"\x00asm\x01\x00\x00\x00" + sec(1, types) + sec(3, funcs) + sec(5, memory) + sec(7, exports) + sec(10, code)


def _static_cluster(name: str, port: int, connect_timeout: str = "1s") -> dict[str, Any]:
    return {"name": name, "type": "STATIC", "connect_timeout": connect_timeout,
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def stats_listener(port: int) -> dict[str, Any]:
    """127.0.0.1:port answering GET /stats/prometheus and GET /ready from the admin socket, 404 otherwise."""
    get_only = [{"name": ":method", "string_match": {"exact": "GET"}}]
    routes = [{"match": {"path": p, "headers": get_only}, "route": {"cluster": ADMIN_CLUSTER}} for p in STATS_PATHS]
    routes.append({"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": {
        "inline_string": f"this port serves only GET {' and GET '.join(STATS_PATHS)}\n"}}})
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "stats", "codec_type": "HTTP1",
           "route_config": {"name": STATS_LISTENER, "virtual_hosts": [{"name": "stats", "domains": ["*"], "routes": routes}]},
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    return {"name": STATS_LISTENER, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def admin_cluster(socket: Path) -> dict[str, Any]:
    return {"name": ADMIN_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": ADMIN_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"pipe": {"path": str(socket)}}}}]}]}}


def xds_client_secret(cert: IssuedCert) -> dict[str, Any]:
    """The filesystem-SDS file holding a sidecar's xDS client certificate and key."""
    return {"version_info": str(cert.serial), "resources": [{
        "@type": SECRET_TYPE, "name": XDS_CLIENT_SECRET, "tls_certificate": {
            "certificate_chain": {"inline_string": cert.cert_pem},
            "private_key": {"inline_string": cert.key_pem}}}]}


def xds_transport_socket(credentials_dir: Path, root_pem: str, server_identity: str) -> dict[str, Any]:
    """Mutual TLS to the control plane: our certificate from the watched file, theirs checked by root and SAN."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
            "tls_certificate_sds_secret_configs": [{"name": XDS_CLIENT_SECRET, "sds_config": {
                "path_config_source": {"path": str(credentials_dir / XDS_CLIENT_FILE),
                                       "watched_directory": {"path": str(credentials_dir)}},
                "resource_api_version": "V3"}}],
            "validation_context": {
                "trusted_ca": {"inline_string": root_pem},
                "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": server_identity}}]}}}}


def build_bootstrap(w: Workload, xds_port: int, credentials_dir: Path, root_pem: str, server_identity: str,
                    otlp: tuple[str, int] | None = None, admin_socket: Path | None = None,
                    otlp_grpc: tuple[str, int] | None = None) -> dict[str, Any]:
    """`credentials_dir` must hold the file `xds_client_secret` describes before Envoy starts.

    The admin socket defaults to `credentials_dir/admin.sock`; pass a shorter path when that one
    would not fit a unix socket address (108 bytes).
    """
    admin_socket = admin_socket or credentials_dir / "admin.sock"
    # the connect timeout covers the TLS handshake, which waits for CPU while many Envoys start at once
    xds = _static_cluster(XDS_CLUSTER, xds_port, connect_timeout="5s")
    xds["transport_socket"] = xds_transport_socket(credentials_dir, root_pem, server_identity)
    clusters = [xds, admin_cluster(admin_socket)]
    if otlp:
        c = _static_cluster(OTLP_CLUSTER, otlp[1])
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["address"] = otlp[0]
        clusters.append(c)
    if otlp_grpc:  # meshscope's OTLP/gRPC receiver: access logs (OpenTelemetry logger) and traces, over HTTP/2
        c = _static_cluster(OTLP_GRPC_CLUSTER, otlp_grpc[1])
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["address"] = otlp_grpc[0]
        c["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}
        clusters.append(c)
    return {
        "node": {"id": w.node_id, "cluster": f"{w.app}.{w.namespace}",
                 "metadata": {"NAME": w.name, "NAMESPACE": w.namespace, "LABELS": w.labels,
                              "SERVICE_ACCOUNT": w.service_account, "WORKLOAD_NAME": w.name}},
        "admin": {"address": {"pipe": {"path": str(admin_socket), "mode": 0o600}}},
        "static_resources": {"clusters": clusters, "listeners": [stats_listener(w.stats_port)]},
        "dynamic_resources": {"lds_config": rest_source(), "cds_config": rest_source()},
        "stats_flush_interval": "1s",  # histograms reach /stats/prometheus on flush; 1 s keeps them fresh
        # Envoy's OpenTelemetry tracer exports every 5 spans by default: at 5 rps that is ~10 small exports
        # a second into meshscope, whose per-export cost (decode, table, store) was its largest CPU item.
        # One export per proxy every 3 s (or per 256 spans) keeps traces 3 s fresh at a fraction of the cost.
        "layered_runtime": {"layers": [
            {"name": "meshscope", "static_layer": {"tracing.opentelemetry.min_flush_spans": 256,
                                                   "tracing.opentelemetry.flush_interval_ms": 3000}},
            {"name": "admin", "admin_layer": {}}]},
        "stats_config": {
            "use_all_default_tags": False,
            "stats_tags": [ISTIO_CLUSTER_TAG] + [{"tag_name": t} for t in DEFAULT_TAGS],
            "histogram_bucket_settings": [
                {"match": {"prefix": "wasmcustom.istio_request_duration_milliseconds"}, "buckets": DURATION_BUCKETS},
                {"match": {"prefix": "wasmcustom.istio_request_bytes"}, "buckets": BYTES_BUCKETS},
                {"match": {"prefix": "wasmcustom.istio_response_bytes"}, "buckets": BYTES_BUCKETS},
            ],
        },
        "bootstrap_extensions": [{"name": "envoy.bootstrap.wasm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService", "singleton": True,
            "config": {"name": "meshscope-stats-namespace", "vm_config": {
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"inline_bytes": base64.b64encode(namespace_wasm()).decode()}}}}}}],
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
                         "DownstreamConnectionsConfig",
                "max_active_downstream_connections": 50000}}]},
    }
