"""Selected traffic as integer tables: contributions -> edges (injection, service reduction), and the
mapping of any other series (buckets, bytes, mTLS labels) onto the same edges for appenders.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from collector import schema
from topology import model
from topology.nodes import DestInfo, NodeTable, resolve_dests, resolve_sources, tuple_ids
from topology.options import GraphOptions
from topology.series import TCP_METRICS, metric_protocols, normalize, protocol_and_code, selection_parts

PROTOCOLS = ("http", "grpc", "tcp")
_PROTO_CODE = {p: i for i, p in enumerate(PROTOCOLS)}


@dataclass
class Traffic:
    """Everything the graph is built from, kept so appenders can map more series onto its edges."""

    options: GraphOptions
    table: NodeTable
    rows: pd.DataFrame  # the normalized frame (all metrics)
    src: np.ndarray  # node index per row (-1: unusable)
    dest: DestInfo
    # one row per (contribution, edge it feeds): eidx, rate, code, flags, host
    contrib: pd.DataFrame
    # unique edges: source/target node index and protocol code, indexed by eidx
    e_src: np.ndarray
    e_dst: np.ndarray
    e_proto: np.ndarray
    dest_services: dict[int, set] = field(default_factory=dict)
    injected: set[int] = field(default_factory=set)
    feeds: pd.DataFrame | None = None  # service graph: (svc, wl) pairs a service reaches
    roots: set[int] = field(default_factory=set)
    skipped: int = 0
    on_edges: dict = field(default_factory=dict)  # memo of rows_on_edges (depends on structure only)
    shown: np.ndarray | None = None  # per edge index: drawn (False: idle edge hidden); set by the builder

    @property
    def n_nodes(self) -> int:
        return len(self.table.keys)

    def edge_keys(self, src: np.ndarray, dst: np.ndarray, proto: np.ndarray) -> np.ndarray:
        return (src.astype(np.int64) * (self.n_nodes + 1) + dst.astype(np.int64)) * 4 + proto.astype(np.int64)

    def nodes_in_graph(self) -> np.ndarray:
        m = self.shown if self.shown is not None else np.ones(len(self.e_src), dtype=bool)
        return np.unique(np.concatenate([self.e_src[m], self.e_dst[m]]))


@dataclass
class Caches:
    """Per-request memo: label tuple -> node, and the last frame's structure (reused by refreshes)."""

    table: NodeTable | None = None
    sources: dict = field(default_factory=dict)
    dests: dict = field(default_factory=dict)
    structure: Structure | None = None


@dataclass
class Structure:
    """What a frame's labels alone decide: reused when the next window has the same series."""

    signature: list
    traffic: Traffic
    sel: np.ndarray  # selected rows (query order)
    group: np.ndarray  # per selected row: its (fingerprint, query) group
    kept: np.ndarray  # group ids that became contributions, in contribution order
    mult: np.ndarray  # per contribution edge row: its contribution
    skipped_structural: int = 0  # rows dropped for their labels (rates can add more)


def _signature(rows: pd.DataFrame) -> list:
    sig: list = [len(rows)]
    for c in rows.columns:
        if c == "rate":
            continue
        if c == "le":
            sig.append(rows[c].to_numpy())
        else:
            sig.append((rows[c].cat.codes.to_numpy(), rows[c].cat.categories))
    return sig


def _same(a: list, b: list) -> bool:
    if a[0] != b[0]:
        return False
    for x, y in zip(a[1:], b[1:]):
        if isinstance(x, tuple):
            if not (np.array_equal(x[0], y[0]) and x[1].equals(y[1])):
                return False
        elif not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def _clean_rates(rows: pd.DataFrame, sel: np.ndarray) -> tuple[np.ndarray, int]:
    """Selected rates with NaN/inf/negative values counted and read as 0 (malformed telemetry)."""
    rate = rows["rate"].to_numpy()[sel]
    bad = ~np.isfinite(rate) | (rate < 0)
    return np.where(bad, 0.0, rate), int(bad.sum())


def _refreshed(st: Structure, rows: pd.DataFrame) -> Traffic:
    rate, bad = _clean_rates(rows, st.sel)
    sums = np.bincount(st.group, weights=rate, minlength=int(st.group.max(initial=-1)) + 1)
    c = st.traffic.contrib
    contrib = pd.DataFrame({"eidx": c["eidx"].to_numpy(), "rate": sums[st.kept][st.mult], "code": c["code"].to_numpy(),
                            "flags": c["flags"].to_numpy(), "host": c["host"].to_numpy()})
    base = st.traffic
    return Traffic(options=base.options, table=base.table, rows=rows, src=base.src, dest=base.dest, contrib=contrib,
                   e_src=base.e_src, e_dst=base.e_dst, e_proto=base.e_proto, dest_services=base.dest_services,
                   injected=base.injected, feeds=base.feeds, roots=base.roots,
                   skipped=st.skipped_structural + bad, on_edges=base.on_edges)


def build_traffic(frame: pd.DataFrame, opts: GraphOptions, caches: Caches | None = None) -> Traffic:
    missing = [c for c in (schema.METRIC, schema.RATE) if c not in frame.columns]
    if missing:
        raise ValueError(f"rate frame lacks column(s) {', '.join(missing)}: expected the Istio rate frame "
                         f"(Istio label columns, {schema.METRIC}, {schema.LE}, {schema.RATE})")
    caches = caches or Caches()
    if caches.table is None or caches.table.graph_type != opts.graph_type:
        caches.table, caches.sources, caches.dests = NodeTable(opts.graph_type), {}, {}
        caches.structure = None
    table = caches.table
    rows = normalize(frame)
    signature = _signature(rows)
    if caches.structure is not None and caches.structure.traffic.options is opts and _same(caches.structure.signature, signature):
        return _refreshed(caches.structure, rows)
    src, src_tid = resolve_sources(rows, table, caches.sources)
    dest = resolve_dests(rows, table, opts.inject, opts.istio_namespace, caches.dests)
    proto, code, flags = protocol_and_code(rows, metric_protocols(opts))
    sel, query, skipped = _select(rows, opts, src, dest, proto, src_tid)
    contrib, group, kept = _dedup(rows, sel, query, src, src_tid, dest, proto, code, flags)
    bad_rates = contrib.pop("bad")
    skipped += bad_rates
    injected = set(np.unique(contrib["svc"][contrib["svc"] >= 0]).tolist())
    dest_services = _dest_services(contrib, dest)
    s, d, pcode, mult = expand(contrib["src"], contrib["dst"], contrib["svc"], contrib["proto"])
    types = np.array(table.types + [""], dtype=object)
    feeds, roots = None, set()
    if opts.graph_type == model.SERVICE:
        s, d, pcode, mult, feeds, roots = reduce_to_services(s, d, pcode, mult, types)
    tr = Traffic(options=opts, table=table, rows=rows, src=src, dest=dest, contrib=pd.DataFrame(),
                 e_src=np.empty(0, dtype=np.int64), e_dst=np.empty(0, dtype=np.int64), e_proto=np.empty(0, dtype=np.int64),
                 dest_services=dest_services, injected=injected, feeds=feeds, roots=roots, skipped=skipped)
    keys = tr.edge_keys(s, d, pcode)
    eidx, _ = pd.factorize(keys)
    first = np.unique(eidx, return_index=True)[1] if len(eidx) else np.empty(0, dtype=np.int64)
    tr.e_src, tr.e_dst, tr.e_proto = s[first], d[first], pcode[first]
    tr.contrib = pd.DataFrame({"eidx": eidx, "rate": contrib["rate"][mult], "code": contrib["code"][mult],
                               "flags": contrib["flags"][mult], "host": contrib["host"][mult]})
    caches.structure = Structure(signature, tr, sel, group, kept, mult, skipped - bad_rates)
    return tr


def _select(rows: pd.DataFrame, opts: GraphOptions, src: np.ndarray, dest: DestInfo,
            proto: np.ndarray, src_tid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows Kiali's queries would return, in query order, that can be used; and how many could not."""
    parts = selection_parts(rows, opts)
    sel = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    query = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]) if parts else np.empty(0, dtype=np.int64)
    is_main = pd.notna(proto[sel]) if len(sel) else np.empty(0, dtype=bool)
    sel, query = sel[is_main], query[is_main]
    usable = (src[sel] >= 0) & (dest.node[sel] >= 0)
    wanted = np.ones(len(sel), dtype=bool)
    is_req = (rows["metric"] == schema.ISTIO_REQUESTS_TOTAL).to_numpy()[sel]
    for p, mode in (("http", opts.rates.http), ("grpc", opts.rates.grpc)):
        if mode != "requests":
            wanted &= ~(is_req & (proto[sel] == p))
    skipped = len(np.unique(sel[~usable]))
    sel, query = sel[usable & wanted], query[usable & wanted]
    if opts.one_reporter and len(sel):
        keep = _one_reporter(rows, sel, src if src_tid is None else src_tid, proto)
        sel, query = sel[keep], query[keep]
    return sel, query, skipped


def _one_reporter(rows: pd.DataFrame, sel: np.ndarray, src: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """Mask of selected rows to keep so each request is counted once, by one side.

    Per (source identity, destination host, protocol): the source-reported series when the caller
    reports that traffic (its sidecar saw every request it sent, including those that never
    reached the server: client-side faults, connection failures, its own timeouts, each retry
    sequence once), else the destination-reported ones (callers outside the mesh).
    """
    rep = rows["reporter"].astype(object).to_numpy()[sel]
    host = rows["d_host"].cat.codes.to_numpy().astype(np.int64)[sel] + 1
    pcode = pd.Categorical(proto[sel], categories=list(PROTOCOLS)).codes.astype(np.int64)
    key, _ = pd.factorize(pd.Series((src[sel].astype(np.int64) * (host.max(initial=0) + 1) + host) * 4 + pcode))
    has_source = np.zeros(int(key.max(initial=-1)) + 1, dtype=bool)
    has_source[key[rep == "source"]] = True
    return ~((rep == "destination") & has_source[key])


def _dest_services(contrib: dict, dest: DestInfo) -> dict[int, set]:
    """Services each destination (and injected service node) was asked for, from the selected traffic."""
    out: dict[int, set] = {}
    for node_idx, svc_idx, tid in set(zip(contrib["dst"].tolist(), contrib["svc"].tolist(), contrib["dtid"].tolist())):
        triple = dest.triples[tid]
        if triple is not None:
            out.setdefault(node_idx, set()).add(triple)
            if svc_idx >= 0:
                out.setdefault(svc_idx, set()).add(triple)
    return out


def _dedup(rows, sel, query, src, src_tid, dest, proto, code, flags) -> tuple[dict, np.ndarray, np.ndarray]:
    """Sum within a query what differs only in labels Kiali does not group on; count each contribution once.

    A contribution is keyed on the full source and destination label tuples (not on
    the nodes they map to): two versions merged into one app node are two contributions.
    """
    metric_codes = rows["metric"].cat.codes.to_numpy()[sel]
    fp = pd.DataFrame({"m": metric_codes, "s": src_tid[sel], "d": dest.tuple_id[sel],
                       "p": pd.Categorical(proto[sel]), "c": pd.Categorical(code[sel]), "f": pd.Categorical(flags[sel])})
    for c in ("m", "s", "d"):
        fp[c] = pd.Categorical(fp[c])
    fp_id, _ = tuple_ids(fp, ["m", "s", "d", "p", "c", "f"])
    group, _ = pd.factorize(fp_id * (int(query.max(initial=0)) + 1) + query)
    rate, bad = _clean_rates(rows, sel)
    sums = np.bincount(group, weights=rate) if len(group) else np.empty(0)
    g_first = np.unique(group, return_index=True)[1] if len(group) else np.empty(0, dtype=np.int64)
    # groups are numbered in order of first appearance, i.e. query order: keep each fingerprint's first
    keep = ~pd.Series(fp_id[g_first]).duplicated().to_numpy()
    r = sel[g_first][keep]
    host = rows["d_host"].astype(object).to_numpy()[r]
    out = {"src": src[r], "dst": dest.node[r], "svc": dest.service[r], "dtid": dest.tuple_id[r],
           "proto": np.array([_PROTO_CODE[p] for p in proto[r]], dtype=np.int64), "code": code[r], "flags": flags[r],
           "host": np.where(pd.isna(host), "", host).astype(object), "rate": sums[keep], "row": r, "bad": bad}
    return out, group, group[g_first][keep]


def expand(src: np.ndarray, dst: np.ndarray, svc: np.ndarray, proto: np.ndarray):
    """Series -> edges: an injected service node splits a->b into a->svc and svc->b.

    Returns source, target, protocol and, per edge row, the index of the series row it came from.
    """
    idx = np.arange(len(src))
    inj = svc >= 0
    s = np.concatenate([src[~inj], src[inj], svc[inj]])
    d = np.concatenate([dst[~inj], svc[inj], dst[inj]])
    p = np.concatenate([proto[~inj], proto[inj], proto[inj]])
    m = np.concatenate([idx[~inj], idx[inj], idx[inj]])
    return s, d, p, m


def reduce_to_services(s, d, p, m, types, feeds: pd.DataFrame | None = None, roots: set | None = None):
    """Service graph: service->service edges through each service's workloads; root callers keep their edges."""
    st, dt = types[s], types[d]
    src_svc, dst_svc = st == model.NT_SERVICE, dt == model.NT_SERVICE
    if feeds is None:
        feeds = pd.DataFrame({"svc": s[src_svc & ~dst_svc], "wl": d[src_svc & ~dst_svc]}).drop_duplicates()
        has_in = set(d.tolist())
        roots = {n for n in set(s.tolist()) if n not in has_in and types[n] != model.NT_SERVICE}
    onward = ~src_svc & dst_svc
    on = pd.DataFrame({"wl": s[onward], "d": d[onward], "p": p[onward], "m": m[onward]})
    via = on.merge(feeds, on="wl", how="inner")
    from_root = on[on["wl"].isin(list(roots))]
    s2 = np.concatenate([via["svc"].to_numpy(), from_root["wl"].to_numpy()]).astype(np.int64)
    d2 = np.concatenate([via["d"].to_numpy(), from_root["d"].to_numpy()]).astype(np.int64)
    p2 = np.concatenate([via["p"].to_numpy(), from_root["p"].to_numpy()]).astype(np.int64)
    m2 = np.concatenate([via["m"].to_numpy(), from_root["m"].to_numpy()]).astype(np.int64)
    return s2, d2, p2, m2, feeds, roots


def rows_on_edges(tr: Traffic, metrics: list[str], reporter: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, edge index) for series of `metrics` that land on the graph's edges.

    Uses the graph's own node, injection and service-graph rules; a row feeding two
    edges (an injected service) appears twice; rows on no graph edge are dropped.
    """
    memo = (tuple(metrics), reporter)
    if memo in tr.on_edges:
        return tr.on_edges[memo]
    tr.on_edges[memo] = result = _rows_on_edges(tr, metrics, reporter)
    return result


def _rows_on_edges(tr: Traffic, metrics: list[str], reporter: str | None) -> tuple[np.ndarray, np.ndarray]:
    rows = tr.rows
    mask = rows["metric"].isin(metrics).to_numpy().copy()
    if reporter is not None:
        mask &= (rows["reporter"] == reporter).to_numpy()
    r = np.flatnonzero(mask & (tr.src >= 0) & (tr.dest.node >= 0))
    if not len(r) or not len(tr.e_src):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tcp = rows["metric"].isin(list(TCP_METRICS)).to_numpy()[r]
    rp = rows["req_proto"].astype(object).to_numpy()[r]
    proto = np.where(tcp, 2, np.where(rp == "grpc", 1, 0)).astype(np.int64)
    s, d, p, m = expand(tr.src[r], tr.dest.node[r], tr.dest.service[r], proto)
    if tr.options.graph_type == model.SERVICE:
        types = np.array(tr.table.types + [""], dtype=object)
        s, d, p, m, _, _ = reduce_to_services(s, d, p, m, types, tr.feeds, tr.roots)
    known = pd.Index(tr.edge_keys(tr.e_src, tr.e_dst, tr.e_proto))
    eidx = known.get_indexer(tr.edge_keys(s, d, p))
    hit = eidx >= 0
    return r[m[hit]], eidx[hit]


def memo(tr: Traffic, key: tuple, compute):
    """A value that depends only on the traffic's structure, kept across refreshes with the same series."""
    if key not in tr.on_edges:
        tr.on_edges[key] = compute()
    return tr.on_edges[key]
