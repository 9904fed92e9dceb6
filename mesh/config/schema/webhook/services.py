"""DestinationRule, ServiceEntry, WorkloadEntry and WorkloadGroup checks of Istio's webhook (validation.go)."""
from __future__ import annotations

from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue
from mesh.config.schema.webhook.common import (LABEL, check_export_to, check_hosts, domain_error, is_ip, is_set,
                                               list_at, map_at)

def destination_rule(spec: dict[str, Any], out: list[Issue]) -> None:
    # Duplicate subset names are the webhook's too, but destinationrule.Subsets reports them (MS1103).
    for i, s in enumerate(list_at(spec, "subsets")):
        name = s.get("name") if isinstance(s, dict) else None
        if isinstance(name, str) and name:
            if not LABEL.match(name):
                out.append(Issue(f"spec/subsets[{i}]/name", SEMANTIC, f"spec.subsets[{i}].name: {name!r} is not a "
                                                                      "valid subset name (a DNS-1123 label)"))
    host = spec.get("host")
    if isinstance(host, str) and host and host != "*" and not is_ip(host):
        err = domain_error(host)
        if err:
            out.append(Issue("spec/host", SEMANTIC, f"spec.host: {err}"))
    check_export_to(spec, out)


_HTTP_OR_TLS = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB", "HTTPS", "TLS"})


def service_entry(spec: dict[str, Any], out: list[Issue]) -> None:
    # Unknown port protocols and invalid addresses are the webhook's too, but serviceentry.Validity reports
    # them (MS1305, MS1304).
    check_hosts(spec, "hosts", out, allow_ip=False)
    check_export_to(spec, out)
    resolution = spec.get("resolution") or "NONE"
    hosts = [h for h in list_at(spec, "hosts") if isinstance(h, str)]
    ports = [p for p in list_at(spec, "ports") if isinstance(p, dict)]
    port_names = {p.get("name") for p in ports if isinstance(p.get("name"), str)}
    for i, ep in enumerate(list_at(spec, "endpoints")):
        for name in map_at(ep, "ports"):
            if name not in port_names:
                out.append(Issue(f"spec/endpoints[{i}]/ports/{name}", SEMANTIC, f"spec.endpoints[{i}].ports: endpoint "
                                 f"port {name} is not defined by the service entry (ports: "
                                 f"{', '.join(sorted(str(n) for n in port_names if n)) or 'none'})"))
        address = ep.get("address") if isinstance(ep, dict) else None
        if isinstance(address, str) and address and not address.startswith("unix://") and not is_ip(address):
            if resolution == "STATIC" or domain_error(address, wildcard=False):
                out.append(Issue(f"spec/endpoints[{i}]/address", SEMANTIC, f"spec.endpoints[{i}].address: endpoint "
                                 f"address {address!r} is not a valid "
                                 f"{'IP address' if resolution == 'STATIC' else 'FQDN or IP address'}"))
    if resolution != "NONE" and len(hosts) > 1:
        for i, p in enumerate(ports):
            proto = p.get("protocol")
            if not (isinstance(proto, str) and proto.upper() in _HTTP_OR_TLS):
                out.append(Issue(f"spec/ports[{i}]", SEMANTIC, f"spec.ports[{i}]: multiple hosts provided with a "
                                 f"non-HTTP, non-TLS port (protocol {proto or 'unset'}); Istio cannot tell the hosts "
                                 "apart on it"))
                break
    if resolution == "DYNAMIC_DNS":
        for i, h in enumerate(hosts):
            if not h.startswith("*"):
                out.append(Issue(f"spec/hosts[{i}]", SEMANTIC, f"spec.hosts[{i}]: host must be wildcarded for "
                                                               "resolution mode DYNAMIC_DNS"))
        for key in ("addresses", "endpoints"):
            if is_set(spec, key):
                out.append(Issue(f"spec/{key}", SEMANTIC, f"spec.{key} cannot be set for resolution type "
                                                          "DYNAMIC_DNS"))



def workload_entry(spec: dict[str, Any], out: list[Issue], prefix: str = "spec") -> None:
    """A WorkloadEntry (or a ServiceEntry endpoint, or a WorkloadGroup template): address and port names."""
    address = spec.get("address")
    dotted = prefix.replace("/", ".")
    if isinstance(address, str) and address and not address.startswith("unix://") and not is_ip(address) \
            and domain_error(address, wildcard=False):
        out.append(Issue(f"{prefix}/address", SEMANTIC, f"{dotted}.address: endpoint address {address!r} is not a "
                                                        "valid FQDN or an IP address"))
    for name in map_at(spec, "ports"):
        if not (isinstance(name, str) and LABEL.match(name) and len(name) <= 63):
            out.append(Issue(f"{prefix}/ports/{name}", SEMANTIC, f"{dotted}.ports: invalid port name {name!r} (a "
                                                                 "DNS-1123 label)"))


def workload_group(spec: dict[str, Any], out: list[Issue]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        workload_entry(template, out, "spec/template")
    probe = map_at(spec, "probe")
    for key in ("periodSeconds", "initialDelaySeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        v = probe.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            out.append(Issue(f"spec/probe/{key}", SEMANTIC, f"spec.probe.{key} must be non-negative, got {v}"))
