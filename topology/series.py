"""From an Istio rate frame to de-duplicated traffic contributions (Kiali's query + parse rules).

Kiali asks Prometheus, per namespace, for unserved-inbound, inbound
(destination-reported) and outbound (source-reported) series, drops known bad
telemetry and counts each (metric, source, destination, code, flags, host)
contribution once. We get one frame with every series and apply the same
selection and rules with vectorized pandas masks, so the same code serves the
local store, a Prometheus server and Kiali's golden cases.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from collector import schema
from topology import model
from topology.options import GraphOptions

# Istio's canonical revision labels are not (yet) in collector.schema; Kiali uses them as "version".
SOURCE_CANONICAL_REVISION = "source_canonical_revision"
DESTINATION_CANONICAL_REVISION = "destination_canonical_revision"

REQUEST_MESSAGES = "istio_request_messages_total"
RESPONSE_MESSAGES = "istio_response_messages_total"

# internal column -> the frame columns it is read from, first present wins (later ones fill nulls)
_COLUMNS: dict[str, tuple[str, ...]] = {
    "reporter": (schema.REPORTER,),
    "s_cluster": (schema.SOURCE_CLUSTER,),
    "s_ns": (schema.SOURCE_WORKLOAD_NAMESPACE,),
    "s_wl": (schema.SOURCE_WORKLOAD,),
    "s_app": (schema.SOURCE_CANONICAL_SERVICE, schema.SOURCE_APP),
    "s_ver": (SOURCE_CANONICAL_REVISION, schema.SOURCE_VERSION),
    "d_cluster": (schema.DESTINATION_CLUSTER,),
    "d_svc_ns": (schema.DESTINATION_SERVICE_NAMESPACE,),
    "d_host": (schema.DESTINATION_SERVICE,),
    "d_svc": (schema.DESTINATION_SERVICE_NAME,),
    "d_wl_ns": (schema.DESTINATION_WORKLOAD_NAMESPACE,),
    "d_wl": (schema.DESTINATION_WORKLOAD,),
    "d_app": (schema.DESTINATION_CANONICAL_SERVICE, schema.DESTINATION_APP),
    "d_ver": (DESTINATION_CANONICAL_REVISION, schema.DESTINATION_VERSION),
    "req_proto": (schema.REQUEST_PROTOCOL,),
    "code_label": (schema.RESPONSE_CODE,),
    "grpc_label": (schema.GRPC_RESPONSE_STATUS,),
    "flags": (schema.RESPONSE_FLAGS,),
    "csp": (schema.CONNECTION_SECURITY_POLICY,),
    "s_principal": (schema.SOURCE_PRINCIPAL,),
    "d_principal": (schema.DESTINATION_PRINCIPAL,),
}
SOURCE_IDENTITY = ["s_cluster", "s_ns", "s_wl", "s_app", "s_ver"]
DEST_IDENTITY = ["d_cluster", "d_svc_ns", "d_svc", "d_wl_ns", "d_wl", "d_app", "d_ver"]
_REQUIRED = ["s_ns", "s_wl", "s_app", "s_ver", "d_svc_ns", "d_svc", "d_wl_ns", "d_wl", "d_app", "d_ver"]
FINGERPRINT = ["metric", *SOURCE_IDENTITY, *DEST_IDENTITY, "protocol", "code", "flags", "d_host"]
_BAD_SERVICE = r"^\d+\.\d+\.\d+\.\d+(:\d+)?$"


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Internal short column names; a missing column is all-null ("label absent")."""
    out = {}
    n = len(frame)
    for name, sources in _COLUMNS.items():
        col = None
        for src in sources:
            if src in frame.columns:
                col = frame[src] if col is None else col.where(col.notna() & (col != model.UNKNOWN), frame[src])
        out[name] = col.to_numpy(dtype=object) if col is not None else np.full(n, None, dtype=object)
    out["metric"] = frame[schema.METRIC].to_numpy(dtype=object)
    out["rate"] = pd.to_numeric(frame[schema.RATE], errors="coerce").to_numpy(dtype=float)
    out["le"] = frame[schema.LE].to_numpy(dtype=float) if schema.LE in frame.columns else np.full(n, np.nan)
    return pd.DataFrame(out, index=frame.index)


def metric_protocols(opts: GraphOptions) -> dict[str, str]:
    """metric -> protocol for the requested rate modes (TCP names are swapped, istio#32399)."""
    out: dict[str, str] = {}
    if opts.rates.http == "requests" or opts.rates.grpc == "requests":
        out[schema.ISTIO_REQUESTS_TOTAL] = ""  # protocol from request_protocol
    if opts.rates.grpc in ("sent", "total"):
        out[REQUEST_MESSAGES] = "grpc"
    if opts.rates.grpc in ("received", "total"):
        out[RESPONSE_MESSAGES] = "grpc"
    if opts.rates.tcp in ("sent", "total"):
        out[schema.ISTIO_TCP_RECEIVED_BYTES] = "tcp"
    if opts.rates.tcp in ("received", "total"):
        out[schema.ISTIO_TCP_SENT_BYTES] = "tcp"
    return out


def _ns_host(ns: str) -> str:
    return rf"^.+\.{_re(ns)}\..+$"


def _re(s: str) -> str:
    import re
    return re.escape(s)


def selection_order(df: pd.DataFrame, opts: GraphOptions) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in the order Kiali's queries would return them (rows may repeat), and the query number of each."""
    parts = _selection_parts(df, opts)
    if not parts:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    order = np.concatenate([np.repeat(i, len(p)) for i, p in enumerate(parts)])
    return np.concatenate(parts), order


def _selection_parts(df: pd.DataFrame, opts: GraphOptions) -> list[np.ndarray]:
    rep = df["reporter"].to_numpy(dtype=object)
    src_rep = rep == "source"
    dst_rep = rep == "destination"
    if opts.node is not None:
        return _node_selection(df, opts, src_rep, dst_rep)
    if opts.namespaces is None:
        # every namespace: inbound (destination-reported) first, then outbound
        return [np.flatnonzero(dst_rep), np.flatnonzero(src_rep)]
    parts = []
    s_ns, d_wl_ns, d_wl = df["s_ns"].to_numpy(dtype=object), df["d_wl_ns"].to_numpy(dtype=object), df["d_wl"].to_numpy(dtype=object)
    for ns in opts.namespaces:
        host_in_ns = (df["d_host"].fillna("").str.match(_ns_host(ns)).to_numpy(dtype=bool)
                      | (df["d_svc_ns"].to_numpy(dtype=object) == ns))
        unserved = src_rep & (s_ns != ns) & (d_wl_ns == model.UNKNOWN) & (d_wl == model.UNKNOWN) & host_in_ns
        parts += [np.flatnonzero(unserved), np.flatnonzero(dst_rep & (d_wl_ns == ns)), np.flatnonzero(src_rep & (s_ns == ns))]
    return parts


def _node_selection(df: pd.DataFrame, opts: GraphOptions, src_rep: np.ndarray, dst_rep: np.ndarray) -> list[np.ndarray]:
    node = opts.node
    col = lambda c: df[c].to_numpy(dtype=object)  # noqa: E731
    if node.kind == "workload":
        inbound = dst_rep & (col("d_wl_ns") == node.namespace) & (col("d_wl") == node.name)
        outbound = src_rep & (col("s_ns") == node.namespace) & (col("s_wl") == node.name)
        return [np.flatnonzero(inbound), np.flatnonzero(outbound)]
    if node.kind == "app":
        inbound = dst_rep & (col("d_svc_ns") == node.namespace) & (col("d_app") == node.name)
        outbound = src_rep & (col("s_ns") == node.namespace) & (col("s_app") == node.name)
        if node.version:
            inbound &= col("d_ver") == node.version
            outbound &= col("s_ver") == node.version
        return [np.flatnonzero(inbound), np.flatnonzero(outbound)]
    host = rf"^{_re(node.name)}\.{_re(node.namespace)}\..*$"
    is_svc = (df["d_host"].fillna("").str.match(host).to_numpy(dtype=bool)
              | ((col("d_svc") == node.name) & (col("d_svc_ns") == node.namespace)))
    unserved = src_rep & (col("d_wl") == model.UNKNOWN) & is_svc
    inbound = dst_rep & (col("d_svc_ns") == node.namespace) & is_svc
    return [np.flatnonzero(unserved), np.flatnonzero(inbound)]


def contributions(frame: pd.DataFrame, opts: GraphOptions) -> tuple[pd.DataFrame, int]:
    """De-duplicated traffic contributions for the request, and how many series were dropped as bad."""
    metrics = metric_protocols(opts)
    df = normalize(frame[frame[schema.METRIC].isin(list(metrics))])
    rows, query = selection_order(df, opts)
    df = df.iloc[rows]
    df["query"] = query
    if df.empty:
        return _empty(), 0
    before = len(df)
    df = df[df[_REQUIRED].notna().all(axis=1) & np.isfinite(df["rate"].to_numpy())]
    is_req = (df["metric"] == schema.ISTIO_REQUESTS_TOTAL).to_numpy()
    is_tcp = df["metric"].isin([schema.ISTIO_TCP_SENT_BYTES, schema.ISTIO_TCP_RECEIVED_BYTES]).to_numpy()
    ok = ~(is_req & df[["req_proto", "code_label", "flags"]].isna().any(axis=1).to_numpy())
    ok &= ~(is_tcp & df["flags"].isna().to_numpy())
    df = df[ok].copy()
    dropped = before - len(df)
    if df.empty:
        return _empty(), dropped

    # protocol per metric; requests carry it in request_protocol
    proto = df["metric"].map(metrics).to_numpy(dtype=object)
    req = proto == ""
    proto[req] = df["req_proto"].to_numpy(dtype=object)[req]
    df["protocol"] = proto
    want = np.ones(len(df), dtype=bool)
    if opts.rates.http != "requests":
        want &= ~(req & (proto == "http"))
    if opts.rates.grpc != "requests":
        want &= ~(req & (proto == "grpc"))
    df = df[want & np.isin(proto, ["http", "grpc", "tcp"])]

    # clusters: absent label -> unknown (but remember it was absent for the bad-telemetry rules)
    s_cl_ok, d_cl_ok = df["s_cluster"].notna().to_numpy(), df["d_cluster"].notna().to_numpy()
    df["s_cluster"] = df["s_cluster"].fillna(model.UNKNOWN)
    df["d_cluster"] = df["d_cluster"].fillna(model.UNKNOWN)
    df["d_host"] = df["d_host"].fillna("")
    bad_src = (_ok(df["s_ns"]) & ~_ok(df["s_wl"]) & ~_ok(df["s_app"])) | (_ok(df["s_ns"]) & s_cl_ok & ~_ok(df["s_cluster"]))
    df, d_cl_ok = df[~bad_src], d_cl_ok[~bad_src]
    # kiali#2999: requests whose host and service name are the egress gateway's become the gateway workload
    egress = f"istio-egressgateway.{opts.istio_namespace}.svc.cluster.local"
    eg = ((df["d_host"] == egress) & (df["d_svc"] == egress)).to_numpy()
    if eg.any():
        df.loc[eg, "d_cluster"] = df.loc[eg, "s_cluster"]
        df.loc[eg, ["d_svc_ns", "d_wl_ns"]] = opts.istio_namespace
        df.loc[eg, ["d_svc", "d_wl", "d_app"]] = "istio-egressgateway"
        df.loc[eg, "d_ver"] = "latest"
    # istio#29373: an unknown destination cluster inside a known namespace is the source's cluster
    fix = ~_ok(df["d_cluster"]) & _ok(df["s_cluster"]) & _ok(df["d_svc_ns"])
    df.loc[fix, "d_cluster"] = df.loc[fix, "s_cluster"]
    bad_dst = (~_ok(df["d_wl"]) & _ok(df["d_host"]) & _ok(df["d_svc"]) & (df["d_host"] == df["d_svc"]).to_numpy()
               & df["d_svc"].astype(str).str.match(_BAD_SERVICE).to_numpy())
    bad_dst |= _ok(df["d_svc_ns"]) & d_cl_ok & ~_ok(df["d_cluster"])
    df = df[~bad_dst]
    dropped += int(bad_src.sum() + bad_dst.sum())

    # response code: 0 = no response; gRPC keeps HTTP errors, else uses the gRPC status
    code = df["code_label"].fillna("").astype(str).to_numpy(dtype=object)
    grpc = df["grpc_label"].to_numpy(dtype=object)
    is_grpc = df["protocol"].to_numpy(dtype=object) == "grpc"
    http_err = pd.Series(code).str.match(r"^[45]\d\d$").to_numpy(dtype=bool)
    use_grpc = is_grpc & ~http_err & pd.notna(grpc) & (grpc != model.UNKNOWN) & (grpc != "")
    code = np.where(code == "0", "-", np.where(use_grpc, grpc, code))
    is_msg = df["metric"].isin([REQUEST_MESSAGES, RESPONSE_MESSAGES]).to_numpy()
    is_tcp = df["protocol"].to_numpy(dtype=object) == "tcp"
    # gRPC message counts have neither code nor flags: Kiali files them under "-" with no flags ("")
    code = np.where(is_tcp | is_msg, "-", code)
    df["code"] = code
    df["flags"] = df["flags"].fillna("-").where(~is_msg, "")
    # `sum by (Kiali's labels)`: series that differ only in labels Kiali does not group on (mTLS
    # policy, principals...) add up within one query; then each contribution counts once (first query wins).
    df = df.groupby([*FINGERPRINT, "query"], sort=False, dropna=False, observed=True)["rate"].sum().reset_index()
    df = df.drop_duplicates(FINGERPRINT, keep="first")
    return df.reset_index(drop=True), dropped


def _ok(s: pd.Series) -> np.ndarray:
    v = s.to_numpy(dtype=object)
    return pd.notna(v) & (v != "") & (v != model.UNKNOWN)


def _empty() -> pd.DataFrame:
    cols = list(_COLUMNS) + ["metric", "rate", "le", "protocol", "code"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


def series_frame(frame: pd.DataFrame, metrics: list[str], reporter: str | None = None) -> pd.DataFrame:
    """Normalized rows of other metrics (buckets, bytes, security labels) ready to map onto edges.

    Absent identity labels read as "unknown" here: these rows only decorate
    edges the main selection already built, they never create them.
    """
    raw = frame[frame[schema.METRIC].isin(metrics)] if schema.METRIC in frame.columns else frame.iloc[0:0]
    df = normalize(raw)
    if reporter is not None:
        df = df[df["reporter"] == reporter]
    df = df.copy()
    for c in [*SOURCE_IDENTITY, *DEST_IDENTITY]:
        df[c] = df[c].fillna(model.UNKNOWN)
    tcp = df["metric"].isin([schema.ISTIO_TCP_SENT_BYTES, schema.ISTIO_TCP_RECEIVED_BYTES]).to_numpy()
    df["protocol"] = np.where(tcp, "tcp", df["req_proto"].fillna("http").to_numpy(dtype=object))
    df["code"] = df["code_label"].fillna("-")
    df["flags"] = df["flags"].fillna("-")
    df["d_host"] = df["d_host"].fillna("")
    return df[np.isfinite(df["rate"].to_numpy())].reset_index(drop=True)
