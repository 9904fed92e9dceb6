"""Host names as Istio reads them: short names, FQDNs, wildcards and `exportTo` visibility."""
from __future__ import annotations

from typing import Any

from mesh.config.model import ConfigObject


def fqdn(host: str, namespace: str | None, domain_suffix: str = "cluster.local") -> str:
    """Istio's rule: a name without a dot is a Service in the object's namespace; others stay as written."""
    if not host or host.startswith("*") or "." in host or not namespace:
        return host
    return f"{host}.{namespace}.svc.{domain_suffix}"


def service_fqdn(name: str, namespace: str | None, domain_suffix: str = "cluster.local") -> str:
    return f"{name}.{namespace}.svc.{domain_suffix}"


def host_covers(pattern: str, host: str) -> bool:
    """True when every name `host` stands for is also matched by `pattern` (wildcards on the left)."""
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return False


def hosts_intersect(a: str, b: str) -> bool:
    """True when some name is matched by both `a` and `b`."""
    return host_covers(a, b) or host_covers(b, a)


SERVICE_EXPORT_ANNOTATION = "networking.istio.io/exportTo"


def export_to(obj: ConfigObject) -> list[str]:
    """`spec.exportTo` (a Service's `networking.istio.io/exportTo` annotation); all namespaces when unset."""
    if obj.kind == "Service":
        text = obj.annotations.get(SERVICE_EXPORT_ANNOTATION, "")
        value: Any = [v.strip() for v in text.split(",") if v.strip()]
    else:
        value = obj.spec.get("exportTo") if isinstance(obj.spec, dict) else None
    if not isinstance(value, list) or not value:
        return ["*"]
    return [str(v) for v in value]


def visible(obj: ConfigObject, from_namespace: str | None) -> bool:
    """Whether `obj` (VirtualService, DestinationRule, ServiceEntry, Service) is visible from a namespace."""
    for entry in export_to(obj):
        if entry == "*":
            return True
        if entry == "~":
            continue
        if entry == ".":
            if obj.namespace == from_namespace:
                return True
        elif entry == from_namespace:
            return True
    return False


def export_scopes_overlap(a: ConfigObject, b: ConfigObject) -> bool:
    """Whether some namespace sees both objects."""
    ea, eb = _scope(a), _scope(b)
    if ea is None and eb is None:
        return True
    if ea is None or eb is None:
        return bool(ea if eb is None else eb)  # everyone sees one; the other is seen somewhere
    return bool(ea & eb)


def _scope(obj: ConfigObject) -> set[str] | None:
    """Namespaces that see the object; None means all."""
    out: set[str] = set()
    for entry in export_to(obj):
        if entry == "*":
            return None
        if entry == ".":
            out.add(obj.namespace or "")
        elif entry != "~":
            out.add(entry)
    return out
