"""Istio config -> the Envoy resources of every proxy, in one pure function.

`translate` never touches a socket or a process: it takes the config objects, the
registry and each workload's certificate and returns plain JSON-ready dicts per
node, so it can be tested (and pre-validated) without Envoy. Any problem the
translator finds raises `ConfigError` naming the object and field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.config.model import ConfigObject
from mesh.controlplane import clusters, listeners, routes, secrets
from mesh.controlplane.ca import IssuedCert
from mesh.controlplane.context import ConfigError, ProxyContext
from mesh.controlplane.policy import ConfigIndex
from mesh.controlplane.registry import Registry

LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SDS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# Kinds the model loads (and `analyze`, the diagnoser and the UI read) that the bundled mesh's
# sidecars do not act on: an object of these kinds is kept, with a warning saying so.
NOT_ENFORCED = {
    "ServiceEntry": "no egress to hosts outside the mesh",
    "Sidecar": "every sidecar still sees every service",
    "RequestAuthentication": "JWTs are not validated",
    "EnvoyFilter": "Envoy config is not patched",
    "WorkloadEntry": "no workloads outside the bundled mesh",
    "WorkloadGroup": "no workloads outside the bundled mesh",
    "Telemetry": "the standard metrics, logs and traces are always on",
    "WasmPlugin": "no Wasm plugins are loaded",
    "ProxyConfig": "the proxies keep their built-in settings",
}


def not_enforced(objects: list[ConfigObject]) -> list[str]:
    """One warning per object of a kind the bundled mesh keeps but does not enforce."""
    return [f"{o.ref}: not enforced by the bundled mesh ({NOT_ENFORCED[o.kind]}); kept for analysis and the UI"
            for o in objects if o.kind in NOT_ENFORCED]


@dataclass
class ProxyResources:
    """Everything one proxy is served, by xDS type URL and resource name."""

    node_id: str
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, type_url: str, items: list[dict[str, Any]]) -> None:
        bucket = self.resources.setdefault(type_url, {})
        for r in items:
            bucket[r["name"]] = r


def translate(objects: list[ConfigObject], registry: Registry, certs: dict[str, IssuedCert], root_pem: str,
              log_dir: Path, tracing: bool = False, sampling: float = 100.0,
              trust_domain: str = "cluster.local", access_log: str = "file") -> dict[str, ProxyResources]:
    """Resources for every workload in `registry` (keyed by node id); raises ConfigError on bad config."""
    index = ConfigIndex(objects)
    out: dict[str, ProxyResources] = {}
    errors: list[str] = []
    for w in registry.workloads:
        ctx = ProxyContext(w, registry, index, str(log_dir / f"{w.namespace}.{w.name}.log"), trust_domain,
                           tracing, sampling, access_log=access_log)
        res = ProxyResources(w.node_id)
        try:
            res.add(CDS, clusters.build_clusters(ctx))
            if w.is_gateway:
                rcs = routes.gateway_route_configs(ctx)
                res.add(RDS, list(rcs.values()))
                ports = {sp: registry.gateway_ports[sp] for sp in rcs if sp in registry.gateway_ports}
                res.add(LDS, listeners.build_listeners(ctx, ports))
            else:
                res.add(RDS, [routes.outbound_route_config(ctx)])
                res.add(LDS, listeners.build_listeners(ctx))
            cert = certs.get(w.key)
            if cert is not None:
                res.add(SDS, secrets.build_secrets(cert, root_pem))
        except ConfigError as exc:
            if str(exc) not in errors:
                errors.append(str(exc))
            continue
        res.warnings = sorted(set(ctx.warnings))
        out[w.node_id] = res
    if errors:
        raise ConfigError("; ".join(errors))
    return out
