"""Correlation: a runtime finding names the config object that explains it, and absorbs its config finding.

Runtime rules only know "requests to reviews fail with NC"; the snapshot knows
that VirtualService bookinfo/reviews routes to subset v4, which no
DestinationRule defines. Each runtime code has one explainer that looks up the
config objects able to cause it, pointing at the exact field (YAML path and
file:line). A config finding on one of those objects is merged into the runtime
finding (its code becomes an equivalent, its message part of the evidence) so
the problem is reported once, with both the cause and the traffic it hurts.
Findings are then ranked by impact: hurt requests per second first.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from diagnose.findings import SEVERITY_RANK, Finding, ResourceRef

@dataclass
class Explanation:
    """Config objects that explain a runtime finding: the main one (with the field to look at) and related ones."""

    obj: Any  # ConfigObject
    path: str = ""
    cause: str = ""
    related: list[Any] = field(default_factory=list)


# -- small helpers over the snapshot ----------------------------------------------------------------

def _ref(obj: Any, path: str = "") -> ResourceRef:
    src = obj.source_of(path) if path else obj.source
    return ResourceRef(kind=obj.kind, name=obj.name, namespace=obj.namespace, path=path or None,
                       source=str(src) if src else None)


def _host_matches(snapshot: Any, pattern: str, namespace: str | None, host: str) -> bool:
    from mesh.config import host_covers
    return host_covers(snapshot.fqdn(pattern, namespace), host)


def _name_ns(host: str) -> tuple[str, str | None]:
    parts = host.split(".")
    return (parts[0], parts[1]) if len(parts) >= 3 and parts[2] == "svc" else (host, None)


def destination_rules_for(snapshot: Any, host: str) -> list[Any]:
    """DestinationRules whose host covers `host`, most specific (exact) first."""
    drs = [dr for dr in snapshot.of_kind("DestinationRule")
           if isinstance(dr.spec.get("host"), str) and _host_matches(snapshot, dr.spec["host"], dr.namespace, host)]
    return sorted(drs, key=lambda dr: "*" in dr.spec["host"])


def virtual_services_for(snapshot: Any, host: str) -> list[Any]:
    """VirtualServices whose hosts cover `host` or that route to it."""
    out = []
    for vs in snapshot.of_kind("VirtualService"):
        hosts = [h for h in vs.spec.get("hosts") or [] if isinstance(h, str)]
        routes_to = any(snapshot.fqdn(d.get("host", ""), vs.namespace) == host for _, _, d in _destinations(vs))
        if routes_to or any(_host_matches(snapshot, h, vs.namespace, host) for h in hosts):
            out.append(vs)
    return out


def _destinations(vs: Any) -> Iterable[tuple[int, int, dict]]:
    for i, http in enumerate(vs.spec.get("http") or []):
        for j, route in enumerate((http or {}).get("route") or []):
            dest = (route or {}).get("destination")
            if isinstance(dest, dict):
                yield i, j, dest


def _tls_settings(dr: Any) -> Iterable[tuple[str, dict]]:
    tp = dr.spec.get("trafficPolicy") or {}
    if isinstance(tp.get("tls"), dict):
        yield "spec/trafficPolicy/tls/mode", tp["tls"]
    for k, pl in enumerate(tp.get("portLevelSettings") or []):
        if isinstance(pl, dict) and isinstance(pl.get("tls"), dict):
            yield f"spec/trafficPolicy/portLevelSettings[{k}]/tls/mode", pl["tls"]


def peer_authentications_for(snapshot: Any, host: str, mode: str) -> list[Any]:
    """PeerAuthentications with `mode` that apply to the service's namespace (workload, namespace or mesh-wide)."""
    _, ns = _name_ns(host)
    root = getattr(snapshot.mesh_config, "root_namespace", "istio-system")
    out = []
    for pa in snapshot.of_kind("PeerAuthentication"):
        m = (pa.spec.get("mtls") or {}).get("mode")
        ports = pa.spec.get("portLevelMtls") or {}
        if m != mode and not any((v or {}).get("mode") == mode for v in ports.values()):
            continue
        if pa.namespace in (ns, root):
            out.append(pa)
    return sorted(out, key=lambda pa: pa.namespace == root)


# -- one explainer per runtime code --------------------------------------------------------------

def _mtls_plaintext(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    strict = peer_authentications_for(snapshot, host, "STRICT")
    for dr in destination_rules_for(snapshot, host):
        for path, tls in _tls_settings(dr):
            if tls.get("mode") == "DISABLE":
                return Explanation(dr, path, f"DestinationRule {dr.namespace}/{dr.name} disables TLS toward a "
                                   "server that requires mTLS", strict)
    if strict:
        pa = strict[0]
        return Explanation(pa, "spec/mtls/mode", f"PeerAuthentication {pa.namespace}/{pa.name} requires mTLS but "
                           "the client does not originate it", strict[1:])
    return None


def _tls_failure(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    for dr in destination_rules_for(snapshot, host):
        for path, tls in _tls_settings(dr):
            if tls.get("mode") in ("MUTUAL", "SIMPLE", "ISTIO_MUTUAL"):
                sans = tls.get("subjectAltNames")
                field_path = path.rsplit("/", 1)[0] + ("/subjectAltNames" if sans else "/mode")
                return Explanation(dr, field_path, f"DestinationRule {dr.namespace}/{dr.name} TLS settings "
                                   f"({tls.get('mode')}) do not match the server's certificate",
                                   peer_authentications_for(snapshot, host, "DISABLE"))
    disabled = peer_authentications_for(snapshot, host, "DISABLE")
    if disabled:
        return Explanation(disabled[0], "spec/mtls/mode", "the server has mTLS disabled but clients send mTLS")
    return None


def _no_healthy(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    for dr in destination_rules_for(snapshot, host):
        if isinstance((dr.spec.get("trafficPolicy") or {}).get("outlierDetection"), dict):
            return Explanation(dr, "spec/trafficPolicy/outlierDetection",
                               "outlier detection ejected the hosts")
    svc = snapshot.service_by_fqdn(host) if hasattr(snapshot, "service_by_fqdn") else None
    if svc is not None:
        selector = svc.spec.get("selector")
        if selector and not snapshot.matching_workloads(svc.namespace, selector):
            return Explanation(svc, "spec/selector", "no endpoints: the selector matches no workload")
    return None


def _route_field(snapshot: Any, host: str, what: str) -> Explanation | None:
    """A VirtualService route for `host` with a `timeout` or a `fault` (abort/delay)."""
    for vs in virtual_services_for(snapshot, host):
        for i, http in enumerate(vs.spec.get("http") or []):
            http = http or {}
            if what == "timeout" and http.get("timeout"):
                return Explanation(vs, f"spec/http[{i}]/timeout", f"route timeout {http['timeout']}")
            fault = http.get("fault") or {}
            if what in ("abort", "delay") and isinstance(fault.get(what), dict):
                return Explanation(vs, f"spec/http[{i}]/fault/{what}", f"fault injection ({what})")
    return None


def _no_cluster(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    for vs in virtual_services_for(snapshot, host):
        for i, j, dest in _destinations(vs):
            dhost = snapshot.fqdn(str(dest.get("host", "")), vs.namespace)
            path = f"spec/http[{i}]/route[{j}]/destination"
            if not snapshot.host_known(str(dest.get("host", "")), vs.namespace):
                return Explanation(vs, f"{path}/host", f"route to unknown host {dest.get('host')}")
            subset = dest.get("subset")
            if subset:
                drs = destination_rules_for(snapshot, dhost)
                if not any(sub.get("name") == subset for dr in drs for sub in dr.spec.get("subsets") or []
                           if isinstance(sub, dict)):
                    return Explanation(vs, f"{path}/subset", f"route to subset {subset} that no DestinationRule "
                                       f"for {dest.get('host')} defines", drs)
    return None


def _no_route(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    vss = virtual_services_for(snapshot, host)
    if vss:
        return Explanation(vss[0], "spec/http", "no route of the VirtualService matches the request")
    return None


def _circuit_breaker(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    for dr in destination_rules_for(snapshot, host):
        if isinstance((dr.spec.get("trafficPolicy") or {}).get("connectionPool"), dict):
            return Explanation(dr, "spec/trafficPolicy/connectionPool", "connection pool limits reached")
    return None


def _rbac(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    for p in f.evidence.get("policies", []):
        if p.get("name"):
            ap = snapshot.find("AuthorizationPolicy", p["namespace"], p["name"])
            if ap is not None:
                return Explanation(ap, f"spec/rules[{p['rule']}]", "the policy denies the caller")
    _, ns = _name_ns(host)
    allows = [ap for ap in snapshot.of_kind("AuthorizationPolicy")
              if ap.namespace == ns and ap.spec.get("action", "ALLOW") == "ALLOW"]
    if allows:
        return Explanation(allows[0], "spec/rules", "no ALLOW rule matches the caller", allows[1:])
    return None


EXPLAINERS: dict[str, Callable[[Any, str, Finding], Explanation | None]] = {
    "MS3001": _mtls_plaintext,
    "MS3002": _tls_failure,
    "MS3004": _no_healthy,
    "MS3005": _no_route,
    "MS3006": _no_cluster,
    "MS3007": _circuit_breaker,
    "MS3008": lambda s, h, f: _route_field(s, h, "timeout"),
    "MS3010": lambda s, h, f: _route_field(s, h, "abort"),
    "MS3011": lambda s, h, f: _route_field(s, h, "delay"),
    "MS3012": _rbac,
    "MS3014": lambda s, h, f: _route_field(s, h, "delay"),
}


# -- merging and ranking ---------------------------------------------------------------------------

def _key(r: ResourceRef | None) -> tuple[str, str | None, str] | None:
    return (r.kind, r.namespace, r.name) if r else None


def explain(finding: Finding, snapshot: Any) -> Explanation | None:
    """The config object behind one runtime finding, or None."""
    fn = EXPLAINERS.get(finding.code)
    host = finding.evidence.get("edge_key") or ""
    if fn is None or snapshot is None or not host:
        return None
    try:
        return fn(snapshot, host, finding)
    except Exception:  # odd config (wrong types) must not break the live loop; the finding stays unexplained
        return None


def correlate(runtime: list[Finding], config: list[Finding], snapshot: Any = None) -> list[Finding]:
    """Runtime findings pointed at their cause and merged with config findings; the rest kept; ranked by impact."""
    absorbed: set[int] = set()
    for f in runtime:
        ex = explain(f, snapshot)
        if ex is None:
            continue
        service = f.resource
        f.resource = _ref(ex.obj, ex.path)
        f.related = [r for r in [service, *(_ref(o) for o in ex.related), *f.related] if r is not None]
        f.evidence["cause"] = ex.cause
        where = " ".join(x for x in (f.resource.label() if f.resource.label() not in ex.cause else "",
                                     f.resource.path or "") if x)
        f.message += f"; cause: {ex.cause}" + (f" ({where})" if where else "")
        keys = {_key(f.resource), *(_key(r) for r in f.related)}
        merged = []
        for i, c in enumerate(config):
            if _key(c.resource) in keys and _compatible(f, c):
                absorbed.add(i)
                merged.append(c)
        if merged:
            f.evidence["config_findings"] = [{"code": c.code, "message": c.message, "fingerprint": c.fingerprint,
                                              "resource": c.resource.label() if c.resource else None}
                                             for c in merged]
            for c in merged:
                f.equivalents = list(dict.fromkeys([*f.equivalents, c.code, *c.equivalents]))
                if c.resource and _key(c.resource) == _key(f.resource) and c.resource.path:
                    f.resource = c.resource  # the config rule's own field path wins: it knows the object best
                f.severity = max(f.severity, c.severity, key=lambda s: SEVERITY_RANK.get(s, 0))
    link_latency_chains(runtime)
    rest = [c for i, c in enumerate(config) if i not in absorbed]
    return rank([*runtime, *rest])


def link_latency_chains(findings: list[Finding]) -> None:
    """A slow service makes its callers slow too: point a caller's latency finding at its slow dependency."""
    slow = [f for f in findings if f.code == "MS3014"]
    by_service = {str(f.evidence.get("edge_key", "")).split(".")[0]: f for f in slow}
    for f in slow:
        name = str(f.evidence.get("edge_key", "")).split(".")[0]
        for other in slow:
            if other is f:
                continue
            callers = {str(e.get("source_workload", "")) for e in other.evidence.get("edges", [])}
            if any(c == name or c.startswith(name + "-") for c in callers) and by_service.get(name) is f:
                f.evidence["slow_dependency"] = {"service": other.evidence.get("edge_key"),
                                                 "fingerprint": other.fingerprint}
                f.message += f"; likely because its dependency {other.evidence.get('edge_key')} is slow"
                break


def _compatible(runtime: Finding, config: Finding) -> bool:
    if runtime.category in ("mtls", "security"):
        return config.category in ("mtls", "security")
    return True


def rank(findings: list[Finding]) -> list[Finding]:
    """Most traffic hurt first; findings without impact (config only) after, by severity."""
    def key(f: Finding) -> tuple[float, float, int, str]:
        rps = float(f.impact.get("rps", -1.0)) if f.impact else -1.0
        share = float(f.impact.get("share", 0.0)) if f.impact else 0.0
        return (-rps, -share, -SEVERITY_RANK.get(f.severity, 0), f.code)
    return sorted(findings, key=key)
