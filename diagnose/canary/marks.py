"""Canary verdicts where an SRE looks: on the graph's version nodes and edges, and per service.

Pure functions over plain dicts (graph node/edge records, Finding.to_dict() or Verdict.to_dict()), so
the live graph, the service page and reports share one reading of a verdict.
"""
from __future__ import annotations

from typing import Any

MARKED_CODES = {"MS5010": "rollback", "MS5011": "promote"}


def _verdict_of(finding: Any) -> dict[str, Any] | None:
    d = finding.to_dict() if hasattr(finding, "to_dict") else finding
    if not isinstance(d, dict) or d.get("code") not in MARKED_CODES:
        return None
    v = (d.get("evidence") or {}).get("verdict")
    return v if isinstance(v, dict) and v.get("service") and v.get("candidate") else None


def mark_graph(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], findings: list[Any]) -> int:
    """Put each canary verdict on the candidate version's nodes (`canary`, `canary_reason`, a
    `canary-<verdict>` badge) and on the edges into them; returns how many nodes were marked.

    A node is the candidate when its namespace, app (the host's short name) and version match:
    that holds for workload and versioned-app graphs alike; service nodes carry no version."""
    want: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in findings:
        v = _verdict_of(f)
        if v is not None:
            want[(str(v.get("namespace") or ""), str(v["service"]).split(".")[0], str(v["candidate"]))] = v
    if not want:
        return 0
    marked: dict[str, dict[str, Any]] = {}
    for n in nodes:
        v = want.get((str(n.get("namespace") or ""), str(n.get("app") or ""), str(n.get("version") or "")))
        if v is None or n.get("type") == "service":
            continue
        n["canary"], n["canary_reason"], n["canary_stable"] = v["verdict"], v.get("reason", ""), v.get("stable", "")
        n["badges"] = [*n.get("badges", []), f"canary-{v['verdict']}"]
        marked[n["id"]] = v
    for e in edges:
        v = marked.get(e.get("target"))
        if v is not None:
            e["canary"] = v["verdict"]
    return len(marked)


def for_service(verdicts: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """The verdicts of one service, named by FQDN or `name.namespace...`: candidates in version order."""
    name, _, rest = service.partition(".")
    ns = rest.split(".")[0] if rest else None
    out = [v for v in verdicts if str(v.get("service", "")).split(".")[0] == name
           and (ns is None or v.get("namespace") == ns)]
    return sorted(out, key=lambda v: str(v.get("candidate")))
