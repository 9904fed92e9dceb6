"""DestinationRule TLS checks: the client side of mTLS, and TLS origination without verification.

KIA0204-KIA0208 follow Kiali's table for mesh-wide (``*.local``) and
namespace-wide (``*.<ns>.svc.<suffix>``) rules. The client/server mismatch
check goes further: for every Service it takes the DestinationRule that
actually governs it (most specific host, port-level TLS first) and compares
that mode with the PeerAuthentication in force on each backing workload and
target port, which catches the host-level STRICT-vs-DISABLE case that resets
every request in production and that neither Kiali nor istioctl report.
"""
from __future__ import annotations

from typing import Any

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from mesh.config import ConfigObject, Snapshot

MUTUAL_MODES = (sec.ISTIO_MUTUAL, sec.MUTUAL)
TLS_PATH = "spec/trafficPolicy/tls/mode"


def _mesh_enabling_pa(snap: Snapshot) -> bool:
    return any(sec.enables_mtls(pa) for pa in sec.mesh_pas(snap))


def mesh_dr_without_pa(snap: Snapshot) -> list[Finding]:
    """KIA0205: mesh-wide ISTIO_MUTUAL DR, auto-mTLS off, no mesh-wide PA enabling mTLS."""
    mc = snap.mesh_config
    if mc.enable_auto_mtls or _mesh_enabling_pa(snap):
        return []
    return [sec.finding("MS2005", dr, TLS_PATH, root_namespace=mc.root_namespace) for dr in sec.mesh_drs(snap)
            if sec.dr_mode(dr) == sec.ISTIO_MUTUAL]


def namespace_dr_without_pa(snap: Snapshot) -> list[Finding]:
    """KIA0206: namespace-wide ISTIO_MUTUAL DR, auto-mTLS off, no namespace or mesh PA enabling mTLS."""
    mc = snap.mesh_config
    if mc.enable_auto_mtls or _mesh_enabling_pa(snap):
        return []
    out = []
    for dr in snap.of_kind("DestinationRule"):
        scope, ns = sec.dr_scope(dr, snap)
        if scope != sec.NAMESPACE or sec.dr_mode(dr) != sec.ISTIO_MUTUAL:
            continue
        if any(sec.enables_mtls(pa) for pa in sec.namespace_pas(snap, ns)):
            continue
        out.append(sec.finding("MS2006", dr, TLS_PATH, namespace=ns, root_namespace=mc.root_namespace))
    return out


def disabled_under_strict(snap: Snapshot) -> list[Finding]:
    """KIA0207 (namespace DR DISABLE vs namespace STRICT) and KIA0208 (DR DISABLE vs mesh STRICT)."""
    out = []
    mesh_strict = next((pa for pa in sec.mesh_pas(snap) if sec.pa_mode(pa) == sec.STRICT), None)
    for dr in snap.of_kind("DestinationRule"):
        if sec.dr_mode(dr) != sec.DISABLE:
            continue
        scope, ns = sec.dr_scope(dr, snap)
        if scope == sec.NAMESPACE:
            ns_pas = sec.namespace_pas(snap, ns)
            strict = next((pa for pa in ns_pas if sec.pa_mode(pa) == sec.STRICT), None)
            if strict is not None:
                out.append(sec.finding("MS2007", dr, TLS_PATH, [sec.ref(strict, "spec/mtls")], namespace=ns,
                                       policy=sec.obj_label(strict)))
                continue
            if ns_pas:
                continue  # the namespace has its own policy: the mesh-wide one does not apply
        elif scope != sec.MESH:
            continue
        if mesh_strict is not None:
            out.append(sec.finding("MS2008", dr, TLS_PATH, [sec.ref(mesh_strict, "spec/mtls")],
                                   scope="the whole mesh" if scope == sec.MESH else f"namespace {ns}",
                                   policy=sec.obj_label(mesh_strict)))
    return out


def host_rule_drops_mtls(snap: Snapshot) -> list[Finding]:
    """KIA0204: a host-level DR without TLS under a mesh/namespace ISTIO_MUTUAL DR (auto-mTLS off).

    With auto-mTLS on, the client still negotiates mTLS, so nothing is lost.
    """
    if snap.mesh_config.enable_auto_mtls:
        return []
    wide = [(dr, sec.dr_scope(dr, snap)) for dr in snap.of_kind("DestinationRule")
            if sec.dr_scope(dr, snap)[0] in (sec.MESH, sec.NAMESPACE) and sec.dr_mode(dr) in MUTUAL_MODES]
    if not wide:
        return []
    suffix = f".svc.{snap.mesh_config.domain_suffix}"
    out = []
    for dr in snap.of_kind("DestinationRule"):
        scope, host = sec.dr_scope(dr, snap)
        if scope != sec.HOST or sec.has_tls_settings(dr) or not host:
            continue
        host_ns = host[:-len(suffix)].rsplit(".", 1)[-1] if host.endswith(suffix) else None
        covering = [w for w, (wscope, wns) in wide if wscope == sec.MESH or wns == host_ns]
        if not covering:
            continue
        w = covering[0]
        wscope, wns = sec.dr_scope(w, snap)
        out.append(sec.finding("MS2009", dr, "spec/trafficPolicy" if "trafficPolicy" in dr.spec else "spec/host",
                               [sec.ref(c, TLS_PATH) for c in covering], rule=sec.obj_label(w), host=host,
                               scope="the whole mesh" if wscope == sec.MESH else f"namespace {wns}"))
    return out


# -- client mode vs server mode, per service, workload and port ---------------------------------
def _kiali_covers(code: str, dr: ConfigObject, pa: ConfigObject, snap: Snapshot) -> bool:
    """Whether the mesh/namespace-level checks above already report this DR/PA pair."""
    scope, ns = sec.dr_scope(dr, snap)
    mode = sec.dr_mode(dr)
    pa_ns_level = sec.is_namespace_pa(pa, snap)
    pa_mesh = sec.is_mesh_pa(pa, snap)
    if code == "MS2010":
        if mode != sec.DISABLE:
            return False
        if scope == sec.NAMESPACE and pa_ns_level and pa.namespace == ns:
            return True
        return pa_mesh and (scope == sec.MESH or (scope == sec.NAMESPACE and not sec.namespace_pas(snap, ns)))
    if mode not in MUTUAL_MODES:
        return False
    return (pa_ns_level and (scope == sec.MESH or (scope == sec.NAMESPACE and ns == pa.namespace))) or (
        pa_mesh and scope == sec.MESH)


def _pa_path(server: sec.ServerMode, port: str | None) -> str:
    return f"spec/portLevelMtls/{port}/mode" if server.level == sec.PORT else "spec/mtls/mode"


def _subset_modes(dr: ConfigObject, port: str | None) -> list[tuple[str, str, dict[str, str]]]:
    """(mode, path, subset labels) for subsets of a DR that set their own TLS (port-level first)."""
    out = []
    subsets = dr.spec.get("subsets")
    for i, subset in enumerate(subsets if isinstance(subsets, list) else []):
        subset = sec.as_dict(subset)
        policy = sec.as_dict(subset.get("trafficPolicy"))
        labels = {str(k): str(v) for k, v in sec.as_dict(subset.get("labels")).items()}
        chosen = None
        pls = policy.get("portLevelSettings")
        for j, setting in enumerate(pls if isinstance(pls, list) else []):
            setting = sec.as_dict(setting)
            mode = sec.mode_of(sec.as_dict(setting.get("tls")).get("mode"))
            if mode and port is not None and str(sec.as_dict(setting.get("port")).get("number")) == port:
                chosen = (mode, f"spec/subsets[{i}]/trafficPolicy/portLevelSettings[{j}]/tls/mode")
        mode = sec.mode_of(sec.as_dict(policy.get("tls")).get("mode"))
        if chosen is None and mode:
            chosen = (mode, f"spec/subsets[{i}]/trafficPolicy/tls/mode")
        if chosen is not None:
            out.append((*chosen, labels))
    return out


def _clients_and_targets(client: sec.ClientMode, port: str | None, targets: list[sec.Target]):
    """Pairs of (client mode, target): the DR's own mode for every target, a subset's mode for its pods.

    Without known workloads the target is the Service selector; a subset then
    adds its labels to it, since its pods are the ones it names.
    """
    if client.mode is not None:
        for target in targets:
            yield client, target
    for mode, path, labels in _subset_modes(client.rule, port):
        subset_client = sec.ClientMode(mode, client.rule, path, client.scope)
        for target in targets:
            if target.workload is None:
                yield subset_client, sec.Target(target.namespace, {**target.labels, **labels})
            elif all(target.labels.get(k) == v for k, v in labels.items()):
                yield subset_client, target


def client_server_mismatch(snap: Snapshot) -> list[Finding]:
    """STRICT server vs DISABLE/SIMPLE client (MS2010) and DISABLE server vs mTLS client (MS2011)."""
    if not snap.of_kind("PeerAuthentication"):
        return []  # no server-side policy anywhere: nothing can contradict a client
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for svc in snap.services():
        selector = svc.spec.get("selector")
        if not isinstance(selector, dict) or not selector:
            continue
        host = sec.service_host(snap, svc)
        candidates = sec.dr_candidates(snap, host)
        if not candidates:
            continue  # no DestinationRule: auto-mTLS (or plaintext) is not a conflicting intent
        # Clients in the service's namespace, and in every namespace holding a DR for the host
        # (Istio prefers the client's own namespace, so those clients may use a different rule).
        client_namespaces = dict.fromkeys([svc.namespace, *(dr.namespace for dr in candidates)])
        ports = list(sec.service_target_ports(svc).items()) or [(None, None)]
        targets = sec.targets_of(snap, svc.namespace, {str(k): str(v) for k, v in selector.items()})
        for client_ns, (port, target_port) in ((n, p) for n in client_namespaces for p in ports):
            client = sec.client_mode(snap, host, client_ns, port)
            if client.rule is None:
                continue
            for client, target in _clients_and_targets(client, port, targets):
                server = sec.server_mode(snap, target, target_port if target_port and target_port.isdigit() else None)
                if server.policy is None:
                    continue
                if client.mode in sec.NOT_ISTIO_MTLS and server.mode == sec.STRICT:
                    code = "MS2010"
                elif client.mode in MUTUAL_MODES and server.mode == sec.DISABLE:
                    code = "MS2011"
                else:
                    continue
                if _kiali_covers(code, client.rule, server.policy, snap):
                    continue
                port_text = f" port {port}" if client.path and "portLevelSettings" in client.path else ""
                if client.path and client.path.startswith("spec/subsets"):
                    port_text += f" (subset {client.path.split('/')[1]})"
                key = (code, id(client.rule), client.path, id(server.policy), host, port_text)
                entry = found.setdefault(key, {"client": client, "server": server, "host": host,
                                               "port_text": port_text, "targets": [], "target_port": target_port})
                label = sec.target_label(target)
                if label not in entry["targets"]:
                    entry["targets"].append(label)
    out = []
    for (code, *_), e in found.items():
        client, server = e["client"], e["server"]
        path = client.path or TLS_PATH
        out.append(sec.finding(code, client.rule, path,
                               [sec.ref(server.policy, _pa_path(server, e["target_port"]))],
                               host=e["host"], port_text=e["port_text"], mode=client.mode,
                               policy=f"{server.policy.namespace}/{server.policy.name}",
                               target=", ".join(e["targets"]), field_path=path))
    return out


# -- TLS origination without server verification (IST0128 / IST0129) ----------------------------
def _unverified(tls: Any, dr: ConfigObject) -> str | None:
    """The TLS mode when `tls` originates SIMPLE/MUTUAL TLS without a CA to verify the server."""
    if not isinstance(tls, dict):
        return None
    mode = sec.mode_of(tls.get("mode"))
    if mode not in (sec.SIMPLE, sec.MUTUAL) or tls.get("caCertificates") or tls.get("insecureSkipVerify") is True:
        return None
    if tls.get("credentialName") and sec.selector_of(dr, "workloadSelector") is not None:
        return None  # a gateway reading the CA from the credential's Secret
    return mode


def missing_ca_certificates(snap: Snapshot) -> list[Finding]:
    out = []
    for dr in snap.of_kind("DestinationRule"):
        host = dr.spec.get("host", "")
        policies: list[tuple[str, Any]] = [("spec/trafficPolicy", dr.spec.get("trafficPolicy"))]
        subsets = dr.spec.get("subsets")
        for i, subset in enumerate(subsets if isinstance(subsets, list) else []):
            if isinstance(subset, dict):
                policies.append((f"spec/subsets[{i}]/trafficPolicy", subset.get("trafficPolicy")))
        for base, policy in policies:
            if not isinstance(policy, dict):
                continue
            mode = _unverified(policy.get("tls"), dr)
            if mode:
                path = f"{base}/tls/mode"
                out.append(sec.finding("MS2040", dr, path, mode=mode, host=host, field_path=f"{base}/tls"))
            pls = policy.get("portLevelSettings")
            for i, setting in enumerate(pls if isinstance(pls, list) else []):
                if not isinstance(setting, dict):
                    continue
                mode = _unverified(setting.get("tls"), dr)
                if mode:
                    port = sec.as_dict(setting.get("port")).get("number", "?")
                    path = f"{base}/portLevelSettings[{i}]/tls"
                    out.append(sec.finding("MS2041", dr, path + "/mode", mode=mode, host=host, port=port, field_path=path))
    return out


PA, DR, MC, SVC, WL = "PeerAuthentication", "DestinationRule", "MeshConfig", "Service", "Workload"

MESH_WITHOUT_PA = sec.rule(
    "destinationrule.TLSMeshWideWithoutPeerAuthentication",
    "mesh-wide ISTIO_MUTUAL DestinationRule with auto-mTLS off and no mesh-wide PeerAuthentication enabling mTLS",
    (DR, MC, PA), ("MS2005",), mesh_dr_without_pa)
NAMESPACE_WITHOUT_PA = sec.rule(
    "destinationrule.TLSNamespaceWideWithoutPeerAuthentication",
    "namespace-wide ISTIO_MUTUAL DestinationRule with auto-mTLS off and no PeerAuthentication enabling mTLS",
    (DR, MC, PA), ("MS2006",), namespace_dr_without_pa)
DISABLED_UNDER_STRICT = sec.rule(
    "destinationrule.TLSDisabledUnderStrict",
    "mesh- or namespace-wide DestinationRule disables TLS where a PeerAuthentication requires mTLS",
    (DR, MC, PA), ("MS2007", "MS2008"), disabled_under_strict)
HOST_DROPS_MTLS = sec.rule(
    "destinationrule.TLSSettingsMissing",
    "host DestinationRule without TLS settings overrides a mesh/namespace ISTIO_MUTUAL one (auto-mTLS off)",
    (DR, MC), ("MS2009",), host_rule_drops_mtls)
CLIENT_SERVER_MISMATCH = sec.rule(
    "destinationrule.TLSModeConflictsWithPeerAuthentication",
    "a Service's governing DestinationRule TLS mode contradicts the PeerAuthentication of its workloads or ports",
    (DR, MC, PA, SVC, WL), ("MS2010", "MS2011"), client_server_mismatch)
CA_CERTIFICATES = sec.rule(
    "destinationrule.CaCertificates",
    "DestinationRule originates SIMPLE/MUTUAL TLS without caCertificates",
    (DR,), ("MS2040", "MS2041"), missing_ca_certificates)


def mtls_to_workloads_without_sidecar(snap: Snapshot) -> list[Finding]:
    """MS2015: ISTIO_MUTUAL towards a Service whose every known workload is outside the mesh.

    Workloads in a namespace the input says nothing about are assumed injected.
    """
    out = []
    seen: set[tuple[int, str]] = set()
    for svc in snap.services():
        selector = sec.as_dict(svc.spec.get("selector"))
        if not selector:
            continue
        host = sec.service_host(snap, svc)
        candidates = sec.dr_candidates(snap, host)
        if not candidates:
            continue
        workloads = sec.select_workloads(snap, svc.namespace, {str(k): str(v) for k, v in selector.items()})
        if not workloads or any(sec.in_mesh(snap, w) for w in workloads):
            continue
        for ns in dict.fromkeys([svc.namespace, *(dr.namespace for dr in candidates)]):
            client = sec.client_mode(snap, host, ns)
            if client.mode != sec.ISTIO_MUTUAL or client.rule is None or (id(client.rule), host) in seen:
                continue
            seen.add((id(client.rule), host))
            out.append(sec.finding("MS2015", client.rule, client.path, [sec.ref(svc)], host=host,
                                   workloads=", ".join(f"{w.kind} {w.namespace}/{w.name}" for w in workloads),
                                   field_path=client.path))
    return out


WITHOUT_SIDECAR = sec.rule(
    "destinationrule.TLSMutualWithoutSidecar",
    "ISTIO_MUTUAL towards a Service whose workloads have no sidecar",
    (DR, MC, SVC, WL, "Namespace"), ("MS2015",), mtls_to_workloads_without_sidecar)
