"""Reading Cytoscape elements, whichever producer wrote them.

topology's export uses `node_type`, `rate` and Kiali's health words
(Healthy/Degraded/Failure/NA); hand-written or older snapshots may use
`nodeType`, `rps` and lower-case states. Reports read elements only through
these functions, so the picture, the summary and the Markdown agree.
"""
from __future__ import annotations

import math
from typing import Any

_HEALTH = {"healthy": "healthy", "degraded": "degraded", "failure": "failing", "failing": "failing",
           "idle": "idle", "na": "unknown", "unknown": "unknown"}


def is_edge(d: dict[str, Any]) -> bool:
    return "source" in d and "target" in d


def node_type(d: dict[str, Any]) -> str:
    return str(d.get("node_type") or d.get("nodeType") or "")


def is_box(d: dict[str, Any]) -> bool:
    return node_type(d) == "box" or bool(d.get("is_box"))


def health(d: dict[str, Any]) -> str:
    """healthy | degraded | failing | idle | unknown."""
    if d.get("is_idle") and not is_edge(d):
        return "idle"
    raw = d.get("health") or d.get("healthStatus") or "unknown"
    return _HEALTH.get(str(raw).lower(), "unknown")


def request_rate(d: dict[str, Any]) -> float:
    """Requests per second on an edge (tcp edges carry bytes/s, which are not requests)."""
    if str(d.get("protocol", "http")) == "tcp":
        return 0.0
    for key in ("rps", "rate"):
        v = d.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return max(0.0, float(v))
    return 0.0


def error_rate(d: dict[str, Any]) -> float:
    for key, scale in (("error_rate", 1.0), ("percent_err", 100.0)):
        v = d.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return min(1.0, max(0.0, float(v) / scale))
    return 0.0


def node_label(d: dict[str, Any]) -> str:
    for key in ("label", "service", "workload", "app"):
        if d.get(key) and d.get(key) != "unknown":
            text = str(d[key])
            if key == "workload" and d.get("version") and d.get("version") != "unknown" and d["version"] not in text:
                text += f" {d['version']}"
            return text
    return str(d.get("id", "?"))


def split(elements: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(node data, edge data), compound boxes left out."""
    nodes, edges = [], []
    for e in elements:
        d = e.get("data") if isinstance(e, dict) else None
        if not isinstance(d, dict):
            continue
        if is_edge(d):
            edges.append(d)
        elif d.get("id") is not None and not is_box(d):
            nodes.append(d)
    return nodes, edges
