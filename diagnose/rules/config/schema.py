"""Field types of the kinds meshscope analyzes: a wrong type is what the API server would reject.

Only the fields rules read are described; unknown fields pass. A shape is a
Python type (`str`, `int`, `bool`, `dict`, `list`), a tuple of types, a
one-element list `[shape]` (list of shape), or a dict of field -> shape, where
the key ``"*"`` stands for any key (a map).
"""
from __future__ import annotations

from typing import Any

from diagnose.context import Context
from diagnose.rule import Metadata

STR_MAP = {"*": str}
SELECTOR = {"matchLabels": STR_MAP}
PORT_SELECTOR = {"number": int}
DESTINATION = {"host": str, "subset": str, "port": PORT_SELECTOR}
ROUTE = [{"destination": DESTINATION, "weight": int}]
HTTP_MATCH = {"uri": dict, "headers": {"*": dict}, "method": dict, "port": int, "gateways": [str],
              "sourceLabels": STR_MAP, "name": str}
L4_MATCH = {"port": int, "sniHosts": [str], "gateways": [str], "sourceLabels": STR_MAP, "destinationSubnets": [str]}
TRAFFIC_POLICY = {"tls": {"mode": str, "credentialName": str, "caCertificates": str, "sni": str},
                  "portLevelSettings": [{"port": PORT_SELECTOR, "tls": dict}], "loadBalancer": dict,
                  "connectionPool": dict, "outlierDetection": dict}

SHAPES: dict[str, dict[str, Any]] = {
    "VirtualService": {
        "hosts": [str], "gateways": [str], "exportTo": [str],
        "http": [{"name": str, "match": [HTTP_MATCH], "route": ROUTE, "mirror": DESTINATION, "timeout": str,
                  "retries": dict, "fault": dict, "redirect": dict, "rewrite": dict, "headers": dict}],
        "tcp": [{"match": [L4_MATCH], "route": ROUTE}],
        "tls": [{"match": [L4_MATCH], "route": ROUTE}],
    },
    "DestinationRule": {
        "host": str, "exportTo": [str], "trafficPolicy": TRAFFIC_POLICY,
        "subsets": [{"name": str, "labels": STR_MAP, "trafficPolicy": TRAFFIC_POLICY}],
        "workloadSelector": SELECTOR,
    },
    "Gateway": {
        "selector": STR_MAP,
        "servers": [{"port": {"number": int, "name": str, "protocol": str, "targetPort": int}, "hosts": [str],
                     "bind": str, "tls": {"mode": str, "credentialName": str}}],
    },
    "ServiceEntry": {
        "hosts": [str], "addresses": [str], "exportTo": [str], "location": str, "resolution": str,
        "ports": [{"number": int, "protocol": str, "name": str, "targetPort": int}],
        "endpoints": [{"address": str, "ports": {"*": int}, "labels": STR_MAP}], "workloadSelector": SELECTOR,
    },
    "Sidecar": {
        "workloadSelector": {"labels": STR_MAP},
        "egress": [{"hosts": [str], "port": dict, "bind": str}], "ingress": [dict],
        "outboundTrafficPolicy": {"mode": str},
    },
    "PeerAuthentication": {"selector": SELECTOR, "mtls": {"mode": str}, "portLevelMtls": {"*": {"mode": str}}},
    "AuthorizationPolicy": {
        "selector": SELECTOR, "action": str,
        "rules": [{"from": [{"source": {"*": [str]}}], "to": [{"operation": {"*": [str]}}], "when": [dict]}],
    },
    "RequestAuthentication": {"selector": SELECTOR, "jwtRules": [dict]},
    "Service": {
        "selector": STR_MAP, "type": str,
        "ports": [{"port": int, "name": str, "protocol": str, "targetPort": (int, str), "appProtocol": str}],
    },
}

_WORDS = {str: "a string", int: "a number", bool: "true or false", dict: "a mapping", list: "a list"}


def _describe(shape: Any) -> str:
    if isinstance(shape, type):
        return _WORDS.get(shape, shape.__name__)
    if isinstance(shape, tuple):
        return " or ".join(_describe(s) for s in shape)
    if isinstance(shape, list):
        inner = shape[0]
        return "a list" if isinstance(inner, (dict, list)) else f"a list of {_describe(inner)[2:]}s"
    return "a mapping"


def _actual(value: Any) -> str:
    if value is None:
        return "null"
    for t, word in ((bool, "true/false"), (str, "a string"), (int, "a number"), (float, "a number"),
                    (dict, "a mapping"), (list, "a list")):
        if isinstance(value, t):
            return word
    return type(value).__name__


def _fits(value: Any, shape: Any) -> bool:
    if isinstance(shape, tuple):
        return any(_fits(value, s) for s in shape)
    if isinstance(shape, list):
        return isinstance(value, list)
    if isinstance(shape, dict):
        return isinstance(value, dict)
    if shape is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, shape)


def type_errors(value: Any, shape: Any, path: str) -> list[tuple[str, str]]:
    """(YAML path, message) for every field of `value` that does not fit `shape`."""
    if value is None:
        return []  # absent or explicitly null: the API treats both as unset
    if not _fits(value, shape):
        dotted = path.replace("/", ".")
        return [(path, f"{dotted} must be {_describe(shape)}, got {_actual(value)}")]
    out: list[tuple[str, str]] = []
    if isinstance(shape, list):
        for i, item in enumerate(value):
            out += type_errors(item, shape[0], f"{path}[{i}]")
    elif isinstance(shape, dict):
        for key, item in value.items():
            sub = shape.get(key, shape.get("*"))
            if sub is not None:
                out += type_errors(item, sub, f"{path}/{key}")
    return out


class FieldTypes:
    """Fields of one kind have the types its API declares (a Kubernetes API server would refuse them)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.metadata = Metadata(
            name=f"schema.{kind}",
            description=f"{kind} fields have the types the API declares",
            inputs=(kind,),
            codes=("MS0007",),
        )

    def analyze(self, ctx: Context) -> None:
        shape = SHAPES[self.kind]
        for obj in ctx.for_each(self.kind):
            for path, message in type_errors(obj.spec, shape, "spec"):
                ctx.report("MS0007", obj, path, reason=message)


ALL = [FieldTypes(kind) for kind in sorted(SHAPES)]
