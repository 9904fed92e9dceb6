"""Field-level validation of Istio objects, from the API's own definition.

`istio-crds.json` holds the OpenAPI v3 schema of every Istio kind's `spec`, cut
from Istio's CRDs (see SOURCE.md); `compiler` turns each into one checking
closure the first time the kind is seen, and `webhook` adds the checks Istio's
validation webhook makes that a schema cannot express. `validate` returns every
violation of an object, each with its YAML path, so `meshscope analyze`, the
bundled mesh's `apply` and the live diagnoser refuse exactly what Istio refuses
(istioctl reports these as IST0106). A new field in a new Istio release is one
refresh of the data file (scripts/refresh_istio_schema.py), not code.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mesh.config.schema.compiler import (DUPLICATE, DURATION, ENUM, EXCLUSIVE, FORMAT, RANGE, REQUIRED, RULE, SEMANTIC,
                                         TYPE, UNKNOWN, UNSUPPORTED_RULES, Check, Issue, compile_schema)
from mesh.config.schema.webhook import CHECKS

DATA = Path(__file__).parent / "istio-crds.json"
TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})

__all__ = ["DATA", "DUPLICATE", "DURATION", "ENUM", "EXCLUSIVE", "FORMAT", "RANGE", "REQUIRED", "RULE", "SEMANTIC",
           "TYPE", "UNKNOWN", "UNSUPPORTED_RULES", "Issue", "kinds", "problems", "served_versions", "validate",
           "validate_object"]


@cache
def _definitions() -> dict[str, dict[str, Any]]:
    return json.loads(DATA.read_text())


def kinds() -> dict[str, str]:
    """Kind -> API group, for every kind the data file describes."""
    return {k: d["group"] for k, d in _definitions().items()}


def served_versions(kind: str) -> tuple[str, ...]:
    d = _definitions().get(kind)
    return tuple(d["versions"]) if d else ()


@cache
def _checker(kind: str) -> Check | None:
    d = _definitions().get(kind)
    return compile_schema(d["spec"]) if d else None


def validate(kind: str, data: dict[str, Any], group: str | None = None) -> list[Issue]:
    """Every violation of the Istio API in one object (`data` is the whole document); [] for other kinds.

    `group` (the apiVersion's group), when given, must be the kind's Istio group:
    a Gateway of the Gateway API is not an Istio Gateway.
    """
    d = _definitions().get(kind)
    if d is None or (group is not None and group != d["group"]):
        return []
    out: list[Issue] = []
    for key in data:
        if key not in TOP_LEVEL:
            out.append(Issue(str(key), UNKNOWN, f"{key} is not a field of a Kubernetes object (apiVersion, kind, "
                                                "metadata, spec, status)"))
    spec = data.get("spec")
    if spec is None:
        if d.get("required_spec"):
            out.append(Issue("spec", REQUIRED, "spec is required"))
            return out  # not also every field the missing spec would have required
        spec = {}
    check = _checker(kind)
    assert check is not None
    n = len(out)
    check(spec, "spec", out)
    if isinstance(spec, dict) and not any(i.problem == TYPE and i.path == "spec" for i in out[n:]):
        for semantic in CHECKS.get(kind, ()):
            semantic(spec, out)
    return out


def validate_object(obj: Any) -> list[Issue]:
    """`validate` for a loaded ConfigObject (its raw document, its group)."""
    data = obj.raw if obj.raw else {"spec": obj.spec}
    spec = data.get("spec")
    if spec is not None and not isinstance(spec, dict):
        return []  # the loader already reported that spec is not a mapping, and nothing under it can be checked
    return validate(obj.kind, data, obj.group)


def problems(objects: Any) -> list[Any]:
    """Every schema violation of the given ConfigObjects as LoadProblems (file:line, object, field, message).

    What `meshscope apply`, the control API and `up --config` refuse with: the whole
    list, so one round of fixing is enough.
    """
    from mesh.config.loader import BAD_FIELD, LoadProblem
    out: list[LoadProblem] = []
    for obj in objects:
        for issue in validate_object(obj):
            src = obj.source_of(issue.path)
            out.append(LoadProblem(src.file if src else "<input>", src.line if src else 0, issue.message,
                                   kind=obj.kind, name=obj.name, field=issue.field, reason=BAD_FIELD,
                                   namespace=obj.namespace))
    return out
