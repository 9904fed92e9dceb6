"""LDS: the sidecar's outbound and inbound listeners and the gateway's listeners.

Inbound listeners stand in for Istio's `virtualInbound`: a TLS inspector picks the
filter chain, so PeerAuthentication maps to which chains exist (STRICT: only the
mTLS chain, so a plaintext client finds no chain and is disconnected, which is
the `UC` the client sidecar reports; PERMISSIVE: both; DISABLE: plaintext only).
AuthorizationPolicies become two RBAC filters (DENY before ALLOW, each with its
own stat prefix). A listener-level access log records connections that failed
before any HTTP stream existed (TLS errors, no filter chain match).
"""
from __future__ import annotations

from typing import Any

from mesh.controlplane import asm, authz, telemetry
from mesh.controlplane.gateway_tls import TlsServer, gateway_tls_servers, https_ports
from mesh.controlplane.context import CERT_SECRET, OTLP_CLUSTER, ROOT_SECRET, ProxyContext, rest_source, sds
from mesh.controlplane.routes import OUTBOUND_ROUTE, inbound_route_config

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
FAULT = {"name": "envoy.filters.http.fault", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}
TLS_INSPECTOR = {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _hcm(ctx: ProxyContext, stat_prefix: str, direction: str, tags: dict[str, str], http_filters: list[dict[str, Any]],
         route: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "http_filters": http_filters,
        "access_log": [telemetry.request_logger(ctx), telemetry.stats_logger(tags)],
        "generate_request_id": True,
        "preserve_external_request_id": False,
        "normalize_path": True,
        "use_remote_address": False,  # on loopback every peer is 127.0.0.1; keep the client's XFF as sent
        "stream_idle_timeout": "0s",
        "server_name": "istio-envoy",
        "common_http_protocol_options": {"idle_timeout": "3600s"},
        **route, **(extra or {}),
    }
    w = ctx.workload
    tr = telemetry.tracing(f"{w.app}.{w.namespace}", OTLP_CLUSTER if ctx.tracing else None, ctx.sampling,
                           grpc=ctx.access_log == "otel")
    if tr:
        cfg["tracing"] = tr
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": cfg}


def _rds(name: str) -> dict[str, Any]:
    return {"rds": {"route_config_name": name, "config_source": rest_source()}}


def outbound_listener(ctx: ProxyContext) -> dict[str, Any]:
    w = ctx.workload
    breakers, breaker_hcm = asm.breaker_filters(ctx)  # client-side ASMCircuitBreaker: its equivalent Envoy setup
    hcm = _hcm(ctx, f"outbound_{w.outbound_port}", "outbound", telemetry.source_reporter_tags(w),
               [FAULT, *breakers, ROUTER], _rds(OUTBOUND_ROUTE), breaker_hcm)
    return {"@type": LISTENER_TYPE, "name": f"outbound_{w.outbound_port}", "address": _address(w.outbound_port),
            "traffic_direction": "OUTBOUND", "filter_chains": [{"name": "outbound", "filters": [hcm]}]}


def downstream_tls(ctx: ProxyContext) -> dict[str, Any]:
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {"tls_maximum_protocol_version": "TLSv1_3"},
            "tls_certificate_sds_secret_configs": [sds(CERT_SECRET)],
            "combined_validation_context": {
                "default_validation_context": {"match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"prefix": f"spiffe://{ctx.trust_domain}/"}}]},
                "validation_context_sds_secret_config": sds(ROOT_SECRET)},
        }}}


def inbound_listener(ctx: ProxyContext, container_port: int) -> dict[str, Any]:
    w = ctx.workload
    port = w.inbound_ports[container_port]
    mode = ctx.index.mtls_mode(w, container_port)
    services = ctx.registry.services_of(w)
    default_service = (services[0].hostname, services[0].name, services[0].namespace) if services else None
    rbac = authz.rbac_filters(ctx.index.authorization_policies(w), ctx.trust_domain)
    rbac += asm.local_ratelimit_filters(ctx)  # ASMLocalRateLimiter: after authorization, before routing
    route = {"route_config": inbound_route_config(container_port, default_service[0] if default_service else None)}
    chains = []
    if mode in ("STRICT", "PERMISSIVE"):
        hcm = _hcm(ctx, f"inbound_{container_port}", "inbound",
                   telemetry.destination_reporter_tags(w, True, default_service), [*rbac, ROUTER], route,
                   {"forward_client_cert_details": "SANITIZE_SET",
                    "set_current_client_cert_details": {"subject": True, "uri": True, "dns": True}})
        chains.append({"name": f"inbound_{container_port}_mtls", "filter_chain_match": {"transport_protocol": "tls"},
                       "transport_socket": downstream_tls(ctx), "filters": [hcm]})
    if mode in ("PERMISSIVE", "DISABLE"):
        hcm = _hcm(ctx, f"inbound_{container_port}", "inbound",
                   telemetry.destination_reporter_tags(w, False, default_service), [*rbac, ROUTER], route,
                   {"forward_client_cert_details": "SANITIZE"})
        chains.append({"name": f"inbound_{container_port}_plaintext",
                       "filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": [hcm]})
    return {"@type": LISTENER_TYPE, "name": f"inbound_{container_port}", "address": _address(port),
            "traffic_direction": "INBOUND", "listener_filters": [TLS_INSPECTOR],
            "listener_filters_timeout": "1s", "continue_on_listener_filters_timeout": True,
            "filter_chains": chains,
            "metadata": {"filter_metadata": {"istio": {"mtls_mode": mode}}},
            "access_log": [telemetry.listener_logger(ctx.log_path, telemetry.otel_logger_for(ctx))]}


def _gateway_tls_socket(server: TlsServer) -> dict[str, Any]:
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["http/1.1"],
            "tls_certificates": [{"certificate_chain": {"inline_string": server.cert_pem},
                                  "private_key": {"inline_string": server.key_pem}}]}}}


def gateway_listener(ctx: ProxyContext, server_port: int, local_port: int,
                     tls: list[TlsServer] | None = None) -> dict[str, Any]:
    """One listener per Gateway server port; HTTPS servers get a TLS filter chain each (matched by SNI)."""
    w = ctx.workload
    hcm = _hcm(ctx, f"outbound_{server_port}", "gateway", telemetry.source_reporter_tags(w), [FAULT, ROUTER],
               _rds(f"http.{server_port}"))
    listener = {"@type": LISTENER_TYPE, "name": f"0.0.0.0_{server_port}", "address": _address(local_port),
                "traffic_direction": "OUTBOUND"}
    if not tls:
        listener["filter_chains"] = [{"name": f"http.{server_port}", "filters": [hcm]}]
        return listener
    listener["listener_filters"] = [TLS_INSPECTOR]
    listener["filter_chains"] = [
        {"name": f"https.{server_port}.{i}",
         "filter_chain_match": {"server_names": list(s.server_names)} if s.server_names else {},
         "transport_socket": _gateway_tls_socket(s), "filters": [hcm]}
        for i, s in enumerate(tls)]
    return listener


def build_listeners(ctx: ProxyContext, gateway_ports: dict[int, int] | None = None) -> list[dict[str, Any]]:
    w = ctx.workload
    if w.is_gateway:
        tls_by_port: dict[int, list[TlsServer]] = {}
        for s in gateway_tls_servers(ctx):
            tls_by_port.setdefault(s.port, []).append(s)
        https = https_ports(ctx)  # never serve an HTTPS port in plaintext when its credential is missing
        return [gateway_listener(ctx, sp, lp, tls_by_port.get(sp)) for sp, lp in sorted((gateway_ports or {}).items())
                if sp not in https or sp in tls_by_port]
    return [outbound_listener(ctx)] + [inbound_listener(ctx, cp) for cp in sorted(w.inbound_ports)]
