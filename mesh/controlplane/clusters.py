"""CDS: Envoy clusters for one sidecar, with Istio's naming and DestinationRule semantics.

Outbound clusters are `outbound|<port>|<subset>|<fqdn>` with the service's workloads
as STATIC endpoints (their sidecars' inbound ports). Every endpoint carries Istio
metadata (workload, app, version, principal) for telemetry, and the
`tlsMode` label auto-mTLS matches on: Istio sends mTLS to endpoints that have a
sidecar unless their PeerAuthentication says DISABLE, and a DestinationRule's
`tls.mode` overrides that. Inbound clusters `inbound|<port>||` reach the local app.
"""
from __future__ import annotations

from typing import Any

from mesh.config.traffic_policy import tls_mode as client_tls_mode
from mesh.controlplane import policy
from mesh.controlplane.ca import spiffe_id
from mesh.controlplane.context import (CERT_SECRET, ROOT_SECRET, UINT32_MAX, ConfigError, ProxyContext, duration,
                                       sds)
from mesh.controlplane.registry import Service, ServicePort, Workload

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
LB_POLICIES = {"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_REQUEST": "LEAST_REQUEST", "LEAST_CONN": "LEAST_REQUEST",
               "RANDOM": "RANDOM", "PASSTHROUGH": "CLUSTER_PROVIDED"}


def cluster_name(direction: str, port: int, subset: str, host: str) -> str:
    return f"{direction}|{port}|{subset}|{host}"


def sni(port: int, subset: str, host: str) -> str:
    return f"outbound_.{port}_.{subset}_.{host}"


def upstream_tls(ctx: ProxyContext, port: int, subset: str, host: str, sans: list[str]) -> dict[str, Any]:
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": sni(port, subset, host),
        "common_tls_context": {
            "tls_params": {"tls_maximum_protocol_version": "TLSv1_3"},
            "tls_certificate_sds_secret_configs": [sds(CERT_SECRET)],
            "combined_validation_context": {
                "default_validation_context": {"match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"exact": s}} for s in sans]},
                "validation_context_sds_secret_config": sds(ROOT_SECRET)},
        }}}


def _endpoint(ctx: ProxyContext, w: Workload, port: int, tls_mode: str) -> dict[str, Any]:
    return {
        "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
        "metadata": {"filter_metadata": {
            "istio": {"workload": w.name, "namespace": w.namespace, "app": w.app, "version": w.version,
                      "principal": spiffe_id(w.namespace, w.service_account, ctx.trust_domain)},
            "envoy.transport_socket_match": {"tlsMode": tls_mode},
        }},
    }


def _apply_policy(cluster: dict[str, Any], tp: dict[str, Any], where: str) -> None:
    cp = tp.get("connectionPool") or {}
    tcp, http = cp.get("tcp") or {}, cp.get("http") or {}
    th = cluster["circuit_breakers"]["thresholds"][0]
    for src, key, dst in ((tcp, "maxConnections", "max_connections"), (http, "http1MaxPendingRequests", "max_pending_requests"),
                          (http, "http2MaxRequests", "max_requests"), (http, "maxRetries", "max_retries")):
        if key in src:
            if not isinstance(src[key], int) or src[key] < 0:
                raise ConfigError(f"{where}.connectionPool: {key} must be a non-negative integer, got {src[key]!r}")
            th[dst] = src[key] or UINT32_MAX
    if "connectTimeout" in tcp:
        cluster["connect_timeout"] = duration(tcp["connectTimeout"], f"{where}.connectionPool.tcp.connectTimeout")
    opts = cluster["typed_extension_protocol_options"][HTTP_OPTIONS]
    common = opts.setdefault("common_http_protocol_options", {})
    if http.get("maxRequestsPerConnection"):
        common["max_requests_per_connection"] = int(http["maxRequestsPerConnection"])
    if "idleTimeout" in http:
        common["idle_timeout"] = duration(http["idleTimeout"], f"{where}.connectionPool.http.idleTimeout")
    lb = (tp.get("loadBalancer") or {}).get("simple")
    if lb:
        if lb not in LB_POLICIES:
            raise ConfigError(f"{where}.loadBalancer.simple: unknown policy {lb!r}")
        cluster["lb_policy"] = LB_POLICIES[lb]
    od = tp.get("outlierDetection")
    if isinstance(od, dict):
        out: dict[str, Any] = {"enforcing_success_rate": 0}
        c5 = od.get("consecutive5xxErrors", od.get("consecutiveErrors"))
        if c5 is not None:
            out["consecutive_5xx"] = int(c5)
            out["enforcing_consecutive_5xx"] = 100 if int(c5) > 0 else 0
        else:
            out["enforcing_consecutive_5xx"] = 0
        if od.get("consecutiveGatewayErrors") is not None:
            out["consecutive_gateway_failure"] = int(od["consecutiveGatewayErrors"])
            out["enforcing_consecutive_gateway_failure"] = 100
        for key, dst in (("interval", "interval"), ("baseEjectionTime", "base_ejection_time")):
            if key in od:
                out[dst] = duration(od[key], f"{where}.outlierDetection.{key}")
        if "maxEjectionPercent" in od:
            out["max_ejection_percent"] = int(od["maxEjectionPercent"])
        cluster["outlier_detection"] = out
        # Istio maps minHealthPercent (default 0) to the panic threshold, so ejected hosts really stop serving
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": float(od.get("minHealthPercent", 0))}}


def outbound_cluster(ctx: ProxyContext, svc: Service, port: ServicePort, subset: str, labels: dict[str, str] | None,
                     dr) -> dict[str, Any]:
    host = svc.hostname
    name = cluster_name("outbound", port.port, subset, host)
    where = f"DestinationRule {dr.namespace}/{dr.name} spec.trafficPolicy" if dr is not None else name
    tp = policy.traffic_policy(dr, port.port, subset or None)
    eps = ctx.registry.endpoints(svc, port, labels)
    tls_mode = client_tls_mode(tp.get("tls")) or ""  # a tls block without a mode is DISABLE, as in Istio
    lb_endpoints = []
    for w, p in eps:
        server_mode = ctx.index.mtls_mode(w, port.target_port)
        lb_endpoints.append(_endpoint(ctx, w, p, "disabled" if server_mode == "DISABLE" else "istio"))
    sans = sorted({spiffe_id(w.namespace, w.service_account, ctx.trust_domain) for w, _ in eps}) or \
        [f"spiffe://{ctx.trust_domain}/ns/{svc.namespace}/sa/default"]
    cluster: dict[str, Any] = {
        "@type": CLUSTER_TYPE,
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else []},
        "metadata": {"filter_metadata": {"istio": {
            "service": host, "service_name": svc.name, "service_namespace": svc.namespace, "subset": subset,
            **({"config": f"/apis/networking.istio.io/v1/namespaces/{dr.namespace}/destination-rule/{dr.name}"} if dr else {})}}},
        "circuit_breakers": {"thresholds": [{"max_connections": UINT32_MAX, "max_pending_requests": UINT32_MAX,
                                             "max_requests": UINT32_MAX, "max_retries": UINT32_MAX,
                                             "track_remaining": True}]},
        "typed_extension_protocol_options": {HTTP_OPTIONS: {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {}}}},
    }
    _apply_policy(cluster, tp, where)
    tls = upstream_tls(ctx, port.port, subset, host, sans)
    if tls_mode == "DISABLE":
        pass
    elif tls_mode == "ISTIO_MUTUAL":
        cluster["transport_socket"] = tls
    elif tls_mode in ("SIMPLE", "MUTUAL"):
        ctx.warnings.append(f"{where}.tls.mode {tls_mode}: TLS origination is not supported by the bundled mesh; "
                            "sending plaintext")
    elif tls_mode not in ("",):
        raise ConfigError(f"{where}.tls.mode: unknown mode {tls_mode!r}")
    else:  # auto mTLS
        cluster["transport_socket_matches"] = [
            {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": tls},
            {"name": "tlsMode-disabled", "match": {},
             "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
                 "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}},
        ]
    return cluster


def inbound_cluster(container_port: int, app_port: int) -> dict[str, Any]:
    name = cluster_name("inbound", container_port, "", "")
    return {
        "@type": CLUSTER_TYPE, "name": name, "type": "STATIC", "connect_timeout": "10s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": app_port}}}}]}]},
        "circuit_breakers": {"thresholds": [{"max_connections": UINT32_MAX, "max_pending_requests": UINT32_MAX,
                                             "max_requests": UINT32_MAX, "max_retries": UINT32_MAX}]},
    }


def build_clusters(ctx: ProxyContext) -> list[dict[str, Any]]:
    """Every outbound cluster this proxy may route to, plus its inbound clusters."""
    out = []
    for svc in ctx.registry.services:
        dr = ctx.index.destination_rule(svc.hostname, ctx.client_namespace, svc.namespace, ctx.workload.labels)
        for port in svc.ports:
            if port.protocol != "http":
                continue
            out.append(outbound_cluster(ctx, svc, port, "", None, dr))
            for subset, labels in policy.subsets(dr):
                out.append(outbound_cluster(ctx, svc, port, subset, labels, dr))
    w = ctx.workload
    for cport, app_port in sorted(w.app_ports.items()):
        out.append(inbound_cluster(cport, app_port))
    return out
