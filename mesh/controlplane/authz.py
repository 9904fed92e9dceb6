"""AuthorizationPolicy -> Envoy RBAC filters, with Istio's evaluation order.

A request is denied if any DENY policy matches; otherwise, if any ALLOW policy
applies to the workload, it must match one of them; otherwise it is allowed.
Each rule becomes an Envoy policy named `ns[<ns>]-policy[<name>]-rule[<i>]` (the
name Istio gives it, which shows up in `response_code_details`). Inside a rule,
`from` and `to` entries are OR-ed, fields inside an entry AND-ed, and the values
of one field OR-ed.
"""
from __future__ import annotations

from typing import Any

from mesh.config.model import ConfigObject
from mesh.controlplane.context import ConfigError

RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"


def _str_match(value: str, ignore_case: bool = False) -> dict[str, Any]:
    """Istio's value syntax: "*" any non-empty value, "x*" a prefix, "*x" a suffix, else exact."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.endswith("*"):
        m: dict[str, Any] = {"prefix": value[:-1]}
    elif value.startswith("*"):
        m = {"suffix": value[1:]}
    else:
        m = {"exact": value}
    if ignore_case:
        m["ignore_case"] = True
    return m


def _header_match(name: str, value: str, ignore_case: bool = False) -> dict[str, Any]:
    """A request header condition as Istio builds it ("*": the header is present with any value)."""
    if value == "*":
        return {"header": {"name": name, "present_match": True}}
    return {"header": {"name": name, "string_match": _str_match(value, ignore_case)}}


def _any_of(ids: list[dict[str, Any]]) -> dict[str, Any]:
    return ids[0] if len(ids) == 1 else {"or_ids": {"ids": ids}}


def _principal_id(p: str, trust_domain: str) -> dict[str, Any]:
    if p == "*":
        return {"authenticated": {"principal_name": {"safe_regex": {"regex": ".+"}}}}
    m = _str_match(p if p.startswith("spiffe://") or p.startswith("*") else f"spiffe://{p}")
    return {"authenticated": {"principal_name": m}}


def _namespace_id(ns: str) -> dict[str, Any]:
    if ns == "*":
        return {"authenticated": {"principal_name": {"safe_regex": {"regex": ".*/ns/.+/.*"}}}}
    return {"authenticated": {"principal_name": {"safe_regex": {"regex": f".*/ns/{ns}/.*"}}}}


def _jwt(path: list[str], value: str) -> dict[str, Any]:
    """A request-authentication attribute, as Istio matches it: the `istio_authn` filter's dynamic metadata
    (set by the JWT filter; the bundled mesh has none, so only the what-if builds these)."""
    return {"metadata": {"filter": "istio_authn", "path": [{"key": k} for k in path],
                         "value": {"string_match": _str_match(value)}}}


def _cidr(value: str, where: str) -> dict[str, Any]:
    addr, _, plen = value.partition("/")
    if plen and not plen.isdigit():
        raise ConfigError(f"{where}: {value!r} is not an IP or CIDR")
    return {"address_prefix": addr, "prefix_len": int(plen) if plen else (128 if ":" in addr else 32)}


def _claim_path(key: str, where: str) -> list[str]:
    inner = key[len("request.auth.claims["):-1] if key.endswith("]") else ""
    if not inner:
        raise ConfigError(f"{where}: {key!r}: expected request.auth.claims[NAME]")
    return ["request.auth.claims", *inner.split("][")]


def _condition(cond: Any, td: str, where: str, conditions: bool = True) -> tuple[str, dict[str, Any]]:
    """One `when` condition as Istio builds it: ("principal" | "permission", RBAC node).

    Values are OR-ed, `notValues` excluded; each key maps to the Envoy attribute Istio uses (peer
    identity, source IP, request header, JWT metadata, destination port/IP, SNI). Without
    `conditions` (the enforcing control plane), keys only a JWT or an absent filter could set are
    refused, naming the key."""
    if not isinstance(cond, dict) or not isinstance(cond.get("key"), str):
        raise ConfigError(f"{where}.key: expected a string")
    key = cond["key"]
    if key in ("source.principal",):
        side, fn = "principal", lambda v: _principal_id(v, td)
    elif key == "source.namespace":
        side, fn = "principal", _namespace_id
    elif key in ("source.ip", "remote.ip"):
        attr = "direct_remote_ip" if key == "source.ip" else "remote_ip"
        side, fn = "principal", lambda v, a=attr: {a: _cidr(v, f"{where}.values")}
    elif key.startswith("request.headers[") and key.endswith("]") and len(key) > len("request.headers[]"):
        name = key[len("request.headers["):-1]
        side, fn = "principal", lambda v, n=name: _header_match(n, v)
    elif key.startswith("request.auth.") and not conditions:
        raise ConfigError(f"{where}.key: {key!r} needs request authentication (a RequestAuthentication's "
                          "jwt_authn filter), which the bundled mesh does not run")
    elif key.startswith("experimental.envoy.filters.") and not conditions:
        raise ConfigError(f"{where}.key: {key!r} reads a filter the bundled mesh does not run")
    elif key in ("request.auth.principal", "request.auth.audiences", "request.auth.presenter"):
        side, fn = "principal", lambda v, k=key: _jwt([k], v)
    elif key.startswith("request.auth.claims"):
        path = _claim_path(key, where)
        side, fn = "principal", lambda v, p=path: _jwt(p, v)
    elif key == "destination.port":
        side, fn = "permission", lambda v: {"destination_port": int(v)}
    elif key == "destination.ip":
        side, fn = "permission", lambda v: {"destination_ip": _cidr(v, f"{where}.values")}
    elif key == "connection.sni":
        side, fn = "permission", lambda v: {"requested_server_name": _str_match(v)}
    elif key.startswith("experimental.envoy.filters."):
        side, fn = "permission", lambda v, k=key: {"metadata": {"filter": k, "value": {"string_match": _str_match(v)}}}
    else:
        raise ConfigError(f"{where}.key: unknown condition key {key!r}")
    parts = []
    for field_, neg in (("values", False), ("notValues", True)):
        vals = cond.get(field_)
        if vals is None:
            continue
        if not isinstance(vals, list) or not all(isinstance(v, (str, int)) for v in vals) or not vals:
            raise ConfigError(f"{where}.{field_}: expected a non-empty list of strings")
        try:
            nodes = [fn(str(v)) for v in vals]
        except ValueError:
            raise ConfigError(f"{where}.{field_}: {vals!r} are not ports") from None
        if side == "principal":
            node = _any_of(nodes)
            parts.append({"not_id": node} if neg else node)
        else:
            node = nodes[0] if len(nodes) == 1 else {"or_rules": {"rules": nodes}}
            parts.append({"not_rule": node} if neg else node)
    if not parts:
        raise ConfigError(f"{where}: one of values or notValues is required")
    if len(parts) == 1:
        return side, parts[0]
    return side, ({"and_ids": {"ids": parts}} if side == "principal" else {"and_rules": {"rules": parts}})


def _source(src: dict[str, Any], td: str, where: str, conditions: bool = False) -> dict[str, Any]:
    ands = []
    for key, fn, neg in (("principals", _principal_id, False), ("notPrincipals", _principal_id, True),
                         ("namespaces", lambda v, _t: _namespace_id(v), False),
                         ("notNamespaces", lambda v, _t: _namespace_id(v), True)):
        vals = src.get(key)
        if vals is None:
            continue
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise ConfigError(f"{where}.{key}: expected a list of strings")
        ident = _any_of([fn(v, td) for v in vals])
        ands.append({"not_id": ident} if neg else ident)
    for key in ("requestPrincipals", "notRequestPrincipals", "ipBlocks", "notIpBlocks", "remoteIpBlocks",
                "notRemoteIpBlocks"):
        vals = src.get(key)
        if not vals:
            continue
        if not conditions and key.lower().endswith("requestprincipals"):
            raise ConfigError(f"{where}.{key}: request principals need request authentication (a "
                              "RequestAuthentication's jwt_authn filter), which the bundled mesh does not run")
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise ConfigError(f"{where}.{key}: expected a list of strings")
        base = key[3].lower() + key[4:] if key.startswith("not") else key
        if base == "requestPrincipals":
            ident = _any_of([_jwt(["request.auth.principal"], v) for v in vals])
        else:
            attr = "direct_remote_ip" if base == "ipBlocks" else "remote_ip"
            ident = _any_of([{attr: _cidr(v, f"{where}.{key}")} for v in vals])
        ands.append({"not_id": ident} if key.startswith("not") else ident)
    if not ands:
        return {"any": True}
    return ands[0] if len(ands) == 1 else {"and_ids": {"ids": ands}}


def _path(p: str) -> dict[str, Any]:
    return {"url_path": {"path": _str_match(p)}}


def _method(m: str) -> dict[str, Any]:
    return {"header": {"name": ":method", "string_match": _str_match(m)}}


def _host(h: str) -> dict[str, Any]:
    """`hosts`: the request's :authority, case-insensitive; an exact host does not match "host:port"."""
    return _header_match(":authority", h, ignore_case=True)


def _port(v: Any, where: str) -> dict[str, Any]:
    try:
        return {"destination_port": int(v)}
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {v!r} is not a port number") from None


def _operation(op: dict[str, Any], where: str) -> dict[str, Any]:
    """Paths, methods, hosts and ports, each with its not-form: fields AND-ed, values OR-ed."""
    ands = []
    for key, fn, neg in (("paths", _path, False), ("notPaths", _path, True),
                         ("methods", _method, False), ("notMethods", _method, True),
                         ("hosts", _host, False), ("notHosts", _host, True),
                         ("ports", lambda v, w=f"{where}.ports": _port(v, w), False),
                         ("notPorts", lambda v, w=f"{where}.notPorts": _port(v, w), True)):
        vals = op.get(key)
        if vals is None:
            continue
        if not isinstance(vals, list) or not all(isinstance(v, (str, int)) for v in vals):
            raise ConfigError(f"{where}.{key}: expected a list of strings")
        if not vals:
            continue
        perm = fn(vals[0]) if len(vals) == 1 else {"or_rules": {"rules": [fn(v) for v in vals]}}
        ands.append({"not_rule": perm} if neg else perm)
    if not ands:
        return {"any": True}
    return ands[0] if len(ands) == 1 else {"and_rules": {"rules": ands}}


def policies_of(ap: ConfigObject, td: str, conditions: bool = False) -> dict[str, Any]:
    """The RBAC policies of one AuthorizationPolicy, one per rule.

    `when` conditions on what Envoy RBAC reads by itself (request headers, source/remote IP, peer principal
    and namespace, destination IP/port, SNI) and IP blocks are built for the bundled mesh too.
    `conditions`: also build what only a JWT filter can feed (request principals, `request.auth.*`) the
    way Istio does; the what-if replay judges them where it can and calls the rest "may match". The
    bundled control plane refuses them, naming the field (its Envoy has no jwt_authn filter)."""
    out = {}
    for i, rule in enumerate(ap.spec.get("rules") or []):
        where = f"AuthorizationPolicy {ap.namespace}/{ap.name} spec.rules[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: expected a mapping")
        froms = [_source((f or {}).get("source") or {}, td, f"{where}.from[{j}].source", conditions)
                 for j, f in enumerate(rule.get("from") or [])]
        tos = [_operation((t or {}).get("operation") or {}, f"{where}.to[{j}].operation") for j, t in enumerate(rule.get("to") or [])]
        perm = {"or_rules": {"rules": tos}} if len(tos) > 1 else (tos[0] if tos else {"any": True})
        ident = {"or_ids": {"ids": froms}} if len(froms) > 1 else (froms[0] if froms else {"any": True})
        when = rule.get("when") or []
        if not isinstance(when, list):
            raise ConfigError(f"{where}.when: expected a list")
        ids, perms = [ident], [perm]
        for j, cond in enumerate(when):  # every condition must hold (AND), beside from and to
            side, node = _condition(cond, td, f"{where}.when[{j}]", conditions)
            (ids if side == "principal" else perms).append(node)
        out[f"ns[{ap.namespace}]-policy[{ap.name}]-rule[{i}]"] = {
            "permissions": [perms[0] if len(perms) == 1 else {"and_rules": {"rules": perms}}],
            "principals": [ids[0] if len(ids) == 1 else {"and_ids": {"ids": ids}}],
        }
    return out


DRY_RUN = "istio.io/dry-run"


def is_dry_run(ap: ConfigObject) -> bool:
    """Istio's `istio.io/dry-run: "true"` annotation: evaluate the policy, enforce nothing."""
    return str((ap.annotations or {}).get(DRY_RUN, "")).strip().lower() == "true"


def rbac_filters(policies: list[ConfigObject], trust_domain: str) -> list[dict[str, Any]]:
    """Enforced DENY then ALLOW filters, then dry-run ones as Envoy shadow rules (decided, logged, counted
    under `rbac.istio_dry_run_{deny,allow}_shadow_{allowed,denied}`, never enforced), as Istio builds them."""
    out = []
    for dry in (False, True):
        deny: dict[str, Any] = {}
        allow: dict[str, Any] = {}
        has_allow = False
        for ap in policies:
            if is_dry_run(ap) != dry:
                continue
            action = str(ap.spec.get("action") or "ALLOW").upper()
            if action == "DENY":
                deny.update(policies_of(ap, trust_domain))
            elif action == "ALLOW":
                has_allow = True
                allow.update(policies_of(ap, trust_domain))
            else:
                raise ConfigError(f"AuthorizationPolicy {ap.namespace}/{ap.name} spec.action: {action} is not "
                                  "supported by the bundled mesh (ALLOW, DENY)")
        for action, rules, present in (("DENY", deny, bool(deny)), ("ALLOW", allow, has_allow)):
            if not present:
                continue
            body = {"action": action, "policies": rules}
            if dry:
                cfg = {"@type": RBAC_TYPE, "shadow_rules": body,
                       "shadow_rules_stat_prefix": f"istio_dry_run_{action.lower()}_"}
            else:
                cfg = {"@type": RBAC_TYPE, "rules": body, "rules_stat_prefix": f"istio_{action.lower()}_"}
            out.append({"name": "envoy.filters.http.rbac", "typed_config": cfg})
    return out
