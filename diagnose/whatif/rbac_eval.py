"""Evaluate the Envoy RBAC policies the control plane generates, over many edges at once.

The control plane turns AuthorizationPolicy into Envoy RBAC JSON (mesh.controlplane.authz);
this evaluates that same JSON, so a prediction cannot drift from what the proxies enforce.
Telemetry lacks some request attributes (path, method; port when a service has several),
so every match is an interval: `lo` (certainly matches) and `hi` (may match). A rule that
needs an attribute we lack is "may match", and a prediction built on it says so.
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


def principal(pid: dict[str, Any], principals: np.ndarray) -> Interval:
    """An RBAC Principal over peer identities (SPIFFE URIs; "" for a plaintext peer)."""
    n = len(principals)
    if pid.get("any"):
        return np.ones(n, bool), np.ones(n, bool)
    if "authenticated" in pid:
        m = _string(pid["authenticated"]["principal_name"], principals)
        return m, m.copy()
    if "or_ids" in pid:
        return _any([principal(i, principals) for i in pid["or_ids"]["ids"]], n)
    if "and_ids" in pid:
        return _all([principal(i, principals) for i in pid["and_ids"]["ids"]], n)
    if "not_id" in pid:
        lo, hi = principal(pid["not_id"], principals)
        return ~hi, ~lo
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


def policy(pol: dict[str, Any], principals: np.ndarray, ports: np.ndarray) -> Interval:
    """One named RBAC policy: any permission AND any principal."""
    n = len(principals)
    perms = _any([permission(p, ports) for p in pol.get("permissions") or []], n)
    ids = _any([principal(p, principals) for p in pol.get("principals") or []], n)
    return _all([perms, ids], n)
