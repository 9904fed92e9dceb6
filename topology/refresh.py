"""Refresh a graph in place for a new window of the same request.

Two paths. Fast: the window has the same series as the last one and the same
edges carry traffic, so every node and edge is where it was; only the rate
fields of their attribute dicts are rewritten. General: nodes and edges are
matched by id, updated, added or removed. Either way the dicts of surviving
nodes and edges stay the same objects, so whatever the UI hung on them survives.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from topology import attrs as A
from topology.assemble import add_edges_bulk, edge_attrs, edge_records, edge_sums, node_rates, node_records, shown_edges
from topology.traffic import Traffic


@dataclass
class RefreshState:
    """What the last build/refresh left, to recognise an unchanged layout."""

    graph: nx.MultiDiGraph
    structure: dict  # the Traffic's structure memo (the same object while the series stay the same)
    shown: np.ndarray
    node_dicts: list[tuple[int, dict]]  # (node index, attribute dict) of nodes in the graph
    edge_dicts: list[dict]  # by edge index
    n_nodes: int

    @classmethod
    def after(cls, graph: nx.MultiDiGraph, tr: Traffic, edge_dicts: list[dict]) -> RefreshState:
        nodes = graph.nodes
        ids = tr.table.ids
        node_dicts = [(i, nodes[ids[i]]) for i in tr.nodes_in_graph().tolist() if ids[i] in graph]
        return cls(graph, tr.on_edges, tr.shown.copy(), node_dicts, edge_dicts, graph.number_of_nodes())

    def matches(self, graph: nx.MultiDiGraph, tr: Traffic) -> bool:
        # (edge counts are not compared: networkx counts them by walking every node; the
        # builder is the only one that changes its graph's edges)
        return (self.graph is graph and self.structure is tr.on_edges and not tr.options.waypoints
                and np.array_equal(self.shown, tr.shown) and graph.number_of_nodes() == self.n_nodes)


def update_graph(graph: nx.MultiDiGraph, tr: Traffic, state: RefreshState | None) -> list[dict]:
    """Bring `graph` to the traffic's nodes and edges; returns the edge attribute dicts by edge index."""
    sums = edge_sums(tr)
    tr.shown = shown_edges(tr, sums)
    if state is not None and state.matches(graph, tr):
        rates = node_rates(tr, sums)
        for i, d in state.node_dicts:
            d[A.RATES] = rates.get(i, {})
        edge_attrs(tr, sums, into=state.edge_dicts)
        return state.edge_dicts
    return _general(graph, tr, sums)


def _general(graph: nx.MultiDiGraph, tr: Traffic, sums: dict) -> list[dict]:
    nodes = node_records(tr, node_rates(tr, sums))
    store = graph._node if isinstance(getattr(graph, "_node", None), dict) else None
    for nid, attrs in nodes:
        d = store.get(nid) if store is not None else (graph.nodes[nid] if nid in graph else None)
        if d is None:
            graph.add_node(nid, **attrs)
        else:
            d.clear()
            d.update(attrs)
    if graph.number_of_nodes() != len(nodes):
        keep = {nid for nid, _ in nodes}
        graph.remove_nodes_from([n for n in graph.nodes if n not in keep])
    records = edge_records(tr, sums)
    shown = tr.shown.tolist()
    succ = getattr(graph, "_succ", None)
    stored, fresh = [], []
    for (u, v, k, dd), show in zip(records, shown):
        if not show:
            stored.append(dd)  # detached: appenders may write, nothing is drawn
            continue
        keydict = succ[u].get(v) if isinstance(succ, dict) else graph.adj[u].get(v)
        attrs = keydict.get(k) if keydict is not None else None
        if attrs is None:
            fresh.append((len(stored), (u, v, k, dd)))
            stored.append(dd)
        else:
            attrs.clear()
            attrs.update(dd)
            stored.append(attrs)
    for (pos, _), attrs in zip(fresh, add_edges_bulk(graph, [r for _, r in fresh])):
        stored[pos] = attrs
    if sum(len(keys) for nbrs in graph.adj.values() for keys in nbrs.values()) != sum(shown):  # some vanished
        wanted = {(u, v, k) for (u, v, k, _), show in zip(records, shown) if show}
        graph.remove_edges_from([e for e in graph.edges(keys=True) if e not in wanted])
    return stored
