"""Golden-metric series of one graph element, computed at every point by topology's own code.

The side panel must show what the graph shows: the same node and edge resolution, the same
Kiali selection and de-duplication, the same error share (HTTP 4xx + 5xx + no response, gRPC
status != 0 + no response) and the same latency rule (caller-reported buckets). So each
point's rate frame goes through `topology.traffic.build_traffic` with the graph's options,
is cut down to the element's edges, and those edges get the graph's own edge attributes
(`topology.assemble.edge_attrs`), node rates (`node_rates`) and response-time appender;
`dashboard.elements.from_topology` turns them into the rps and error % the UI shows.
The Service page's per-version series (`service_series`) are the same node rates, summed over
the service's nodes of each version. Nothing here builds a networkx graph, and no number is
derived a second time.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from collector import schema as s
from topology import attrs as A
from topology import model
from topology.appenders.base import AppendContext
from topology.appenders.response_time import BUCKET, ResponseTimeAppender
from topology.assemble import edge_attrs, edge_sums, node_rates
from topology.options import GraphOptions
from topology.quantile import quantiles
from topology.traffic import PROTOCOLS, Caches, Traffic, build_traffic, rows_on_edges

QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
_LATENCY = {0.5: A.LATENCY_P50, 0.95: A.LATENCY_P95, 0.99: A.LATENCY_P99}


def graph_options(graph_type: str, namespaces: list[str] | None, window_s: float) -> GraphOptions:
    """The options `topology.build_graph` uses for a plain graph request (the dashboard's)."""
    return GraphOptions(graph_type=graph_type, namespaces=list(namespaces) if namespaces else None, window_s=window_s)


def element_series(frames: list[tuple[float, pd.DataFrame]], element: dict[str, Any],
                   options: GraphOptions) -> dict[str, list]:
    """`{"t", "rps", "error_pct", "p50", "p95", "p99"}` of a node (its inbound traffic) or an edge.

    `frames` are (time, rate frame) pairs, best prepared by `series_frames` (once for every
    element of one graph). `element` is the dashboard record of the element (an edge has
    source, target and protocol). One `Caches` serves every frame, so labels resolve to
    nodes once and frames with the same series reuse the selection.
    """
    from dashboard.elements import from_topology

    caches = Caches()
    memos: list[tuple[dict, dict]] = []
    out = _empty_series()
    is_edge = "source" in element
    for t, frame in frames:
        rps, err, lat = 0.0, 0.0, {}
        if len(frame):
            tr = build_traffic(frame, options, caches)
            sub = _only_edges(tr, _edges_of(tr, element), memos)
            if len(sub.e_src):
                sums = edge_sums(sub)
                if is_edge:
                    d = edge_attrs(sub, sums)[0]
                    ResponseTimeAppender().append(nx.MultiDiGraph(), _context(frame, options, sub, [d]))
                    rec = from_topology([{"data": {"id": element["id"], "source": element["source"],
                                                   "target": element["target"], **d}}])[1][0]
                    rps, err = rec["rps"], rec["error_pct"]
                    lat = {q: d.get(attr) for q, attr in _LATENCY.items()}
                else:
                    node = sub.table.ids.index(element["id"])
                    rates = node_rates(sub, sums).get(node, {})
                    rec = from_topology([{"data": {"id": element["id"], "rates": rates}}])[0][0]
                    rps, err = rec["rps_in"], rec["error_pct"]
                    lat = _inbound_latency(sub)
        _append_point(out, t, rps, err, lat)
    return out


def _empty_series() -> dict[str, list]:
    return {"t": [], "rps": [], "error_pct": [], "p50": [], "p95": [], "p99": []}


def _append_point(series: dict[str, list], t: float, rps: float, error_pct: float, latency: dict[float, Any]) -> None:
    """One point of a series, rounded the way the UI shows it (no latency = None)."""
    series["t"].append(round(t, 3))
    series["rps"].append(round(float(rps), 4))
    series["error_pct"].append(round(float(error_pct), 2))
    for q, key in QUANTILES:
        v = latency.get(q)
        series[key].append(None if v is None or math.isnan(v) else round(float(v), 2))


def _edges_of(tr: Traffic, element: dict[str, Any]) -> np.ndarray:
    """Mask of the traffic's edges that are the element (an edge) or end at it (a node)."""
    index = {nid: i for i, nid in enumerate(tr.table.ids)}
    if "source" in element:
        src, dst = index.get(element["source"], -1), index.get(element["target"], -1)
        protocol = element.get("protocol", "http")
        proto = PROTOCOLS.index(protocol) if protocol in PROTOCOLS else -1
        return (tr.e_src == src) & (tr.e_dst == dst) & (tr.e_proto == proto)
    return tr.e_dst == index.get(element["id"], -1)


def series_frames(frames: list[tuple[float, pd.DataFrame]]) -> list[tuple[float, pd.DataFrame]]:
    """The points before the last given one row layout (`aligned`); the last (the graph's own frame) as it is."""
    if len(frames) < 2:
        return list(frames)
    earlier = aligned([f for _, f in frames[:-1]])
    return [(t, f) for (t, _), f in zip(frames[:-1], earlier)] + [frames[-1]]


def aligned(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The frames with one row layout: every series of any of them, in the same order, rate 0 where absent.

    Same rows make `build_traffic` resolve, select and de-duplicate once and only re-sum
    the rates at the other points (its refresh path), which is what keeps a 20-point
    series of a big mesh near the cost of one graph. A series absent at a point is a
    zero-rate series there, which is what Prometheus' `> 0` drops.
    """
    present = [i for i, f in enumerate(frames) if len(f)]
    if len(present) < 2:
        return list(frames)
    keys = [c for c in frames[present[0]].columns if c != s.RATE]
    stacked = pd.concat([frames[i] for i in present], ignore_index=True)
    point = np.repeat(np.arange(len(present)), [len(frames[i]) for i in present])
    for c in keys:
        if c != s.LE:
            stacked[c] = _as_strings([frames[i][c] if c in frames[i] else None for i in present],
                                     [len(frames[i]) for i in present])
    series = stacked.groupby(keys, dropna=False, observed=True, sort=False).ngroup().to_numpy()
    first = np.unique(series, return_index=True)[1]
    columns = {c: stacked[c].array.take(first) for c in keys}
    rates = np.zeros((len(first), len(present)))
    np.add.at(rates, (series, point), stacked[s.RATE].to_numpy(dtype=float))
    out = list(frames)
    for j, i in enumerate(present):
        out[i] = pd.DataFrame({**columns, s.RATE: rates[:, j]})
    return out


def _as_strings(columns: list[pd.Series | None], lengths: list[int]) -> pd.Categorical:
    """The columns one after the other as a categorical of their values as strings (missing stays missing).

    What `astype(str).astype("category")` of the concatenation gives, but only each column's
    distinct values are converted: casting every row of a big mesh's 20 frames was most of
    a series' cost. A column a frame lacks (None) is missing there.
    """
    parts: list[tuple[np.ndarray, pd.Series | None]] = []
    for col, n in zip(columns, lengths):
        if col is None:
            parts.append((np.full(n, -1, dtype=np.int64), None))
            continue
        codes, uniq = pd.factorize(col, use_na_sentinel=True)
        parts.append((codes, pd.Series(np.asarray(uniq, dtype=object), dtype=object).astype(str)))
    names = [u for _, u in parts if u is not None and len(u)]
    cats = pd.Index(pd.concat(names, ignore_index=True).dropna().unique() if names else [], dtype="str").sort_values()
    out = []
    for codes, uniq in parts:
        if uniq is None or not len(uniq):
            out.append(np.full(len(codes), -1, dtype=np.int64))
            continue
        where = cats.get_indexer(uniq.to_numpy(dtype=object))
        out.append(np.where(codes >= 0, where[np.maximum(codes, 0)], -1))
    return pd.Categorical.from_codes(np.concatenate(out), categories=cats)


def _only_edges(tr: Traffic, keep: np.ndarray, memos: list[tuple[dict, dict]]) -> Traffic:
    """The same traffic restricted to some edges (renumbered).

    The cut's structure memos are kept per structure of the whole (`tr.on_edges` is shared
    by the refreshes of one structure), so points with the same series reuse them.
    """
    on_edges = next((mine for theirs, mine in memos if theirs is tr.on_edges), None)
    if on_edges is None:
        on_edges = {}
        memos.append((tr.on_edges, on_edges))
    renumber = np.full(len(keep), -1, dtype=np.int64)
    renumber[keep] = np.arange(int(keep.sum()))
    c = tr.contrib
    if len(c):
        c = c[keep[c["eidx"].to_numpy()]].copy()
        c["eidx"] = renumber[c["eidx"].to_numpy()]
    return dataclasses.replace(tr, contrib=c.reset_index(drop=True), e_src=tr.e_src[keep], e_dst=tr.e_dst[keep],
                               e_proto=tr.e_proto[keep], on_edges=on_edges, shown=None)


def _context(frame: pd.DataFrame, options: GraphOptions, tr: Traffic, dicts: list[dict]) -> AppendContext:
    ctx = AppendContext(rates=frame, options=options, traffic=tr)
    ctx.cache["edge_dicts"] = dicts
    return ctx


def _inbound_latency(tr: Traffic) -> dict[float, float]:
    """p50/p95/p99 over all of a node's inbound edges: caller-reported buckets, else the destination's
    (the response-time appender's rule per edge, summed over the edges before the quantile)."""
    r_src, e_src = rows_on_edges(tr, [BUCKET], "source")
    r_dst, e_dst = rows_on_edges(tr, [BUCKET], "destination")
    rows = np.concatenate([r_src, r_dst[~np.isin(e_dst, e_src)]])
    if not len(rows):
        return {}
    le = tr.rows["le"].to_numpy()[rows]
    groups, values = quantiles(np.zeros(len(rows), dtype=np.int64), le, tr.rows["rate"].to_numpy()[rows],
                               tuple(q for q, _ in QUANTILES))
    return {q: float(v[0]) for q, v in values.items()} if len(groups) else {}


def service_series(frames: list[tuple[float, pd.DataFrame]], name: str, namespace: str | None,
                   options: GraphOptions) -> dict[str, dict[str, dict[str, list]]]:
    """`{"inbound": {version: series}, "outbound": {version: series}}` of one service (the Service page).

    The service's nodes are the graph's nodes its requests reached (their `dest_services`
    name it) plus the workloads of its app; inbound is the traffic into the nodes of a
    version, outbound the traffic out of them. Both are the graph's own node rates
    (`node_rates`; outbound as the inbound of the reversed edges, so it is classified by
    the same code) turned into rps and error % by `from_topology`, the way the graph and
    the side panel turn a node's. Versions without traffic on a side at any point are left out.
    """
    caches = Caches()
    memos: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    points: list[dict[tuple[str, str], dict[str, Any]]] = []
    for _, frame in frames:
        points.append(_service_point(build_traffic(frame, options, caches), name, namespace, memos)
                      if len(frame) else {})
    out: dict[str, dict[str, dict[str, list]]] = {"inbound": {}, "outbound": {}}
    for side, version in sorted({k for p in points for k, v in p.items() if v["rps"] > 0}):
        series = _empty_series()
        for (t, _), p in zip(frames, points):
            v = p.get((side, version), {"rps": 0.0, "error_pct": 0.0, "latency": {}})
            _append_point(series, t, v["rps"], v["error_pct"], v["latency"])
        out[side][version] = series
    return out


def _service_point(tr: Traffic, name: str, namespace: str | None,
                   memos: dict[tuple[str, str], list[tuple[dict, dict]]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(side, version) -> rps, error % and latency of one service at one point."""
    from dashboard.elements import from_topology

    fields, types = tr.table.fields, tr.table.types
    mine = [i for i in range(tr.n_nodes)
            if any(t[2] == name and (namespace is None or t[1] == namespace) for t in tr.dest_services.get(i, ()))
            or (types[i] == model.NT_WORKLOAD and fields[i].get(A.APP) == name
                and (namespace is None or fields[i].get(A.NAMESPACE) == namespace))]
    if not mine or not len(tr.e_src):
        return {}
    sums = edge_sums(tr)
    reversed_edges = dataclasses.replace(tr, e_src=tr.e_dst, e_dst=tr.e_src)
    by_side = {"inbound": (node_rates(tr, sums), tr.e_dst), "outbound": (node_rates(reversed_edges, sums), tr.e_src)}
    versions: dict[str, list[int]] = {}
    for i in mine:
        versions.setdefault(fields[i].get(A.VERSION) or model.UNKNOWN, []).append(i)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for side, (rates, ends) in by_side.items():
        for version, nodes in versions.items():
            merged: dict[str, float] = {}
            for i in nodes:
                for key, r in rates.get(i, {}).items():
                    merged[key] = merged.get(key, 0.0) + r
            rec = from_topology([{"data": {"id": version, "rates": merged}}])[0][0]
            if not rec["rps_in"]:
                continue
            sub = _only_edges(tr, np.isin(ends, nodes), memos.setdefault((side, version), []))
            out[(side, version)] = {"rps": rec["rps_in"], "error_pct": rec["error_pct"], "latency": _inbound_latency(sub)}
    return out
