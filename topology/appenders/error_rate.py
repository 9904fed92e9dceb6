"""Error rate: requests per response class on each edge, and the failing share (Kiali's rule)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from topology import attrs as A
from topology.appenders.base import AppendContext

NAME = "errorRate"


def code_class(protocol: str, code: str) -> str:
    """2xx/3xx/4xx/5xx for HTTP, "-" for no response, "ok"/"err" for gRPC status codes."""
    if code == "-":
        return "-"
    if protocol == "grpc" and not (len(code) == 3 and code[0] in "45"):
        return "ok" if code == "0" else "err"
    return f"{code[:1]}xx" if code[:1].isdigit() else code


@dataclass
class ErrorRateAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        for _, _, d in graph.edges(data=True):
            if d[A.PROTOCOL] == "tcp":
                continue
            by_class: dict[str, float] = {}
            for code, detail in d[A.RESPONSES].items():
                total = sum(detail["flags"].values()) if detail["flags"] else sum(detail["hosts"].values())
                cls = code_class(d[A.PROTOCOL], code)
                by_class[cls] = by_class.get(cls, 0.0) + total
            d[A.RATE_BY_CLASS] = by_class
            d[A.ERROR_RATE] = d[A.PERCENT_ERR] / 100.0
