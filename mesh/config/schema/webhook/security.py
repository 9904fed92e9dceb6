"""AuthorizationPolicy, RequestAuthentication and PeerAuthentication checks of Istio's webhook (validation.go)."""
from __future__ import annotations

from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue
from mesh.config.schema.webhook.common import is_set, list_at, map_at

def authorization_policy(spec: dict[str, Any], out: list[Issue]) -> None:
    action = spec.get("action") or "ALLOW"
    rules = list_at(spec, "rules")
    if action in ("CUSTOM", "DENY") and not rules:
        out.append(Issue("spec", SEMANTIC, f"spec: {action} action without rules is meaningless as it will never be "
                                           "triggered; add an empty rule {} to trigger it for every request"))
    if action == "CUSTOM" and not is_set(map_at(spec, "provider"), "name"):
        out.append(Issue("spec/provider", SEMANTIC, "spec.provider.name must not be empty with action CUSTOM"))
    if is_set(spec, "provider") and action != "CUSTOM":
        out.append(Issue("spec/provider", SEMANTIC, f"spec.provider must not be set with action {action} "
                                                    "(only CUSTOM)"))
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        for j, f in enumerate(list_at(rule, "from")):
            p = f"spec/rules[{i}]/from[{j}]"
            if not isinstance(f, dict) or f.get("source") is None:
                out.append(Issue(p, SEMANTIC, f"{p.replace('/', '.')}.source must be set"))
            elif isinstance(f["source"], dict) and not any(is_set(f["source"], k) for k in f["source"]):
                out.append(Issue(f"{p}/source", SEMANTIC, f"{p.replace('/', '.')}.source must not be empty"))
        for j, t in enumerate(list_at(rule, "to")):
            p = f"spec/rules[{i}]/to[{j}]"
            if not isinstance(t, dict) or t.get("operation") is None:
                out.append(Issue(p, SEMANTIC, f"{p.replace('/', '.')}.operation must be set"))
            elif isinstance(t["operation"], dict) and not any(is_set(t["operation"], k) for k in t["operation"]):
                out.append(Issue(f"{p}/operation", SEMANTIC, f"{p.replace('/', '.')}.operation must not be empty"))
        for j, w in enumerate(list_at(rule, "when")):
            if isinstance(w, dict) and is_set(w, "key") and not is_set(w, "values") and not is_set(w, "notValues"):
                out.append(Issue(f"spec/rules[{i}]/when[{j}]", SEMANTIC, f"spec.rules[{i}].when[{j}]: at least one "
                                 f"of values or notValues must be set for key {w['key']}"))


def request_authentication(spec: dict[str, Any], out: list[Issue]) -> None:
    for i, rule in enumerate(list_at(spec, "jwtRules")):
        if isinstance(rule, dict) and not is_set(rule, "issuer") and not is_set(rule, "jwksUri"):
            out.append(Issue(f"spec/jwtRules[{i}]", SEMANTIC, f"spec.jwtRules[{i}]: issuer or jwksUri must be a "
                                                              "non-empty string"))


def peer_authentication(spec: dict[str, Any], out: list[Issue]) -> None:
    if spec.get("portLevelMtls") == {}:
        out.append(Issue("spec/portLevelMtls", SEMANTIC, "spec.portLevelMtls, if defined, must have at least one "
                                                         "element"))
