"""What the mTLS and security rules share: who a policy selects and which mTLS mode is in force.

Istio decides mTLS twice per connection. The *server* side takes the most
specific PeerAuthentication (port-level, then workload selector, then the
namespace's selectorless one, then the mesh-wide one in the root namespace);
the *client* side takes the DestinationRule with the most specific host for
the destination (its port-level TLS overriding the top-level one), falling
back to auto-mTLS when that DestinationRule has no TLS block. Rules compare
the two ends through these helpers so they never disagree on precedence.

Field readers live in `tls_fields`, the finding helpers in `snapshot_rule`.
"""
from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass, field

from diagnose.rules.config.label_index import LabelIndex, SelectorIndex
from diagnose.rules.config.tls_fields import (HOST, MESH, NAMESPACE, PORT, WORKLOAD, as_dict, dr_scope, mode_of,
                                              pa_mode, pa_port_modes, selector_of)
from mesh.config import ConfigObject, Snapshot, Workload
from mesh.config.traffic_policy import effective, private_only, rule_search, tls_mode

def mesh_pas(snap: Snapshot) -> list[ConfigObject]:
    """Selectorless PeerAuthentications in the root namespace, by name."""
    return pa_index(snap).mesh_pas


def namespace_pas(snap: Snapshot, namespace: str | None) -> list[ConfigObject]:
    """Selectorless PeerAuthentications of one (non-root) namespace, by name."""
    return pa_index(snap).namespace_pas.get(namespace, [])


def mesh_drs(snap: Snapshot) -> list[ConfigObject]:
    """DestinationRules for ``*.local`` (Kiali's mesh-wide rules), wherever they live."""
    return dr_index(snap).scoped_drs.get((MESH, None), [])


def namespace_drs(snap: Snapshot, namespace: str | None) -> list[ConfigObject]:
    """DestinationRules for ``*.<namespace>.svc.<suffix>``."""
    return dr_index(snap).scoped_drs.get((NAMESPACE, namespace), [])


# -- who a policy or service selects ----------------------------------------------------------
@dataclass
class Target:
    """Labels a policy applies to: a real workload, or (with no workloads known) the selector itself."""

    namespace: str | None
    labels: dict[str, str]
    workload: Workload | None = None


def targets_of(snap: Snapshot, namespace: str | None, selector: dict[str, str] | None) -> list[Target]:
    """Workloads a selector picks in a namespace; the selector's own labels when none is known.

    Falling back to the selector keeps offline analysis useful: a folder of Istio
    config without Deployments still resolves workload-level policies by label.
    """
    found = [Target(w.namespace, w.labels, w) for w in select_workloads(snap, namespace, selector)]
    return found or [Target(namespace, dict(selector or {}))]


def in_mesh(snap: Snapshot, w: Workload) -> bool:
    """istioctl's "has a sidecar or is ambient", assuming injection when the namespace is not in the input."""
    if snap.in_mesh(w) or snap.is_ambient(w):
        return True
    flag = w.labels.get("sidecar.istio.io/inject", w.annotations.get("sidecar.istio.io/inject"))
    if flag is not None or any(c.get("name") == "istio-proxy" for c in w.containers):
        return False
    return w.namespace is not None and snap.find("Namespace", None, w.namespace) is None


def services_selecting(snap: Snapshot, target: Target) -> list[ConfigObject]:
    """Kubernetes Services in the target's namespace whose selector picks the target's labels."""
    index = services_by_namespace(snap).get(target.namespace)
    return index.matching(target.labels) if index is not None else []


_SERVICES: weakref.WeakKeyDictionary[Snapshot, dict] = weakref.WeakKeyDictionary()
_WORKLOADS: weakref.WeakKeyDictionary[Snapshot, dict] = weakref.WeakKeyDictionary()


def services_by_namespace(snap: Snapshot) -> dict[str | None, SelectorIndex[ConfigObject]]:
    """Services that have a selector, indexed by it, per namespace (built once per snapshot view)."""
    cached = _SERVICES.get(snap)
    if cached is None:
        groups: dict[str | None, list] = defaultdict(list)
        for svc in snap.services():
            sel = as_dict(svc.spec.get("selector"))
            if sel:
                groups[svc.namespace].append((svc, {str(k): str(v) for k, v in sel.items()}))
        cached = {ns: SelectorIndex(items) for ns, items in groups.items()}
        _SERVICES[snap] = cached
    return cached


def select_workloads(snap: Snapshot, namespace: str | None, selector: dict[str, str] | None, *,
                     any_namespace: bool = False) -> list[Workload]:
    """`Snapshot.matching_workloads` through an inverted label index (same answer, no scan)."""
    cached = _WORKLOADS.get(snap)
    if cached is None:
        groups: dict[str | None, list] = defaultdict(list)
        for w in snap.workloads():
            groups[w.namespace].append((w, w.labels))
            groups["\0all"].append((w, w.labels))
        cached = {ns: LabelIndex(items) for ns, items in groups.items()}
        _WORKLOADS[snap] = cached
    index = cached.get("\0all" if any_namespace else namespace)
    return index.select(selector) if index is not None else []


def service_host(snap: Snapshot, svc: ConfigObject) -> str:
    return f"{svc.name}.{svc.namespace}.svc.{snap.mesh_config.domain_suffix}"


def service_target_ports(svc: ConfigObject) -> dict[str, str]:
    """{service port: target port} as text, for matching port-level PeerAuthentication (which uses target ports)."""
    out: dict[str, str] = {}
    ports = svc.spec.get("ports")
    for p in ports if isinstance(ports, list) else []:
        p = as_dict(p)
        if p.get("port") is not None:
            out[str(p["port"])] = str(p.get("targetPort", p["port"]))
    return out


# -- effective modes --------------------------------------------------------------------------
@dataclass
class ServerMode:
    """The PeerAuthentication mode a workload (port) enforces and where it comes from."""

    mode: str | None  # None = no policy anywhere (Istio's default: PERMISSIVE)
    policy: ConfigObject | None
    level: str | None  # PORT, WORKLOAD, NAMESPACE, MESH


def server_mode(snap: Snapshot, target: Target, port: str | None = None) -> ServerMode:
    """The mode in force for a target (and optionally a target port), most specific policy first."""
    idx = pa_index(snap)
    by_selector = idx.selector_pas.get(target.namespace)
    workload_pas = by_selector.matching(target.labels) if by_selector is not None else []
    if port is not None:
        for pa in workload_pas:
            mode = pa_port_modes(pa).get(port)
            if mode:
                return ServerMode(mode, pa, PORT)
    for pa in workload_pas:
        if pa_mode(pa):
            return ServerMode(pa_mode(pa), pa, WORKLOAD)
    for level, pas in ((NAMESPACE, idx.namespace_pas.get(target.namespace, ())), (MESH, idx.mesh_pas)):
        for pa in pas:
            if pa_mode(pa):
                return ServerMode(pa_mode(pa), pa, level)
    return ServerMode(None, None, None)


@dataclass
class ClientMode:
    """The DestinationRule TLS mode clients use towards a host (port), and where it is written."""

    mode: str | None  # None = the DR (if any) has no TLS: auto-mTLS decides, or plaintext without it
    rule: ConfigObject | None
    path: str | None
    scope: str | None  # MESH, NAMESPACE, HOST


def _specificity(dr: ConfigObject, host: str, snap: Snapshot) -> int | None:
    """How closely a DR's host matches `host` (higher wins), None when it does not."""
    dr_host = dr.spec.get("host")
    if not isinstance(dr_host, str) or not dr_host:
        return None
    pattern = snap.fqdn(dr_host, dr.namespace)
    if pattern == host:
        return 10_000
    if pattern == "*":
        return 0
    if pattern.startswith("*.") and host.endswith(pattern[1:]):
        return len(pattern)
    return None


def host_namespace(host: str, snap: Snapshot) -> str | None:
    """The namespace in a Service FQDN (``name.ns.svc.<suffix>``), else None."""
    tail = f".svc.{snap.mesh_config.domain_suffix}"
    parts = host[:-len(tail)].split(".") if host.endswith(tail) else []
    return parts[1] if len(parts) == 2 else None


def dr_candidates(snap: Snapshot, host: str) -> list[ConfigObject]:
    """DestinationRules (without workloadSelector) whose host matches an FQDN, from the index."""
    idx = dr_index(snap)
    out = list(idx.exact_drs.get(host, ()))
    for suffix, drs in idx.wildcard_drs.items():
        if suffix == "" or host.endswith(suffix):
            out.extend(drs)
    return out


def client_mode(snap: Snapshot, host: str, namespace: str | None, port: str | None = None) -> ClientMode:
    """The TLS mode clients in `namespace` use for `host` (an FQDN), from the DestinationRule Istio picks.

    Istio looks in the client's namespace first, then the service's, then the
    root namespace, and takes the most specific host within the first namespace
    that has a match (`rule_search`: a client in the root namespace, a gateway,
    sees the root's exported rules only after the service's). It merges nothing: that rule wins even when it says nothing
    about TLS, which is how a host rule silently switches off a mesh-wide
    ISTIO_MUTUAL (KIA0204).
    """
    candidates = dr_candidates(snap, host)
    best: tuple[int, int, ConfigObject] | None = None
    for rank, (ns, private) in enumerate(rule_search(namespace, host_namespace(host, snap),
                                                     snap.mesh_config.root_namespace)):
        for dr in candidates:
            if dr.namespace != ns or not snap.visible(dr, namespace) or (private and not private_only(dr)):
                continue
            score = _specificity(dr, host, snap)
            if score is not None and (best is None or score > best[0]):
                best = (score, rank, dr)
        if best is not None:
            break
    if best is None:
        return ClientMode(None, None, None, None)
    dr = best[2]
    scope = dr_scope(dr, snap)[0]
    # the default cluster's tls for the port, as Istio merges it: a port-level entry for the port replaces the top
    # level's, and one without tls means auto mTLS, not the top level's mode; a tls block without a mode is DISABLE
    tls = effective(dr.spec, port).get("tls")
    if tls is None:
        return ClientMode(None, dr, None, scope)
    return ClientMode(mode_of(tls_mode(tls.value)), dr, f"{tls.path}/mode", scope)



# -- per-snapshot indexes (rules ask per workload and per service; keep that linear) ----------
# One index per kind, so a rule that asks only about DestinationRules reads only those
# (the guard tests compare the kinds a rule reads with the ones it declares).
@dataclass
class PolicyIndex:
    """PeerAuthentications by level: selector ones per namespace, selectorless per namespace, mesh-wide."""

    selector_pas: dict[str | None, SelectorIndex[ConfigObject]] = field(default_factory=dict)
    namespace_pas: dict[str | None, list[ConfigObject]] = field(default_factory=dict)
    mesh_pas: list[ConfigObject] = field(default_factory=list)


@dataclass
class RuleIndex:
    """Client-side DestinationRules by host, plus Kiali's mesh/namespace scopes."""

    exact_drs: dict[str, list[ConfigObject]] = field(default_factory=dict)
    wildcard_drs: dict[str, list[ConfigObject]] = field(default_factory=dict)  # ".ns.svc.cluster.local" -> DRs
    scoped_drs: dict[tuple[str, str | None], list[ConfigObject]] = field(default_factory=dict)


_PA_INDEXES: weakref.WeakKeyDictionary[Snapshot, PolicyIndex] = weakref.WeakKeyDictionary()
_DR_INDEXES: weakref.WeakKeyDictionary[Snapshot, RuleIndex] = weakref.WeakKeyDictionary()


def pa_index(snap: Snapshot) -> PolicyIndex:
    idx = _PA_INDEXES.get(snap)
    if idx is not None:
        return idx
    sel_pas: dict[str | None, list] = defaultdict(list)
    ns_pas: dict[str | None, list] = defaultdict(list)
    mesh: list[ConfigObject] = []
    for pa in sorted(snap.of_kind("PeerAuthentication"), key=lambda o: o.name):
        sel = selector_of(pa)
        if sel is not None:
            sel_pas[pa.namespace].append((pa, sel))
        elif pa.namespace == snap.mesh_config.root_namespace:
            mesh.append(pa)
        else:
            ns_pas[pa.namespace].append(pa)
    idx = PolicyIndex({ns: SelectorIndex(items) for ns, items in sel_pas.items()}, dict(ns_pas), mesh)
    _PA_INDEXES[snap] = idx
    return idx


def dr_index(snap: Snapshot) -> RuleIndex:
    idx = _DR_INDEXES.get(snap)
    if idx is not None:
        return idx
    exact: dict[str, list] = defaultdict(list)
    wild: dict[str, list] = defaultdict(list)
    scoped: dict[tuple[str, str | None], list] = defaultdict(list)
    for dr in snap.of_kind("DestinationRule"):
        scope = dr_scope(dr, snap)
        if scope[0] != HOST:
            scoped[scope].append(dr)
        host = dr.spec.get("host")
        if not isinstance(host, str) or not host or selector_of(dr, "workloadSelector") is not None:
            continue
        pattern = snap.fqdn(host, dr.namespace)
        if pattern == "*":
            wild[""].append(dr)
        elif pattern.startswith("*."):
            wild[pattern[1:]].append(dr)
        else:
            exact[pattern].append(dr)
    idx = RuleIndex(dict(exact), dict(wild), dict(scoped))
    _DR_INDEXES[snap] = idx
    return idx


def target_label(target: Target) -> str:
    if target.workload is not None:
        return f"{target.workload.kind} {target.namespace}/{target.workload.name}"
    sel = ",".join(f"{k}={v}" for k, v in sorted(target.labels.items()))
    return f"workloads {sel or '(all)'} in {target.namespace}"
