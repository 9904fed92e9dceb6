"""Graphs of a past window and the comparison of two windows, for the live source (issue #14).

The rate store keeps history (24 h by default on the bundled mesh, whatever
Prometheus keeps on a cluster), so a graph can end at any time within it. The
config drawn on it is today's: the journal, listed beside a comparison, says
what changed in between. Past graphs are built on request, never cached: a
window that ended is a question asked once or twice, not a page refreshed.
"""
from __future__ import annotations

from typing import Any

from dashboard.query import GraphResult, QueryError


def graph_ending(source: Any, graph_type: str, namespaces: list[str] | None, window_s: float, end: float) -> Any:
    """The networkx graph of the window ending at `end`."""
    from topology import build_graph
    if end > source.now() + 1:
        raise QueryError("end", "must not be in the future")
    rates = source.backend.rates(window_s, end)
    return build_graph(rates, graph_type, namespaces, snapshot=source.backend.snapshot(), window_s=window_s,
                       query_time=end)


def graph_result(source: Any, graph_type: str, namespaces: list[str] | None, window_s: float,
                 end: float) -> GraphResult:
    """What /api/v1/graph answers, for a window ending at `end`."""
    from dashboard.elements import from_topology, ui_elements
    from topology import to_cytoscape
    graph = graph_ending(source, graph_type, namespaces, window_s, end)
    nodes, edges = from_topology(to_cytoscape(graph))
    all_ns = sorted({n.get("namespace") for n in nodes if n.get("namespace") not in (None, "", "unknown")})
    notes = [] if graph.number_of_edges() else ["no traffic in this window"]
    return GraphResult(ui_elements(nodes, edges), graph_type, all_ns, window_s, end, notes)


def graph_diff(source: Any, graph_type: str, namespaces: list[str] | None, window_s: float, before_end: float,
               after_end: float, after: Any = None) -> dict[str, Any]:
    """Two windows compared (topology.compare) and the config changes between them (the journal).

    `after`: the graph of the later window when the caller already holds it (a report's own view graph), so
    it is not built a second time."""
    from topology.compare import compare_graphs
    if before_end >= after_end:
        raise QueryError("before", "must end before the 'after' window")
    before = graph_ending(source, graph_type, namespaces, window_s, before_end)
    if after is None:
        after = graph_ending(source, graph_type, namespaces, window_s, after_end)
    out = compare_graphs(before, after)
    journal = source.journal() if hasattr(source, "journal") else None
    out["config_changes"] = journal.query(since=before_end - window_s, until=after_end) if journal is not None else None
    out["before"] = {"end": before_end, "window": window_s}
    out["after"] = {"end": after_end, "window": window_s}
    out["graphType"] = graph_type
    return out
