"""PeerAuthentication checks: the server side of mTLS against the DestinationRules clients use.

Mesh- and namespace-level checks follow Kiali's table (KIA0401, KIA0501,
KIA0505, KIA0506), including its quirk that only selectorless policies and
``*.local`` / ``*.<ns>.svc.<suffix>`` DestinationRules count at those levels.
Workload-level checks (STRICT workload, auto-mTLS off, no client DR) and the
selector hygiene checks (KIA0002/3/4) also cover RequestAuthentication.
"""
from __future__ import annotations

from collections import defaultdict

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from diagnose.rules.config import snapshot_rule as sr
from diagnose.rules.config import tls_fields as tf
from mesh.config import ConfigObject, Snapshot

MUTUAL_MODES = (tf.ISTIO_MUTUAL, tf.MUTUAL)


def mesh_strict_without_dr(snap: Snapshot) -> list[Finding]:
    """KIA0401: STRICT mesh-wide with auto-mTLS off needs a mesh-wide ISTIO_MUTUAL DestinationRule."""
    mc = snap.mesh_config
    if mc.enable_auto_mtls:
        return []
    if any(tf.dr_mode(dr) == tf.ISTIO_MUTUAL for dr in sec.mesh_drs(snap)):
        return []
    return [sr.finding("MS2001", pa, "spec/mtls", root_namespace=mc.root_namespace)
            for pa in sec.mesh_pas(snap) if tf.pa_mode(pa) == tf.STRICT]


def namespace_strict_without_dr(snap: Snapshot) -> list[Finding]:
    """KIA0501: STRICT namespace with auto-mTLS off needs a namespace- or mesh-wide ISTIO_MUTUAL DR."""
    mc = snap.mesh_config
    if mc.enable_auto_mtls:
        return []
    mesh_ok = any(tf.dr_mode(dr) == tf.ISTIO_MUTUAL for dr in sec.mesh_drs(snap))
    out = []
    for pa in snap.of_kind("PeerAuthentication"):
        if not tf.is_namespace_pa(pa, snap) or tf.pa_mode(pa) != tf.STRICT or mesh_ok:
            continue
        if any(tf.dr_mode(dr) == tf.ISTIO_MUTUAL for dr in sec.namespace_drs(snap, pa.namespace)):
            continue
        out.append(sr.finding("MS2002", pa, "spec/mtls", namespace=pa.namespace, domain=mc.domain_suffix))
    return out


def namespace_disabled_with_mtls_dr(snap: Snapshot) -> list[Finding]:
    """KIA0505: a DISABLE namespace while a namespace (or, unless overridden, mesh) DR sends mTLS."""
    out = []
    for pa in snap.of_kind("PeerAuthentication"):
        if not tf.is_namespace_pa(pa, snap) or tf.pa_mode(pa) != tf.DISABLE:
            continue
        ns_drs = sec.namespace_drs(snap, pa.namespace)
        culprit = next((dr for dr in ns_drs if tf.dr_mode(dr) in MUTUAL_MODES), None)
        if culprit is None and not any(tf.dr_mode(dr) == tf.DISABLE for dr in ns_drs):
            culprit = next((dr for dr in sec.mesh_drs(snap) if tf.dr_mode(dr) in MUTUAL_MODES), None)
        if culprit is not None:
            out.append(sr.finding("MS2003", pa, "spec/mtls", [sr.ref(culprit, "spec/trafficPolicy/tls/mode")],
                                   namespace=pa.namespace, rule=sr.obj_label(culprit), mode=tf.dr_mode(culprit),
                                   domain=snap.mesh_config.domain_suffix))
    return out


def mesh_disabled_with_mtls_dr(snap: Snapshot) -> list[Finding]:
    """KIA0506: mesh-wide DISABLE while a mesh-wide DR still uses (ISTIO_)MUTUAL."""
    out = []
    for pa in sec.mesh_pas(snap):
        if tf.pa_mode(pa) != tf.DISABLE:
            continue
        culprit = next((dr for dr in sec.mesh_drs(snap) if tf.dr_mode(dr) in MUTUAL_MODES), None)
        if culprit is not None:
            out.append(sr.finding("MS2004", pa, "spec/mtls", [sr.ref(culprit, "spec/trafficPolicy/tls/mode")],
                                   rule=sr.obj_label(culprit), mode=tf.dr_mode(culprit)))
    return out


def port_level_without_selector(snap: Snapshot) -> list[Finding]:
    """Istio rejects portLevelMtls on a PeerAuthentication without a workload selector."""
    return [sr.finding("MS2012", pa, "spec/portLevelMtls") for pa in snap.of_kind("PeerAuthentication")
            if pa.spec.get("portLevelMtls") and tf.selector_of(pa) is None]


def strict_workload_without_client_mtls(snap: Snapshot) -> list[Finding]:
    """A workload-level STRICT policy with auto-mTLS off and no DR giving its clients ISTIO_MUTUAL.

    Kiali ignores selector-scoped policies here; this is the same failure one level down.
    A DR that sets DISABLE/SIMPLE is reported on the DR instead (MS2010).
    """
    if snap.mesh_config.enable_auto_mtls:
        return []
    out = []
    for pa in snap.of_kind("PeerAuthentication"):
        sel = tf.selector_of(pa)
        strict_ports = [p for p, m in tf.pa_port_modes(pa).items() if m == tf.STRICT]
        if sel is None or (tf.pa_mode(pa) != tf.STRICT and not strict_ports):
            continue
        gap = next(((t, svc, c) for t in sec.targets_of(snap, pa.namespace, sel)
                    for svc in sec.services_selecting(snap, t)
                    for c in [sec.client_mode(snap, sec.service_host(snap, svc), svc.namespace)] if c.mode is None), None)
        if gap is not None:
            target, svc, client = gap
            out.append(sr.finding("MS2013", pa, "spec/mtls" if tf.pa_mode(pa) else "spec/portLevelMtls",
                                   [sr.ref(svc)] + ([sr.ref(client.rule)] if client.rule else []),
                                   target=sec.target_label(target), host=sec.service_host(snap, svc)))
    return out


# -- selector hygiene (PeerAuthentication and RequestAuthentication) ------------------------------
POLICY_KINDS = ("PeerAuthentication", "RequestAuthentication")


def selectorless_duplicates(snap: Snapshot, kinds: tuple[str, ...] = POLICY_KINDS) -> list[Finding]:
    """KIA0002: more than one selectorless policy of a kind in one namespace."""
    out = []
    for kind in kinds:
        by_ns: dict[str | None, list[ConfigObject]] = defaultdict(list)
        for obj in snap.of_kind(kind):
            if tf.selector_of(obj) is None:
                by_ns[obj.namespace].append(obj)
        for ns, objs in by_ns.items():
            if len(objs) < 2:
                continue
            for obj in objs:
                others = [o for o in objs if o is not obj]
                out.append(sr.finding("MS2020", obj, "metadata/name", [sr.ref(o) for o in others], count=len(objs),
                                       kind=kind, namespace=ns, others=", ".join(o.name for o in others)))
    return out


def selector_overlaps(snap: Snapshot, kinds: tuple[str, ...] = POLICY_KINDS) -> list[Finding]:
    """KIA0003: two policies of a kind select the same workload (identical selectors when none is known)."""
    out = []
    for kind in kinds:
        # workload (or, with none known, the selector itself) -> the policies that pick it
        pickers: dict[tuple, list[ConfigObject]] = defaultdict(list)
        for obj in snap.of_kind(kind):
            sel = tf.selector_of(obj)
            if sel is None:
                continue
            found = sec.select_workloads(snap, obj.namespace, sel)
            keys = ([(obj.namespace, f"{w.kind}/{w.name}") for w in found] if found
                    else [(obj.namespace, "selector:" + ",".join(f"{k}={v}" for k, v in sorted(sel.items())))])
            for key in keys:
                pickers[key].append(obj)
        clashes: dict[int, tuple[ConfigObject, dict[int, ConfigObject], list[str]]] = {}
        for (_, what), objs in pickers.items():
            if len(objs) < 2:
                continue
            for obj in objs:
                _, others, names = clashes.setdefault(id(obj), (obj, {}, []))
                others.update((id(o), o) for o in objs if o is not obj)
                if not what.startswith("selector:") and what not in names:
                    names.append(what)
        for obj, others, names in clashes.values():
            rivals = list(others.values())
            out.append(sr.finding("MS2021", obj, "spec/selector", [sr.ref(o, "spec/selector") for o in rivals],
                                   kind=kind, workloads=f" ({', '.join(names)})" if names else "",
                                   others=", ".join(f"{kind} {sr.obj_label(o)}" for o in rivals)))
    return out


def selector_matches_nothing(snap: Snapshot, kinds: tuple[str, ...] = POLICY_KINDS) -> list[Finding]:
    """KIA0004 for PeerAuthentication/RequestAuthentication (AuthorizationPolicy has its own rule).

    Only judged when the input contains workloads at all: a folder of Istio
    config alone cannot say whether a selector matches anything.
    """
    if not snap.workloads():
        return []
    out = []
    for kind in kinds:
        for obj in snap.of_kind(kind):
            sel = tf.selector_of(obj)
            if sel is None or sec.select_workloads(snap, obj.namespace, sel):
                continue
            out.append(sr.finding("MS2022", obj, "spec/selector", kind=kind, namespace=obj.namespace,
                                   selector=",".join(f"{k}={v}" for k, v in sorted(sel.items()))))
    return out


PA, DR, MC, SVC, WL = "PeerAuthentication", "DestinationRule", "MeshConfig", "Service", "Workload"
RA = "RequestAuthentication"

MESH_STRICT_DR = sr.rule(
    "peerauthentication.MeshStrictWithoutDestinationRule",
    "mesh-wide STRICT PeerAuthentication with auto-mTLS off and no mesh-wide ISTIO_MUTUAL DestinationRule",
    (PA, MC, DR), ("MS2001",), mesh_strict_without_dr)
NAMESPACE_STRICT_DR = sr.rule(
    "peerauthentication.NamespaceStrictWithoutDestinationRule",
    "namespace STRICT PeerAuthentication with auto-mTLS off and no namespace/mesh ISTIO_MUTUAL DestinationRule",
    (PA, MC, DR), ("MS2002",), namespace_strict_without_dr)
NAMESPACE_DISABLED_DR = sr.rule(
    "peerauthentication.NamespaceDisabledWithMTLSDestinationRule",
    "namespace PeerAuthentication DISABLE while a DestinationRule still sends mTLS to the namespace",
    (PA, MC, DR), ("MS2003",), namespace_disabled_with_mtls_dr)
MESH_DISABLED_DR = sr.rule(
    "peerauthentication.MeshDisabledWithMTLSDestinationRule",
    "mesh-wide PeerAuthentication DISABLE while a mesh-wide DestinationRule still sends mTLS",
    (PA, MC, DR), ("MS2004",), mesh_disabled_with_mtls_dr)
PORT_LEVEL_SELECTOR = sr.rule(
    "peerauthentication.PortLevelWithoutSelector",
    "portLevelMtls on a PeerAuthentication without a workload selector",
    (PA,), ("MS2012",), port_level_without_selector)
STRICT_WORKLOAD_CLIENTS = sr.rule(
    "peerauthentication.StrictWorkloadWithoutClientMTLS",
    "workload-level STRICT PeerAuthentication with auto-mTLS off and no ISTIO_MUTUAL DestinationRule for its services",
    (PA, MC, DR, SVC, WL), ("MS2013",), strict_workload_without_client_mtls)


def _for(kind: str, check):  # a hygiene check bound to one policy kind
    return lambda snap: check(snap, (kind,))


SELECTORLESS = [sr.rule(f"{k.lower()}.SelectorlessDuplicates",
                         f"more than one {k} without a workload selector in a namespace",
                         (k,), ("MS2020",), _for(k, selectorless_duplicates)) for k in POLICY_KINDS]
OVERLAPS = [sr.rule(f"{k.lower()}.SelectorOverlap", f"two {k}s select the same workload",
                     (k, WL), ("MS2021",), _for(k, selector_overlaps)) for k in POLICY_KINDS]
NOTHING = [sr.rule(f"{k.lower()}.SelectorMatchesNothing", f"{k} selector matches no workload",
                    (k, WL), ("MS2022",), _for(k, selector_matches_nothing)) for k in POLICY_KINDS]


def _exposed_ports(snap: Snapshot, target: sec.Target) -> set[str]:
    """Container ports of the workload, plus target ports of the Services selecting it."""
    ports = {str(p.get("containerPort")) for c in (target.workload.containers if target.workload else [])
             for p in (c.get("ports") if isinstance(c.get("ports"), list) else []) if isinstance(p, dict)}
    for svc in sec.services_selecting(snap, target):
        ports.update(sec.service_target_ports(svc).values())
    return {p for p in ports if p and p != "None"}


def port_level_unknown_port(snap: Snapshot) -> list[Finding]:
    """MS2014: a portLevelMtls key that neither the selected workloads nor their Services expose.

    Judged only when some port is known (container ports of the selected
    workloads, or target ports of the Services selecting them).
    """
    out = []
    for pa in snap.of_kind("PeerAuthentication"):
        sel = tf.selector_of(pa)
        ports = tf.pa_port_modes(pa)
        if sel is None or not ports:
            continue
        targets = sec.targets_of(snap, pa.namespace, sel)
        exposed = set().union(*(_exposed_ports(snap, t) for t in targets))
        if not exposed:
            continue  # no port information at all: nothing to compare with
        names = sorted(t.workload.name if t.workload else sec.target_label(t) for t in targets)
        for port in ports:
            if port not in exposed:
                out.append(sr.finding("MS2014", pa, f"spec/portLevelMtls/{port}", port=port,
                                       workloads=", ".join(names),
                                       known=", ".join(sorted(exposed, key=lambda p: (len(p), p)))))
    return out


PORT_LEVEL_UNKNOWN_PORT = sr.rule(
    "peerauthentication.PortLevelUnknownPort",
    "portLevelMtls names a port that no selected workload exposes",
    (PA, WL, SVC), ("MS2014",), port_level_unknown_port)
