"""The traffic graph (networkx) built from the collector's tables, decorated by appenders."""
from topology.appenders import AppendContext, build_pipeline
from topology.build import build_graph
from topology.options import GraphOptions, NodeSelector, RateModes

__all__ = ["AppendContext", "GraphOptions", "NodeSelector", "RateModes", "build_graph", "build_pipeline"]
