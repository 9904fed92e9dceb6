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


def _str_match(value: str) -> dict[str, Any]:
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.endswith("*"):
        return {"prefix": value[:-1]}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    return {"exact": value}


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


def _source(src: dict[str, Any], td: str, where: str) -> dict[str, Any]:
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
    for key in ("ipBlocks", "remoteIpBlocks", "requestPrincipals"):
        if src.get(key):
            raise ConfigError(f"{where}.{key}: not supported by the bundled mesh")
    if not ands:
        return {"any": True}
    return ands[0] if len(ands) == 1 else {"and_ids": {"ids": ands}}


def _path(p: str) -> dict[str, Any]:
    return {"url_path": {"path": _str_match(p)}}


def _method(m: str) -> dict[str, Any]:
    return {"header": {"name": ":method", "string_match": _str_match(m)}}


def _operation(op: dict[str, Any], where: str) -> dict[str, Any]:
    ands = []
    for key, fn, neg in (("paths", _path, False), ("notPaths", _path, True),
                         ("methods", _method, False), ("notMethods", _method, True),
                         ("ports", lambda v: {"destination_port": int(v)}, False)):
        vals = op.get(key)
        if vals is None:
            continue
        if not isinstance(vals, list):
            raise ConfigError(f"{where}.{key}: expected a list")
        if not vals:
            continue
        perm = fn(vals[0]) if len(vals) == 1 else {"or_rules": {"rules": [fn(v) for v in vals]}}
        ands.append({"not_rule": perm} if neg else perm)
    if not ands:
        return {"any": True}
    return ands[0] if len(ands) == 1 else {"and_rules": {"rules": ands}}


def policies_of(ap: ConfigObject, td: str) -> dict[str, Any]:
    out = {}
    for i, rule in enumerate(ap.spec.get("rules") or []):
        where = f"AuthorizationPolicy {ap.namespace}/{ap.name} spec.rules[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: expected a mapping")
        froms = [_source((f or {}).get("source") or {}, td, f"{where}.from[{j}].source") for j, f in enumerate(rule.get("from") or [])]
        tos = [_operation((t or {}).get("operation") or {}, f"{where}.to[{j}].operation") for j, t in enumerate(rule.get("to") or [])]
        if rule.get("when"):
            raise ConfigError(f"{where}.when: conditions are not supported by the bundled mesh")
        out[f"ns[{ap.namespace}]-policy[{ap.name}]-rule[{i}]"] = {
            "permissions": [{"or_rules": {"rules": tos}}] if len(tos) > 1 else (tos or [{"any": True}]),
            "principals": [{"or_ids": {"ids": froms}}] if len(froms) > 1 else (froms or [{"any": True}]),
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
