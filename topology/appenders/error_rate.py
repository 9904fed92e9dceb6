"""Error rate: requests per response class on each edge, and the failing share (Kiali's rule)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from topology import attrs as A
from topology.appenders.base import AppendContext, edge_dicts
from topology.traffic import PROTOCOLS, memo

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
        dicts = edge_dicts(ctx)
        for d in dicts:
            if d[A.PROTOCOL] != "tcp":
                d[A.RATE_BY_CLASS] = {}
                d[A.ERROR_RATE] = d[A.PERCENT_ERR] / 100.0
        if tr.contrib.empty:
            return
        mask, codes, uniq = memo(tr, ("errorRate",), lambda: self._groups(tr))
        sums = np.bincount(codes, weights=tr.contrib["rate"].to_numpy()[mask], minlength=len(uniq)).tolist()
        for (e, cls), r in zip(uniq, sums):
            if r > 0:
                dicts[e][A.RATE_BY_CLASS][cls] = r

    @staticmethod
    def _groups(tr) -> tuple[np.ndarray, np.ndarray, list]:
        """Which (edge, class) each non-TCP contribution row adds to: depends on structure only."""
        c = tr.contrib
        eidx = c["eidx"].to_numpy()
        proto = tr.e_proto[eidx]
        mask = proto != 2
        pairs = pd.DataFrame({"p": proto[mask], "code": c["code"].to_numpy()[mask]}).drop_duplicates()
        classes = {(p, code): code_class(PROTOCOLS[p], code) for p, code in pairs.itertuples(index=False, name=None)}
        cls = [classes[(p, code)] for p, code in zip(proto[mask].tolist(), c["code"].to_numpy()[mask].tolist())]
        codes, uniq = pd.MultiIndex.from_arrays([eidx[mask], np.array(cls, dtype=object)]).factorize()
        return mask, codes, list(uniq)
