"""AuthorizationPolicy references: namespaces, methods, hosts and principals that point at nothing.

Each is a rule that silently never matches: a namespace that does not exist, a
gRPC name where an HTTP method belongs, a host nothing serves, a service
account or trust domain that is not there. References are judged only against
what the input lists (Namespace, Service/ServiceEntry/VirtualService and
ServiceAccount objects), never guessed.
"""
from __future__ import annotations

import re
from typing import Any

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from diagnose.rules.config import snapshot_rule as sr
from diagnose.rules.config import tls_fields as tf
from mesh.config import Snapshot

METHOD_RE = re.compile(r"^[A-Z]+$")
PRINCIPAL_RE = re.compile(r"^(?P<domain>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")
AP = "AuthorizationPolicy"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
            for j, src in enumerate(_list(tf.as_dict(rule).get("from"))):
                source = tf.as_dict(tf.as_dict(src).get("source"))
                for f in ("namespaces", "notNamespaces"):
                    for k, value in enumerate(_list(source.get(f))):
                        if isinstance(value, str) and not _namespace_matches(value, known):
                            path = f"spec/rules[{i}]/from[{j}]/source/{f}[{k}]"
                            out.append(sr.finding("MS2032", ap, path, field=f, value=value, field_path=path))
    return out


def invalid_methods(snap: Snapshot) -> list[Finding]:
    """KIA0102: operation methods that are not HTTP methods (gRPC method names belong in paths)."""
    out = []
    for ap in snap.of_kind("AuthorizationPolicy"):
        for i, rule in enumerate(_list(ap.spec.get("rules"))):
            for j, to in enumerate(_list(tf.as_dict(rule).get("to"))):
                op = tf.as_dict(tf.as_dict(to).get("operation"))
                for f in ("methods", "notMethods"):
                    for k, value in enumerate(_list(op.get(f))):
                        text = str(value)
                        if text == "*" or METHOD_RE.match(text.strip("*") or "-"):
                            continue
                        out.append(sr.finding("MS2033", ap, f"spec/rules[{i}]/to[{j}]/operation/{f}[{k}]",
                                               field=f, value=text))
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
            for j, to in enumerate(_list(tf.as_dict(rule).get("to"))):
                op = tf.as_dict(tf.as_dict(to).get("operation"))
                for f in ("hosts", "notHosts"):
                    for k, value in enumerate(_list(op.get(f))):
                        if not isinstance(value, str) or not value:
                            continue
                        host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
                        if _host_served(snap.fqdn(host, ap.namespace), known, exact) or _host_served(host, known, exact):
                            continue
                        out.append(sr.finding("MS2036", ap, f"spec/rules[{i}]/to[{j}]/operation/{f}[{k}]",
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
            for j, src in enumerate(_list(tf.as_dict(rule).get("from"))):
                source = tf.as_dict(tf.as_dict(src).get("source"))
                for f in ("principals", "notPrincipals"):
                    for k, value in enumerate(_list(source.get(f))):
                        m = PRINCIPAL_RE.match(value) if isinstance(value, str) and "*" not in value else None
                        if m is None:
                            continue
                        path = f"spec/rules[{i}]/from[{j}]/source/{f}[{k}]"
                        if m["domain"] not in domains:
                            out.append(sr.finding("MS2035", ap, path, value=value, domain=m["domain"],
                                                   known=", ".join(sorted(domains))))
                        elif m["ns"] in accounts and m["sa"] not in accounts[m["ns"]]:
                            out.append(sr.finding("MS2034", ap, path, value=value, service_account=m["sa"],
                                                   namespace=m["ns"]))
    return out


NAMESPACE_NOT_FOUND = sr.rule(
    "authorizationpolicy.NamespaceNotFound",
    "AuthorizationPolicy source namespaces/notNamespaces entry matches no namespace",
    (AP, "Namespace"), ("MS2032",), namespace_not_found)
METHODS = sr.rule(
    "authorizationpolicy.Methods",
    "AuthorizationPolicy operation methods that are not HTTP methods",
    (AP,), ("MS2033",), invalid_methods)
HOSTS = sr.rule(
    "authorizationpolicy.Hosts",
    "AuthorizationPolicy operation hosts that no Service, ServiceEntry or VirtualService serves",
    (AP, "Service", "ServiceEntry", "VirtualService", "MeshConfig"), ("MS2036",), unknown_hosts)
PRINCIPALS = sr.rule(
    "authorizationpolicy.Principals",
    "AuthorizationPolicy principals in a foreign trust domain or naming a missing service account",
    (AP, "MeshConfig", "ServiceAccount"), ("MS2034", "MS2035"), principals)
