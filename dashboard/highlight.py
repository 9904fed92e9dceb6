"""Carry a finding's graph elements from the workload graph to the graph on screen.

Findings name the elements they touch by their ids in the workload graph (where the evidence
lives: caller workload -> workload, or through a service node). The app, versioned-app and
service graphs draw the same traffic with other nodes, so each workload-graph node is
described by what identifies it in every graph type (its workload, its app, its app version,
the services it was called as) and the shown graph's nodes and edges are matched by those
descriptions.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Key = tuple[str, ...]


def _split(elements: list[dict[str, Any]]) -> tuple[dict[str, dict], list[dict]]:
    nodes = {e["data"]["id"]: e["data"] for e in elements if "source" not in e["data"]}
    edges = [e["data"] for e in elements if "source" in e["data"]]
    return nodes, edges


def _own_key(d: dict[str, Any], graph_type: str) -> Key:
    """What a node of the shown graph stands for."""
    ns, kind = d.get("namespace") or "", d.get("type")
    if kind == "app":
        if graph_type == "versionedApp" and d.get("version"):
            return ("version", ns, d.get("app") or "", d["version"])
        return ("app", ns, d.get("app") or d.get("name") or "")
    if kind == "service":
        return ("service", ns, d.get("name") or "")
    if kind == "workload":
        return ("workload", ns, d.get("name") or "")
    return ("other", d["id"])


def _descriptions(workload_elements: list[dict[str, Any]]) -> dict[str, set[Key]]:
    """Every workload-graph node id -> the keys it can appear under in any graph type."""
    nodes, edges = _split(workload_elements)
    out: dict[str, set[Key]] = {}
    for nid, d in nodes.items():
        keys = {_own_key(d, "workload")}
        if d.get("type") == "workload":
            ns, app = d.get("namespace") or "", d.get("app") or ""
            if app:
                keys.add(("app", ns, app))
                if d.get("version"):
                    keys.add(("version", ns, app, d["version"]))
            keys |= {("service", s_ns, svc) for s_ns, svc in d.get("services") or []}  # called as these
        out[nid] = keys
    for e in edges:  # a service node in front of a workload (graphs with injected service nodes)
        src, dst = nodes.get(e["source"]), nodes.get(e["target"])
        if src and dst and src.get("type") == "service" and dst.get("type") == "workload":
            out[e["target"]].add(_own_key(src, "service"))
    return out


def projector(workload_elements: list[dict[str, Any]], shown: list[dict[str, Any]],
              graph_type: str) -> Callable[[Iterable[str]], list[str]]:
    """A function from workload-graph element ids to the ids in `shown` (a graph of `graph_type`).

    The graphs are indexed once, so mapping many findings costs one pass over each graph.
    """
    if graph_type == "workload":
        return lambda ids: sorted(set(ids))
    described = _descriptions(workload_elements)
    w_nodes, w_edges = _split(workload_elements)
    w_edges_by_id = {e["id"]: e for e in w_edges}
    s_nodes, s_edges = _split(shown)
    own = {nid: _own_key(d, graph_type) for nid, d in s_nodes.items()}

    def project_ids(ids: Iterable[str]) -> list[str]:
        ids = set(ids)
        node_keys: set[Key] = set()
        edge_keys: set[tuple[Key, Key]] = set()
        for nid in ids & w_nodes.keys():
            node_keys |= described.get(nid, set())
        for eid in ids & w_edges_by_id.keys():
            ends = [described.get(w_edges_by_id[eid][k], set()) for k in ("source", "target")]
            node_keys |= ends[0] | ends[1]
            edge_keys |= {(a, b) for a in ends[0] for b in ends[1]}
        if not node_keys:
            return []
        hit = {nid for nid, key in own.items() if key in node_keys}
        hit |= {e["id"] for e in s_edges if (own.get(e["source"]), own.get(e["target"])) in edge_keys}
        return sorted(hit)

    return project_ids


def project(ids: Iterable[str], workload_elements: list[dict[str, Any]], shown: list[dict[str, Any]],
            graph_type: str) -> list[str]:
    """Ids in `shown` (a graph of `graph_type`) of the workload-graph elements `ids`."""
    return projector(workload_elements, shown, graph_type)(ids)
