"""Gateway checks of Istio's webhook (validation.go ValidateGateway, validateServer, validateTLSOptions)."""
from __future__ import annotations

import difflib
from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue
from mesh.config.schema.webhook.common import LABEL, PROTOCOLS, domain_error, is_ip, is_set, list_at, map_at

def gateway(spec: dict[str, Any], out: list[Issue]) -> None:
    servers = list_at(spec, "servers")
    if not servers:
        out.append(Issue("spec/servers" if "servers" in spec else "spec", SEMANTIC,
                         "spec.servers: a gateway must have at least one server"))
    names: dict[str, int] = {}
    for i, s in enumerate(servers):
        if not isinstance(s, dict):
            continue
        p = f"spec/servers[{i}]"
        port = map_at(s, "port")
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
        if bind and not bind.startswith("unix://") and not is_ip(bind):
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
                        is_set(tls, k) for k in ("caCertificates", "privateKey", "serverCertificate")):
                    out.append(Issue(f"{p}/tls", SEMANTIC, f"spec.servers[{i}].tls: server cannot have TLS settings "
                                                           "for plain text HTTP ports (only httpsRedirect)"))
            else:
                out.append(Issue(f"{p}/tls", SEMANTIC, f"spec.servers[{i}].tls: server cannot have TLS settings for "
                                                       "non HTTPS/TLS ports"))
        if isinstance(tls, dict):
            _server_tls(tls, f"{p}/tls", out)
        for j, h in enumerate(list_at(s, "hosts")):
            if isinstance(h, str):
                ns, _, host = h.rpartition("/")
                if host != "*" and not is_ip(host):
                    err = domain_error(host)
                    if err:
                        out.append(Issue(f"{p}/hosts[{j}]", SEMANTIC, f"spec.servers[{i}].hosts[{j}]: {err}"))
                if ns and ns not in (".", "*", "~") and not LABEL.match(ns):
                    out.append(Issue(f"{p}/hosts[{j}]", SEMANTIC, f"spec.servers[{i}].hosts[{j}]: namespace "
                                                                  f"{ns!r} is not a valid namespace name"))


def _server_tls(tls: dict[str, Any], path: str, out: list[Issue]) -> None:
    mode = tls.get("mode") or "PASSTHROUGH"
    dotted = path.replace("/", ".")
    if mode == "ISTIO_MUTUAL":
        for k in ("serverCertificate", "privateKey", "caCertificates", "credentialName", "credentialNames",
                  "tlsCertificates"):
            if is_set(tls, k):
                out.append(Issue(f"{path}/{k}", SEMANTIC, f"{dotted}.{k}: ISTIO_MUTUAL TLS cannot have an "
                                                          "associated certificate, key, CA bundle or credential"))
    # SIMPLE/MUTUAL without a credential or certificate is the webhook's too, but gateway_tls reports it (MS2053).
