"""Evaluate the Envoy RBAC policies the control plane generates, over many edges or requests at once.

The control plane turns AuthorizationPolicy into Envoy RBAC JSON (mesh.controlplane.authz);
this evaluates that same JSON, so a prediction cannot drift from what the proxies enforce.
Metrics lack request attributes (path, method, headers, JWT claims, client IPs; port when a
service has several); access logs carry some of them per request (`Requests`). So every match
is an interval: `lo` (certainly matches) and `hi` (may match). A rule that needs an attribute
the rows lack is "may match", and a prediction built on it says so, naming the attributes
(`unjudged`). String matchers run once per distinct value (pandas factorize), not per row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Interval = tuple[np.ndarray, np.ndarray]


@dataclass
class Requests:
    """Request attributes per row, as the access logs carry them; None or a missing header: not carried.

    Absent values are "" (a request without that header). `paths` are without the query string, as
    Envoy's `url_path` matcher sees them; header names are lower-case (`:authority` for the host)."""

    paths: np.ndarray | None = None
    methods: np.ndarray | None = None
    headers: dict[str, np.ndarray] = field(default_factory=dict)
    ports: np.ndarray | None = None  # destination port per row (0: unknown)

    def header(self, name: str) -> np.ndarray | None:
        name = name.lower()
        if name == ":method":
            return self.methods
        if name == ":path":
            return self.headers.get(":path")
        return self.headers.get("host" if name == ":authority" else name, self.headers.get(name))

    def carried(self) -> set[str]:
        """The attributes these rows decide, by the names `unjudged` reports."""
        out = {f"request.headers[{h}]" for h in self.headers}
        if self.paths is not None:
            out.add("request path (to.operation.paths)")
        if self.methods is not None:
            out.add("request method (to.operation.methods)")
        if "host" in self.headers:
            out |= {"request host (to.operation.hosts)", "request.headers[:authority]"}
        return out


def _match_unique(matcher: dict[str, Any], uniq: pa.Array) -> np.ndarray:
    """One StringMatcher over distinct values, in Arrow's kernels (RE2 for regexes, as Envoy uses)."""
    ic = bool(matcher.get("ignore_case"))
    if "exact" in matcher:
        hit = pc.equal(pc.utf8_lower(uniq), matcher["exact"].lower()) if ic else pc.equal(uniq, matcher["exact"])
    elif "prefix" in matcher:
        hit = pc.starts_with(uniq, matcher["prefix"], ignore_case=ic)
    elif "suffix" in matcher:
        hit = pc.ends_with(uniq, matcher["suffix"], ignore_case=ic)
    elif "contains" in matcher:
        hit = pc.match_substring(uniq, matcher["contains"], ignore_case=ic)
    else:
        hit = pc.match_substring_regex(uniq, f"^(?:{matcher['safe_regex']['regex']})$")
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), bool)


def _string(matcher: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """Envoy StringMatcher over an object array of strings ("" = absent: never matches).

    Evaluated once per distinct value (Arrow kernels) and spread back by the factorized codes: a
    window's requests repeat a few paths, methods and identities many times."""
    if not any(k in matcher for k in ("exact", "prefix", "suffix", "contains", "safe_regex")):
        raise ValueError(f"unsupported string matcher {sorted(matcher)}")
    codes, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    arr = pa.array(pd.Series(np.asarray(uniq, dtype=object)).astype(str), type=pa.string())
    per = _match_unique(matcher, arr) & np.asarray(pc.not_equal(arr, "").to_numpy(zero_copy_only=False), bool)
    out = np.zeros(len(codes), bool)
    ok = codes >= 0
    out[ok] = per[codes[ok]]
    return out


def _header(h: dict[str, Any], req: Requests | None, n: int) -> Interval:
    """An Envoy HeaderMatcher: decided where the rows carry the header, "may match" otherwise."""
    vals = req.header(str(h.get("name", ""))) if req is not None else None
    if vals is None:
        return np.zeros(n, bool), np.ones(n, bool)
    present = np.asarray(vals != "", bool)
    if "present_match" in h:
        hit = present == bool(h["present_match"])
    elif "string_match" in h:
        hit = _string(h["string_match"], vals) & present
    else:
        legacy = {"exact_match": "exact", "prefix_match": "prefix", "suffix_match": "suffix", "contains_match": "contains"}
        key = next((k for k in legacy if k in h), None)
        if key is not None:
            hit = _string({legacy[key]: h[key]}, vals) & present
        elif "safe_regex_match" in h:
            hit = _string({"safe_regex": h["safe_regex_match"]}, vals) & present
        else:
            return np.zeros(n, bool), np.ones(n, bool)
    if h.get("invert_match"):
        hit = ~hit & present
    return hit, hit.copy()


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


def principal(pid: dict[str, Any], principals: np.ndarray, jwt: np.ndarray | None = None,
              req: Requests | None = None) -> Interval:
    """An RBAC Principal over peer identities (SPIFFE URIs; "" for a plaintext peer).

    `jwt`: per row, whether a request may carry a validated JWT at all (a RequestAuthentication applies
    to the destination workload); where none does, JWT attributes are certainly absent, so a match on
    them certainly fails (and its negation certainly holds). None: unknown everywhere. `req`: the rows'
    request attributes (headers) where access logs carry them."""
    n = len(principals)
    if pid.get("any"):
        return np.ones(n, bool), np.ones(n, bool)
    if "authenticated" in pid:
        m = _string(pid["authenticated"]["principal_name"], principals)
        return m, m.copy()
    if "or_ids" in pid:
        return _any([principal(i, principals, jwt, req) for i in pid["or_ids"]["ids"]], n)
    if "and_ids" in pid:
        return _all([principal(i, principals, jwt, req) for i in pid["and_ids"]["ids"]], n)
    if "not_id" in pid:
        lo, hi = principal(pid["not_id"], principals, jwt, req)
        return ~hi, ~lo
    if "header" in pid:
        return _header(pid["header"], req, n)
    if jwt is not None and (pid.get("metadata") or {}).get("filter") == "istio_authn":
        return np.zeros(n, bool), jwt.copy()
    return np.zeros(n, bool), np.ones(n, bool)  # an attribute the rows do not carry


def permission(perm: dict[str, Any], ports: np.ndarray, req: Requests | None = None) -> Interval:
    """An RBAC Permission; `ports` holds the destination container port, or 0 when unknown."""
    n = len(ports)
    if perm.get("any"):
        return np.ones(n, bool), np.ones(n, bool)
    if "destination_port" in perm:
        known = ports != 0
        hit = ports == int(perm["destination_port"])
        return hit & known, hit | ~known
    if "or_rules" in perm:
        return _any([permission(r, ports, req) for r in perm["or_rules"]["rules"]], n)
    if "and_rules" in perm:
        return _all([permission(r, ports, req) for r in perm["and_rules"]["rules"]], n)
    if "not_rule" in perm:
        lo, hi = permission(perm["not_rule"], ports, req)
        return ~hi, ~lo
    if "url_path" in perm and req is not None and req.paths is not None:
        m = _string(perm["url_path"]["path"], req.paths)
        return m, m.copy()
    if "header" in perm:
        return _header(perm["header"], req, n)
    return np.zeros(n, bool), np.ones(n, bool)  # an attribute the rows do not carry


def policy(pol: dict[str, Any], principals: np.ndarray, ports: np.ndarray, jwt: np.ndarray | None = None,
           req: Requests | None = None) -> Interval:
    """One named RBAC policy: any permission AND any principal."""
    n = len(principals)
    perms = _any([permission(p, ports, req) for p in pol.get("permissions") or []], n)
    ids = _any([principal(p, principals, jwt, req) for p in pol.get("principals") or []], n)
    return _all([perms, ids], n)


# RBAC leaves telemetry cannot decide, by the name an Istio user wrote them with
_NAMED = {"url_path": "request path (to.operation.paths)", "direct_remote_ip": "source.ip",
          "remote_ip": "remote.ip", "destination_ip": "destination.ip", "requested_server_name": "connection.sni"}
_NESTED = ("or_ids", "and_ids", "or_rules", "and_rules")


def header_label(name: str) -> str:
    """How an Istio user wrote the attribute a header matcher reads."""
    name = name.lower()
    if name == ":method":
        return "request method (to.operation.methods)"
    if name == ":authority":
        return "request host (to.operation.hosts)"
    return f"request.headers[{name}]"


def unjudged(node: Any, carried: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The attributes an RBAC policy (or any node of one) tests that the rows do not carry, in order, once each.

    JWT attributes (request principals, claims) read the `istio_authn` metadata the JWT filter sets;
    headers (`:method` is the request method) and client IPs are per request: none is in the metrics,
    and the access logs carry only some (`carried`, from `Requests.carried`)."""
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
                out.append(header_label(str(val.get("name", ""))))
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
    return [a for a in dict.fromkeys(out) if a not in carried]


def headers_used(node: Any) -> set[str]:
    """Lower-case names of the request headers an RBAC policy reads (`:method` and `:authority` included)."""
    text = repr(node)
    return {m.lower() for m in re.findall(r"'header': \{'name': '([^']*)'", text)}


def uses_path(node: Any) -> bool:
    return "'url_path'" in repr(node)


def uses_jwt(pol: Any) -> bool:
    """Whether a policy tests request-authentication (JWT) attributes."""
    return '"istio_authn"' in repr(pol).replace("'", '"')
