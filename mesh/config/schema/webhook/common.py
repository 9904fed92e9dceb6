"""What the webhook checks share: reading a spec of unknown shape, host names, protocols, exportTo.

Istio's validation (pkg/config/validation, agent/validation.go) reads protos; we read
plain dicts that may hold anything, so these helpers return a safe empty value for a
field of the wrong type (the schema layer reports the type).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue

SemanticCheck = Callable[[dict[str, Any], list[Issue]], None]

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", re.I)
_WILDCARD_LABEL = re.compile(r"^(\*|\*-?[a-z0-9]([-a-z0-9]*[a-z0-9])?|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$", re.I)
HEADER_NAME = re.compile(r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")
#: Protocols protocol.Parse knows (case-insensitive); anything else is "Unsupported".
PROTOCOLS = frozenset({"HTTP", "HTTPS", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB", "TCP", "TLS", "UDP", "MONGO",
                       "REDIS", "MYSQL"})


def list_at(d: Any, key: str) -> list[Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, list) else []


def map_at(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def is_set(d: Any, key: str) -> bool:
    """Whether a field is set the way Go's proto sees it: present and not empty."""
    v = d.get(key) if isinstance(d, dict) else None
    return v is not None and v != [] and v != {} and v != ""


_IP_CHARS = re.compile(r"^[0-9a-fA-F:.]+(%.+)?$")


@lru_cache(maxsize=4096)
def is_ip(host: str) -> bool:
    if not _IP_CHARS.match(host):  # most hosts are names: skip the exception path of ip_address
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@lru_cache(maxsize=4096)  # the same hosts recur across objects (reviews, ratings...): judge each once
def domain_error(domain: str, wildcard: bool = True) -> str | None:
    """Why `domain` is not a valid (wildcard) DNS name, as agent.ValidateWildcardDomain says; None when it is."""
    if not domain:
        return "empty domain name not allowed"
    if len(domain) > 255:
        return f"domain name {domain!r} too long (max 255)"
    first, _, rest = domain.partition(".")
    label_ok = _WILDCARD_LABEL.match(first) if wildcard else LABEL.match(first)
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
        if len(label) > 63 or not LABEL.match(label):
            return f"domain name {domain!r} invalid (label {label!r} invalid)"
    return None


def check_hosts(spec: dict[str, Any], key: str, out: list[Issue], allow_ip: bool = True) -> None:
    for i, h in enumerate(list_at(spec, key)):
        if isinstance(h, str) and not (allow_ip and is_ip(h)):
            err = domain_error(h)
            if err:
                out.append(Issue(f"spec/{key}[{i}]", SEMANTIC, f"spec.{key}[{i}]: {err}"))



def check_export_to(spec: dict[str, Any], out: list[Issue]) -> None:
    values = [v for v in list_at(spec, "exportTo") if isinstance(v, str)]
    for i, v in enumerate(values):
        if v not in (".", "*", "~") and not LABEL.match(v):
            out.append(Issue(f"spec/exportTo[{i}]", SEMANTIC, f"spec.exportTo[{i}]: {v!r} is not a namespace name, "
                                                              "'.', '*' or '~'"))
    if "*" in values and len(values) > 1:
        out.append(Issue("spec/exportTo", SEMANTIC, "spec.exportTo: cannot have both public (*) and non-public "
                                                    "exportTo values for a resource"))
    if len(set(values)) != len(values):
        out.append(Issue("spec/exportTo", SEMANTIC, "spec.exportTo: duplicate entries in exportTo"))
