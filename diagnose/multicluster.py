"""Checks across clusters: one mesh spanning several clusters merges same-named Services into one.

A Service `ns/name` must then look the same everywhere (type, headless or not,
ports); otherwise which cluster's definition a client sees is an accident.
Each cluster is analyzed on its own by `diagnose.analyze`; this compares them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diagnose.catalog import make
from diagnose.context import resource_ref
from diagnose.findings import Finding
from diagnose.rules.config.util import as_dict, as_list, as_str
from mesh.config import ConfigObject, Snapshot


def _shape(svc: ConfigObject) -> dict[str, Any]:
    ports = sorted((p.get("port"), as_str(p.get("name")), as_str(p.get("protocol")) or "TCP",
                    str(p.get("targetPort", p.get("port")))) for p in map(as_dict, as_list(svc.spec.get("ports"))))
    return {"type": as_str(svc.spec.get("type")) or "ClusterIP",
            "headless": as_str(svc.spec.get("clusterIP")) == "None",
            "ports": ports}


def _describe(field: str, values: dict[str, Any]) -> str:
    if field == "ports":
        def fmt(ps: list) -> str:
            return "[" + ", ".join(f"{n or '-'}:{p}/{proto}" for p, n, proto, _ in ps) + "]"
        return "ports " + " vs ".join(f"{fmt(v)} in {c}" for c, v in values.items())
    if field == "headless":
        return "headless " + " vs ".join(f"{'yes' if v else 'no'} in {c}" for c, v in values.items())
    return f"{field} " + " vs ".join(f"{v} in {c}" for c, v in values.items())


def inconsistent_services(clusters: Mapping[str, Snapshot]) -> list[Finding]:
    """One MS1508 finding per Service whose definition differs between clusters."""
    by_key: dict[tuple[str | None, str], dict[str, ConfigObject]] = {}
    for cluster, snap in clusters.items():
        for svc in snap.services():
            by_key.setdefault((svc.namespace, svc.name), {})[cluster] = svc
    out = []
    for copies in by_key.values():
        if len(copies) < 2:
            continue
        shapes = {c: _shape(s) for c, s in copies.items()}
        differences = [_describe(f, {c: sh[f] for c, sh in shapes.items()})
                       for f in ("type", "headless", "ports") if len({repr(sh[f]) for sh in shapes.values()}) > 1]
        if differences:
            first, *others = copies.values()
            out.append(make("MS1508", resource_ref(first), [resource_ref(o) for o in others],
                            clusters=", ".join(copies), differences="; ".join(differences)))
    return out
