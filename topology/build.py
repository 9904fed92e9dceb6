"""Build the traffic graph (a networkx MultiDiGraph keyed by protocol) from an Istio rate frame.

Steps: resolve series ends to nodes and select/de-duplicate contributions
(traffic.py), aggregate and insert into networkx in bulk (assemble.py), then
run the appender pipeline. `GraphBuilder` keeps the label->node memo and the
last frame's structure between refreshes of the same request (refresh.py), so
a new scrape interval costs aggregation only.
"""
from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence

import networkx as nx
import pandas as pd

from topology import attrs as A
from topology import model
from topology.appenders import AppendContext, build_pipeline
from topology.assemble import add_boxes, graph_attrs, graph_from_traffic
from topology.config_index import ConfigIndex, index_for
from topology.options import GraphOptions, NodeSelector, RateModes
from topology.refresh import RefreshState, update_graph
from topology.traffic import Caches, Traffic, build_traffic


def build_graph(rates: pd.DataFrame, graph_type: str = model.WORKLOAD, namespaces: Sequence[str] | None = None, *,
                node: NodeSelector | None = None, rate_modes: RateModes | None = None,
                inject_service_nodes: bool | None = None, include_idle_edges: bool = False,
                accessible: Iterable[tuple[str, str]] | None = None,
                appenders: Sequence[str] | None = None, snapshot=None, health=None, window_s: float | None = None,
                query_time: float | None = None, ambient: str = "none", waypoints: Iterable[tuple[str, str, str]] = (),
                one_reporter: bool = True, **appender_options) -> nx.MultiDiGraph:
    """The traffic graph for a rate frame (Istio labels + metric + le + rate).

    `appenders=None` runs every appender; `appenders=[]` runs only the always-on
    finalizers (outsider, traffic generator), like Kiali's empty `appenders=`.
    `snapshot` (mesh.config.Snapshot) feeds config badges, idle/dead nodes and
    mTLS intent; `health` (topology.health.HealthConfig) overrides Kiali's thresholds.
    """
    opts = GraphOptions(graph_type=graph_type, namespaces=list(namespaces) if namespaces is not None else None,
                        node=node, rates=rate_modes or RateModes(), inject_service_nodes=inject_service_nodes,
                        include_idle_edges=include_idle_edges,
                        accessible=set(accessible) if accessible is not None else None,
                        window_s=window_s, query_time=query_time, ambient=ambient, waypoints=frozenset(waypoints),
                        one_reporter=one_reporter)
    return GraphBuilder(opts, appenders, snapshot=snapshot, health=health, **appender_options).build(rates)


class GraphBuilder:
    """One graph request (type, scope, appenders) built again and again as new windows arrive."""

    def __init__(self, options: GraphOptions, appenders: Sequence[str] | None = None, *, snapshot=None, health=None,
                 **appender_options) -> None:
        self.options = options
        self.pipeline = build_pipeline(appenders, **appender_options)
        self.snapshot = snapshot
        self.health = health
        self.caches = Caches()
        self._state: RefreshState | None = None
        self._config: tuple[object, ConfigIndex | None] = (None, None)  # (snapshot, its index)

    def config_index(self) -> ConfigIndex | None:
        """The current snapshot's index: kept while `self.snapshot` is the same object, rebuilt when it is replaced."""
        snap, index = self._config
        if snap is not self.snapshot:
            index = index_for(self.snapshot)
            self._config = (self.snapshot, index)
        return index

    def build(self, rates: pd.DataFrame) -> nx.MultiDiGraph:
        # Building tens of thousands of small dicts makes the cyclic GC rescan the (large, acyclic)
        # heap over and over; pausing it for the build is the single biggest win at scale.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._build(rates)
        finally:
            if enabled:
                gc.enable()

    def refresh(self, graph: nx.MultiDiGraph, rates: pd.DataFrame) -> nx.MultiDiGraph:
        """Update `graph` in place for a new window of the same request (e.g. one more scrape interval).

        When the window has the same series as the last one (the usual case) only
        the rates are re-aggregated: node resolution, query selection, de-duplication
        and the mapping of buckets/security series onto edges are reused, and if the
        same edges carry traffic the attribute dicts are updated where they are.
        Nodes and edges that persist keep their identity (UI positions stay put);
        vanished ones are removed, new ones added; every appender runs again. The
        config index is reused while `self.snapshot` is the same object (assign a
        new Snapshot to `snapshot` when the config changes).
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            traffic = build_traffic(rates, self.options, self.caches)
            stored = update_graph(graph, traffic, self._state)
            graph.graph.clear()
            graph.graph.update(graph_attrs(traffic))
            add_boxes(graph, self.options)
            self._decorate(graph, traffic, rates, stored)
            return graph
        finally:
            if enabled:
                gc.enable()

    def _decorate(self, graph: nx.MultiDiGraph, traffic: Traffic, rates: pd.DataFrame, dicts: list[dict]) -> None:
        ctx = AppendContext(rates=rates, options=self.options, traffic=traffic, snapshot=self.snapshot,
                            health=self.health, config=self.config_index())
        ctx.cache["edge_dicts"] = dicts
        for appender in self.pipeline:
            appender.append(graph, ctx)
            graph.graph[A.APPENDERS_RUN].append(appender.name)
        self._state = RefreshState.after(graph, traffic, dicts)

    def _build(self, rates: pd.DataFrame) -> nx.MultiDiGraph:
        traffic = build_traffic(rates, self.options, self.caches)
        graph = graph_from_traffic(traffic)
        self._decorate(graph, traffic, rates, graph.graph.pop("_edge_dicts"))
        return graph
