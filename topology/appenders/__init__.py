"""Graph decorators, one per module, run in the order `build_pipeline` defines."""
from topology.appenders.base import AppendContext, Appender
from topology.appenders.pipeline import build_pipeline

__all__ = ["AppendContext", "Appender", "build_pipeline"]
