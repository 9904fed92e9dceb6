"""Node identity: Kiali's node keys and the ids derived from them, in one place.

A node's id is the sha256 hex of its key, exactly as Kiali builds it, so our
graphs compare with Kiali's golden files and stay stable across refreshes.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

UNKNOWN = "unknown"
PASSTHROUGH = "PassthroughCluster"
BLACKHOLE = "BlackHoleCluster"

# graph types
WORKLOAD = "workload"
APP = "app"
VERSIONED_APP = "versionedApp"
SERVICE = "service"
GRAPH_TYPES = (WORKLOAD, APP, VERSIONED_APP, SERVICE)

# node types
NT_WORKLOAD = "workload"
NT_APP = "app"
NT_SERVICE = "service"
NT_UNKNOWN = "unknown"
NT_BOX = "box"


def is_ok(value: str | None) -> bool:
    """A label value that names something (Istio writes "unknown" for what it does not know)."""
    return bool(value) and value != UNKNOWN


@lru_cache(maxsize=1 << 16)
def hash_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def node_key(cluster: str, service_ns: str, service: str, workload_ns: str, workload: str,
             app: str, version: str, graph_type: str) -> tuple[str, str] | None:
    """(key, node type) for one end of a series, or None when nothing identifies it.

    Mirrors Kiali's rules: the unknown source, one "unknown" service per
    namespace, workload graphs use workload (else service) nodes, app graphs
    use app nodes and fall back to workload then service.
    """
    namespace = workload_ns if is_ok(workload_ns) else service_ns
    if namespace == UNKNOWN and workload == UNKNOWN and app == UNKNOWN and service == "":
        return f"{cluster}_unknown_source", NT_UNKNOWN
    if workload == UNKNOWN and app == UNKNOWN and service == UNKNOWN:
        return f"svc_{cluster}_{namespace}_unknown", NT_SERVICE
    wl_ok, app_ok, svc_ok = is_ok(workload), is_ok(app), is_ok(service)
    if not (wl_ok or app_ok or svc_ok):
        return None
    if graph_type in (WORKLOAD, SERVICE):
        if not wl_ok and not svc_ok:
            return None
        if not wl_ok:
            return f"svc_{cluster}_{namespace}_{service}", NT_SERVICE
        return f"wl_{cluster}_{workload_ns}_{workload}", NT_WORKLOAD
    if app_ok:
        if graph_type == VERSIONED_APP and is_ok(version) and version != "latest":
            if wl_ok:
                return f"vapp_{cluster}_{namespace}_{workload}", NT_APP
            return f"vapp_{cluster}_{namespace}_{app}_{version}", NT_APP
        if graph_type == VERSIONED_APP and wl_ok:
            return f"vapp_{cluster}_{namespace}_{workload}", NT_APP
        return f"app_{cluster}_{namespace}_{app}", NT_APP
    if wl_ok:
        return f"wl_{cluster}_{workload_ns}_{workload}", NT_WORKLOAD
    return f"svc_{cluster}_{namespace}_{service}", NT_SERVICE


def box_key(cluster: str, namespace: str, app: str) -> str:
    return f"box_{cluster}_{namespace}_{app}"


def edge_id(source_id: str, target_id: str, protocol: str) -> str:
    return hash_id(f"{source_id}.{target_id}.{protocol}")


def node_fields(node_type: str, cluster: str, namespace: str, workload: str, app: str,
                version: str, service: str, graph_type: str) -> dict[str, str]:
    """The identity fields a node keeps, trimmed per type as Kiali does."""
    if node_type == NT_WORKLOAD:
        app = "" if app == UNKNOWN else app
        version = "" if version == UNKNOWN else version
        service = ""
    elif node_type == NT_APP:
        if graph_type != VERSIONED_APP:
            workload, version = "", ""
        service = ""
    elif node_type == NT_SERVICE:
        workload, app, version = "", "", ""
    else:  # the unknown source
        cluster, namespace, workload, app, version, service = (UNKNOWN,) * 5 + ("",)
    return {"cluster": cluster, "namespace": namespace, "workload": workload, "app": app,
            "version": version, "service": service}
