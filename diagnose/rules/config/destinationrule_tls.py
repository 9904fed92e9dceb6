"""DestinationRule TLS checks: Kiali's mesh/namespace mTLS table, and TLS origination without verification.

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
from diagnose.rules.config import snapshot_rule as sr
from diagnose.rules.config import tls_fields as tf
from mesh.config import ConfigObject, Snapshot

MUTUAL_MODES = (tf.ISTIO_MUTUAL, tf.MUTUAL)
TLS_PATH = "spec/trafficPolicy/tls/mode"


def _mesh_enabling_pa(snap: Snapshot) -> bool:
    return any(tf.enables_mtls(pa) for pa in sec.mesh_pas(snap))


def mesh_dr_without_pa(snap: Snapshot) -> list[Finding]:
    """KIA0205: mesh-wide ISTIO_MUTUAL DR, auto-mTLS off, no mesh-wide PA enabling mTLS."""
    mc = snap.mesh_config
    if mc.enable_auto_mtls or _mesh_enabling_pa(snap):
        return []
    return [sr.finding("MS2005", dr, TLS_PATH, root_namespace=mc.root_namespace) for dr in sec.mesh_drs(snap)
            if tf.dr_mode(dr) == tf.ISTIO_MUTUAL]


def namespace_dr_without_pa(snap: Snapshot) -> list[Finding]:
    """KIA0206: namespace-wide ISTIO_MUTUAL DR, auto-mTLS off, no namespace or mesh PA enabling mTLS."""
    mc = snap.mesh_config
    if mc.enable_auto_mtls or _mesh_enabling_pa(snap):
        return []
    out = []
    for dr in snap.of_kind("DestinationRule"):
        scope, ns = tf.dr_scope(dr, snap)
        if scope != tf.NAMESPACE or tf.dr_mode(dr) != tf.ISTIO_MUTUAL:
            continue
        if any(tf.enables_mtls(pa) for pa in sec.namespace_pas(snap, ns)):
            continue
        out.append(sr.finding("MS2006", dr, TLS_PATH, namespace=ns, root_namespace=mc.root_namespace))
    return out


def disabled_under_strict(snap: Snapshot) -> list[Finding]:
    """KIA0207 (namespace DR DISABLE vs namespace STRICT) and KIA0208 (DR DISABLE vs mesh STRICT)."""
    out = []
    mesh_strict = next((pa for pa in sec.mesh_pas(snap) if tf.pa_mode(pa) == tf.STRICT), None)
    for dr in snap.of_kind("DestinationRule"):
        if tf.dr_mode(dr) != tf.DISABLE:
            continue
        scope, ns = tf.dr_scope(dr, snap)
        if scope == tf.NAMESPACE:
            ns_pas = sec.namespace_pas(snap, ns)
            strict = next((pa for pa in ns_pas if tf.pa_mode(pa) == tf.STRICT), None)
            if strict is not None:
                out.append(sr.finding("MS2007", dr, TLS_PATH, [sr.ref(strict, "spec/mtls")], namespace=ns,
                                       policy=sr.obj_label(strict)))
                continue
            if ns_pas:
                continue  # the namespace has its own policy: the mesh-wide one does not apply
        elif scope != tf.MESH:
            continue
        if mesh_strict is not None:
            out.append(sr.finding("MS2008", dr, TLS_PATH, [sr.ref(mesh_strict, "spec/mtls")],
                                   scope="the whole mesh" if scope == tf.MESH else f"namespace {ns}",
                                   policy=sr.obj_label(mesh_strict)))
    return out


def host_rule_drops_mtls(snap: Snapshot) -> list[Finding]:
    """KIA0204: a host-level DR without TLS under a mesh/namespace ISTIO_MUTUAL DR (auto-mTLS off).

    With auto-mTLS on, the client still negotiates mTLS, so nothing is lost.
    """
    if snap.mesh_config.enable_auto_mtls:
        return []
    wide = [(dr, tf.dr_scope(dr, snap)) for dr in snap.of_kind("DestinationRule")
            if tf.dr_scope(dr, snap)[0] in (tf.MESH, tf.NAMESPACE) and tf.dr_mode(dr) in MUTUAL_MODES]
    if not wide:
        return []
    suffix = f".svc.{snap.mesh_config.domain_suffix}"
    out = []
    for dr in snap.of_kind("DestinationRule"):
        scope, host = tf.dr_scope(dr, snap)
        if scope != tf.HOST or tf.has_tls_settings(dr) or not host:
            continue
        host_ns = host[:-len(suffix)].rsplit(".", 1)[-1] if host.endswith(suffix) else None
        covering = [w for w, (wscope, wns) in wide if wscope == tf.MESH or wns == host_ns]
        if not covering:
            continue
        w = covering[0]
        wscope, wns = tf.dr_scope(w, snap)
        out.append(sr.finding("MS2009", dr, "spec/trafficPolicy" if "trafficPolicy" in dr.spec else "spec/host",
                               [sr.ref(c, TLS_PATH) for c in covering], rule=sr.obj_label(w), host=host,
                               scope="the whole mesh" if wscope == tf.MESH else f"namespace {wns}"))
    return out


# -- TLS origination without server verification (IST0128 / IST0129) ----------------------------
def _unverified(tls: Any, dr: ConfigObject) -> str | None:
    """The TLS mode when `tls` originates SIMPLE/MUTUAL TLS without a CA to verify the server."""
    if not isinstance(tls, dict):
        return None
    mode = tf.mode_of(tls.get("mode"))
    if mode not in (tf.SIMPLE, tf.MUTUAL) or tls.get("caCertificates") or tls.get("insecureSkipVerify") is True:
        return None
    if tls.get("credentialName") and tf.selector_of(dr, "workloadSelector") is not None:
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
                out.append(sr.finding("MS2040", dr, path, mode=mode, host=host, field_path=f"{base}/tls"))
            pls = policy.get("portLevelSettings")
            for i, setting in enumerate(pls if isinstance(pls, list) else []):
                if not isinstance(setting, dict):
                    continue
                mode = _unverified(setting.get("tls"), dr)
                if mode:
                    port = tf.as_dict(setting.get("port")).get("number", "?")
                    path = f"{base}/portLevelSettings[{i}]/tls"
                    out.append(sr.finding("MS2041", dr, path + "/mode", mode=mode, host=host, port=port, field_path=path))
    return out


PA, DR, MC, SVC, WL = "PeerAuthentication", "DestinationRule", "MeshConfig", "Service", "Workload"

MESH_WITHOUT_PA = sr.rule(
    "destinationrule.TLSMeshWideWithoutPeerAuthentication",
    "mesh-wide ISTIO_MUTUAL DestinationRule with auto-mTLS off and no mesh-wide PeerAuthentication enabling mTLS",
    (DR, MC, PA), ("MS2005",), mesh_dr_without_pa)
NAMESPACE_WITHOUT_PA = sr.rule(
    "destinationrule.TLSNamespaceWideWithoutPeerAuthentication",
    "namespace-wide ISTIO_MUTUAL DestinationRule with auto-mTLS off and no PeerAuthentication enabling mTLS",
    (DR, MC, PA), ("MS2006",), namespace_dr_without_pa)
DISABLED_UNDER_STRICT = sr.rule(
    "destinationrule.TLSDisabledUnderStrict",
    "mesh- or namespace-wide DestinationRule disables TLS where a PeerAuthentication requires mTLS",
    (DR, MC, PA), ("MS2007", "MS2008"), disabled_under_strict)
HOST_DROPS_MTLS = sr.rule(
    "destinationrule.TLSSettingsMissing",
    "host DestinationRule without TLS settings overrides a mesh/namespace ISTIO_MUTUAL one (auto-mTLS off)",
    (DR, MC), ("MS2009",), host_rule_drops_mtls)
CA_CERTIFICATES = sr.rule(
    "destinationrule.CaCertificates",
    "DestinationRule originates SIMPLE/MUTUAL TLS without caCertificates",
    (DR,), ("MS2040", "MS2041"), missing_ca_certificates)
