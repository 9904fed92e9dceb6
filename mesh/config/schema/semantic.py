"""The checks Istio's validation webhook makes that its CRD schema cannot express.

Read from istio/istio pkg/config/validation (validation.go, virtualservice.go,
agent/validation.go): each function is one of those checks, over the plain spec
dict, reporting `Issue`s with YAML paths. They run after the schema checks and
tolerate wrong types (the schema layer reports those), so they only look at
values of the right type.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue

SemanticCheck = Callable[[dict[str, Any], list[Issue]], None]

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", re.I)
_WILDCARD_LABEL = re.compile(r"^(\*|\*-?[a-z0-9]([-a-z0-9]*[a-z0-9])?|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$", re.I)
_HEADER_NAME = re.compile(r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")
#: Protocols protocol.Parse knows (case-insensitive); anything else is "Unsupported".
PROTOCOLS = frozenset({"HTTP", "HTTPS", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB", "TCP", "TLS", "UDP", "MONGO",
                       "REDIS", "MYSQL"})


def _list(d: Any, key: str) -> list[Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, list) else []


def _map(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def _set(d: Any, key: str) -> bool:
    """Whether a field is set the way Go's proto sees it: present and not empty."""
    v = d.get(key) if isinstance(d, dict) else None
    return v is not None and v != [] and v != {} and v != ""


_IP_CHARS = re.compile(r"^[0-9a-fA-F:.]+(%.+)?$")


def _is_ip(host: str) -> bool:
    if not _IP_CHARS.match(host):  # most hosts are names: skip the exception path of ip_address
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def domain_error(domain: str, wildcard: bool = True) -> str | None:
    """Why `domain` is not a valid (wildcard) DNS name, as agent.ValidateWildcardDomain says; None when it is."""
    if not domain:
        return "empty domain name not allowed"
    if len(domain) > 255:
        return f"domain name {domain!r} too long (max 255)"
    first, _, rest = domain.partition(".")
    label_ok = _WILDCARD_LABEL.match(first) if wildcard else _LABEL.match(first)
    if len(first) > 63 or not label_ok:
        return f"domain name {domain!r} invalid (label {first!r} invalid)"
    if not rest:
        return None
    parts = rest.split(".")
    if parts[-1].isdigit():
        return f"domain name {domain!r} invalid (top level domain {parts[-1]!r} cannot be all-numeric)"
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None
        if len(label) > 63 or not _LABEL.match(label):
            return f"domain name {domain!r} invalid (label {label!r} invalid)"
    return None


def _hosts(spec: dict[str, Any], key: str, out: list[Issue], allow_ip: bool = True) -> None:
    for i, h in enumerate(_list(spec, key)):
        if isinstance(h, str) and not (allow_ip and _is_ip(h)):
            err = domain_error(h)
            if err:
                out.append(Issue(f"spec/{key}[{i}]", SEMANTIC, f"spec.{key}[{i}]: {err}"))


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
        ops = _map(headers, side)
        for op in ("set", "add", "remove"):
            values = ops.get(op)
            names = list(values) if isinstance(values, dict) else values if isinstance(values, list) else []
            for name in names:
                if not isinstance(name, str):
                    continue
                p = f"{path}/{side}/{op}"
                dotted = p.replace("/", ".")
                if not name or not _HEADER_NAME.match(name.lstrip(":")):
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
        for name, sm in _map(match, key).items():
            _string_match(sm, f"{path}/{key}/{name}", out)


def _fault(fault: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(fault, dict):
        return
    dotted = path.replace("/", ".")
    if fault.get("abort") is None and fault.get("delay") is None:
        out.append(Issue(path, SEMANTIC, f"{dotted}: HTTP fault injection must have an abort and/or a delay"))
    status = _map(fault, "abort").get("httpStatus")
    if isinstance(status, int) and not isinstance(status, bool) and not 200 <= status <= 599:
        out.append(Issue(f"{path}/abort/httpStatus", SEMANTIC, f"{dotted}.abort.httpStatus: HTTP status {status} is "
                                                               "not in range 200-599"))


def _rewrite(rewrite: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(rewrite, dict):
        return
    dotted = path.replace("/", ".")
    if _set(rewrite, "uri") and _set(rewrite, "uriRegexRewrite"):
        out.append(Issue(path, SEMANTIC, f"{dotted} may only contain one of uri or uriRegexRewrite"))
    elif not any(_set(rewrite, k) for k in ("uri", "uriRegexRewrite", "authority")):
        out.append(Issue(path, SEMANTIC, f"{dotted} must specify at least one of uri, uriRegexRewrite or authority"))


def _destination(dest: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(dest, dict):
        return
    host, subset = dest.get("host"), dest.get("subset")
    if isinstance(host, str) and host and (host == "*" or domain_error(host)):  # an IP is not a host name either
        out.append(Issue(f"{path}/host", SEMANTIC, f"{path.replace('/', '.')}.host: invalid destination host {host}"
                                                   f" ({domain_error(host) or 'a destination names one host'})"))
    if isinstance(subset, str) and subset and not _LABEL.match(subset):
        out.append(Issue(f"{path}/subset", SEMANTIC, f"{path.replace('/', '.')}.subset: subset name is invalid: "
                                                     f"{subset}"))


_ACTIONS = frozenset({"route", "redirect", "directResponse", "delegate"})
_EXCLUSIVE_HTTP = (("route", "redirect"), ("fault", "redirect"), ("rewrite", "redirect"),
                   ("directResponse", "redirect"), ("route", "directResponse"), ("fault", "directResponse"),
                   ("rewrite", "directResponse"), ("mirror", "mirrors"))


def virtual_service(spec: dict[str, Any], out: list[Issue]) -> None:
    http, tcp, tls = _list(spec, "http"), _list(spec, "tcp"), _list(spec, "tls")
    if not http and not tcp and not tls:
        out.append(Issue("spec", SEMANTIC, "spec: http, tcp or tls must be provided in virtual service"))
    if not _set(spec, "hosts"):
        for key, what in (("gateways", "gateways specified"), ("tls", "tls route specified"),
                          ("tcp", "tcp route specified")):
            if _set(spec, key):
                out.append(Issue(f"spec/{key}", SEMANTIC, f"spec.{key}: a virtual service without hosts is a "
                                                          f"delegate, and a delegate must have no {what}"))
    mesh_bound = not _list(spec, "gateways") or "mesh" in _list(spec, "gateways")
    for i, h in enumerate(_list(spec, "hosts")):
        if h == "*" and mesh_bound:
            out.append(Issue(f"spec/hosts[{i}]", SEMANTIC, f"spec.hosts[{i}]: wildcard host * is not allowed for "
                                                           "virtual services bound to the mesh gateway"))
    for i, h in enumerate(_list(spec, "hosts")):
        if isinstance(h, str) and h != "*" and not _is_ip(h) and not h.startswith("outbound_"):
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
        if not present & _ACTIONS:
            out.append(Issue(p, SEMANTIC, f"spec.http[{i}]: HTTP route, redirect or directResponse is required"))
        _route_destinations(_list(route, "route"), f"{p}/route", out)
        _header_operations(route.get("headers"), f"{p}/headers", out)
        for j, r in enumerate(_list(route, "route")):
            if isinstance(r, dict):
                _header_operations(r.get("headers"), f"{p}/route[{j}]/headers", out)
                _destination(r.get("destination"), f"{p}/route[{j}]/destination", out)
        for j, m in enumerate(_list(route, "match")):
            _http_match(m, f"{p}/match[{j}]", out)
        _fault(route.get("fault"), f"{p}/fault", out)
        _rewrite(route.get("rewrite"), f"{p}/rewrite", out)
        _destination(route.get("mirror"), f"{p}/mirror", out)
        redirect = route.get("redirect")
        if isinstance(redirect, dict):
            if _set(redirect, "uri") and _set(redirect, "prefixRewrite"):
                out.append(Issue(f"{p}/redirect", SEMANTIC, f"spec.http[{i}].redirect may only specify one of "
                                                            "uri or prefixRewrite"))
            if not any(_set(redirect, k) for k in ("uri", "prefixRewrite", "authority", "port", "derivePort",
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
                _route_destinations(_list(route, "route"), f"spec/{key}[{i}]/route", out)
                for j, r in enumerate(_list(route, "route")):
                    if isinstance(r, dict):
                        _destination(r.get("destination"), f"spec/{key}[{i}]/route[{j}]/destination", out)


def gateway(spec: dict[str, Any], out: list[Issue]) -> None:
    servers = _list(spec, "servers")
    if not servers:
        out.append(Issue("spec/servers" if "servers" in spec else "spec", SEMANTIC,
                         "spec.servers: a gateway must have at least one server"))
    names: dict[str, int] = {}
    for i, s in enumerate(servers):
        if not isinstance(s, dict):
            continue
        p = f"spec/servers[{i}]"
        port = _map(s, "port")
        proto = port.get("protocol")
        if isinstance(proto, str) and proto and proto.upper() not in PROTOCOLS:
            close = difflib.get_close_matches(proto.upper(), sorted(PROTOCOLS), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            out.append(Issue(f"{p}/port/protocol", SEMANTIC, f"spec.servers[{i}].port.protocol: invalid protocol "
                             f"{proto!r}{hint}; supported protocols are {', '.join(sorted(PROTOCOLS))}"))
        name = port.get("name")
        if isinstance(name, str) and name:
            if name in names:
                out.append(Issue(f"{p}/port/name", SEMANTIC, f"spec.servers[{i}].port.name: port names in servers "
                                 f"must be unique: duplicate name {name} (first in servers[{names[name]}])"))
            names.setdefault(name, i)
        bind = s.get("bind") if isinstance(s.get("bind"), str) else ""
        number = port.get("number")
        if isinstance(number, int) and not isinstance(number, bool):
            if bind.startswith("unix://"):
                if number != 0:
                    out.append(Issue(f"{p}/port/number", SEMANTIC, f"spec.servers[{i}].port.number must be 0 for a "
                                                                   "unix domain socket bind"))
            elif not 1 <= number <= 65535:
                out.append(Issue(f"{p}/port/number", SEMANTIC, f"spec.servers[{i}].port.number: port number {number} "
                                                               "must be in the range 1..65535"))
        if bind and not bind.startswith("unix://") and not _is_ip(bind):
            out.append(Issue(f"{p}/bind", SEMANTIC, f"spec.servers[{i}].bind: {bind!r} is not an IP address "
                                                    "(or unix:// path)"))
        if port.get("targetPort"):
            out.append(Issue(f"{p}/port/targetPort", SEMANTIC, f"spec.servers[{i}].port.targetPort has no impact on "
                                                               "Gateways; remove it"))
        tls = s.get("tls")
        upper = proto.upper() if isinstance(proto, str) else ""
        if upper in ("HTTPS", "TLS") and not isinstance(tls, dict):
            out.append(Issue(p, SEMANTIC, f"spec.servers[{i}]: server must have TLS settings for HTTPS/TLS protocols"))
        elif isinstance(tls, dict) and upper and upper not in ("HTTPS", "TLS"):
            if upper in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"):
                # only an https redirect: a passthrough server without certificate material
                if tls.get("mode") not in (None, "PASSTHROUGH", "AUTO_PASSTHROUGH") or any(
                        _set(tls, k) for k in ("caCertificates", "privateKey", "serverCertificate")):
                    out.append(Issue(f"{p}/tls", SEMANTIC, f"spec.servers[{i}].tls: server cannot have TLS settings "
                                                           "for plain text HTTP ports (only httpsRedirect)"))
            else:
                out.append(Issue(f"{p}/tls", SEMANTIC, f"spec.servers[{i}].tls: server cannot have TLS settings for "
                                                       "non HTTPS/TLS ports"))
        if isinstance(tls, dict):
            _server_tls(tls, f"{p}/tls", out)
        for j, h in enumerate(_list(s, "hosts")):
            if isinstance(h, str):
                ns, _, host = h.rpartition("/")
                if host != "*" and not _is_ip(host):
                    err = domain_error(host)
                    if err:
                        out.append(Issue(f"{p}/hosts[{j}]", SEMANTIC, f"spec.servers[{i}].hosts[{j}]: {err}"))
                if ns and ns not in (".", "*", "~") and not _LABEL.match(ns):
                    out.append(Issue(f"{p}/hosts[{j}]", SEMANTIC, f"spec.servers[{i}].hosts[{j}]: namespace "
                                                                  f"{ns!r} is not a valid namespace name"))


def _server_tls(tls: dict[str, Any], path: str, out: list[Issue]) -> None:
    mode = tls.get("mode") or "PASSTHROUGH"
    dotted = path.replace("/", ".")
    if mode == "ISTIO_MUTUAL":
        for k in ("serverCertificate", "privateKey", "caCertificates", "credentialName", "credentialNames",
                  "tlsCertificates"):
            if _set(tls, k):
                out.append(Issue(f"{path}/{k}", SEMANTIC, f"{dotted}.{k}: ISTIO_MUTUAL TLS cannot have an "
                                                          "associated certificate, key, CA bundle or credential"))
    # SIMPLE/MUTUAL without a credential or certificate is the webhook's too, but gateway_tls reports it (MS2053).


def destination_rule(spec: dict[str, Any], out: list[Issue]) -> None:
    # Duplicate subset names are the webhook's too, but destinationrule.Subsets reports them (MS1103).
    for i, s in enumerate(_list(spec, "subsets")):
        name = s.get("name") if isinstance(s, dict) else None
        if isinstance(name, str) and name:
            if not _LABEL.match(name):
                out.append(Issue(f"spec/subsets[{i}]/name", SEMANTIC, f"spec.subsets[{i}].name: {name!r} is not a "
                                                                      "valid subset name (a DNS-1123 label)"))
    host = spec.get("host")
    if isinstance(host, str) and host and host != "*" and not _is_ip(host):
        err = domain_error(host)
        if err:
            out.append(Issue("spec/host", SEMANTIC, f"spec.host: {err}"))
    _export_to(spec, out)


_HTTP_OR_TLS = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB", "HTTPS", "TLS"})


def service_entry(spec: dict[str, Any], out: list[Issue]) -> None:
    # Unknown port protocols and invalid addresses are the webhook's too, but serviceentry.Validity reports
    # them (MS1305, MS1304).
    _hosts(spec, "hosts", out, allow_ip=False)
    _export_to(spec, out)
    resolution = spec.get("resolution") or "NONE"
    hosts = [h for h in _list(spec, "hosts") if isinstance(h, str)]
    ports = [p for p in _list(spec, "ports") if isinstance(p, dict)]
    port_names = {p.get("name") for p in ports if isinstance(p.get("name"), str)}
    for i, ep in enumerate(_list(spec, "endpoints")):
        for name in _map(ep, "ports"):
            if name not in port_names:
                out.append(Issue(f"spec/endpoints[{i}]/ports/{name}", SEMANTIC, f"spec.endpoints[{i}].ports: endpoint "
                                 f"port {name} is not defined by the service entry (ports: "
                                 f"{', '.join(sorted(str(n) for n in port_names if n)) or 'none'})"))
        address = ep.get("address") if isinstance(ep, dict) else None
        if isinstance(address, str) and address and not address.startswith("unix://") and not _is_ip(address):
            if resolution == "STATIC" or domain_error(address, wildcard=False):
                out.append(Issue(f"spec/endpoints[{i}]/address", SEMANTIC, f"spec.endpoints[{i}].address: endpoint "
                                 f"address {address!r} is not a valid "
                                 f"{'IP address' if resolution == 'STATIC' else 'FQDN or IP address'}"))
    if resolution != "NONE" and len(hosts) > 1:
        for i, p in enumerate(ports):
            proto = p.get("protocol")
            if not (isinstance(proto, str) and proto.upper() in _HTTP_OR_TLS):
                out.append(Issue(f"spec/ports[{i}]", SEMANTIC, f"spec.ports[{i}]: multiple hosts provided with a "
                                 f"non-HTTP, non-TLS port (protocol {proto or 'unset'}); Istio cannot tell the hosts "
                                 "apart on it"))
                break
    if resolution == "DYNAMIC_DNS":
        for i, h in enumerate(hosts):
            if not h.startswith("*"):
                out.append(Issue(f"spec/hosts[{i}]", SEMANTIC, f"spec.hosts[{i}]: host must be wildcarded for "
                                                               "resolution mode DYNAMIC_DNS"))
        for key in ("addresses", "endpoints"):
            if _set(spec, key):
                out.append(Issue(f"spec/{key}", SEMANTIC, f"spec.{key} cannot be set for resolution type "
                                                          "DYNAMIC_DNS"))


def _export_to(spec: dict[str, Any], out: list[Issue]) -> None:
    values = [v for v in _list(spec, "exportTo") if isinstance(v, str)]
    for i, v in enumerate(values):
        if v not in (".", "*", "~") and not _LABEL.match(v):
            out.append(Issue(f"spec/exportTo[{i}]", SEMANTIC, f"spec.exportTo[{i}]: {v!r} is not a namespace name, "
                                                              "'.', '*' or '~'"))
    if "*" in values and len(values) > 1:
        out.append(Issue("spec/exportTo", SEMANTIC, "spec.exportTo: cannot have both public (*) and non-public "
                                                    "exportTo values for a resource"))
    if len(set(values)) != len(values):
        out.append(Issue("spec/exportTo", SEMANTIC, "spec.exportTo: duplicate entries in exportTo"))


def sidecar(spec: dict[str, Any], out: list[Issue]) -> None:
    egress = _list(spec, "egress")
    portless = [i for i, e in enumerate(egress) if isinstance(e, dict) and not e.get("port")]
    if len(portless) > 1:
        out.append(Issue(f"spec/egress[{portless[1]}]", SEMANTIC, "spec.egress: a sidecar can have only one egress "
                                                                  "listener without a port"))
    elif portless and portless[0] != len(egress) - 1:
        out.append(Issue(f"spec/egress[{portless[0]}]", SEMANTIC, "spec.egress: the egress listener without a port "
                                                                  "must be the last listener"))
    for i, e in enumerate(egress):
        if isinstance(e, dict) and not _list(e, "hosts"):
            out.append(Issue(f"spec/egress[{i}]", SEMANTIC, f"spec.egress[{i}]: an egress listener must contain at "
                                                            "least one host"))
        for j, h in enumerate(_list(e, "hosts")):
            if isinstance(h, str) and "/" not in h:
                out.append(Issue(f"spec/egress[{i}]/hosts[{j}]", SEMANTIC, f"spec.egress[{i}].hosts[{j}]: {h!r} "
                                 "must be namespace/dnsName (e.g. ./*, istio-system/*)"))
    for i, ing in enumerate(_list(spec, "ingress")):
        if isinstance(ing, dict) and not ing.get("port"):
            out.append(Issue(f"spec/ingress[{i}]", SEMANTIC, f"spec.ingress[{i}]: port is required for ingress "
                                                             "listeners"))
    seen: dict[int, str] = {}  # IP-bound listener ports, ingress and egress together (as Istio counts them)
    for key in ("ingress", "egress"):
        for i, listener in enumerate(_list(spec, key)):
            port = _map(listener, "port")
            p = f"spec/{key}[{i}]/port"
            if port.get("targetPort"):
                out.append(Issue(f"{p}/targetPort", SEMANTIC, f"{p.replace('/', '.')}.targetPort has no impact on "
                                                              "Sidecars; remove it"))
            number = port.get("number")
            if isinstance(number, int) and not isinstance(number, bool) and number:
                if number in seen:
                    out.append(Issue(f"{p}/number", SEMANTIC, f"{p.replace('/', '.')}.number: ports on IP bound "
                                     f"listeners must be unique ({number} is also {seen[number]})"))
                else:
                    seen[number] = f"spec.{key}[{i}]"
    mode = _map(spec, "outboundTrafficPolicy").get("mode")
    if mode == "ALLOW_ANY_DYNAMIC_DNS":
        out.append(Issue("spec/outboundTrafficPolicy/mode", SEMANTIC, "spec.outboundTrafficPolicy.mode: "
                         "ALLOW_ANY_DYNAMIC_DNS is only supported in MeshConfig, not in a Sidecar"))


def authorization_policy(spec: dict[str, Any], out: list[Issue]) -> None:
    action = spec.get("action") or "ALLOW"
    rules = _list(spec, "rules")
    if action in ("CUSTOM", "DENY") and not rules:
        out.append(Issue("spec", SEMANTIC, f"spec: {action} action without rules is meaningless as it will never be "
                                           "triggered; add an empty rule {} to trigger it for every request"))
    if action == "CUSTOM" and not _set(_map(spec, "provider"), "name"):
        out.append(Issue("spec/provider", SEMANTIC, "spec.provider.name must not be empty with action CUSTOM"))
    if _set(spec, "provider") and action != "CUSTOM":
        out.append(Issue("spec/provider", SEMANTIC, f"spec.provider must not be set with action {action} "
                                                    "(only CUSTOM)"))
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        for j, f in enumerate(_list(rule, "from")):
            p = f"spec/rules[{i}]/from[{j}]"
            if not isinstance(f, dict) or f.get("source") is None:
                out.append(Issue(p, SEMANTIC, f"{p.replace('/', '.')}.source must be set"))
            elif isinstance(f["source"], dict) and not any(_set(f["source"], k) for k in f["source"]):
                out.append(Issue(f"{p}/source", SEMANTIC, f"{p.replace('/', '.')}.source must not be empty"))
        for j, t in enumerate(_list(rule, "to")):
            p = f"spec/rules[{i}]/to[{j}]"
            if not isinstance(t, dict) or t.get("operation") is None:
                out.append(Issue(p, SEMANTIC, f"{p.replace('/', '.')}.operation must be set"))
            elif isinstance(t["operation"], dict) and not any(_set(t["operation"], k) for k in t["operation"]):
                out.append(Issue(f"{p}/operation", SEMANTIC, f"{p.replace('/', '.')}.operation must not be empty"))
        for j, w in enumerate(_list(rule, "when")):
            if isinstance(w, dict) and _set(w, "key") and not _set(w, "values") and not _set(w, "notValues"):
                out.append(Issue(f"spec/rules[{i}]/when[{j}]", SEMANTIC, f"spec.rules[{i}].when[{j}]: at least one "
                                 f"of values or notValues must be set for key {w['key']}"))


def request_authentication(spec: dict[str, Any], out: list[Issue]) -> None:
    for i, rule in enumerate(_list(spec, "jwtRules")):
        if isinstance(rule, dict) and not _set(rule, "issuer") and not _set(rule, "jwksUri"):
            out.append(Issue(f"spec/jwtRules[{i}]", SEMANTIC, f"spec.jwtRules[{i}]: issuer or jwksUri must be a "
                                                              "non-empty string"))


def peer_authentication(spec: dict[str, Any], out: list[Issue]) -> None:
    if spec.get("portLevelMtls") == {}:
        out.append(Issue("spec/portLevelMtls", SEMANTIC, "spec.portLevelMtls, if defined, must have at least one "
                                                         "element"))


def workload_entry(spec: dict[str, Any], out: list[Issue], prefix: str = "spec") -> None:
    """A WorkloadEntry (or a ServiceEntry endpoint, or a WorkloadGroup template): address and port names."""
    address = spec.get("address")
    dotted = prefix.replace("/", ".")
    if isinstance(address, str) and address and not address.startswith("unix://") and not _is_ip(address) \
            and domain_error(address, wildcard=False):
        out.append(Issue(f"{prefix}/address", SEMANTIC, f"{dotted}.address: endpoint address {address!r} is not a "
                                                        "valid FQDN or an IP address"))
    for name in _map(spec, "ports"):
        if not (isinstance(name, str) and _LABEL.match(name) and len(name) <= 63):
            out.append(Issue(f"{prefix}/ports/{name}", SEMANTIC, f"{dotted}.ports: invalid port name {name!r} (a "
                                                                 "DNS-1123 label)"))


def workload_group(spec: dict[str, Any], out: list[Issue]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        workload_entry(template, out, "spec/template")
    probe = _map(spec, "probe")
    for key in ("periodSeconds", "initialDelaySeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        v = probe.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            out.append(Issue(f"spec/probe/{key}", SEMANTIC, f"spec.probe.{key} must be non-negative, got {v}"))


_MATCH_FOR_APPLY_TO = {"LISTENER": "listener", "FILTER_CHAIN": "listener", "NETWORK_FILTER": "listener",
                       "HTTP_FILTER": "listener", "ROUTE_CONFIGURATION": "routeConfiguration",
                       "VIRTUAL_HOST": "routeConfiguration", "HTTP_ROUTE": "routeConfiguration", "CLUSTER": "cluster"}
_HCM = ("envoy.filters.network.http_connection_manager", "envoy.http_connection_manager")


def envoy_filter(spec: dict[str, Any], out: list[Issue]) -> None:
    for i, cp in enumerate(_list(spec, "configPatches")):
        p = f"spec/configPatches[{i}]"
        d = p.replace("/", ".")
        if not isinstance(cp, dict):
            continue  # null items are the schema's (MS0007)
        apply_to = cp.get("applyTo")
        if not apply_to or apply_to == "INVALID":
            out.append(Issue(p, SEMANTIC, f"{d}: missing applyTo"))
        patch = cp.get("patch")
        if not isinstance(patch, dict):
            out.append(Issue(p, SEMANTIC, f"{d}: missing patch"))
        else:
            op = patch.get("operation")
            if not op or op == "INVALID":
                out.append(Issue(f"{p}/patch", SEMANTIC, f"{d}.patch: missing patch operation"))
            elif op != "REMOVE" and patch.get("value") is None:
                out.append(Issue(f"{p}/patch", SEMANTIC, f"{d}.patch: missing patch value for a {op} operation"))
        match = _map(cp, "match")
        version = _map(match, "proxy").get("proxyVersion")
        if isinstance(version, str) and version:
            try:
                re.compile(version)
            except re.error as exc:
                out.append(Issue(f"{p}/match/proxy/proxyVersion", SEMANTIC, f"{d}.match.proxy.proxyVersion: invalid "
                                                                            f"regex ({exc})"))
        kinds_set = [k for k in ("listener", "routeConfiguration", "cluster") if match.get(k) is not None]
        wanted = _MATCH_FOR_APPLY_TO.get(apply_to) if isinstance(apply_to, str) else None
        if wanted and kinds_set and wanted not in kinds_set:
            out.append(Issue(f"{p}/match", SEMANTIC, f"{d}.match: applyTo {apply_to} needs a {wanted} match, "
                                                     f"not {kinds_set[0]}"))
        flt = _map(_map(_map(match, "listener"), "filterChain"), "filter")
        if wanted == "listener" and "filter" in _map(_map(match, "listener"), "filterChain"):
            fp = f"{p}/match/listener/filterChain/filter"
            if not _set(flt, "name"):
                out.append(Issue(fp, SEMANTIC, f"{fp.replace('/', '.')}: filter match has no name to match on"))
            elif flt.get("subFilter") is not None:
                if apply_to != "HTTP_FILTER":
                    out.append(Issue(f"{fp}/subFilter", SEMANTIC, f"{fp.replace('/', '.')}.subFilter: a subFilter "
                                                                  "match can be used with applyTo HTTP_FILTER only"))
                elif flt.get("name") not in _HCM:
                    out.append(Issue(f"{fp}/subFilter", SEMANTIC, f"{fp.replace('/', '.')}.subFilter: a subFilter "
                                     f"match requires the filter match to name {_HCM[0]}"))
                elif not _set(_map(flt, "subFilter"), "name"):
                    out.append(Issue(f"{fp}/subFilter", SEMANTIC, f"{fp.replace('/', '.')}.subFilter: subFilter "
                                                                  "match has no name to match on"))


#: Semantic checks by kind (kinds without extra checks rely on their schema alone).
CHECKS: dict[str, list[SemanticCheck]] = {
    "VirtualService": [virtual_service],
    "Gateway": [gateway],
    "DestinationRule": [destination_rule],
    "ServiceEntry": [service_entry],
    "Sidecar": [sidecar],
    "AuthorizationPolicy": [authorization_policy],
    "RequestAuthentication": [request_authentication],
    "PeerAuthentication": [peer_authentication],
    "WorkloadGroup": [workload_group],
    "WorkloadEntry": [workload_entry],
    "EnvoyFilter": [envoy_filter],
}
