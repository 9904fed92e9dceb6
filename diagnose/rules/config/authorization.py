"""AuthorizationPolicy checks: identity matches without mTLS, dangling selectors and references.

A policy that matches on peer identity (principals, namespaces, or the
``source.principal`` / ``source.namespace`` / ``connection.sni`` conditions)
only works when its workloads receive Istio mTLS: plaintext requests carry no
identity, so ALLOW rules never match and DENY rules never fire. Whether mTLS
is in force is decided by the same precedence helpers as the mTLS rules;
without auto-mTLS an explicit PeerAuthentication and an ISTIO_MUTUAL
DestinationRule are both required (Kiali's reading, kept for conformance).
"""
from __future__ import annotations

import re
from typing import Any

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from mesh.config import ConfigObject, Snapshot

IDENTITY_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")
IDENTITY_WHEN_KEYS = ("source.principal", "source.namespace", "connection.sni")
METHOD_RE = re.compile(r"^[A-Z]+$")
PRINCIPAL_RE = re.compile(r"^(?P<domain>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")
#: Placeholder service name used to ask which namespace- or mesh-wide DR covers a namespace.
ANY_SERVICE = "any-service"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def identity_paths(ap: ConfigObject) -> list[tuple[str, str]]:
    """(path, field) of every identity-based match in the policy, in document order."""
    out = []
    for i, rule in enumerate(_list(ap.spec.get("rules"))):
        rule = sec.as_dict(rule)
        for j, src in enumerate(_list(rule.get("from"))):
            source = sec.as_dict(sec.as_dict(src).get("source"))
            for f in IDENTITY_FIELDS:
                if source.get(f):
                    out.append((f"spec/rules[{i}]/from[{j}]/source/{f}", f))
        for k, cond in enumerate(_list(rule.get("when"))):
            key = sec.as_dict(cond).get("key")
            if key in IDENTITY_WHEN_KEYS:
                out.append((f"spec/rules[{i}]/when[{k}]", f"when {key}"))
    return out


JWT_FIELDS = ("requestPrincipals", "notRequestPrincipals")


def jwt_paths(ap: ConfigObject) -> list[tuple[str, str]]:
    """(path, field) of every match on the request's JWT identity (requestPrincipals, request.auth.* keys)."""
    out = []
    for i, rule in enumerate(_list(ap.spec.get("rules"))):
        rule = sec.as_dict(rule)
        for j, src in enumerate(_list(rule.get("from"))):
            source = sec.as_dict(sec.as_dict(src).get("source"))
            out.extend((f"spec/rules[{i}]/from[{j}]/source/{f}", f) for f in JWT_FIELDS if source.get(f))
        for k, cond in enumerate(_list(rule.get("when"))):
            key = sec.as_dict(cond).get("key")
            if isinstance(key, str) and key.startswith("request.auth."):
                out.append((f"spec/rules[{i}]/when[{k}]", f"when {key}"))
    return out


def policy_targets(snap: Snapshot, ap: ConfigObject) -> list[sec.Target]:
    """The workloads a policy applies to; for a namespace-wide policy with no workload known, the namespace."""
    sel = sec.selector_of(ap)
    if sel is None:
        found = sec.select_workloads(snap, ap.namespace, None)
        return [sec.Target(w.namespace, w.labels, w) for w in found] or [sec.Target(ap.namespace, {})]
    return sec.targets_of(snap, ap.namespace, sel)


def mtls_gap(snap: Snapshot, target: sec.Target) -> tuple[str, ConfigObject | None] | None:
    """Why a target does not receive mTLS traffic (reason, object to blame), or None when it does."""
    server = sec.server_mode(snap, target)
    if server.mode == sec.DISABLE:
        return f"PeerAuthentication {sec.obj_label(server.policy)} disables mTLS", server.policy
    suffix = snap.mesh_config.domain_suffix
    services = sec.services_selecting(snap, target) if target.labels else []
    hosts = [sec.service_host(snap, s) for s in services] or [f"{ANY_SERVICE}.{target.namespace}.svc.{suffix}"]
    clients = [sec.client_mode(snap, h, target.namespace) for h in hosts]
    for c in clients:
        if c.mode in sec.NOT_ISTIO_MTLS:
            return f"DestinationRule {sec.obj_label(c.rule)} sets tls.mode {c.mode}", c.rule
    if snap.mesh_config.enable_auto_mtls:
        return None
    if server.mode not in (sec.STRICT, sec.PERMISSIVE):
        return "auto-mTLS is off and no PeerAuthentication enables mTLS", None
    for c in clients:
        if c.mode not in (sec.ISTIO_MUTUAL, sec.MUTUAL):
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
            related = [sec.ref(blame)] if blame is not None else []
            label = sec.target_label(target) if target.labels or target.workload else f"namespace {target.namespace}"
            out.extend(sec.finding("MS2030", ap, path, related, field=f, target=label, reason=reason)
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
        sel = sec.selector_of(ap)
        if ap.namespace == root and sel is None:
            continue  # mesh-wide: applies to every workload, present or future
        found = sec.select_workloads(snap, ap.namespace, sel, any_namespace=ap.namespace == root)
        if any(sec.in_mesh(snap, w) for w in found):
            continue
        scope = (f"selector {','.join(f'{k}={v}' for k, v in sorted(sel.items()))}" if sel
                 else f"(namespace-wide in {ap.namespace})")
        out.append(sec.finding("MS2031", ap, "spec/selector" if sel else "metadata/namespace", scope=scope))
    return out


def _namespace_matches(pattern: str, known: set[str]) -> bool:
    if pattern == "*":
        return bool(known)
    if pattern.endswith("*"):
        return any(n.startswith(pattern[:-1]) for n in known)
    if pattern.startswith("*"):
        return any(n.endswith(pattern[1:]) for n in known)
    return pattern in known


def namespace_not_found(snap: Snapshot) -> list[Finding]:
    """IST0101/KIA0101: source (not)namespaces entries naming no existing namespace.

    Judged only when the input lists Namespace objects; otherwise the set of
    namespaces is unknown and every reference would look dangling.
    """
    if not snap.of_kind("Namespace"):
        return []
    known = snap.namespaces()
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        for i, rule in enumerate(_list(ap.spec.get("rules"))):
            for j, src in enumerate(_list(sec.as_dict(rule).get("from"))):
                source = sec.as_dict(sec.as_dict(src).get("source"))
                for f in ("namespaces", "notNamespaces"):
                    for k, value in enumerate(_list(source.get(f))):
                        if isinstance(value, str) and not _namespace_matches(value, known):
                            path = f"spec/rules[{i}]/from[{j}]/source/{f}[{k}]"
                            out.append(sec.finding("MS2032", ap, path, field=f, value=value, field_path=path))
    return out


def invalid_methods(snap: Snapshot) -> list[Finding]:
    """KIA0102: operation methods that are not HTTP methods (gRPC method names belong in paths)."""
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        for i, rule in enumerate(_list(ap.spec.get("rules"))):
            for j, to in enumerate(_list(sec.as_dict(rule).get("to"))):
                op = sec.as_dict(sec.as_dict(to).get("operation"))
                for f in ("methods", "notMethods"):
                    for k, value in enumerate(_list(op.get(f))):
                        text = str(value)
                        if text == "*" or METHOD_RE.match(text.strip("*") or "-"):
                            continue
                        out.append(sec.finding("MS2033", ap, f"spec/rules[{i}]/to[{j}]/operation/{f}[{k}]",
                                               field=f, value=text))
    return out


def jwt_without_request_authentication(snap: Snapshot) -> list[Finding]:
    """MS2037: request-identity matches on workloads no RequestAuthentication covers."""
    root = snap.mesh_config.root_namespace
    authns = [(ra, sec.selector_of(ra)) for ra in snap.of_kind("RequestAuthentication")]
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
            out.extend(sec.finding("MS2037", ap, path, field=f, target=label, root_namespace=root) for path, f in paths)
            break
    return out


def _known_hosts(snap: Snapshot) -> list[str]:
    """Hosts something serves: Service FQDNs, ServiceEntry hosts and VirtualService hosts."""
    known = [sec.service_host(snap, s) for s in snap.services()]
    for kind in ("ServiceEntry", "VirtualService"):
        for obj in snap.of_kind(kind):
            known.extend(snap.fqdn(h, obj.namespace) for h in _list(obj.spec.get("hosts")) if isinstance(h, str))
    return known


def _host_served(host: str, known: list[str], exact: set[str]) -> bool:
    if host in exact:
        return True
    for k in known:
        if k.startswith("*") and (k == "*" or host.endswith(k[1:])):
            return True
        if host.startswith("*") and (host == "*" or k.endswith(host[1:])):
            return True
        if host.endswith("*") and k.startswith(host[:-1]):
            return True
    return False


def unknown_hosts(snap: Snapshot) -> list[Finding]:
    """KIA0104: to.operation hosts that nothing in the registry serves (warning under ALLOW_ANY).

    Judged only when the input has Services or ServiceEntries to compare against.
    """
    if not snap.services() and not snap.of_kind("ServiceEntry"):
        return []
    known = _known_hosts(snap)
    exact = set(known)
    severity = "warning" if snap.mesh_config.outbound_traffic_policy == "ALLOW_ANY" else None
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        for i, rule in enumerate(_list(ap.spec.get("rules"))):
            for j, to in enumerate(_list(sec.as_dict(rule).get("to"))):
                op = sec.as_dict(sec.as_dict(to).get("operation"))
                for f in ("hosts", "notHosts"):
                    for k, value in enumerate(_list(op.get(f))):
                        if not isinstance(value, str) or not value:
                            continue
                        host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
                        if _host_served(snap.fqdn(host, ap.namespace), known, exact) or _host_served(host, known, exact):
                            continue
                        out.append(sec.finding("MS2036", ap, f"spec/rules[{i}]/to[{j}]/operation/{f}[{k}]",
                                               severity=severity, field=f, value=value))
    return out


def principals(snap: Snapshot) -> list[Finding]:
    """KIA0108 (foreign trust domain) and KIA0106 (service account not found) for source principals.

    Service accounts are judged only in namespaces whose ServiceAccount objects are in the input.
    """
    mc = snap.mesh_config
    domains = {mc.trust_domain, *mc.trust_domain_aliases}
    accounts: dict[str | None, set[str]] = {}
    for sa in snap.of_kind("ServiceAccount"):
        accounts.setdefault(sa.namespace, set()).add(sa.name)
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        for i, rule in enumerate(_list(ap.spec.get("rules"))):
            for j, src in enumerate(_list(sec.as_dict(rule).get("from"))):
                source = sec.as_dict(sec.as_dict(src).get("source"))
                for f in ("principals", "notPrincipals"):
                    for k, value in enumerate(_list(source.get(f))):
                        m = PRINCIPAL_RE.match(value) if isinstance(value, str) and "*" not in value else None
                        if m is None:
                            continue
                        path = f"spec/rules[{i}]/from[{j}]/source/{f}[{k}]"
                        if m["domain"] not in domains:
                            out.append(sec.finding("MS2035", ap, path, value=value, domain=m["domain"],
                                                   known=", ".join(sorted(domains))))
                        elif m["ns"] in accounts and m["sa"] not in accounts[m["ns"]]:
                            out.append(sec.finding("MS2034", ap, path, value=value, service_account=m["sa"],
                                                   namespace=m["ns"]))
    return out


AP = "AuthorizationPolicy"

NEEDS_MTLS = sec.rule(
    "authorizationpolicy.IdentityWithoutMTLS",
    "AuthorizationPolicy matches peer identities on workloads that do not receive mTLS",
    (AP, "MeshConfig", "PeerAuthentication", "DestinationRule", "Service", "Workload"), ("MS2030",), needs_mtls)
NO_MATCHING_WORKLOADS = sec.rule(
    "authorizationpolicy.NoMatchingWorkloads",
    "AuthorizationPolicy selects no in-mesh workload",
    (AP, "Workload", "MeshConfig", "Namespace"), ("MS2031",), no_matching_workloads)
NAMESPACE_NOT_FOUND = sec.rule(
    "authorizationpolicy.NamespaceNotFound",
    "AuthorizationPolicy source namespaces/notNamespaces entry matches no namespace",
    (AP, "Namespace"), ("MS2032",), namespace_not_found)
METHODS = sec.rule(
    "authorizationpolicy.Methods",
    "AuthorizationPolicy operation methods that are not HTTP methods",
    (AP,), ("MS2033",), invalid_methods)
JWT_WITHOUT_AUTHN = sec.rule(
    "authorizationpolicy.JWTWithoutRequestAuthentication",
    "AuthorizationPolicy matches JWT identities on workloads no RequestAuthentication covers",
    (AP, "MeshConfig", "RequestAuthentication", "Workload"), ("MS2037",), jwt_without_request_authentication)
HOSTS = sec.rule(
    "authorizationpolicy.Hosts",
    "AuthorizationPolicy operation hosts that no Service, ServiceEntry or VirtualService serves",
    (AP, "Service", "ServiceEntry", "VirtualService", "MeshConfig"), ("MS2036",), unknown_hosts)
PRINCIPALS = sec.rule(
    "authorizationpolicy.Principals",
    "AuthorizationPolicy principals in a foreign trust domain or naming a missing service account",
    (AP, "MeshConfig", "ServiceAccount"), ("MS2034", "MS2035"), principals)
