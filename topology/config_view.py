"""What the config snapshot says about a graph node: its labels, mTLS mode, VirtualServices, DestinationRules.

Only this module knows the Istio object shapes, so config badges and mTLS
intent agree on how a host or workload is matched. These functions answer one
question by scanning the snapshot: they are the reference definition.
Appenders ask `topology.config_index.ConfigIndex`, which answers the same
questions from indexes built once per snapshot (tests hold the two equal).
"""
from __future__ import annotations

from typing import Any

from mesh.config import hosts
from topology import attrs as A
from topology import model

MODES = ("STRICT", "PERMISSIVE", "DISABLE")


def node_hosts(snapshot: Any, d: dict) -> list[str]:
    """FQDNs a node serves: the services it was asked for, or the service it is."""
    out = [snapshot.fqdn(svc, ns) for _, ns, svc in d.get(A.DEST_SERVICES) or []]
    if d.get(A.NODE_TYPE) == model.NT_SERVICE and model.is_ok(d.get(A.SERVICE)) and model.is_ok(d.get(A.NAMESPACE)):
        out.append(snapshot.fqdn(d[A.SERVICE], d[A.NAMESPACE]))
    return sorted(set(out))


def node_labels(snapshot: Any, d: dict) -> dict[str, str]:
    """Labels of the node's workload from config, else the app/version the telemetry named."""
    ns, wl = d.get(A.NAMESPACE), d.get(A.WORKLOAD)
    if model.is_ok(wl):
        for w in snapshot.workloads_in(ns):
            if w.name == wl:
                return dict(w.labels)
    return telemetry_labels(d)


def telemetry_labels(d: dict) -> dict[str, str]:
    """The app/version labels the telemetry named, for a node with no workload in config."""
    labels = {}
    if model.is_ok(d.get(A.APP)):
        labels["app"] = d[A.APP]
    if model.is_ok(d.get(A.VERSION)):
        labels["version"] = d[A.VERSION]
    return labels


def _mode(pa: Any) -> str | None:
    mtls = (pa.spec or {}).get("mtls")
    mode = mtls.get("mode") if isinstance(mtls, dict) else None
    return mode if mode in MODES else None


def mtls_mode(snapshot: Any, namespace: str, labels: dict[str, str]) -> str | None:
    """Effective PeerAuthentication mode for a workload: workload selector > namespace > mesh-wide.

    Returns None when no PeerAuthentication applies (Istio then runs PERMISSIVE).
    UNSET at one level inherits from the next, as Istio does.
    """
    root = snapshot.mesh_config.root_namespace
    pas = snapshot.of_kind("PeerAuthentication")
    scoped = [pa for pa in pas if pa.namespace == namespace and (pa.spec or {}).get("selector")
              and _selects(pa.spec["selector"], labels)]
    ns_wide = [pa for pa in pas if pa.namespace == namespace and not (pa.spec or {}).get("selector")]
    mesh = [pa for pa in pas if pa.namespace == root and not (pa.spec or {}).get("selector")]
    for level in (scoped, ns_wide, mesh):
        for pa in sorted(level, key=lambda p: p.name):
            mode = _mode(pa)
            if mode:
                return mode
    return None


def _selects(selector: Any, labels: dict[str, str]) -> bool:
    match = (selector.get("matchLabels") if isinstance(selector, dict) else None) or {}
    return isinstance(match, dict) and bool(match) and all(labels.get(k) == str(v) for k, v in match.items())


def object_hosts(obj: Any) -> list[str]:
    """The hosts a VirtualService (`hosts`) or DestinationRule (`host`) names, as written."""
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    value = spec.get("hosts") or ([spec.get("host")] if spec.get("host") else [])
    if isinstance(value, str):
        value = [value]
    return [h for h in value if isinstance(h, str)] if isinstance(value, (list, tuple)) else []


def mesh_bound(vs: Any) -> bool:
    """Whether a VirtualService shapes sidecar traffic (no gateways, or the reserved `mesh` gateway)."""
    gateways = (vs.spec or {}).get("gateways") or []
    return not gateways or "mesh" in gateways


def _applies(snapshot: Any, obj: Any, host: str) -> bool:
    return any(hosts.host_covers(snapshot.fqdn(h, obj.namespace), host) for h in object_hosts(obj))


def virtual_services(snapshot: Any, host: str) -> list[Any]:
    """Mesh-bound VirtualServices for a host (gateway-only ones do not shape sidecar traffic)."""
    return [vs for vs in snapshot.of_kind("VirtualService") if mesh_bound(vs) and _applies(snapshot, vs, host)]


def destination_rules(snapshot: Any, host: str) -> list[Any]:
    return [dr for dr in snapshot.of_kind("DestinationRule") if _applies(snapshot, dr, host)]


def vs_badges(vs: Any) -> set[str]:
    out = {"VS"}
    for route in (vs.spec or {}).get("http") or []:
        if not isinstance(route, dict):
            continue
        if route.get("fault"):
            out.add("FAULT")
        if route.get("timeout"):
            out.add("TIMEOUT")
        if route.get("mirror") or route.get("mirrors"):
            out.add("MIRROR")
        if route.get("retries"):
            out.add("RETRY")
        dests = route.get("route") or []
        if len(dests) > 1:
            out.add("SHIFT")
        if route.get("match"):
            out.add("ROUTING")
    return out


def dr_badges(dr: Any, version: str | None = None) -> set[str]:
    out = {"DR"}
    policies = [(dr.spec or {}).get("trafficPolicy") or {}]
    for subset in (dr.spec or {}).get("subsets") or []:
        if isinstance(subset, dict) and (version is None or (subset.get("labels") or {}).get("version") in (None, version)):
            policies.append(subset.get("trafficPolicy") or {})
    for p in policies:
        if isinstance(p, dict) and (p.get("connectionPool") or p.get("outlierDetection")):
            out.add("CB")
        tls = (p.get("tls") or {}).get("mode") if isinstance(p, dict) else None
        if tls:
            out.add(f"TLS_{tls}")
    return out
