"""TLS termination at the ingress gateway: Gateway servers with `tls.mode: SIMPLE` and a `credentialName`.

As in Istio, the credential is a Kubernetes Secret in the gateway's namespace
holding `tls.crt` and `tls.key` (base64 `data`, or plain `stringData`). A missing
or unreadable credential does not take the listener down: the server is skipped
with a warning naming the Gateway field, and the analyzer reports it.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from mesh.controlplane.context import ProxyContext


@dataclass(frozen=True)
class TlsServer:
    """One HTTPS server of a Gateway: its SNI names (empty = any) and certificate."""

    port: int
    server_names: tuple[str, ...]
    cert_pem: str
    key_pem: str


def _secret_value(secret: Any, key: str) -> str | None:
    plain = (secret.raw.get("stringData") or {}).get(key)
    if isinstance(plain, str):
        return plain
    encoded = (secret.raw.get("data") or {}).get(key)
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def https_ports(ctx: ProxyContext) -> set[int]:
    """Server ports declared HTTPS by the Gateways selecting this gateway (served only with a credential)."""
    w = ctx.workload
    out = set()
    for gw in ctx.index.of_kind("Gateway"):
        sel = gw.spec.get("selector") or {}
        if sel and all(w.labels.get(k) == v for k, v in sel.items()):
            for server in gw.spec.get("servers") or []:
                port = (server or {}).get("port") or {}
                if str(port.get("protocol", "")).upper() == "HTTPS" and isinstance(port.get("number"), int):
                    out.add(port["number"])
    return out


def gateway_tls_servers(ctx: ProxyContext) -> list[TlsServer]:
    w = ctx.workload
    out = []
    for gw in ctx.index.of_kind("Gateway"):
        sel = gw.spec.get("selector") or {}
        if not sel or not all(w.labels.get(k) == v for k, v in sel.items()):
            continue
        for si, server in enumerate(gw.spec.get("servers") or []):
            port = (server or {}).get("port") or {}
            tls = (server or {}).get("tls") or {}
            if str(port.get("protocol", "")).upper() != "HTTPS" or str(tls.get("mode", "SIMPLE")).upper() != "SIMPLE":
                continue
            where = f"Gateway {gw.namespace}/{gw.name} spec.servers[{si}].tls.credentialName"
            name = tls.get("credentialName")
            secret = ctx.index.find("Secret", w.namespace, name) if isinstance(name, str) else None
            cert = _secret_value(secret, "tls.crt") if secret else None
            key = _secret_value(secret, "tls.key") if secret else None
            if not cert or not key or "BEGIN" not in cert or "PRIVATE KEY" not in key:
                problem = "is not set" if not name else (f"Secret {w.namespace}/{name} not found" if not secret
                                                          else f"Secret {w.namespace}/{name} has no valid tls.crt/tls.key")
                ctx.warnings.append(f"{where}: {problem}; HTTPS server skipped")
                continue
            hosts = [h.split("/", 1)[-1] for h in (server.get("hosts") or ["*"]) if isinstance(h, str)]
            names = tuple(h for h in hosts if h != "*") if "*" not in hosts else ()
            out.append(TlsServer(int(port["number"]), names, cert, key))
    return out
