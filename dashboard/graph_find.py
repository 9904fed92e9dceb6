"""Find and hide that reach inside collapsed groups (issue #17).

In a grouped graph a workload is drawn as its namespace or app, so a selector in the browser
cannot see it. The server applies the expressions to the graph records instead:

- hide removes matching nodes (with their edges) and matching edges BEFORE the roll-up, so a
  group's health, rates, error % and member count are those of what is left;
- find marks every drawn element with how many records it stands for matched (`found`): an
  aggregate counts its matching members and the matching edges inside it, an aggregate edge its
  matching member edges, an element drawn as itself 1. The page highlights `found > 0`, labels
  aggregates with the count and offers to open them (`Found.expand`: the app groups holding a match).

Masks come from `dashboard.components.find_hide` (the same clauses the browser's selector is made of),
so a find on a grouped graph matches exactly the workloads it would match once expanded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dashboard.components.find_hide import Alternative, edge_mask, node_mask
from topology.aggregate import app_id, edge_agg_id

_STRUCTURAL = ("box", "config")  # compound boxes and blamed config objects: never hidden under their members


@dataclass
class Found:
    """What a find matched, for the page's message and its "expand" offer."""

    shown: int = 0  # matching elements drawn as themselves
    groups: list[dict[str, Any]] = field(default_factory=list)  # [{id, name, nodes, edges}] aggregates with matches
    expand: list[str] = field(default_factory=list)  # app aggregate ids that open every matching member

    @property
    def inside(self) -> int:
        return sum(g["nodes"] + g["edges"] for g in self.groups)

    def note(self, expression: str) -> str:
        where = "; ".join(f"{g['name']} {g['nodes'] + g['edges']}" for g in self.groups[:5])
        more = f" and {len(self.groups) - 5} more" if len(self.groups) > 5 else ""
        inside = f"; {self.inside} inside {len(self.groups)} collapsed group(s): {where}{more}" if self.groups else ""
        return f"find {expression[:60]!r}: {self.shown} shown{inside}"

    def to_dict(self) -> dict[str, Any]:
        return {"shown": self.shown, "inside": self.inside, "groups": self.groups, "expand": self.expand}


def hide(nodes: list[dict[str, Any]], edges: list[dict[str, Any]],
         alternatives: list[Alternative]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """(nodes, edges) without what `alternatives` match, a hidden node's edges with it; plus the counts removed."""
    if not alternatives:
        return nodes, edges, 0, 0
    gone = node_mask(nodes, alternatives)
    gone &= ~np.array([n.get("type") in _STRUCTURAL for n in nodes], dtype=bool)
    hidden_ids = {n["id"] for n, g in zip(nodes, gone) if g}
    drop = edge_mask(edges, alternatives)
    if hidden_ids:
        ends = pd.DataFrame({"s": [e["source"] for e in edges], "t": [e["target"] for e in edges]})
        drop |= (ends["s"].isin(hidden_ids) | ends["t"].isin(hidden_ids)).to_numpy()
    kept_nodes = [n for n, g in zip(nodes, gone) if not g]
    kept_edges = [e for e, d in zip(edges, drop) if not d]
    return kept_nodes, kept_edges, len(nodes) - len(kept_nodes), len(edges) - len(kept_edges)


def mark_found(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], drawn_nodes: list[dict[str, Any]],
               drawn_edges: list[dict[str, Any]], group_of: dict[str, str],
               alternatives: list[Alternative]) -> tuple[Found, dict[str, dict[str, Any]]]:
    """(what matched, drawn id -> the fields to set on it: `found` and, on aggregates, `found_label`).

    `nodes`/`edges` are the records before the roll-up, `drawn_*` after it, `group_of` maps a node id
    to the id it is drawn as (absent: itself). Nothing is modified: records may be a source's cache.
    """
    out = Found()
    updates: dict[str, dict[str, Any]] = {}
    if not alternatives:
        return out, updates
    nm, em = node_mask(nodes, alternatives), edge_mask(edges, alternatives)
    node_ids = pd.Series([n["id"] for n in nodes])
    ng = node_ids.map(group_of).fillna(node_ids)
    counts: dict[str, list[int]] = {}  # drawn id -> [nodes, edges]
    for gid, n in ng[nm].value_counts().items():
        counts.setdefault(gid, [0, 0])[0] += int(n)
    expand: set[str] = set()
    for n in (nodes[i] for i in np.flatnonzero(nm & (ng != node_ids).to_numpy())):
        expand.add(_app_of(n))
    if edges:
        ef = pd.DataFrame({"id": [e["id"] for e in edges], "s": [e["source"] for e in edges],
                           "t": [e["target"] for e in edges],
                           "p": [e.get("protocol") or "http" for e in edges]})[em]
        sg, tg = ef["s"].map(group_of).fillna(ef["s"]), ef["t"].map(group_of).fillna(ef["t"])
        as_is = (sg == ef["s"]) & (tg == ef["t"])
        inside = ~as_is & (sg == tg)
        rolled = ~as_is & ~inside
        drawn_as = pd.concat([ef["id"][as_is], sg[inside],
                              pd.Series([edge_agg_id(a, b, p) for a, b, p in
                                         zip(sg[rolled], tg[rolled], ef["p"][rolled])], dtype=object)])
        for gid, n in drawn_as.value_counts().items():
            counts.setdefault(gid, [0, 0])[1] += int(n)
        by_id = {n["id"]: n for n in nodes}
        for s, t in zip(ef["s"][~as_is], ef["t"][~as_is]):
            expand.update(_app_of(by_id[x]) for x in (s, t) if x in by_id and group_of.get(x, x) != x)
    for rec in (*drawn_nodes, *drawn_edges):
        hit = counts.get(rec["id"])
        if not hit:
            continue
        total = hit[0] + hit[1]
        updates[rec["id"]] = {"found": total}
        if rec.get("type") == "aggregate":
            name = rec.get("name") or rec["id"]
            updates[rec["id"]]["found_label"] = f"{name} ({total} found)"
            out.groups.append({"id": rec["id"], "name": name, "nodes": hit[0], "edges": hit[1]})
        elif rec.get("aggregate"):
            out.groups.append({"id": rec["id"], "name": f"{_short(rec['source'])} \u2192 {_short(rec['target'])}",
                               "nodes": 0, "edges": hit[1]})
        else:
            out.shown += 1
    out.groups.sort(key=lambda g: (-(g["nodes"] + g["edges"]), g["id"]))
    out.expand = sorted(expand)
    return out, updates


def _short(node_id: str) -> str:
    """An aggregate id as a reader says it: `agg:ns:shop` -> shop, `agg:app:shop/cart` -> shop/cart."""
    for prefix in ("agg:ns:", "agg:app:"):
        if node_id.startswith(prefix):
            return node_id[len(prefix):]
    return node_id


def _app_of(n: dict[str, Any]) -> str:
    """The app aggregate holding a node (expanding it implies its namespace: `topology.aggregate`)."""
    return app_id(n.get("namespace") or "", n.get("app") or n.get("name") or n["id"])
