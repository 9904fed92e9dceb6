"""Response flags: per edge, the rate of each Envoy response flag (UC, UF, NR, URX ...)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology.appenders.base import AppendContext

NAME = "responseFlags"


def split_flags(flags: str) -> list[str]:
    """Envoy joins several flags with commas ("URX,UF"); "-" means none."""
    return [f for f in flags.split(",") if f and f != "-"]


@dataclass
class ResponseFlagsAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        for _, _, d in graph.edges(data=True):
            per_flag: dict[str, float] = {}
            flagged = 0.0
            for detail in d[A.RESPONSES].values():
                for flags, rate in detail["flags"].items():
                    names = split_flags(flags)
                    if names:
                        flagged += rate
                    for f in names:
                        per_flag[f] = per_flag.get(f, 0.0) + rate
            d[A.RESPONSE_FLAGS] = dict(sorted(per_flag.items(), key=lambda kv: -kv[1]))
            d[A.FLAGGED_RATE] = flagged
