"""The roll-up as it was at cf80926 (session 13's start), frozen: the oracle `test_aggregate_differential` holds
the vectorised `topology.aggregate` equal to, record for record and bit for bit. Not used by meshscope itself."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NAMESPACE = "namespace"
APP = "app"
LEVELS = (NAMESPACE, APP)
AGGREGATE = "aggregate"  # node type of a collapsed group
HEALTH_RANK = {"na": 0, "idle": 1, "healthy": 2, "degraded": 3, "failing": 4}
_RANK_HEALTH = {v: k for k, v in HEALTH_RANK.items()}
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


def _node_frame(nodes: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ("id", "type", "namespace", "app", "name", "health", "rps_in", "rps_out", "error_pct", "parent", "outsider")
    df = pd.DataFrame({c: [n.get(c) for n in nodes] for c in cols})  # column by column: no dict per record
    for c in ("namespace", "app", "name", "type", "health", "parent"):
        df[c] = df[c].fillna("").astype(str)
    for c in ("rps_in", "rps_out", "error_pct"):
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0.0)
    df["outsider"] = df["outsider"].fillna(False).astype(bool)
    return df


def _groups(df: pd.DataFrame, level: str, expanded: set[str]) -> pd.Series:
    """The id each node is drawn as."""
    ns = df["namespace"]
    app_key = df["app"].where(df["app"] != "", df["name"]).where(lambda s: s != "", df["id"])
    ns_gid = "agg:ns:" + ns
    app_gid = "agg:app:" + ns + "/" + app_key
    group = app_gid if level == APP else ns_gid.where(~ns_gid.isin(expanded), app_gid)
    group = group.where(~group.isin(expanded), df["id"])
    fixed = ns.isin(_NO_NAMESPACE) | df["type"].isin(_NOT_GROUPED)
    group = group.where(~fixed, df["id"])
    # a group of one is shown as its member: a click that reveals the same node again is a wasted click
    sizes = group.map(group.value_counts())
    group = group.where(sizes > 1, df["id"])
    return group


def _worst(moved: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Per group, its WORST_SHOWN worst members (health, then error %, then rate): one sort, one head."""
    ranked = moved.assign(rank=moved["health"].map(HEALTH_RANK).fillna(0)).sort_values(
        ["group", "rank", "error_pct", "rps_in"], ascending=[True, False, False, False])
    top = ranked.groupby("group", sort=False).head(WORST_SHOWN)
    out: dict[str, list[dict[str, Any]]] = {}
    for g, i, name, kind, health, err, rps in zip(top["group"], top["id"], top["name"], top["type"], top["health"],
                                                  top["error_pct"], top["rps_in"]):
        out.setdefault(g, []).append({"id": i, "name": name, "type": kind, "health": health,
                                      "error_pct": round(float(err), 1), "rps_in": round(float(rps), 3)})
    return out


def _edge_frame(edges: list[dict[str, Any]], group_of: pd.Series) -> pd.DataFrame:
    cols = ("id", "source", "target", "protocol", "rps", "error_pct", "p50_ms", "p95_ms", "p99_ms", "mtls_pct",
            "mtls_state", "health")
    df = pd.DataFrame({c: [e.get(c) for e in edges] for c in cols}, columns=list(cols))
    for c in ("rps", "error_pct", "p50_ms", "p95_ms", "p99_ms", "mtls_pct"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["rps"] = df["rps"].fillna(0.0)
    df["error_pct"] = df["error_pct"].fillna(0.0)
    df["protocol"] = df["protocol"].fillna("http").astype(str)
    df["health"] = df["health"].fillna("na").astype(str)
    df["mtls_state"] = df["mtls_state"].fillna("none").astype(str)
    df["sg"] = df["source"].map(group_of).fillna(df["source"])
    df["tg"] = df["target"].map(group_of).fillna(df["target"])
    return df


def _summed_dicts(records: list[dict[str, Any]], key: str, rows: np.ndarray, member_group: np.ndarray,
                 n_groups: int) -> list[dict]:
    """Per group, the sum of its members' {name: rate} dicts (codes, flags).

    `rows[j]` is member j's record index and `member_group[j]` its group's number; the dicts are
    flattened once into long (group, name, rate) columns and summed in one group-by.
    """
    grp, names, rates = [], [], []
    for i, g in zip(rows.tolist(), member_group.tolist()):
        for name, rate in (records[i].get(key) or {}).items():
            grp.append(g)
            names.append(str(name))
            rates.append(rate)
    out: list[dict] = [{} for _ in range(n_groups)]
    if not grp:
        return out
    long = pd.DataFrame({"g": grp, "name": names, "rate": pd.to_numeric(pd.Series(rates), errors="coerce").fillna(0.0)})
    summed = long.groupby(["g", "name"], sort=True)["rate"].sum()
    for (g, name), rate in zip(summed.index.tolist(), summed.tolist()):
        if rate:
            out[g][name] = round(rate, 6)
    return out


def _rolled_edges(edges: list[dict[str, Any]], ef: pd.DataFrame, moved: pd.Series) -> list[dict[str, Any]]:
    """Member edges summed per (drawn source, drawn target, protocol); error % and mTLS share rate-weighted."""
    between = (moved & (ef["sg"] != ef["tg"])).to_numpy()
    m = ef[between].copy()
    if m.empty:
        return []
    rows = np.flatnonzero(between)
    m["err_rps"] = m["rps"] * m["error_pct"] / 100.0
    has_mtls = m["mtls_pct"].notna()
    m["mtls_rps"] = np.where(has_mtls, m["rps"] * m["mtls_pct"].fillna(0.0) / 100.0, 0.0)
    m["mtls_measured"] = np.where(has_mtls, m["rps"], 0.0)
    m["rank"] = m["health"].map(HEALTH_RANK).fillna(0)
    m["mismatch"] = m["mtls_state"] == "mismatch"
    m["failing"] = m["health"] == "failing"
    m["degraded"] = m["health"] == "degraded"
    grouped = m.groupby(["sg", "tg", "protocol"], sort=True)
    agg = grouped.agg(
        rps=("rps", "sum"), err_rps=("err_rps", "sum"), mtls_rps=("mtls_rps", "sum"),
        mtls_measured=("mtls_measured", "sum"), p50=("p50_ms", "max"), p95=("p95_ms", "max"), p99=("p99_ms", "max"),
        rank=("rank", "max"), mismatch=("mismatch", "any"), count=("rps", "size"), failing=("failing", "sum"),
        degraded=("degraded", "sum"))
    member_group = grouped.ngroup().to_numpy()
    codes = _summed_dicts(edges, "codes", rows, member_group, len(agg))
    flags = _summed_dicts(edges, "flags", rows, member_group, len(agg))
    # every per-edge number as a column first; the loop below only zips them into records
    rps = agg["rps"].to_numpy()
    err = np.round(np.divide(100.0 * agg["err_rps"].to_numpy(), rps, out=np.zeros(len(agg)), where=rps > 0), 1)
    measured = agg["mtls_measured"].to_numpy()
    pct = np.divide(100.0 * agg["mtls_rps"].to_numpy(), measured, out=np.full(len(agg), np.nan), where=measured > 0)
    state = np.select([agg["mismatch"].to_numpy(), np.isnan(pct), pct >= 99.95, pct > 0],
                      ["mismatch", "none", "full", "partial"], "none")
    health = agg["rank"].astype(int).map(_RANK_HEALTH).tolist()
    count = agg["count"].astype(int).to_numpy()
    reason = np.where(count > 1, "worst of " + agg["count"].astype(str) + " edges: " + agg["failing"].astype(int).astype(str)
                      + " failing, " + agg["degraded"].astype(int).astype(str) + " degraded", "")
    lat = {k: [None if np.isnan(v) else v for v in agg[k].astype(float).round(3).tolist()] for k in ("p50", "p95", "p99")}
    pct_out = [None if np.isnan(v) else v for v in np.round(pct, 1).tolist()]
    out = []
    for i, (sg, tg, proto) in enumerate(agg.index):
        out.append({
            "id": edge_agg_id(sg, tg, proto), "source": sg, "target": tg, "protocol": proto, "aggregate": True,
            "rps": float(rps[i]), "error_pct": float(err[i]), "p50_ms": lat["p50"][i], "p95_ms": lat["p95"][i],
            "p99_ms": lat["p99"][i], "mtls_pct": pct_out[i], "mtls_state": str(state[i]), "health": health[i],
            "health_reason": str(reason[i]), "members": int(count[i]), "codes": codes[i], "flags": flags[i],
        })
    return out


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 3)


def _rolled_nodes(nf: pd.DataFrame, ef: pd.DataFrame, group: pd.Series,
                  internal: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    collapsed = (group != nf["id"]).to_numpy()
    moved = nf[collapsed].assign(group=group[collapsed].to_numpy())
    if moved.empty:
        return []
    moved["err_rps"] = moved["rps_in"] * moved["error_pct"]
    moved["rank"] = moved["health"].map(HEALTH_RANK).fillna(0)
    sums = moved.groupby("group", sort=True).agg(
        rps_in=("rps_in", "sum"), rps_out=("rps_out", "sum"), err_rps=("err_rps", "sum"), rank=("rank", "max"),
        members=("id", "size"), outsider=("outsider", "all"), namespace=("namespace", "first"), app=("app", "first"),
        name=("name", "first"))
    counts = moved.groupby(["group", "health"], sort=True).size().unstack(fill_value=0).reindex(sums.index, fill_value=0)
    into = ef[(ef["tg"] != ef["target"]).to_numpy()]  # edges into members: p95 and mTLS of what members serve
    stats = into.assign(mtls_rps=into["rps"] * into["mtls_pct"].fillna(0.0) / 100.0,
                        measured=np.where(into["mtls_pct"].notna(), into["rps"], 0.0)).groupby("tg").agg(
        p95=("p95_ms", "max"), mtls_rps=("mtls_rps", "sum"), measured=("measured", "sum")).reindex(sums.index)
    worst = _worst(moved)
    health_names = [str(c) for c in counts.columns]
    out = []
    for gid, r, crow, st in zip(sums.index, sums.itertuples(index=False), counts.to_numpy(),
                                stats.itertuples(index=False)):
        hc = {h: int(n) for h, n in zip(health_names, crow) if n}
        is_app = gid.startswith("agg:app:")
        pct = 100.0 * st.mtls_rps / st.measured if st.measured and st.measured > 0 else None
        bad = [(h, hc[h]) for h in ("failing", "degraded") if hc.get(h)]
        n = int(r.members)
        reason = ", ".join(f"{c} of {n} members {h}" for h, c in bad) if bad else f"all {n} members {_RANK_HEALTH[int(r.rank)]}"
        app = str(r.app or r.name) if is_app else ""
        out.append({
            "id": gid, "type": AGGREGATE, "level": APP if is_app else NAMESPACE, "name": app if is_app else str(r.namespace),
            "namespace": str(r.namespace), "app": app, "health": _RANK_HEALTH[int(r.rank)], "health_counts": hc,
            "health_reason": reason, "members": n, "rps_in": round(float(r.rps_in), 3),
            "rps_out": round(float(r.rps_out), 3),
            "error_pct": round(float(r.err_rps / r.rps_in), 1) if r.rps_in > 0 else 0.0,
            "rps_internal": dict(internal.get(gid, {})), "p95_ms": _num(st.p95),
            "mtls_pct": None if pct is None else round(float(pct), 1), "badges": [], "outsider": bool(r.outsider),
            "worst": worst.get(gid, []),
        })
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
    nf = _node_frame(nodes)
    group = _groups(nf, level, _implied(expand))
    group.index = nf.index
    group_of = pd.Series(group.to_numpy(), index=nf["id"].to_numpy())
    ef = _edge_frame(edges, group_of) if edges else _edge_frame([], group_of)
    moved = (ef["sg"] != ef["source"]) | (ef["tg"] != ef["target"])
    inside = ef[moved & (ef["sg"] == ef["tg"])]
    internal: dict[str, dict[str, float]] = {}
    for (gid, proto), rate in inside.groupby(["sg", "protocol"])["rps"].sum().items():
        internal.setdefault(gid, {})[proto] = float(rate)
    kept_ids = set(nf["id"][group == nf["id"]])
    # a compound box stays only while one of its children is drawn as itself
    boxes_in_use = set(nf["parent"][(group == nf["id"]) & (nf["parent"] != "")])
    out_nodes = []
    for n, keep in zip(nodes, (group == nf["id"]).to_numpy()):
        if not keep or (n.get("type") == "box" and n["id"] not in boxes_in_use):
            continue
        if n.get("parent") and n["parent"] not in kept_ids:
            n = {k: v for k, v in n.items() if k != "parent"}
        out_nodes.append(n)
    out_nodes += _rolled_nodes(nf, ef, group, internal)
    out_edges = [e for e, m in zip(edges, moved.to_numpy()) if not m]
    out_edges += _rolled_edges(edges, ef, moved)
    return Aggregated(out_nodes, out_edges, dict(zip(group_of.index, group_of.to_numpy())), internal)
