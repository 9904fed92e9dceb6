"""Response flags: per edge, the rate of each Envoy response flag (UC, UF, NR, URX ...)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from topology import attrs as A
from topology.appenders.base import AppendContext, edge_dicts
from topology.traffic import memo

NAME = "responseFlags"


def split_flags(flags: str) -> list[str]:
    """Envoy joins several flags with commas ("URX,UF"); "-" means none."""
    return [f for f in flags.split(",") if f and f != "-"]


def edges_with_flags(ctx: AppendContext, wanted: frozenset[str]) -> np.ndarray:
    """Per edge index: whether any contribution with one of the `wanted` flags had a positive rate.

    The same answer as looking through each edge's `responses` (groups of contributions with
    positive sums; rates are never negative), but one bincount instead of a loop per edge.
    """
    tr = ctx.traffic
    n = len(tr.e_src)
    c = tr.contrib
    if c.empty:
        return np.zeros(n, dtype=bool)

    def layout() -> tuple[np.ndarray, np.ndarray]:
        flags = c["flags"].astype(str).to_numpy()
        uniq, inv = np.unique(flags, return_inverse=True)
        hit = np.array([bool(wanted.intersection(split_flags(f))) for f in uniq], dtype=bool)[inv]
        return hit, c["eidx"].to_numpy()[hit]

    hit, eidx = memo(tr, ("flags", wanted), layout)
    if not len(eidx):
        return np.zeros(n, dtype=bool)
    return np.bincount(eidx, weights=c["rate"].to_numpy(dtype=float)[hit], minlength=n) > 0


@dataclass
class ResponseFlagsAppender:
    name: str = NAME
    finalizer: bool = False

    def append(self, graph: nx.MultiDiGraph, ctx: AppendContext) -> None:
        tr = ctx.traffic
        dicts = edge_dicts(ctx)
        for d in dicts:
            d[A.RESPONSE_FLAGS], d[A.FLAGGED_RATE] = {}, 0.0
        c = tr.contrib
        c = c[(c["rate"] > 0).to_numpy() & ~c["flags"].isin(["-", ""]).to_numpy()]
        if c.empty:
            return
        flagged = np.bincount(c["eidx"].to_numpy(), weights=c["rate"].to_numpy(), minlength=len(dicts))
        parts = {f: split_flags(f) for f in set(c["flags"].tolist())}
        rows = [(e, name, r) for e, f, r in zip(c["eidx"].tolist(), c["flags"].tolist(), c["rate"].tolist())
                for name in parts[f]]
        per = pd.DataFrame(rows, columns=["eidx", "flag", "rate"]).groupby(["eidx", "flag"], sort=False)["rate"].sum()
        for (e, name), r in zip(per.index.tolist(), per.to_numpy().tolist()):
            dicts[e][A.RESPONSE_FLAGS][name] = r
        for e in np.flatnonzero(flagged > 0).tolist():
            d = dicts[e]
            d[A.FLAGGED_RATE] = float(flagged[e])
            d[A.RESPONSE_FLAGS] = dict(sorted(d[A.RESPONSE_FLAGS].items(), key=lambda kv: -kv[1]))
