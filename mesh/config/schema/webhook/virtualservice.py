"""VirtualService checks of Istio's webhook (validation.go ValidateVirtualService, virtualservice.go)."""
from __future__ import annotations

import re
from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue
from mesh.config.schema.webhook.common import HEADER_NAME, LABEL, domain_error, is_ip, is_set, list_at, map_at

def _route_destinations(routes: list[Any], path: str, out: list[Issue]) -> None:
    total = 0
    for j, r in enumerate(routes):
        w = r.get("weight") if isinstance(r, dict) else None
        if isinstance(w, int) and not isinstance(w, bool):
            if w < 0:
                out.append(Issue(f"{path}[{j}]/weight", SEMANTIC, f"{path.replace('/', '.')}[{j}].weight: "
                                                                  f"weight {w} < 0"))
            total += w
    if len(routes) > 1 and total == 0:
        out.append(Issue(path, SEMANTIC, f"{path.replace('/', '.')}: total destination weight = 0 (every "
                                         "destination has weight 0 or none; give at least one a weight)"))


def _header_operations(headers: Any, path: str, out: list[Issue]) -> None:
    if not headers:
        return
    for side in ("request", "response"):
        ops = map_at(headers, side)
        for op in ("set", "add", "remove"):
            values = ops.get(op)
            names = list(values) if isinstance(values, dict) else values if isinstance(values, list) else []
            for name in names:
                if not isinstance(name, str):
                    continue
                p = f"{path}/{side}/{op}"
                dotted = p.replace("/", ".")
                if not name or not HEADER_NAME.match(name.lstrip(":")):
                    out.append(Issue(p, SEMANTIC, f"{dotted}: header name {name!r} is not a valid header name"))
                elif name.startswith(":"):
                    out.append(Issue(p, SEMANTIC, f"{dotted}: invalid header {name!r}: header cannot have "
                                                  "':' prefix"))
                elif name.lower() == "host" and op != "remove":
                    out.append(Issue(p, SEMANTIC, f"{dotted}: invalid header {name!r}: cannot set Host header "
                                                  "(use rewrite.authority)"))


def _string_match(sm: Any, path: str, out: list[Issue]) -> None:
    """A StringMatch: a prefix or regex is not empty, and a regex compiles (RE2; Python's re as the judge where
    the two agree: RE2-only syntax such as \\p{..} or (?<name>..) is not judged)."""
    if not isinstance(sm, dict):
        return
    dotted = path.replace("/", ".")
    for kind in ("prefix", "regex"):
        if kind in sm and sm[kind] == "":
            out.append(Issue(f"{path}/{kind}", SEMANTIC, f"{dotted}.{kind}: a {kind} string match should not be "
                                                         "empty"))
    rx = sm.get("regex")
    if isinstance(rx, str) and rx:
        if len(rx) > 1024:
            out.append(Issue(f"{path}/regex", SEMANTIC, f"{dotted}.regex is too large, max length allowed is 1024"))
        elif "\\p" not in rx and "\\P" not in rx and "(?<" not in rx:
            try:
                re.compile(rx)
            except re.error as exc:
                out.append(Issue(f"{path}/regex", SEMANTIC, f"{dotted}.regex: {exc}; Istio uses RE2 regular "
                                                            "expressions"))


def _http_match(match: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(match, dict):
        return
    for key in ("uri", "scheme", "method", "authority"):
        _string_match(match.get(key), f"{path}/{key}", out)
    for key in ("headers", "queryParams", "withoutHeaders"):
        for name, sm in map_at(match, key).items():
            _string_match(sm, f"{path}/{key}/{name}", out)


def _fault(fault: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(fault, dict):
        return
    dotted = path.replace("/", ".")
    if fault.get("abort") is None and fault.get("delay") is None:
        out.append(Issue(path, SEMANTIC, f"{dotted}: HTTP fault injection must have an abort and/or a delay"))
    status = map_at(fault, "abort").get("httpStatus")
    if isinstance(status, int) and not isinstance(status, bool) and not 200 <= status <= 599:
        out.append(Issue(f"{path}/abort/httpStatus", SEMANTIC, f"{dotted}.abort.httpStatus: HTTP status {status} is "
                                                               "not in range 200-599"))


def _rewrite(rewrite: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(rewrite, dict):
        return
    dotted = path.replace("/", ".")
    if is_set(rewrite, "uri") and is_set(rewrite, "uriRegexRewrite"):
        out.append(Issue(path, SEMANTIC, f"{dotted} may only contain one of uri or uriRegexRewrite"))
    elif not any(is_set(rewrite, k) for k in ("uri", "uriRegexRewrite", "authority")):
        out.append(Issue(path, SEMANTIC, f"{dotted} must specify at least one of uri, uriRegexRewrite or authority"))


def _destination(dest: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(dest, dict):
        return
    host, subset = dest.get("host"), dest.get("subset")
    if isinstance(host, str) and host and (host == "*" or domain_error(host)):  # an IP is not a host name either
        out.append(Issue(f"{path}/host", SEMANTIC, f"{path.replace('/', '.')}.host: invalid destination host {host}"
                                                   f" ({domain_error(host) or 'a destination names one host'})"))
    if isinstance(subset, str) and subset and not LABEL.match(subset):
        out.append(Issue(f"{path}/subset", SEMANTIC, f"{path.replace('/', '.')}.subset: subset name is invalid: "
                                                     f"{subset}"))


_ACTIONS = frozenset({"route", "redirect", "directResponse", "delegate"})
_EXCLUSIVE_HTTP = (("route", "redirect"), ("fault", "redirect"), ("rewrite", "redirect"),
                   ("directResponse", "redirect"), ("route", "directResponse"), ("fault", "directResponse"),
                   ("rewrite", "directResponse"), ("mirror", "mirrors"))


def virtual_service(spec: dict[str, Any], out: list[Issue]) -> None:
    http, tcp, tls = list_at(spec, "http"), list_at(spec, "tcp"), list_at(spec, "tls")
    if not http and not tcp and not tls:
        out.append(Issue("spec", SEMANTIC, "spec: http, tcp or tls must be provided in virtual service"))
    if not is_set(spec, "hosts"):
        for key, what in (("gateways", "gateways specified"), ("tls", "tls route specified"),
                          ("tcp", "tcp route specified")):
            if is_set(spec, key):
                out.append(Issue(f"spec/{key}", SEMANTIC, f"spec.{key}: spec.hosts is missing, which makes this a "
                                                          f"delegate VirtualService (used only through another one's "
                                                          f"http[].delegate), and a delegate must have no {what}; "
                                                          f"add spec.hosts if it is meant to route on its own"))
    mesh_bound = not list_at(spec, "gateways") or "mesh" in list_at(spec, "gateways")
    for i, h in enumerate(list_at(spec, "hosts")):
        if h == "*" and mesh_bound:
            out.append(Issue(f"spec/hosts[{i}]", SEMANTIC, f"spec.hosts[{i}]: wildcard host * is not allowed for "
                                                           "virtual services bound to the mesh gateway"))
    for i, h in enumerate(list_at(spec, "hosts")):
        if isinstance(h, str) and h != "*" and not is_ip(h) and not h.startswith("outbound_"):
            err = domain_error(h)
            if err:
                out.append(Issue(f"spec/hosts[{i}]", SEMANTIC, f"spec.hosts[{i}]: {err}"))
    for i, route in enumerate(http):
        if not isinstance(route, dict):
            continue
        p = f"spec/http[{i}]"
        present = {k for k, v in route.items() if v is not None and v != [] and v != {} and v != ""}
        for a, b in _EXCLUSIVE_HTTP:
            if a in present and b in present:
                out.append(Issue(p, SEMANTIC, f"spec.http[{i}]: an HTTP route cannot contain both {a} and {b}"))
        if "delegate" in present and is_set(spec, "hosts"):  # a root route: only the delegate's routes apply
            for key in ("route", "redirect"):
                if key in present:
                    out.append(Issue(f"{p}/{key}", SEMANTIC, f"spec.http[{i}]: a route that delegates must not "
                                                             f"specify {key} (the delegate's routes replace it)"))
        else:
            if "delegate" in present:  # a delegate's route, merged into a root: no second level
                out.append(Issue(f"{p}/delegate", SEMANTIC, f"spec.http[{i}]: this VirtualService has no hosts, "
                                                            "so it is a delegate, and a delegate's route cannot "
                                                            "delegate again"))
            if not present & (_ACTIONS - {"delegate"}):
                out.append(Issue(p, SEMANTIC, f"spec.http[{i}]: HTTP route, redirect or directResponse is required"))
        _route_destinations(list_at(route, "route"), f"{p}/route", out)
        _header_operations(route.get("headers"), f"{p}/headers", out)
        for j, r in enumerate(list_at(route, "route")):
            if isinstance(r, dict):
                _header_operations(r.get("headers"), f"{p}/route[{j}]/headers", out)
                _destination(r.get("destination"), f"{p}/route[{j}]/destination", out)
        for j, m in enumerate(list_at(route, "match")):
            _http_match(m, f"{p}/match[{j}]", out)
        _fault(route.get("fault"), f"{p}/fault", out)
        _rewrite(route.get("rewrite"), f"{p}/rewrite", out)
        _destination(route.get("mirror"), f"{p}/mirror", out)
        redirect = route.get("redirect")
        if isinstance(redirect, dict):
            if is_set(redirect, "uri") and is_set(redirect, "prefixRewrite"):
                out.append(Issue(f"{p}/redirect", SEMANTIC, f"spec.http[{i}].redirect may only specify one of "
                                                            "uri or prefixRewrite"))
            if not any(is_set(redirect, k) for k in ("uri", "prefixRewrite", "authority", "port", "derivePort",
                                                    "scheme")):
                out.append(Issue(f"{p}/redirect", SEMANTIC, f"spec.http[{i}].redirect must specify uri, authority, "
                                                            "scheme, or port"))
            code = redirect.get("redirectCode")
            if isinstance(code, int) and code and not 300 <= code <= 399:
                out.append(Issue(f"{p}/redirect/redirectCode", SEMANTIC,
                                 f"spec.http[{i}].redirect.redirectCode: {code} is not a valid redirect code, "
                                 "must be 3xx"))
        mp = route.get("mirrorPercent")
        if isinstance(mp, int) and mp > 100:
            out.append(Issue(f"{p}/mirrorPercent", SEMANTIC, f"spec.http[{i}].mirrorPercent must have a max value of "
                                                             f"100 (it has {mp})"))
    for key, routes in (("tcp", tcp), ("tls", tls)):
        for i, route in enumerate(routes):
            if isinstance(route, dict):
                _route_destinations(list_at(route, "route"), f"spec/{key}[{i}]/route", out)
                for j, r in enumerate(list_at(route, "route")):
                    if isinstance(r, dict):
                        _destination(r.get("destination"), f"spec/{key}[{i}]/route[{j}]/destination", out)
