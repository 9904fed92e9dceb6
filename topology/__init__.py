"""The traffic graph (networkx) built from the collector's tables, decorated by appenders."""
from topology.appenders import AppendContext, build_pipeline
from topology.build import GraphBuilder, build_graph
from topology.diff import GraphDiff, diff_graphs
from topology.export import to_cytoscape, to_kiali
from topology.health import HealthConfig, HealthRule, Tolerance
from topology.options import GraphOptions, NodeSelector, RateModes

__all__ = ["AppendContext", "GraphBuilder", "GraphDiff", "GraphOptions", "HealthConfig", "HealthRule", "NodeSelector", "RateModes",
           "Tolerance", "build_graph", "build_pipeline", "diff_graphs", "to_cytoscape", "to_kiali"]
