"""Error rate: requests per response class on each edge, and the failing share (Kiali's rule)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import pandas as pd

from topology import attrs as A
from topology.appenders.base import AppendContext, edge_dicts
from topology.traffic import PROTOCOLS

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
        tr = ctx.traffic
        c = tr.contrib
        dicts = edge_dicts(ctx)
        if not c.empty:
            proto = tr.e_proto[c["eidx"].to_numpy()]
            pairs = pd.DataFrame({"p": proto, "code": c["code"].to_numpy()}).drop_duplicates()
            classes = {(p, code): code_class(PROTOCOLS[p], code) for p, code in pairs.itertuples(index=False, name=None)}
            cls = [classes[(p, code)] for p, code in zip(proto.tolist(), c["code"].tolist())]
            g = pd.DataFrame({"eidx": c["eidx"].to_numpy(), "cls": cls, "rate": c["rate"].to_numpy()})
            g = g[(proto != 2) & (g["rate"].to_numpy() > 0)].groupby(["eidx", "cls"], sort=False)["rate"].sum()
            for (e, k), r in zip(g.index.tolist(), g.to_numpy().tolist()):
                dicts[e].setdefault(A.RATE_BY_CLASS, {})[k] = r
        for d in dicts:
            if d[A.PROTOCOL] != "tcp":
                d.setdefault(A.RATE_BY_CLASS, {})
                d[A.ERROR_RATE] = d[A.PERCENT_ERR] / 100.0
