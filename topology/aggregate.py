"""Collapse a large graph into namespaces (and, within one, apps) with rolled-up numbers.

A 10,000-workload hairball answers no question; 50 namespace nodes coloured by their worst
member do. The transformation runs over graph records (the node/edge dicts the API serves,
documented in `dashboard/query.py`: id, type, namespace, app, name, health, rps_in, rps_out,
error_pct; edges: id, source, target, protocol, rps, error_pct, p50/p95/p99_ms, mtls_pct,
mtls_state, health, codes, flags), so it applies alike to live graphs, past windows and saved
snapshots, and the invariants are checkable without a browser:

- every request is counted once: aggregate edges plus each aggregate's internal rate add up to
  the expanded graph's rate, per protocol;
- an aggregate is as unhealthy as its worst member (with counts per health state);
- ids are derived from names (`agg:ns:<namespace>`, `agg:app:<namespace>/<app>`), never from
  positions or order, so expanding one aggregate leaves every other id, and position, as it was.

Percentiles do not add: an aggregate edge's p50/p95/p99 is its worst member edge's (a bound),
said so in its `health_reason`-style fields.

How it stays cheap at 10,000 workloads / 34,000 edges: each field is read out of the records
once, as a column (`map(dict.get, ...)` runs in C: no Python step per record); drawn ids become
integer codes numbered in name order, so every roll-up is a group-by over one integer key whose
groups come out in the order a group-by over the names would give; the codes and flags dicts are
flattened with `itertools.chain` into long (group, name, rate) columns. Sums stay pandas
group-by sums (compensated, so the figures are the ones the string-keyed version gave, bit for
bit: tests/topology/test_aggregate.py holds it equal to that version over random graphs). Only
the (few) aggregate records are built in Python.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from typing import Any

import numpy as np
import pandas as pd

NAMESPACE = "namespace"
APP = "app"
LEVELS = (NAMESPACE, APP)
AGGREGATE = "aggregate"  # node type of a collapsed group
HEALTH_RANK = {"na": 0, "idle": 1, "healthy": 2, "degraded": 3, "failing": 4}
_RANK_HEALTH = {v: k for k, v in HEALTH_RANK.items()}
_HEALTH_OF_RANK = np.array([_RANK_HEALTH[r] for r in range(len(_RANK_HEALTH))], dtype=object)
WORST_SHOWN = 5  # members listed as an aggregate's worst offenders
_NO_NAMESPACE = ("", "unknown")  # the unknown source, egress clusters: left as they are
_NOT_GROUPED = ("box", "config")  # compound boxes and blamed config objects (topology.focus) are not traffic ends


def namespace_id(namespace: str) -> str:
    return f"agg:ns:{namespace}"


def app_id(namespace: str, app: str) -> str:
    return f"agg:app:{namespace}/{app}"


def edge_agg_id(source: str, target: str, protocol: str) -> str:
    return f"agg:{source}>{target}:{protocol}"


def is_aggregate_id(node_id: str) -> bool:
    return node_id.startswith("agg:ns:") or node_id.startswith("agg:app:")


@dataclass
class Aggregated:
    """The collapsed graph and how it maps onto the expanded one."""

    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    group_of: dict[str, str]  # every input node id -> the id it is drawn as (itself when not collapsed)
    internal: dict[str, dict[str, float]] = field(default_factory=dict)  # aggregate -> protocol -> rate inside it

    def members(self, aggregate: str) -> list[str]:
        return [n for n, g in self.group_of.items() if g == aggregate and n != aggregate]


def _implied(expand: Iterable[str]) -> set[str]:
    """Expanding an app implies its namespace is open (an app sits inside it)."""
    out = set(expand)
    for e in list(out):
        if e.startswith("agg:app:"):
            out.add(namespace_id(e[len("agg:app:"):].split("/", 1)[0]))
    return out


# --- columns out of records ------------------------------------------------------------------------------------

def _columns(records: list[dict[str, Any]], keys: Iterable[str]) -> dict[str, np.ndarray]:
    """Fields of every record as object arrays (NaN or None where absent), in one pass over the records.

    One pass, not one per field: 34,000 edge dicts are larger than the CPU's caches, and a pass per field
    re-read each dict from memory once per field (a third of the roll-up's time). `dtype=object` keeps
    the values as they are (pandas' own column typing would cost as much again).
    """
    frame = pd.DataFrame(records, columns=list(keys), dtype=object)
    return {k: frame[k].to_numpy() for k in frame.columns}


def _text(values: np.ndarray, default: str = "") -> np.ndarray:
    """Missing values (None, NaN) as `default`, anything else as its str(): what `fillna(default).astype(str)` gives."""
    out = values.copy()
    out[pd.isna(out)] = default
    return _str(out)


def _str(values: np.ndarray) -> np.ndarray:
    """Every value as str (in place): ints, bools... in hand-made records are rare, so converted one by one."""
    if pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty"):  # a C scan: the usual case
        return values
    odd = ~np.fromiter(map(isinstance, values, repeat(str)), dtype=bool, count=len(values))
    values[odd] = [str(v) for v in values[odd]]
    return values


_NUMERIC = frozenset({"floating", "integer", "mixed-integer-float", "empty"})


def _number(values: np.ndarray) -> np.ndarray:
    """Numbers as float (NaN where missing or not a number): `pd.to_numeric(errors="coerce")`'s reading,
    by a plain cast when every value is a number already (the usual case: a tenth of the cost)."""
    if pd.api.types.infer_dtype(values, skipna=True) in _NUMERIC:
        return values.astype(float)
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=float)


def _isin(values: np.ndarray, wanted: Iterable[Any]) -> np.ndarray:
    """Hash-based membership (numpy's `isin` on object arrays compares every pair)."""
    return pd.Index(values, dtype=object).isin(list(wanted))


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each wanted id is in `ids` (-1: absent); a repeated id resolves to its last record, as in `group_of`.

    Object dtype all through: pandas' default string dtype would convert 34,000 ids first.
    """
    index = pd.Index(ids, dtype=object)
    if index.is_unique:
        return index.get_indexer(pd.Index(wanted, dtype=object))
    last = np.flatnonzero(~index.duplicated(keep="last"))
    at = index[last].get_indexer(pd.Index(wanted, dtype=object))
    return np.where(at >= 0, last[np.maximum(at, 0)], -1)


def _ranks(health: np.ndarray) -> np.ndarray:
    """HEALTH_RANK of each health word (0 for words it does not know), looked up once per distinct word."""
    codes, words = pd.factorize(health)
    return np.array([HEALTH_RANK.get(w, 0) for w in words], dtype=float)[codes] if len(words) else np.zeros(0)


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) numbered in sorted order, so ordering by code is ordering by value."""
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques, dtype=object)


# --- which node is drawn as what -------------------------------------------------------------------------------

@dataclass
class _Nodes:
    """The node records' fields as columns (texts with missing as "", numbers with missing as 0)."""

    ids: np.ndarray
    kind: np.ndarray
    namespace: np.ndarray
    app: np.ndarray
    name: np.ndarray
    health: np.ndarray
    parent: np.ndarray
    raw_parent: np.ndarray  # as given (None, NaN or a value): only a truthy one is a parent link
    rps_in: np.ndarray
    rps_out: np.ndarray
    error_pct: np.ndarray
    outsider: np.ndarray

    @classmethod
    def of(cls, nodes: list[dict[str, Any]]) -> _Nodes:
        col = _columns(nodes, ("id", "type", "namespace", "app", "name", "health", "parent", "rps_in", "rps_out",
                               "error_pct", "outsider"))
        outsider = col["outsider"].copy()
        outsider[pd.isna(outsider)] = False
        nums = [np.nan_to_num(_number(col[c]), nan=0.0) for c in ("rps_in", "rps_out", "error_pct")]
        return cls(col["id"], *(_text(col[c]) for c in ("type", "namespace", "app", "name", "health", "parent")),
                   col["parent"], *nums, outsider.astype(bool))


def _groups(nf: _Nodes, level: str, expanded: set[str]) -> np.ndarray:
    """The id each node is drawn as."""
    ids, ns = nf.ids, nf.namespace
    app_key = np.where(nf.app != "", nf.app, nf.name)
    app_key = np.where(app_key != "", app_key, ids)
    ns_gid = "agg:ns:" + ns
    app_gid = "agg:app:" + ns + "/" + app_key
    group = app_gid if level == APP else np.where(_isin(ns_gid, expanded), app_gid, ns_gid)
    group = np.where(_isin(group, expanded), ids, group)
    fixed = _isin(ns, _NO_NAMESPACE) | _isin(nf.kind, _NOT_GROUPED)
    group = np.where(fixed, ids, group)
    # a group of one is shown as its member: a click that reveals the same node again is a wasted click
    codes, _ = pd.factorize(group)
    sizes = np.bincount(codes)[codes] if len(codes) else np.zeros(0, dtype=int)
    return np.where(sizes > 1, group, ids)


# --- edges ----------------------------------------------------------------------------------------------------

@dataclass
class _Edges:
    """The edge records' fields as columns, with each end's drawn id as a code into `labels` (name order)."""

    sg: np.ndarray  # code of the drawn source
    tg: np.ndarray  # code of the drawn target
    proto: np.ndarray  # code into `protocols` (name order)
    protocols: np.ndarray
    valid: np.ndarray  # both ends named: an edge without one is drawn nowhere and counted nowhere
    moved: np.ndarray  # an end is drawn as a group: the record is replaced by an aggregate edge
    into_moved: np.ndarray  # its target is drawn as a group (the member's inbound p95 and mTLS)
    rps: np.ndarray
    error_pct: np.ndarray
    mtls_pct: np.ndarray
    latency: dict[str, np.ndarray]
    health: np.ndarray
    mismatch: np.ndarray
    codes: np.ndarray  # the {class: rate} dicts as given
    flags: np.ndarray  # the {flag: rate} dicts as given


def _edges(edges: list[dict[str, Any]], nf: _Nodes, group: np.ndarray) -> tuple[_Edges, np.ndarray, np.ndarray]:
    """The edge columns, and (node group codes, labels): every drawn id numbered in name order."""
    col = _columns(edges, ("source", "target", "protocol", "rps", "error_pct", "p50_ms", "p95_ms", "p99_ms",
                           "mtls_pct", "mtls_state", "health", "codes", "flags"))
    src, tgt = col["source"], col["target"]
    ps, pt = _positions(nf.ids, src), _positions(nf.ids, tgt)
    loose = pd.unique(np.concatenate([src[ps < 0], tgt[pt < 0]]))  # ends that are no node: drawn as themselves
    loose = loose[~pd.isna(loose)]
    codes, labels = _sorted_codes(np.concatenate([group, loose]))
    node_code, loose_code = codes[:len(group)], np.append(codes[len(group):], -1)  # -1: an edge without this end

    def drawn(ends: np.ndarray, pos: np.ndarray) -> np.ndarray:
        out = np.where(pos >= 0, node_code[np.maximum(pos, 0)], -1)
        far = np.flatnonzero(pos < 0)
        out[far] = loose_code[_positions(loose, ends[far])]
        return out

    valid = ~(pd.isna(src) | pd.isna(tgt))
    collapsed = group != nf.ids
    into = np.zeros(len(edges), dtype=bool)
    into[pt >= 0] = collapsed[pt[pt >= 0]]
    out_of = np.zeros(len(edges), dtype=bool)
    out_of[ps >= 0] = collapsed[ps[ps >= 0]]
    proto, protocols = _sorted_codes(_text(col["protocol"], "http"))
    return _Edges(sg=drawn(src, ps), tg=drawn(tgt, pt), proto=proto, protocols=protocols, valid=valid,
                  moved=into | out_of | ~valid, into_moved=into & valid,
                  rps=np.nan_to_num(_number(col["rps"]), nan=0.0),
                  error_pct=np.nan_to_num(_number(col["error_pct"]), nan=0.0), mtls_pct=_number(col["mtls_pct"]),
                  latency={k: _number(col[f"{k}_ms"]) for k in ("p50", "p95", "p99")},
                  health=_text(col["health"], "na"), mismatch=_text(col["mtls_state"], "none") == "mismatch",
                  codes=col["codes"], flags=col["flags"]), node_code, labels


def _summed_dicts(dicts: np.ndarray, member_group: np.ndarray, n_groups: int) -> list[dict]:
    """Per group, the sum of its members' {name: rate} dicts (codes, flags); what is not a dict counts as empty.

    The dicts are flattened in C (`chain` over keys and over values) into long (group, name, rate) columns,
    summed in one group-by over an integer (group, name) key, and cut back into dicts in C (`islice`).
    """
    is_dict = np.fromiter(map(isinstance, dicts, repeat(dict)), dtype=bool, count=len(dicts))
    dicts, member_group = dicts[is_dict], member_group[is_dict]
    sizes = np.fromiter(map(len, dicts), dtype=np.int64, count=len(dicts))
    total = int(sizes.sum())
    if not total:
        return list(map(dict, repeat((), n_groups)))
    names = _str(np.fromiter(chain.from_iterable(dicts), dtype=object, count=total))
    rates = np.nan_to_num(_number(np.fromiter(chain.from_iterable(map(dict.values, dicts)), dtype=object,
                                              count=total)), nan=0.0)
    name_code, name_of = _sorted_codes(names)
    key = np.repeat(member_group, sizes) * len(name_of) + name_code
    summed = pd.Series(rates).groupby(pd.Index(key), sort=True).sum()
    summed = summed[summed.to_numpy() != 0]
    keys = summed.index.to_numpy()
    per_group = np.bincount(keys // len(name_of), minlength=n_groups)
    # sorted by (group, name): each group's entries are the next per_group[g] of the flat lists
    names_in, rates_in = iter(name_of[keys % len(name_of)].tolist()), map(round, summed.tolist(), repeat(6))
    return list(map(dict, map(zip, map(islice, repeat(names_in), per_group.tolist()),
                              map(islice, repeat(rates_in), per_group.tolist()))))


def _by_group(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(group of each row, the groups' keys in order, rows sorted by group, where each group starts there)."""
    group, keys = pd.factorize(key, sort=True)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(len(keys)))
    return group, np.asarray(keys), order, starts


def _sums(columns: dict[str, np.ndarray], group: np.ndarray) -> pd.DataFrame:
    """Per group sums of float columns: pandas' compensated group-by sum, the one the figures were always made by."""
    return pd.DataFrame(columns).groupby(pd.Index(group), sort=True).sum()  # an Index: an array key is
    # first looked up as a column label, and the KeyError's message prints the whole array


def _max(values: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group maximum, NaN only where every value is (NaN is skipped, as by a group-by's max)."""
    return np.fmax.reduceat(values[order], starts) if len(starts) else np.zeros(0)


def _records(columns: dict[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Equal-length columns zipped into one dict per row, in C (`map`/`zip`): no Python step per record.
    A constant column is `repeat(value)` (only for immutable values: every record would share it)."""
    return list(map(dict, map(zip, repeat(tuple(columns)), zip(*columns.values()))))


def _strs(values: np.ndarray) -> np.ndarray:
    """Integers as Python str objects, ready for `+` with other text columns."""
    return values.astype(str).astype(object)


def _none_for_nan(values: np.ndarray) -> list[float | None]:
    out = values.astype(object)
    out[np.isnan(values)] = None
    return out.tolist()


def _rolled_edges(ef: _Edges, labels: np.ndarray) -> list[dict[str, Any]]:
    """Member edges summed per (drawn source, drawn target, protocol); error % and mTLS share rate-weighted."""
    rows = np.flatnonzero(ef.moved & ef.valid & (ef.sg != ef.tg))
    if not len(rows):
        return []
    n_protocols, n_labels = len(ef.protocols), len(labels)
    # name order: (source, target, protocol)
    member_group, keys, order, starts = _by_group((ef.sg[rows] * n_labels + ef.tg[rows]) * n_protocols + ef.proto[rows])
    rps, mtls, health = ef.rps[rows], ef.mtls_pct[rows], ef.health[rows]
    has_mtls = ~np.isnan(mtls)
    sums = _sums({"rps": rps, "err_rps": rps * ef.error_pct[rows] / 100.0,
                  "mtls_rps": np.where(has_mtls, rps * np.nan_to_num(mtls, nan=0.0) / 100.0, 0.0),
                  "mtls_measured": np.where(has_mtls, rps, 0.0)}, member_group)
    n = len(keys)
    count = np.bincount(member_group, minlength=n)
    failing = np.bincount(member_group, weights=health == "failing", minlength=n).astype(int)
    degraded = np.bincount(member_group, weights=health == "degraded", minlength=n).astype(int)
    mismatch = np.bincount(member_group, weights=ef.mismatch[rows], minlength=n) > 0
    rank = _max(_ranks(health), order, starts).astype(int)
    lat = {k: _max(ef.latency[k][rows], order, starts) for k in ("p50", "p95", "p99")}
    codes = _summed_dicts(ef.codes[rows], member_group, n)
    flags = _summed_dicts(ef.flags[rows], member_group, n)
    sg, tg, proto = labels[keys // n_protocols // n_labels], labels[keys // n_protocols % n_labels], \
        ef.protocols[keys % n_protocols]
    # every per-edge number as a column first; the loop below only zips them into records
    total = sums["rps"].to_numpy()
    err = np.round(np.divide(100.0 * sums["err_rps"].to_numpy(), total, out=np.zeros(n), where=total > 0), 1)
    measured = sums["mtls_measured"].to_numpy()
    pct = np.divide(100.0 * sums["mtls_rps"].to_numpy(), measured, out=np.full(n, np.nan), where=measured > 0)
    state = np.select([mismatch, np.isnan(pct), pct >= 99.95, pct > 0], ["mismatch", "none", "full", "partial"], "none")
    reason = np.where(count > 1, "worst of " + _strs(count) + " edges: " + _strs(failing) + " failing, "
                      + _strs(degraded) + " degraded", "")
    return _records({
        "id": ("agg:" + sg + ">" + tg + ":" + proto).tolist(),  # edge_agg_id, a column at a time
        "source": sg.tolist(), "target": tg.tolist(), "protocol": proto.tolist(), "aggregate": repeat(True),
        "rps": total.tolist(), "error_pct": err.tolist(), "p50_ms": _none_for_nan(np.round(lat["p50"], 3)),
        "p95_ms": _none_for_nan(np.round(lat["p95"], 3)), "p99_ms": _none_for_nan(np.round(lat["p99"], 3)),
        "mtls_pct": _none_for_nan(np.round(pct, 1)), "mtls_state": state.tolist(),
        "health": _HEALTH_OF_RANK[rank].tolist(), "health_reason": reason.tolist(), "members": count.tolist(),
        "codes": codes, "flags": flags})


def _internal(ef: _Edges, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Per aggregate, {protocol: rate} of the calls between its members (drawn as no edge)."""
    rows = np.flatnonzero(ef.moved & ef.valid & (ef.sg == ef.tg))
    n_protocols = len(ef.protocols)
    summed = pd.Series(ef.rps[rows]).groupby(ef.sg[rows] * n_protocols + ef.proto[rows], sort=True).sum()
    internal: dict[str, dict[str, float]] = {}
    for k, rate in zip(summed.index.tolist(), summed.tolist()):
        internal.setdefault(labels[k // n_protocols], {})[ef.protocols[k % n_protocols]] = float(rate)
    return internal


# --- aggregate nodes ------------------------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 3)


def _worst(nf: _Nodes, rows: np.ndarray, gcode: np.ndarray, rank: np.ndarray) -> dict[int, list[dict[str, Any]]]:
    """Per group code, its WORST_SHOWN worst members (health, then error %, then rate): one stable sort."""
    err, rps = nf.error_pct[rows], nf.rps_in[rows]
    order = np.lexsort((-rps, -err, -rank, gcode))
    g = gcode[order]
    first = np.searchsorted(g, g)  # g is sorted: where each member's group starts
    top = order[np.arange(len(order)) - first < WORST_SHOWN]
    out: dict[int, list[dict[str, Any]]] = {}
    picked = rows[top]
    for code, i, name, kind, health, e, r in zip(gcode[top].tolist(), nf.ids[picked].tolist(), nf.name[picked].tolist(),
                                                 nf.kind[picked].tolist(), nf.health[picked].tolist(),
                                                 err[top].tolist(), rps[top].tolist()):
        out.setdefault(code, []).append({"id": i, "name": name, "type": kind, "health": health,
                                         "error_pct": round(float(e), 1), "rps_in": round(float(r), 3)})
    return out


def _rolled_nodes(nf: _Nodes, ef: _Edges, group: np.ndarray, node_code: np.ndarray, labels: np.ndarray,
                  internal: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = np.flatnonzero(group != nf.ids)
    if not len(rows):
        return []
    gcode = node_code[rows]
    local, codes, order, starts = _by_group(gcode)
    n = len(codes)
    rank = _ranks(nf.health[rows])
    sums = {k: v.to_numpy() for k, v in _sums({"rps_in": nf.rps_in[rows], "rps_out": nf.rps_out[rows],
                                                 "err_rps": nf.rps_in[rows] * nf.error_pct[rows]}, local).items()}
    worst_rank = _max(rank, order, starts).astype(int)
    members = np.bincount(local, minlength=n)
    outsider = np.bincount(local, weights=~nf.outsider[rows], minlength=n) == 0
    first = rows[order[starts]]  # each group's first member
    hcode, words = _sorted_codes(nf.health[rows])
    counts = np.bincount(local * len(words) + hcode, minlength=n * len(words)).reshape(n, len(words))
    # what members serve: the worst p95 and the mTLS share of the edges into them
    into = np.flatnonzero(ef.into_moved)
    mtls = ef.mtls_pct[into]
    served, served_codes, s_order, s_starts = _by_group(ef.tg[into])
    at = pd.Index(served_codes).get_indexer(codes)  # -1: nothing flows into the group
    p95 = np.append(_max(ef.latency["p95"][into], s_order, s_starts), np.nan)[at]
    mtls_sums = _sums({"mtls_rps": ef.rps[into] * np.nan_to_num(mtls, nan=0.0) / 100.0,
                       "measured": np.where(np.isnan(mtls), 0.0, ef.rps[into])}, served)
    measured = np.append(mtls_sums["measured"].to_numpy(), 0.0)[at]
    pct = np.divide(100.0 * np.append(mtls_sums["mtls_rps"].to_numpy(), 0.0)[at], measured, out=np.full(n, np.nan),
                    where=measured > 0)
    worst = _worst(nf, rows, gcode, rank)
    word_list = words.tolist()
    out = []
    for i, (code, crow, m, r, ns, app, name) in enumerate(zip(codes.tolist(), counts.tolist(), members.tolist(),
                                                               worst_rank.tolist(), nf.namespace[first].tolist(),
                                                               nf.app[first].tolist(), nf.name[first].tolist())):
        gid = labels[code]
        hc = {h: c for h, c in zip(word_list, crow) if c}
        is_app = gid.startswith("agg:app:")
        bad = [(h, hc[h]) for h in ("failing", "degraded") if hc.get(h)]
        reason = ", ".join(f"{c} of {m} members {h}" for h, c in bad) if bad else f"all {m} members {_RANK_HEALTH[r]}"
        app = str(app or name) if is_app else ""
        rps_in, err_rps = float(sums["rps_in"][i]), float(sums["err_rps"][i])
        out.append({
            "id": gid, "type": AGGREGATE, "level": APP if is_app else NAMESPACE, "name": app if is_app else str(ns),
            "namespace": str(ns), "app": app, "health": _RANK_HEALTH[r], "health_counts": hc,
            "health_reason": reason, "members": m, "rps_in": round(rps_in, 3),
            "rps_out": round(float(sums["rps_out"][i]), 3),
            "error_pct": round(err_rps / rps_in, 1) if rps_in > 0 else 0.0,
            "rps_internal": dict(internal.get(gid, {})), "p95_ms": _num(p95[i]),
            "mtls_pct": None if np.isnan(pct[i]) else round(float(pct[i]), 1), "badges": [],
            "outsider": bool(outsider[i]), "worst": worst.get(code, []),
        })
    return out


def _kept_nodes(nodes: list[dict[str, Any]], nf: _Nodes, group: np.ndarray) -> list[dict[str, Any]]:
    """The records drawn as themselves; a compound box only while a child is drawn as itself, and a parent
    link only to a node still drawn (dropped from a copy of the record, never from the caller's)."""
    keep = group == nf.ids
    boxes_in_use = nf.parent[keep & (nf.parent != "")]
    keep &= ~((nf.kind == "box") & ~_isin(nf.ids, boxes_in_use))
    parents = nf.raw_parent
    loose = keep & ~pd.isna(parents)
    loose[loose] = ~_isin(parents[loose], nf.ids[group == nf.ids])
    out = list(compress(nodes, keep))
    if loose.any():
        at = np.cumsum(keep) - 1  # the kept list's index of each kept record
        for i in np.flatnonzero(loose).tolist():
            n = nodes[i]
            if n.get("parent"):
                out[at[i]] = {k: v for k, v in n.items() if k != "parent"}
    return out


def aggregate(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], level: str = NAMESPACE,
              expand: Iterable[str] = ()) -> Aggregated:
    """The graph with namespaces (level=namespace; an expanded one shows its apps) or apps collapsed.

    `expand` names aggregate ids to open in place: an expanded namespace shows its apps
    (each still collapsed unless expanded too), an expanded app shows its members.
    Nodes with no namespace (the unknown source, egress) and groups of one stay as they are.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
    if not nodes:
        return Aggregated([], list(edges), {})
    nf = _Nodes.of(nodes)
    group = _groups(nf, level, _implied(expand))
    ef, node_code, labels = _edges(edges, nf, group)
    internal = _internal(ef, labels)
    out_nodes = _kept_nodes(nodes, nf, group) + _rolled_nodes(nf, ef, group, node_code, labels, internal)
    out_edges = list(compress(edges, ~ef.moved)) + _rolled_edges(ef, labels)
    return Aggregated(out_nodes, out_edges, dict(zip(nf.ids.tolist(), group.tolist())), internal)
