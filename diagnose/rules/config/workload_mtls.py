"""Client vs server mTLS per Service, workload, port and subset: what neither Kiali nor istioctl checks.

For every Service this takes the DestinationRule Istio actually picks for its
clients (client namespace, then the Service's, then the root; most specific
host; port-level and subset-level TLS first) and compares that mode with the
PeerAuthentication in force on each backing workload and target port. That is
the STRICT-server/DISABLE-client case that resets every request (503 UC), its
mirror image, and ISTIO_MUTUAL towards workloads that have no sidecar.
"""
from __future__ import annotations

from typing import Any

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from diagnose.rules.config import snapshot_rule as sr
from diagnose.rules.config import tls_fields as tf
from mesh.config import ConfigObject, Snapshot
from mesh.config.traffic_policy import effective, subset_index, tls_mode

MUTUAL_MODES = (tf.ISTIO_MUTUAL, tf.MUTUAL)
TLS_PATH = "spec/trafficPolicy/tls/mode"
#: What the client sees when it does not speak Istio mTLS to a STRICT server (envoy-feasibility.md).
EFFECTS = {
    tf.DISABLE: "the server closes every plaintext connection (503, response flag UC)",
    tf.SIMPLE: "the TLS handshake fails without an Istio client certificate (503, response flags URX,UF)",
}
PA, DR, MC, SVC, WL = "PeerAuthentication", "DestinationRule", "MeshConfig", "Service", "Workload"


def _kiali_covers(code: str, dr: ConfigObject, pa: ConfigObject, snap: Snapshot) -> bool:
    """Whether the mesh/namespace-level checks above already report this DR/PA pair."""
    scope, ns = tf.dr_scope(dr, snap)
    mode = tf.dr_mode(dr)
    pa_ns_level = tf.is_namespace_pa(pa, snap)
    pa_mesh = tf.is_mesh_pa(pa, snap)
    if code == "MS2010":
        if mode != tf.DISABLE:
            return False
        if scope == tf.NAMESPACE and pa_ns_level and pa.namespace == ns:
            return True
        return pa_mesh and (scope == tf.MESH or (scope == tf.NAMESPACE and not sec.namespace_pas(snap, ns)))
    if mode not in MUTUAL_MODES:
        return False
    return (pa_ns_level and (scope == tf.MESH or (scope == tf.NAMESPACE and ns == pa.namespace))) or (
        pa_mesh and scope == tf.MESH)


def _pa_path(server: sec.ServerMode, port: str | None) -> str:
    return f"spec/portLevelMtls/{port}/mode" if server.level == tf.PORT else "spec/mtls/mode"


def _subset_modes(dr: ConfigObject, port: str | None) -> list[tuple[str, str, dict[str, str]]]:
    """(mode, path, subset labels) for subsets whose cluster takes its TLS from the subset itself.

    Istio's merge (`mesh.config.traffic_policy`): the subset's port-level entry for the port, else its own tls,
    overrides the top level's; a port-level entry without tls means auto mTLS, whatever the subset's own tls says;
    a tls block without a mode is DISABLE."""
    out = []
    subsets = dr.spec.get("subsets")
    for i, subset in enumerate(subsets if isinstance(subsets, list) else []):
        subset = tf.as_dict(subset)
        name = subset.get("name")
        if not isinstance(name, str) or subset_index(dr.spec, name) != i:
            continue  # no cluster of its own: unnamed, or a name an earlier subset already took
        tls = effective(dr.spec, port, name).get("tls")
        mode = tf.mode_of(tls_mode(tls.value)) if tls is not None else None  # no mode in the block: DISABLE
        if mode and tls is not None and tls.path.startswith(f"spec/subsets[{i}]/"):
            labels = {str(k): str(v) for k, v in tf.as_dict(subset.get("labels")).items()}
            out.append((mode, f"{tls.path}/mode", labels))
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
                if client.mode in tf.NOT_ISTIO_MTLS and server.mode == tf.STRICT:
                    code = "MS2010"
                elif client.mode in MUTUAL_MODES and server.mode == tf.DISABLE:
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
        out.append(sr.finding(code, client.rule, path,
                               [sr.ref(server.policy, _pa_path(server, e["target_port"]))],
                               host=e["host"], port_text=e["port_text"], mode=client.mode,
                               policy=f"{server.policy.namespace}/{server.policy.name}",
                               target=", ".join(e["targets"]), field_path=path, effect=EFFECTS.get(client.mode, "")))
    return out


def mtls_to_workloads_without_sidecar(snap: Snapshot) -> list[Finding]:
    """MS2015: ISTIO_MUTUAL towards a Service whose every known workload is outside the mesh.

    Workloads in a namespace the input says nothing about are assumed injected.
    """
    out = []
    seen: set[tuple[int, str]] = set()
    for svc in snap.services():
        selector = tf.as_dict(svc.spec.get("selector"))
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
            if client.mode != tf.ISTIO_MUTUAL or client.rule is None or (id(client.rule), host) in seen:
                continue
            seen.add((id(client.rule), host))
            out.append(sr.finding("MS2015", client.rule, client.path, [sr.ref(svc)], host=host,
                                   workloads=", ".join(f"{w.kind} {w.namespace}/{w.name}" for w in workloads),
                                   field_path=client.path))
    return out


CLIENT_SERVER_MISMATCH = sr.rule(
    "destinationrule.TLSModeConflictsWithPeerAuthentication",
    "a Service's governing DestinationRule TLS mode contradicts the PeerAuthentication of its workloads or ports",
    (DR, MC, PA, SVC, WL), ("MS2010", "MS2011"), client_server_mismatch)
WITHOUT_SIDECAR = sr.rule(
    "destinationrule.TLSMutualWithoutSidecar",
    "ISTIO_MUTUAL towards a Service whose workloads have no sidecar",
    (DR, MC, SVC, WL, "Namespace"), ("MS2015",), mtls_to_workloads_without_sidecar)
