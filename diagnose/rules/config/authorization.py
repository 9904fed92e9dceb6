"""AuthorizationPolicy checks: identity matches without mTLS or JWT validation, and selectors matching nothing.

A policy that matches on peer identity (principals, namespaces, or the
``source.principal`` / ``source.namespace`` / ``connection.sni`` conditions)
only works when its workloads receive Istio mTLS: plaintext requests carry no
identity, so ALLOW rules never match and DENY rules never fire. Whether mTLS
is in force is decided by the same precedence helpers as the mTLS rules;
without auto-mTLS an explicit PeerAuthentication and an ISTIO_MUTUAL
DestinationRule are both required (Kiali's reading, kept for conformance).
"""
from __future__ import annotations

from typing import Any

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from diagnose.rules.config import snapshot_rule as sr
from diagnose.rules.config import tls_fields as tf
from mesh.config import ConfigObject, Snapshot

IDENTITY_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")
IDENTITY_WHEN_KEYS = ("source.principal", "source.namespace", "connection.sni")
#: Placeholder service name used to ask which namespace- or mesh-wide DR covers a namespace.
ANY_SERVICE = "any-service"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def identity_paths(ap: ConfigObject) -> list[tuple[str, str]]:
    """(path, field) of every identity-based match in the policy, in document order."""
    out = []
    for i, rule in enumerate(_list(ap.spec.get("rules"))):
        rule = tf.as_dict(rule)
        for j, src in enumerate(_list(rule.get("from"))):
            source = tf.as_dict(tf.as_dict(src).get("source"))
            for f in IDENTITY_FIELDS:
                if source.get(f):
                    out.append((f"spec/rules[{i}]/from[{j}]/source/{f}", f))
        for k, cond in enumerate(_list(rule.get("when"))):
            key = tf.as_dict(cond).get("key")
            if key in IDENTITY_WHEN_KEYS:
                out.append((f"spec/rules[{i}]/when[{k}]", f"when {key}"))
    return out


JWT_FIELDS = ("requestPrincipals", "notRequestPrincipals")


def jwt_paths(ap: ConfigObject) -> list[tuple[str, str]]:
    """(path, field) of every match on the request's JWT identity (requestPrincipals, request.auth.* keys)."""
    out = []
    for i, rule in enumerate(_list(ap.spec.get("rules"))):
        rule = tf.as_dict(rule)
        for j, src in enumerate(_list(rule.get("from"))):
            source = tf.as_dict(tf.as_dict(src).get("source"))
            out.extend((f"spec/rules[{i}]/from[{j}]/source/{f}", f) for f in JWT_FIELDS if source.get(f))
        for k, cond in enumerate(_list(rule.get("when"))):
            key = tf.as_dict(cond).get("key")
            if isinstance(key, str) and key.startswith("request.auth."):
                out.append((f"spec/rules[{i}]/when[{k}]", f"when {key}"))
    return out


def policy_targets(snap: Snapshot, ap: ConfigObject) -> list[sec.Target]:
    """The workloads a policy applies to; for a namespace-wide policy with no workload known, the namespace."""
    sel = tf.selector_of(ap)
    if sel is None:
        found = sec.select_workloads(snap, ap.namespace, None)
        return [sec.Target(w.namespace, w.labels, w) for w in found] or [sec.Target(ap.namespace, {})]
    return sec.targets_of(snap, ap.namespace, sel)


def mtls_gap(snap: Snapshot, target: sec.Target) -> tuple[str, ConfigObject | None] | None:
    """Why a target does not receive mTLS traffic (reason, object to blame), or None when it does."""
    server = sec.server_mode(snap, target)
    if server.mode == tf.DISABLE:
        return f"PeerAuthentication {sr.obj_label(server.policy)} disables mTLS", server.policy
    suffix = snap.mesh_config.domain_suffix
    services = sec.services_selecting(snap, target) if target.labels else []
    hosts = [sec.service_host(snap, s) for s in services] or [f"{ANY_SERVICE}.{target.namespace}.svc.{suffix}"]
    clients = [sec.client_mode(snap, h, target.namespace) for h in hosts]
    for c in clients:
        if c.mode in tf.NOT_ISTIO_MTLS:
            return f"DestinationRule {sr.obj_label(c.rule)} sets tls.mode {c.mode}", c.rule
    if snap.mesh_config.enable_auto_mtls:
        return None
    if server.mode not in (tf.STRICT, tf.PERMISSIVE):
        return "auto-mTLS is off and no PeerAuthentication enables mTLS", None
    for c in clients:
        if c.mode not in (tf.ISTIO_MUTUAL, tf.MUTUAL):
            return "auto-mTLS is off and no DestinationRule makes clients use ISTIO_MUTUAL", c.rule
    return None


def needs_mtls(snap: Snapshot) -> list[Finding]:
    """KIA0105: identity-based rules on workloads that do not receive mTLS."""
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        paths = identity_paths(ap)
        if not paths:
            continue
        for target in policy_targets(snap, ap):
            gap = mtls_gap(snap, target)
            if gap is None:
                continue
            reason, blame = gap
            related = [sr.ref(blame)] if blame is not None else []
            label = sec.target_label(target) if target.labels or target.workload else f"namespace {target.namespace}"
            out.extend(sr.finding("MS2030", ap, path, related, field=f, target=label, reason=reason)
                       for path, f in paths)
            break
    return out


def no_matching_workloads(snap: Snapshot) -> list[Finding]:
    """IST0127: a policy that selects no in-mesh workload (judged only when the input has workloads)."""
    if not snap.workloads():
        return []
    root = snap.mesh_config.root_namespace
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        sel = tf.selector_of(ap)
        if ap.namespace == root and sel is None:
            continue  # mesh-wide: applies to every workload, present or future
        found = sec.select_workloads(snap, ap.namespace, sel, any_namespace=ap.namespace == root)
        if any(sec.in_mesh(snap, w) for w in found):
            continue
        scope = (f"selector {','.join(f'{k}={v}' for k, v in sorted(sel.items()))}" if sel
                 else f"(namespace-wide in {ap.namespace})")
        out.append(sr.finding("MS2031", ap, "spec/selector" if sel else "metadata/namespace", scope=scope))
    return out


def jwt_without_request_authentication(snap: Snapshot) -> list[Finding]:
    """MS2037: request-identity matches on workloads no RequestAuthentication covers."""
    root = snap.mesh_config.root_namespace
    authns = [(ra, tf.selector_of(ra)) for ra in snap.of_kind("RequestAuthentication")]
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        paths = jwt_paths(ap)
        if not paths:
            continue
        for target in policy_targets(snap, ap):
            covered = any((ra.namespace == root and sel is None) or (ra.namespace == target.namespace and (
                sel is None or (target.labels and all(target.labels.get(k) == v for k, v in sel.items()))))
                for ra, sel in authns)
            if covered:
                continue
            label = sec.target_label(target) if target.labels or target.workload else f"namespace {target.namespace}"
            out.extend(sr.finding("MS2037", ap, path, field=f, target=label, root_namespace=root) for path, f in paths)
            break
    return out


AP = "AuthorizationPolicy"

NEEDS_MTLS = sr.rule(
    "authorizationpolicy.IdentityWithoutMTLS",
    "AuthorizationPolicy matches peer identities on workloads that do not receive mTLS",
    (AP, "MeshConfig", "PeerAuthentication", "DestinationRule", "Service", "Workload"), ("MS2030",), needs_mtls)
NO_MATCHING_WORKLOADS = sr.rule(
    "authorizationpolicy.NoMatchingWorkloads",
    "AuthorizationPolicy selects no in-mesh workload",
    (AP, "Workload", "MeshConfig", "Namespace"), ("MS2031",), no_matching_workloads)
JWT_WITHOUT_AUTHN = sr.rule(
    "authorizationpolicy.JWTWithoutRequestAuthentication",
    "AuthorizationPolicy matches JWT identities on workloads no RequestAuthentication covers",
    (AP, "MeshConfig", "RequestAuthentication", "Workload"), ("MS2037",), jwt_without_request_authentication)
