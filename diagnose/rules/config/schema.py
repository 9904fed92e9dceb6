"""Schema validation: what the API server and Istio's webhook would reject, field by field.

Istio kinds are checked against Istio's own API definition (mesh.config.schema:
the CRDs' OpenAPI schemas plus the webhook's semantic checks), every violation a
finding with its field path and line, coded by class (istioctl says IST0106 for
all of them). Kubernetes kinds the rules read (Service) keep a light shape check
of the fields rules use; unknown fields pass there. A shape is a
Python type (`str`, `int`, `bool`, `dict`, `list`), a tuple of types, a
one-element list `[shape]` (list of shape), or a dict of field -> shape, where
the key ``"*"`` stands for any key (a map).
"""
from __future__ import annotations

import re
from typing import Any

from diagnose.context import Context
from diagnose.rule import Metadata
from mesh.config import schema as istio_schema
from mesh.config.schema.compiler import actual

STR_MAP = {"*": str}

SHAPES: dict[str, dict[str, Any]] = {
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
        return [(path, f"{dotted} must be {_describe(shape)}, got {actual(value)}")]
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


#: Catalog code of each class of schema problem.
CODES = {
    istio_schema.TYPE: "MS0007", istio_schema.UNKNOWN: "MS0014", istio_schema.REQUIRED: "MS0015",
    istio_schema.ENUM: "MS0016", istio_schema.RANGE: "MS0017", istio_schema.FORMAT: "MS0018",
    istio_schema.EXCLUSIVE: "MS0019", istio_schema.DURATION: "MS0020", istio_schema.DUPLICATE: "MS0021",
    istio_schema.RULE: "MS0022", istio_schema.SEMANTIC: "MS0023",
}


#: CRD rules (by the API server's message) that a dedicated rule already reports, with more context;
#: analyze leaves them to it (one problem, one finding), `apply` still refuses with them.
REPORTED_BY = {"portLevelMtls requires selector": "MS2012"}


class IstioSchema:
    """Objects of one Istio kind satisfy Istio's API: its CRD schema and its webhook's checks."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.metadata = Metadata(
            name=f"schema.{kind}",
            description=f"{kind} objects satisfy Istio's API definition (types, enums, required and unknown "
                        "fields, ranges, formats, CRD rules, webhook checks)",
            inputs=(kind,),
            codes=tuple(sorted(set(CODES.values()))),
        )

    def analyze(self, ctx: Context) -> None:
        for obj in ctx.for_each(self.kind):
            for issue in istio_schema.validate_object(obj):
                if issue.rule_message not in REPORTED_BY:
                    ctx.report(CODES[issue.problem], obj, issue.path,
                               reason=issue.message + placeholder_hint(value_at(obj.spec, issue.path)))


#: `$VAR`, `${VAR}`, `$(VAR)`: left for envsubst, sed or a Makefile to fill in before the file is applied
_PLACEHOLDER = re.compile(r"\$(\{[A-Za-z_][\w.-]*\}|\([A-Za-z_][\w.-]*\)|[A-Za-z_][\w-]*)")
_SEGMENT = re.compile(r"([^/\[\]]+)|\[(\d+)\]")


def value_at(spec: Any, path: str | None) -> Any:
    """The value at a finding's YAML path (`spec/hosts[0]`), None when the path leads nowhere."""
    node: Any = {"spec": spec}
    for key, index in _SEGMENT.findall(path or ""):
        if index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        elif key and isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def placeholder_hint(value: Any) -> str:
    """Why a value is invalid when it is a template placeholder nobody substituted ('' otherwise)."""
    found = _PLACEHOLDER.search(value) if isinstance(value, str) else None
    return f" (it holds {found.group(0)}, a placeholder to substitute before applying)" if found else ""


ALL = [FieldTypes(kind) for kind in sorted(SHAPES)] + [IstioSchema(kind) for kind in sorted(istio_schema.kinds())]
