"""The appender contract: a dataclass of options with `name`, `finalizer` and `append(graph, ctx)`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import networkx as nx
import pandas as pd

from topology.config_index import index_for


@dataclass
class AppendContext:
    """Everything an appender may read; appenders never fetch data themselves.

    `rates` is the raw Istio rate frame (histogram buckets, security labels...),
    `traffic` the selected contributions and their edges, `snapshot` the config
    model (or None), `health` a HealthConfig (or None for Kiali's defaults).
    `cache` lets one appender reuse what another computed (e.g. series -> edge).
    `config` is the snapshot's `ConfigIndex` (built once per snapshot): appenders
    ask it, never scan the snapshot per node.
    """

    rates: pd.DataFrame
    options: Any  # topology.options.GraphOptions
    traffic: Any  # topology.traffic.Traffic
    snapshot: Any = None
    health: Any = None
    cache: dict[str, Any] = field(default_factory=dict)
    config: Any = None  # topology.config_index.ConfigIndex of `snapshot`

    def __post_init__(self) -> None:
        if self.config is None and self.snapshot is not None:
            self.config = index_for(self.snapshot)


class Appender(Protocol):
    name: str
    finalizer: bool

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None: ...


def edge_dicts(ctx: AppendContext) -> list[dict]:
    """The graph's edge attribute dicts by edge index (the order of ctx.traffic.e_src/e_dst/e_proto).

    After deadNode prunes, the dicts of removed edges stay in this list, detached:
    writing to them is harmless, but look nodes up only if they are still in the graph.
    """
    return ctx.cache["edge_dicts"]
