"""Correlation: a runtime finding names the config object behind it and links the config findings predicting it.

Runtime rules only know "requests to reviews fail with NC"; the snapshot knows
that VirtualService bookinfo/reviews routes to subset v4, which no
DestinationRule defines. Two ways lead from one to the other, neither a table
of code pairs:

* every config code whose problem shows in traffic declares its runtime
  signature in the catalog (flags, response codes, details; on which edges).
  A config finding whose signature the runtime evidence shows, on an edge its
  object governs (host, subset, port, selected workloads, namespace, callers,
  read from the live config), is the cause: the runtime finding blames its
  object and field, and the config finding is linked (it stays open while the
  object is wrong; `evidence.explains` names the runtime findings);
* otherwise the live config alone says which object governs the failing edge
  (`GOVERNS`: per failure class, the route, subset, TLS setting, pool or
  policy in the request's path), pointing at the exact field (file:line).

Severity then follows impact (share and rate of traffic hurt) and findings are
ranked so the first row is the worst problem.
"""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from diagnose.findings import SEVERITY_RANK, Finding, ResourceRef
from diagnose.rules.runtime.gateways import caller_namespace as _caller_ns
from diagnose.rules.runtime.gateways import gateway_callers
from mesh.config.traffic_policy import effective, places, tls_mode

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


_INDEXES: dict[str, tuple[list[Any], tuple[int, ...], Any]] = {}
_INDEX_LOCK = threading.Lock()


def per_config(snapshot: Any, name: str, build: Callable[[Any], Any]) -> Any:
    """An index built once per config, not per Snapshot: providers build a new Snapshot over the same objects
    every cycle, so the index is kept while the objects (held here, so their ids are not reused) are the same."""
    objects = getattr(snapshot, "objects", None)
    cache = getattr(snapshot, "_cache", None)
    if not isinstance(objects, list) or not isinstance(cache, dict):
        return build(snapshot)
    mine = cache.get("correlate." + name)
    if mine is not None:  # this Snapshot asked before
        return mine
    ids = tuple(map(id, objects))
    with _INDEX_LOCK:
        hit = _INDEXES.get(name)
    index = hit[2] if hit is not None and hit[1] == ids else build(snapshot)
    with _INDEX_LOCK:
        _INDEXES[name] = (list(objects), ids, index)
    cache["correlate." + name] = index
    return index


class HostIndex:
    """VirtualServices and DestinationRules by the hosts they govern, built once per snapshot (cached on it).

    A lookup is a dict hit plus a scan of the few wildcard hosts, so explaining 500 findings on a 10k-service
    config does not walk every object per finding."""

    def __init__(self, snapshot: Any) -> None:
        from mesh.config import host_covers
        self._covers = host_covers
        self.vs_exact: dict[str, list[tuple[int, Any]]] = {}
        self.vs_wild: list[tuple[str, int, Any]] = []
        self.dr_exact: dict[str, list[tuple[int, Any]]] = {}
        self.dr_wild: list[tuple[str, int, Any]] = []
        for pos, vs in enumerate(snapshot.of_kind("VirtualService")):
            if not isinstance(vs.spec, dict):
                continue
            keys = {snapshot.fqdn(h, vs.namespace) for h in vs.spec.get("hosts") or [] if isinstance(h, str)}
            keys |= {snapshot.fqdn(str(d.get("host", "")), vs.namespace) for _, _, d in _destinations(vs)}
            for k in keys:
                self._add(self.vs_exact, self.vs_wild, k, pos, vs)
        for pos, dr in enumerate(snapshot.of_kind("DestinationRule")):
            if isinstance(dr.spec, dict) and isinstance(dr.spec.get("host"), str):
                self._add(self.dr_exact, self.dr_wild, snapshot.fqdn(dr.spec["host"], dr.namespace), pos, dr)

    @staticmethod
    def _add(exact: dict, wild: list, key: str, pos: int, obj: Any) -> None:
        if "*" in key:
            wild.append((key, pos, obj))
        else:
            exact.setdefault(key, []).append((pos, obj))

    def _lookup(self, exact: dict, wild: list, host: str) -> list[tuple[int, Any]]:
        hits = {id(o): (p, o) for p, o in exact.get(host, [])}
        for pattern, p, o in wild:
            if self._covers(pattern, host):
                hits.setdefault(id(o), (p, o))
        return sorted(hits.values(), key=lambda x: x[0])

    def virtual_services(self, host: str) -> list[Any]:
        return [o for _, o in self._lookup(self.vs_exact, self.vs_wild, host)]

    def destination_rules(self, host: str) -> list[Any]:
        return [o for _, o in self._lookup(self.dr_exact, self.dr_wild, host)]

    @staticmethod
    def of(snapshot: Any) -> HostIndex:
        return per_config(snapshot, "hosts", HostIndex)


def destination_rules_for(snapshot: Any, host: str) -> list[Any]:
    """DestinationRules whose host covers `host`, most specific (exact) first."""
    drs = HostIndex.of(snapshot).destination_rules(host)
    return sorted(drs, key=lambda dr: "*" in dr.spec["host"])


def virtual_services_for(snapshot: Any, host: str) -> list[Any]:
    """VirtualServices whose hosts cover `host` or that route to it."""
    return HostIndex.of(snapshot).virtual_services(host)


def _destinations(vs: Any) -> Iterable[tuple[int, int, dict]]:
    for i, http in enumerate(vs.spec.get("http") or []):
        for j, route in enumerate((http or {}).get("route") or []):
            dest = (route or {}).get("destination")
            if isinstance(dest, dict):
                yield i, j, dest


def policy_settings(dr: Any, key: str, port: str | None = None, subset: str | None = None
                    ) -> list[tuple[str, Any]]:
    """(YAML path, value) of the places a DestinationRule sets trafficPolicy section `key` that can apply.

    For a known cluster (port, subset: from the access log's upstream cluster) only the one Istio applies
    (`mesh.config.traffic_policy`): a port-level entry for that port replaces its whole policy, so a section it
    leaves out is the default, not the top level's; a subset's section overrides the top level's; the default
    cluster (subset "") takes no subset's. For an unknown cluster (None) every place counts, subsets and ports
    included (each subset's first, port-level entries before their policy's own), so a setting is never missed."""
    spec = dr.spec if isinstance(dr.spec, dict) else {}
    if port is None or subset is None:
        return [(s.path, s.value) for s in places(spec, key)]
    found = effective(spec, port, subset).get(key)
    return [(found.path, found.value)] if found is not None else []


def logged_cluster(f: Finding | dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(port, subset) of the cluster the hurt requests were sent to (access log: a finding's evidence or a map of
    cluster -> count); (None, None) when unknown."""
    clusters = f.evidence if isinstance(f, Finding) else {"upstream_clusters": f or {}}
    parts = cluster_parts(_top(clusters, "upstream_clusters"))
    return (parts[0], parts[1]) if parts is not None else (None, None)


def _tls_settings(dr: Any, f: Finding | dict[str, Any] | None = None) -> Iterable[tuple[str, dict]]:
    """The TLS settings in force for the finding's cluster (`f`: a finding, or the hurt requests' clusters): the
    one Istio applies when the cluster is known (a port's or subset's setting overrides the top level's), else
    every one; each with its mode as Istio reads it (a block without a mode is DISABLE)."""
    port, subset = logged_cluster(f)
    return [(f"{path}/mode", {**tls, "mode": tls_mode(tls)}) for path, tls in policy_settings(dr, "tls", port, subset)
            if isinstance(tls, dict)]


def applies_to(snapshot: Any, obj: Any, host: str) -> bool:
    """Whether a namespace- or mesh-scoped policy (PeerAuthentication, AuthorizationPolicy) applies to the service's
    workloads: one without a selector applies to its whole namespace (every namespace from the root one); one with a
    selector only to the workloads it picks, so a policy for another app in the namespace is never the cause."""
    _, ns = _name_ns(host)
    if obj.namespace not in (ns, _root(snapshot)):
        return False
    selected = _selected(snapshot, obj)
    return selected is None or host in ServiceIndex.of(snapshot).services_of(selected)


def peer_authentications_for(snapshot: Any, host: str, mode: str) -> list[Any]:
    """PeerAuthentications with `mode` that apply to the service's workloads (workload, namespace or mesh-wide)."""
    root = getattr(snapshot.mesh_config, "root_namespace", "istio-system")
    out = []
    for pa in snapshot.of_kind("PeerAuthentication"):
        m = (pa.spec.get("mtls") or {}).get("mode")
        ports = pa.spec.get("portLevelMtls") or {}
        if m != mode and not any((v or {}).get("mode") == mode for v in ports.values() if isinstance(v, dict)):
            continue
        if applies_to(snapshot, pa, host):
            out.append(pa)
    return sorted(out, key=lambda pa: pa.namespace == root)


# -- what the request's own log says governed it (route name, upstream cluster) ---------------------

def _top(evidence: dict[str, Any], key: str) -> str:
    """The value most hurt requests carried (evidence maps value -> count, largest first)."""
    m = evidence.get(key)
    if not isinstance(m, dict) or not m:
        return ""
    return str(max(m.items(), key=lambda kv: number(kv[1]))[0])


def route_names(vs: Any, i: int, http: dict) -> set[str]:
    """The names Envoy logs as %ROUTE_NAME% for http[i] of a VirtualService: Istio's `http[].name` (plus
    `.match[].name` per match), the bundled control plane's `namespace/name.i` when the route has no name."""
    names = {f"{vs.namespace}/{vs.name}.{i}"}
    base = http.get("name")
    if isinstance(base, str) and base:
        names.add(base)
        for m in http.get("match") or []:
            if isinstance(m, dict) and isinstance(m.get("name"), str) and m["name"]:
                names.add(f"{base}.{m['name']}")
    return names


def logged_route(snapshot: Any, host: str, f: Finding) -> tuple[Any, int] | None:
    """The VirtualService route (object, http index) the hurt requests matched, from the access log's route name;
    only routes of VirtualServices that govern `host` count (names are unique per VirtualService, not mesh-wide)."""
    name = _top(f.evidence, "route_names")
    if not name or name == "default":
        return None
    for vs in virtual_services_for(snapshot, host):
        for i, http in enumerate(vs.spec.get("http") or []):
            if isinstance(http, dict) and name in route_names(vs, i, http):
                return vs, i
    return None


def cluster_parts(cluster: str) -> tuple[str, str, str] | None:
    """(port, subset, host) of an Istio cluster name `outbound|9080|v1|reviews.ns.svc.cluster.local`."""
    parts = cluster.split("|")
    if len(parts) != 4 or parts[0] not in ("outbound", "inbound-vip"):
        return None
    return parts[1], parts[2], parts[3]


def logged_subset(snapshot: Any, f: Finding) -> tuple[Any, int, str] | None:
    """The DestinationRule subset (object, index in spec.subsets, name) the hurt requests were sent to, from the
    access log's upstream cluster; None when the cluster names no subset or no DestinationRule defines it."""
    parts = cluster_parts(_top(f.evidence, "upstream_clusters"))
    if parts is None or not parts[1]:
        return None
    _, subset, host = parts
    for dr in destination_rules_for(snapshot, host):
        for k, sub in enumerate(dr.spec.get("subsets") or []):
            if isinstance(sub, dict) and sub.get("name") == subset:
                return dr, k, subset
    return None


def request_path(snapshot: Any, f: Finding) -> list[dict[str, Any]]:
    """The route and subset the hurt requests actually took, as the access log names them, each with the object's
    file:line: what governs the edge even when no rule foresaw the failure."""
    host = str(f.evidence.get("edge_key") or "")
    out: list[dict[str, Any]] = []
    if snapshot is None or not host:
        return out
    try:
        hit = logged_route(snapshot, host, f)
        if hit is not None:
            vs, i = hit
            out.append({"ref": _ref(vs, f"spec/http[{i}]"), "from": "route_name",
                        "value": _top(f.evidence, "route_names")})
        sub = logged_subset(snapshot, f)
        if sub is not None:
            dr, k, name = sub
            out.append({"ref": _ref(dr, f"spec/subsets[{k}]"), "from": "upstream_cluster",
                        "value": _top(f.evidence, "upstream_clusters")})
    except Exception:  # odd config (wrong types) must not break the live loop
        return []
    return out


# -- one explainer per runtime code --------------------------------------------------------------

def _mtls_plaintext(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    strict = peer_authentications_for(snapshot, host, "STRICT")
    for dr in destination_rules_for(snapshot, host):
        for path, tls in _tls_settings(dr, f):
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
        for path, tls in _tls_settings(dr, f):
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
    sub = logged_subset(snapshot, f)
    svc = snapshot.service_by_fqdn(host) if hasattr(snapshot, "service_by_fqdn") else None
    if sub is not None and svc is not None:
        dr, k, name = sub
        labels = (dr.spec["subsets"][k] or {}).get("labels")
        selector = {**(svc.spec.get("selector") or {}), **(labels if isinstance(labels, dict) else {})}
        if selector and not snapshot.matching_workloads(svc.namespace, selector):
            return Explanation(dr, f"spec/subsets[{k}]/labels", f"subset {name} of DestinationRule "
                               f"{dr.namespace}/{dr.name} selects no running workload", [svc])
    port, subset = logged_cluster(f)
    for dr in destination_rules_for(snapshot, host):
        od = [path for path, v in policy_settings(dr, "outlierDetection", port, subset) if isinstance(v, dict)]
        if od:
            return Explanation(dr, od[0], "outlier detection ejected the hosts")
    svc = snapshot.service_by_fqdn(host) if hasattr(snapshot, "service_by_fqdn") else None
    if svc is not None:
        selector = svc.spec.get("selector")
        if selector and not snapshot.matching_workloads(svc.namespace, selector):
            return Explanation(svc, "spec/selector", "no endpoints: the selector matches no workload")
    return None


def routes_in_path(snapshot: Any, host: str, f: Finding | None) -> list[Any]:
    """The VirtualServices that govern the finding's requests: those that apply to its callers (a VirtualService
    bound only to gateways governs only what the gateway pods send; sidecars use mesh ones), exact hosts before
    wildcards."""
    callers = {str(e.get("source_workload", "")) for e in (f.evidence.get("edges") or [])
               if isinstance(e, dict)} if f is not None else set()
    gateway_pods = {w.name for gw in snapshot.of_kind("Gateway") if isinstance(gw.spec, dict)
                    and isinstance(gw.spec.get("selector"), dict) and gw.spec["selector"]
                    for w in snapshot.matching_workloads(None, gw.spec["selector"], any_namespace=True)}
    from_gateway = bool(callers) and all(any(_workload_is(c, p) for p in gateway_pods) for c in callers)
    out = []
    for vs in virtual_services_for(snapshot, host):
        pods = _gateway_workloads(snapshot, vs)
        if pods is not None and callers and not any(_workload_is(c, p) for c in callers for p in pods):
            continue
        if pods is None and from_gateway and not vs.spec.get("gateways"):  # mesh-only routes: sidecars, not gateways
            continue
        out.append(vs)
    hosts = lambda vs: [snapshot.fqdn(h, vs.namespace) for h in vs.spec.get("hosts") or [] if isinstance(h, str)]  # noqa: E731
    return sorted(out, key=lambda vs: host not in hosts(vs))


def _route_field(snapshot: Any, host: str, what: str, f: Finding | None = None) -> Explanation | None:
    """A VirtualService route for `host` with a timer that fired (`timeout`, `retries.perTryTimeout`) or a `fault`
    (abort/delay)."""
    logged = logged_route(snapshot, host, f) if f is not None else None
    candidates = [(vs, i, http or {}) for vs in routes_in_path(snapshot, host, f)
                  for i, http in enumerate(vs.spec.get("http") or [])]
    if logged is not None:  # the route the requests matched (access log) before any other with the field
        candidates.sort(key=lambda c: (c[0] is not logged[0] or c[1] != logged[1]))
    # which timer fired: Envoy's details say `upstream_per_try_timeout` for a retry policy's per-try timeout (no
    # route timeout needed), `response_timeout` for the route's; the one named first, the other after
    per_try = "per_try" in _top(f.evidence, "response_code_details") if f is not None else False
    for vs, i, http in candidates:
        if what == "timeout":
            retries = http.get("retries") if isinstance(http.get("retries"), dict) else {}
            timers = [("timeout", http.get("timeout"), "route timeout"),
                      ("retries/perTryTimeout", retries.get("perTryTimeout"), "per-try timeout")]
            for path, value, label in (timers[::-1] if per_try else timers):
                if value:
                    return Explanation(vs, f"spec/http[{i}]/{path}", f"{label} {value}")
        fault = http.get("fault") or {}
        if what in ("abort", "delay") and isinstance(fault.get(what), dict):
            return Explanation(vs, f"spec/http[{i}]/fault/{what}", f"fault injection ({what})")
    return None


def _rewrite(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    """Answers the service gives to paths it does not serve: the route the requests matched rewrote their path."""
    logged = logged_route(snapshot, host, f)
    candidates = [(vs, i, http) for vs in routes_in_path(snapshot, host, f)
                  for i, http in enumerate(vs.spec.get("http") or []) if isinstance(http, dict)]
    if logged is not None:  # the route the requests matched (access log); else any route rewriting the path
        candidates = [c for c in candidates if c[0] is logged[0] and c[1] == logged[1]]
    for vs, i, http in candidates:
        rw = http.get("rewrite")
        if isinstance(rw, dict) and rw.get("uri") is not None:
            return Explanation(vs, f"spec/http[{i}]/rewrite/uri", f"the route rewrites the path to "
                               f"{rw['uri']!r}, which the service does not serve")
    return None


def _direct_response(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    """Answers a route gives itself: the route the requests matched (access log), else the first answering route
    of a VirtualService that governs the callers' requests."""
    logged = logged_route(snapshot, host, f)
    candidates = [(vs, i, http) for vs in routes_in_path(snapshot, host, f)
                  for i, http in enumerate(vs.spec.get("http") or []) if isinstance(http, dict)]
    if logged is not None:
        candidates = [c for c in candidates if c[0] is logged[0] and c[1] == logged[1]] or candidates
    for vs, i, http in candidates:
        dr = http.get("directResponse")
        if isinstance(dr, dict):
            return Explanation(vs, f"spec/http[{i}]/directResponse", f"the route answers {dr.get('status', 200)} "
                               "itself (directResponse): the requests never reach the service")
    return None


def _no_cluster(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    logged = logged_route(snapshot, host, f)
    for vs in routes_in_path(snapshot, host, f):
        dests = list(_destinations(vs))
        if logged is not None and logged[0] is vs:  # the route the requests matched first (access log)
            dests.sort(key=lambda d: d[0] != logged[1])
        for i, j, dest in dests:
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
    vss = routes_in_path(snapshot, host, f)
    if vss:
        return Explanation(vss[0], "spec/http", "no route of the VirtualService matches the request")
    return None


def _circuit_breaker(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    port, subset = logged_cluster(f)
    for dr in destination_rules_for(snapshot, host):
        pools = [path for path, v in policy_settings(dr, "connectionPool", port, subset) if isinstance(v, dict)]
        if pools:
            return Explanation(dr, pools[0], "connection pool limits reached")
    return None


def _rbac(snapshot: Any, host: str, f: Finding) -> Explanation | None:
    for p in f.evidence.get("policies", []):
        if p.get("name"):
            ap = snapshot.find("AuthorizationPolicy", p["namespace"], p["name"])
            if ap is not None:
                return Explanation(ap, f"spec/rules[{p['rule']}]", "the policy denies the caller")
    allows = [ap for ap in snapshot.of_kind("AuthorizationPolicy")
              if ap.spec.get("action", "ALLOW") == "ALLOW" and applies_to(snapshot, ap, host)]
    if allows:
        return Explanation(allows[0], "spec/rules", "no ALLOW rule matches the caller", allows[1:])
    return None


def _idle_timeout(snapshot: Any, host: str, f: Finding | None = None) -> Explanation | None:
    """The keep-alive race: the DestinationRule whose connectionPool.http.idleTimeout should sit below the app's;
    the connectionPool in force for the logged cluster (a port's entry replaces the top level's), else the top
    level's."""
    port, subset = logged_cluster(f)
    for dr in destination_rules_for(snapshot, host):
        pool = effective(dr.spec, port, subset if port is not None else None).get("connectionPool")
        http = pool.value.get("http") if pool is not None else None
        if not isinstance(http, dict):
            return Explanation(dr, "spec/trafficPolicy", "upstream idle timeout longer than the app's keep-alive")
        path = f"{pool.path}/http" + ("/idleTimeout" if "idleTimeout" in http else "")
        return Explanation(dr, path, "upstream idle timeout longer than the app's keep-alive")
    return None


# Which field of the live config governs an edge for each kind of runtime failure (the failure class, not a
# config code: config codes join through their declared signatures above).
GOVERNS: dict[str, Callable[[Any, str, Finding], Explanation | None]] = {
    "MS3001": _mtls_plaintext,
    "MS3002": _tls_failure,
    "MS3004": _no_healthy,
    "MS3005": _no_route,
    "MS3006": _no_cluster,
    "MS3007": _circuit_breaker,
    "MS3008": lambda s, h, f: _route_field(s, h, "timeout", f),
    "MS3010": lambda s, h, f: _route_field(s, h, "abort", f),
    "MS3011": lambda s, h, f: _route_field(s, h, "delay", f),
    "MS3012": _rbac,
    "MS3014": lambda s, h, f: _route_field(s, h, "delay", f),
    "MS3016": _rewrite,
    "MS3017": _direct_response,
    "MS3040": _idle_timeout,
    "MS3041": _mtls_plaintext,
    "MS3042": _rbac,
}


# -- the runtime signatures config findings predict (catalog `signature:` blocks) ----------------

def signatures() -> dict[str, Any]:
    """{config code: Signature} from the catalog, read at call time so a new entry needs no other change."""
    from diagnose.catalog.registry import CATALOG
    return {code: e.signature for code, e in CATALOG.items() if e.signature is not None}


@dataclass
class Scope:
    """The edges a config object governs: destination host patterns and calling workloads (None: any)."""

    hosts: list[str] = field(default_factory=list)
    callers: set[str] | None = None

    def covers(self, host: str, callers: set[str]) -> bool:
        if self.hosts and not any(p == host or _covers(p, host) for p in self.hosts):
            return False
        if self.callers is not None and not any(_workload_is(c, w) for c in callers for w in self.callers):
            return False
        return bool(self.hosts) or self.callers is not None


def _covers(pattern: str, host: str) -> bool:
    from mesh.config import host_covers
    return host_covers(pattern, host)


def _workload_is(runtime_name: str, config_name: str) -> bool:
    """A pod or a sidecar names itself after its Deployment (reviews-v1, reviews-v1-7d9f...)."""
    return runtime_name == config_name or runtime_name.startswith(config_name + "-")


_PART = re.compile(r"^([^\[]+)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")


def _path_host(obj: Any, path: str | None) -> str | None:
    """The nearest `host` along a YAML path (a route destination's, or the DestinationRule's own)."""
    node: Any = {"spec": obj.spec}
    best = obj.spec.get("host") if isinstance(obj.spec.get("host"), str) else None
    for part in (path or "").split("/"):
        m = _PART.match(part)
        if not m or not isinstance(node, dict):
            break
        node = node.get(m.group(1))
        for idx in _INDEX.findall(m.group(2)):
            node = node[int(idx)] if isinstance(node, list) and int(idx) < len(node) else None
        if isinstance(node, dict) and isinstance(node.get("host"), str):
            best = node["host"]
    return best


class ServiceIndex:
    """Services of a snapshot by the workloads they select, built once per snapshot (cached on it)."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.by_workload: dict[tuple[str | None, str], list[str]] = {}
        self.by_namespace: dict[str | None, list[str]] = {}
        for svc in snapshot.of_kind("Service"):
            fq = snapshot.fqdn(svc.name, svc.namespace)
            self.by_namespace.setdefault(svc.namespace, []).append(fq)
            sel = svc.spec.get("selector") if isinstance(svc.spec, dict) else None
            if isinstance(sel, dict) and sel:
                for w in snapshot.matching_workloads(svc.namespace, sel):
                    self.by_workload.setdefault((w.namespace, w.name), []).append(fq)

    @staticmethod
    def of(snapshot: Any) -> ServiceIndex:
        return per_config(snapshot, "services", ServiceIndex)

    def services_of(self, workloads: Iterable[Any]) -> list[str]:
        return list(dict.fromkeys(fq for w in workloads for fq in self.by_workload.get((w.namespace, w.name), [])))


def _selected(snapshot: Any, obj: Any) -> list[Any] | None:
    """Workloads a policy selects (selector.matchLabels or a Service's selector); None when it selects by namespace."""
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    sel = (spec.get("selector") or {}).get("matchLabels") if isinstance(spec.get("selector"), dict) else None
    if obj.kind == "Service":
        sel = spec.get("selector")
    if not sel:
        sel = (spec.get("workloadSelector") or {}).get("labels") if isinstance(spec.get("workloadSelector"), dict) else None
    if not sel:
        return None
    return snapshot.matching_workloads(obj.namespace, sel, any_namespace=obj.namespace == _root(snapshot))


def _root(snapshot: Any) -> str:
    return getattr(snapshot.mesh_config, "root_namespace", "istio-system")


def _gateway_workloads(snapshot: Any, obj: Any) -> set[str] | None:
    """Workloads of the Gateways a VirtualService is bound to, or None when it (also) applies to sidecars."""
    if obj.kind != "VirtualService":
        return None
    gateways = [g for g in obj.spec.get("gateways") or [] if isinstance(g, str)]
    if not gateways or "mesh" in gateways:
        return None
    out: set[str] = set()
    for g in gateways:
        ns, _, name = g.rpartition("/")
        gw = snapshot.find("Gateway", ns or obj.namespace, name)
        sel = gw.spec.get("selector") if gw is not None and isinstance(gw.spec, dict) else None
        if isinstance(sel, dict) and sel:
            out |= {w.name for w in snapshot.matching_workloads(None, sel, any_namespace=True)}
    return out or None


def scope_of(snapshot: Any, ref: ResourceRef, edges: Iterable[str]) -> Scope | None:
    """Which edges the object a config finding is about governs, for the signature's `edges` kinds."""
    obj = snapshot.find(ref.kind, ref.namespace, ref.name)
    if obj is None or not isinstance(obj.spec, dict):
        return None
    out = Scope()
    idx = ServiceIndex.of(snapshot)
    for kind in edges:
        if kind in ("host", "subset", "port"):
            host = _path_host(obj, ref.path)
            if host:
                out.hosts.append(snapshot.fqdn(host, obj.namespace))
            if obj.kind in ("VirtualService", "ServiceEntry"):  # requests are addressed to the hosts it serves
                out.hosts += [snapshot.fqdn(h, obj.namespace) for h in obj.spec.get("hosts") or [] if isinstance(h, str)]
            gateway_pods = _gateway_workloads(snapshot, obj)
            if gateway_pods is not None:  # a gateway's routes govern only what its gateway pods send
                out.callers = (out.callers or set()) | gateway_pods
            if obj.kind == "Service":
                out.hosts.append(snapshot.fqdn(obj.name, obj.namespace))
        elif kind in ("workload", "namespace"):
            selected = _selected(snapshot, obj) if kind == "workload" else None
            if obj.kind == "Service":
                out.hosts.append(snapshot.fqdn(obj.name, obj.namespace))
            elif selected is not None:
                out.hosts += idx.services_of(selected)
            elif obj.kind in ("DestinationRule", "VirtualService") and kind == "workload":
                host = _path_host(obj, ref.path)
                if host:
                    out.hosts.append(snapshot.fqdn(host, obj.namespace))
            elif obj.namespace == _root(snapshot):
                out.hosts.append("*")
            else:
                out.hosts += idx.by_namespace.get(obj.namespace, []) or [f"*.{obj.namespace}.svc.cluster.local"]
        elif kind == "caller":
            selected = _selected(snapshot, obj)
            out.callers = (out.callers or set()) | {w.name for w in (selected or snapshot.workloads_in(obj.namespace))}
    out.hosts = list(dict.fromkeys(out.hosts))
    return out


def _evidence_of(f: Finding) -> tuple[set[str], set[str], list[str], set[str]]:
    ev = f.evidence
    flags = set((ev.get("response_flags") or {}).keys())
    codes = {str(k) for k in (ev.get("response_codes") or {}).keys()}
    details = [*(ev.get("response_code_details") or {}).keys(),
               *(ev.get("upstream_transport_failure_reasons") or {}).keys()]
    callers = {str(e.get("source_workload", "")) for e in ev.get("edges", []) + ev.get("client_edges", [])}
    return flags, codes, details, callers


class Predictions:
    """The config findings with a declared signature, indexed by the hosts their objects govern.

    Built once per correlation: each candidate's scope is read from the live config once, so matching
    a runtime finding is a dict hit on its destination plus the few wildcard or caller-scoped ones."""

    def __init__(self, config: list[Finding], snapshot: Any, sigs: dict[str, Any] | None = None) -> None:
        self.sigs = signatures() if sigs is None else sigs
        self.exact: dict[str, list[tuple[Finding, Scope]]] = {}
        self.wild: list[tuple[Finding, Scope]] = []
        for c in config:
            sig = self.sigs.get(c.code)
            if sig is None or c.resource is None or snapshot is None:
                continue
            try:
                scope = scope_of(snapshot, c.resource, sig.edges)
            except Exception:  # odd config (wrong types) must not break the live loop
                scope = None
            if scope is None:
                continue
            exact = [h for h in scope.hosts if "*" not in h]
            if scope.callers is not None or len(exact) < len(scope.hosts) or not scope.hosts:
                self.wild.append((c, scope))
                continue
            for h in dict.fromkeys(exact):
                self.exact.setdefault(h, []).append((c, scope))

    def __bool__(self) -> bool:
        return bool(self.exact or self.wild)

    def of(self, f: Finding) -> list[Finding]:
        """Config findings whose signature `f` shows on an edge their object governs; most specific first."""
        host = str(f.evidence.get("edge_key") or "")
        if not host:
            return []
        pool = [*self.exact.get(host, []), *self.wild]
        if not pool:
            return []
        flags, codes, details, callers = _evidence_of(f)
        reporter = f.evidence.get("reporter")
        shown: dict[str, bool] = {}
        out = []
        for c, scope in pool:
            sig = self.sigs[c.code]
            if c.code not in shown:
                shown[c.code] = (not (sig.reporter and reporter and sig.reporter != reporter)
                                 and sig.matches(flags, codes, details))
            if shown[c.code] and scope.covers(host, callers) and c not in out:
                out.append(c)
        return sorted(out, key=lambda c: (-self.sigs[c.code].specificity, -SEVERITY_RANK.get(c.severity, 0),
                                          not (c.resource and c.resource.path), c.code))


def predicted_by(f: Finding, config: list[Finding], snapshot: Any) -> list[Finding]:
    """Config findings whose declared signature this runtime finding shows, on an edge their object governs."""
    return Predictions(config, snapshot).of(f)


# -- merging and ranking ---------------------------------------------------------------------------

def _key(r: ResourceRef | None) -> tuple[str, str | None, str] | None:
    return (r.kind, r.namespace, r.name) if r else None


def explain(finding: Finding, snapshot: Any) -> Explanation | None:
    """The config object governing the edge of one runtime finding, from the live config alone (no config finding
    needed: this answers for failures no config rule foresaw)."""
    fn = GOVERNS.get(finding.code)
    host = finding.evidence.get("edge_key") or ""
    if fn is None or snapshot is None or not host:
        return None
    try:
        return fn(snapshot, host, finding)
    except Exception:  # odd config (wrong types) must not break the live loop; the finding stays unexplained
        return None


def correlate(runtime: list[Finding], config: list[Finding], snapshot: Any = None) -> list[Finding]:
    """Runtime findings pointed at their cause and linked with the config findings that predict them; ranked.

    A config finding is linked, never absorbed: it stays open as long as its object is wrong, and carries
    `evidence.explains` (the runtime findings that show its effect); the incident groups them.
    """
    predictions = Predictions(config, snapshot)
    for f in runtime:
        service = f.resource
        predicted = predictions.of(f) if predictions else []
        ex = explain(f, snapshot)
        if predicted:
            best = predicted[0]
            f.resource = best.resource
            others = [c.resource for c in predicted[1:] if c.resource and _key(c.resource) != _key(best.resource)]
            extra = [_ref(o) for o in ex.related] if ex is not None else []
            if ex is not None and _key(_ref(ex.obj)) != _key(best.resource):
                extra.insert(0, _ref(ex.obj, ex.path))
            f.related = _unique_refs([service, *others, *extra, *f.related], f.resource)
            f.evidence["cause"] = best.message
            f.evidence["config_findings"] = [{"code": c.code, "message": c.message, "fingerprint": c.fingerprint,
                                              "resource": c.resource.label() if c.resource else None}
                                             for c in predicted]
            f.equivalents = list(dict.fromkeys([*f.equivalents, *(x for c in predicted for x in (c.code, *c.equivalents))]))
            for c in predicted:
                c.evidence.setdefault("explains", [])
                if f.fingerprint not in c.evidence["explains"]:
                    c.evidence["explains"].append(f.fingerprint)
            where = f.resource.label() + (f" {f.resource.path}" if f.resource.path else "")
            f.message += f"; cause: {best.message} ({where})"
        elif ex is not None:
            f.resource = _ref(ex.obj, ex.path)
            f.related = _unique_refs([service, *(_ref(o) for o in ex.related), *f.related], f.resource)
            f.evidence["cause"] = ex.cause
            where = " ".join(x for x in (f.resource.label() if f.resource.label() not in ex.cause else "",
                                         f.resource.path or "") if x)
            f.message += f"; cause: {ex.cause}" + (f" ({where})" if where else "")
        _name_request_path(f, snapshot, explained=bool(predicted) or ex is not None)
        grade_severity(f, snapshot)
    link_latency_chains(runtime)
    return rank([*runtime, *config])


def _name_request_path(f: Finding, snapshot: Any, explained: bool) -> None:
    """Name the route and subset the hurt requests took (access log), with file:line, in the evidence and the
    related objects; a failure nothing else explains says so in its message too."""
    path = request_path(snapshot, f)
    if not path:
        return
    f.evidence["request_path"] = [{"kind": p["ref"].kind, "namespace": p["ref"].namespace, "name": p["ref"].name,
                                   "path": p["ref"].path, "source": p["ref"].source, "from": p["from"],
                                   "value": p["value"]} for p in path]
    f.related = _unique_refs([*f.related, *(p["ref"] for p in path)], f.resource)
    if not explained:
        f.message += "; in the requests' path: " + ", ".join(
            f"{p['ref'].label()} {p['ref'].path}" + (f" ({p['ref'].source})" if p["ref"].source else "") for p in path)


def _unique_refs(refs: Iterable[ResourceRef | None], main: ResourceRef | None) -> list[ResourceRef]:
    seen = {_key(main)}
    out = []
    for r in refs:
        if r is not None and _key(r) not in seen:
            seen.add(_key(r))
            out.append(r)
    return out


def impact_score(f: Finding) -> float:
    """How bad a finding's traffic impact is: the hurt share weighted by the hurt rate (log-damped), so 100 %
    of a small edge outranks 1 % of a busy one and more traffic hurt ranks higher at equal share."""
    if not isinstance(f.impact, dict) or not f.impact:
        return 0.0
    share = min(max(number(f.impact.get("share")), 0.0), 1.0)
    rps = max(number(f.impact.get("rps")), 0.0)
    return share * math.log1p(10.0 * rps) + 0.01 * rps


def number(x: Any) -> float:
    """A finite float from a value that may come from a saved file (None, text, NaN: 0)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def grade_severity(f: Finding, snapshot: Any = None) -> None:
    """Severity follows impact for runtime failures: a share of traffic hurt decides, not the flag alone.

    Traffic arriving from outside the mesh through an ingress gateway that no route serves (scanners, typos)
    is at most information: its rate is shown, it never blames the gateway's routes as an error.
    """
    if not f.code.startswith("MS30") or not f.impact or f.code == "MS3014":
        return
    share = number(f.impact.get("share"))
    if f.code == "MS3005" and _from_ingress(f, snapshot):
        f.severity = "info"
        f.evidence["outside_traffic"] = True
        return
    if f.code == "MS3009":  # callers hanging up is the caller's business
        return
    if f.evidence.get("masked"):  # attempts refused, requests answered: degraded, never failing
        f.severity = "warning" if share >= 0.02 else "info"
        return
    f.severity = "error" if share >= 0.2 else "warning" if share >= 0.02 else "info"


def _from_ingress(f: Finding, snapshot: Any) -> bool:
    """Every caller is a gateway, known by its labels or a Gateway's selector (not by its name)."""
    edges = [e for e in f.evidence.get("edges", []) if isinstance(e, dict)]
    callers = {(str(e.get("source_workload", "")), e.get("source_namespace")) for e in edges}
    return bool(callers) and gateway_callers(snapshot, callers) == {(n, _caller_ns(ns)) for n, ns in callers}


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


def rank(findings: list[Finding]) -> list[Finding]:
    """Findings with traffic impact first (most hurt: share weighted by rate), then config-only ones by severity."""
    def key(f: Finding) -> tuple[int, int, float, int, str]:
        return (0 if f.impact else 1, -round(impact_score(f), 6), -SEVERITY_RANK.get(f.severity, 0), 0, f.code)
    return sorted(findings, key=key)
