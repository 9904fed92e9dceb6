"""Evaluate the Envoy RBAC policies the control plane generates, over many edges at once.

The control plane turns AuthorizationPolicy into Envoy RBAC JSON (mesh.controlplane.authz);
this evaluates that same JSON, so a prediction cannot drift from what the proxies enforce.
Telemetry lacks some request attributes (path, method, headers, JWT claims, client IPs; port
when a service has several), so every match is an interval: `lo` (certainly matches) and `hi`
(may match). A rule that needs an attribute we lack is "may match", and a prediction built on
it says so, naming the attributes (`unjudged`).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

Interval = tuple[np.ndarray, np.ndarray]


def _string(matcher: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """Envoy StringMatcher over an object array of strings ("" = absent: never matches)."""
    present = values != ""
    if "exact" in matcher:
        hit = values == matcher["exact"]
    elif "prefix" in matcher:
        p = matcher["prefix"]
        hit = np.fromiter((v.startswith(p) for v in values), bool, len(values))
    elif "suffix" in matcher:
        s = matcher["suffix"]
        hit = np.fromiter((v.endswith(s) for v in values), bool, len(values))
    elif "safe_regex" in matcher:
        rx = re.compile(matcher["safe_regex"]["regex"])
        hit = np.fromiter((rx.fullmatch(v) is not None for v in values), bool, len(values))
    else:
        raise ValueError(f"unsupported string matcher {sorted(matcher)}")
    return hit & present


def _all(parts: list[Interval], n: int) -> Interval:
    lo, hi = np.ones(n, bool), np.ones(n, bool)
    for a, b in parts:
        lo &= a
        hi &= b
    return lo, hi


def _any(parts: list[Interval], n: int) -> Interval:
    lo, hi = np.zeros(n, bool), np.zeros(n, bool)
    for a, b in parts:
        lo |= a
        hi |= b
    return lo, hi


def principal(pid: dict[str, Any], principals: np.ndarray, jwt: np.ndarray | None = None) -> Interval:
    """An RBAC Principal over peer identities (SPIFFE URIs; "" for a plaintext peer).

    `jwt`: per row, whether a request may carry a validated JWT at all (a RequestAuthentication applies
    to the destination workload); where none does, JWT attributes are certainly absent, so a match on
    them certainly fails (and its negation certainly holds). None: unknown everywhere."""
    n = len(principals)
    if pid.get("any"):
        return np.ones(n, bool), np.ones(n, bool)
    if "authenticated" in pid:
        m = _string(pid["authenticated"]["principal_name"], principals)
        return m, m.copy()
    if "or_ids" in pid:
        return _any([principal(i, principals, jwt) for i in pid["or_ids"]["ids"]], n)
    if "and_ids" in pid:
        return _all([principal(i, principals, jwt) for i in pid["and_ids"]["ids"]], n)
    if "not_id" in pid:
        lo, hi = principal(pid["not_id"], principals, jwt)
        return ~hi, ~lo
    if jwt is not None and (pid.get("metadata") or {}).get("filter") == "istio_authn":
        return np.zeros(n, bool), jwt.copy()
    return np.zeros(n, bool), np.ones(n, bool)  # an attribute telemetry does not carry


def permission(perm: dict[str, Any], ports: np.ndarray) -> Interval:
    """An RBAC Permission; `ports` holds the destination container port, or 0 when unknown."""
    n = len(ports)
    if perm.get("any"):
        return np.ones(n, bool), np.ones(n, bool)
    if "destination_port" in perm:
        known = ports != 0
        hit = ports == int(perm["destination_port"])
        return hit & known, hit | ~known
    if "or_rules" in perm:
        return _any([permission(r, ports) for r in perm["or_rules"]["rules"]], n)
    if "and_rules" in perm:
        return _all([permission(r, ports) for r in perm["and_rules"]["rules"]], n)
    if "not_rule" in perm:
        lo, hi = permission(perm["not_rule"], ports)
        return ~hi, ~lo
    return np.zeros(n, bool), np.ones(n, bool)  # path, method, header: not in the metrics


def policy(pol: dict[str, Any], principals: np.ndarray, ports: np.ndarray, jwt: np.ndarray | None = None) -> Interval:
    """One named RBAC policy: any permission AND any principal."""
    n = len(principals)
    perms = _any([permission(p, ports) for p in pol.get("permissions") or []], n)
    ids = _any([principal(p, principals, jwt) for p in pol.get("principals") or []], n)
    return _all([perms, ids], n)


# RBAC leaves telemetry cannot decide, by the name an Istio user wrote them with
_NAMED = {"url_path": "request path (to.operation.paths)", "direct_remote_ip": "source.ip",
          "remote_ip": "remote.ip", "destination_ip": "destination.ip", "requested_server_name": "connection.sni"}
_NESTED = ("or_ids", "and_ids", "or_rules", "and_rules")


def unjudged(node: Any) -> list[str]:
    """The attributes an RBAC policy (or any node of one) tests that edges do not carry, in order, once each.

    JWT attributes (request principals, claims) read the `istio_authn` metadata the JWT filter sets;
    headers (`:method` is the request method) and client IPs are per request; none is in the metrics."""
    out: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, list):
            for x in n:
                walk(x)
            return
        if not isinstance(n, dict):
            return
        for key, val in n.items():
            if key in ("permissions", "principals"):
                walk(val)
            elif key in _NESTED:
                walk(val.get("ids") or val.get("rules") or [])
            elif key in ("not_id", "not_rule"):
                walk(val)
            elif key == "header":
                name = str(val.get("name", ""))
                out.append("request method (to.operation.methods)" if name == ":method" else f"request.headers[{name}]")
            elif key == "metadata":
                path = [p.get("key", "") for p in val.get("path") or []]
                if val.get("filter") == "istio_authn" and path:
                    name = path[0] + "".join(f"[{p}]" for p in path[1:])
                    out.append(f"{name} (JWT)")
                else:
                    out.append(str(val.get("filter", "metadata")))
            elif key == "unjudged":
                out.append(str(val))
            elif key in _NAMED:
                out.append(_NAMED[key])

    walk(node)
    return list(dict.fromkeys(out))


def uses_jwt(pol: Any) -> bool:
    """Whether a policy tests request-authentication (JWT) attributes."""
    return '"istio_authn"' in repr(pol).replace("'", '"')
