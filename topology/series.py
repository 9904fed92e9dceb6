"""From an Istio rate frame to de-duplicated traffic contributions (Kiali's query and parse rules).

Kiali asks Prometheus, per namespace, for unserved-inbound, inbound
(destination-reported) and outbound (source-reported) series, drops known bad
telemetry and counts each (metric, source, destination, code, flags, host)
contribution once. We get one frame with every series and apply the same
selection and rules with column masks over categoricals, so the same code
serves the local store, a Prometheus server and Kiali's golden cases.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from collector import schema
from topology import model
from topology.nodes import tuple_ids
from topology.options import GraphOptions

# Istio's canonical revision labels are not in collector.schema; Kiali uses them as "version".
SOURCE_CANONICAL_REVISION = "source_canonical_revision"
DESTINATION_CANONICAL_REVISION = "destination_canonical_revision"
REQUEST_MESSAGES = "istio_request_messages_total"
RESPONSE_MESSAGES = "istio_response_messages_total"
TCP_METRICS = (schema.ISTIO_TCP_SENT_BYTES, schema.ISTIO_TCP_RECEIVED_BYTES)
MESSAGE_METRICS = (REQUEST_MESSAGES, RESPONSE_MESSAGES)

# internal column -> frame columns it is read from; a later one fills where the first is absent/unknown
_COLUMNS: dict[str, tuple[str, ...]] = {
    "reporter": (schema.REPORTER,),
    "metric": (schema.METRIC,),
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


def _cat(s: pd.Series) -> pd.Series:
    return s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Internal short names, every label categorical; an absent label column is all-null ("label absent")."""
    n = len(frame)
    out: dict[str, object] = {}
    for name, sources in _COLUMNS.items():
        present = [c for c in sources if c in frame.columns]
        if not present:
            out[name] = pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=pd.Index([], dtype=object))
            continue
        col = _cat(frame[present[0]])
        if len(present) > 1:
            weak = (col.isna() | (col == model.UNKNOWN)).to_numpy()
            if weak.any():
                col = _cat(col.astype(object).where(~weak, frame[present[1]].astype(object)))
        out[name] = col.array
    out["rate"] = pd.to_numeric(frame[schema.RATE], errors="coerce").to_numpy(dtype=float)
    out["le"] = pd.to_numeric(frame[schema.LE], errors="coerce").to_numpy(dtype=float) if schema.LE in frame.columns \
        else np.full(n, np.nan)
    return pd.DataFrame(out)


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


def eq(df: pd.DataFrame, col: str, value: str) -> np.ndarray:
    return (df[col] == value).to_numpy(dtype=bool)


def matches(df: pd.DataFrame, col: str, pattern: str) -> np.ndarray:
    """Regex match evaluated once per category, not per row."""
    s = df[col]
    cats = s.cat.categories
    hit = np.array([re.match(pattern, str(c)) is not None for c in cats] + [False], dtype=bool)
    return hit[s.cat.codes.to_numpy()]  # code -1 (null) picks the trailing False


def selection_parts(df: pd.DataFrame, opts: GraphOptions) -> list[np.ndarray]:
    """Row positions per Kiali query, in query order (a row may appear in several queries)."""
    src_rep, dst_rep = eq(df, "reporter", "source"), eq(df, "reporter", "destination")
    plain_src = src_rep
    if opts.ambient != "none":  # waypoints report for both ends of the traffic they carry
        waypoint = eq(df, "reporter", "waypoint")
        src_rep, dst_rep = src_rep | waypoint, dst_rep | waypoint
    node = opts.node
    if node is not None:
        if node.kind == "workload":
            inbound = dst_rep & eq(df, "d_wl_ns", node.namespace) & eq(df, "d_wl", node.name)
            outbound = src_rep & eq(df, "s_ns", node.namespace) & eq(df, "s_wl", node.name)
            return [np.flatnonzero(inbound), np.flatnonzero(outbound)]
        if node.kind == "app":
            inbound = dst_rep & eq(df, "d_svc_ns", node.namespace) & eq(df, "d_app", node.name)
            outbound = src_rep & eq(df, "s_ns", node.namespace) & eq(df, "s_app", node.name)
            if node.version:
                inbound &= eq(df, "d_ver", node.version)
                outbound &= eq(df, "s_ver", node.version)
            return [np.flatnonzero(inbound), np.flatnonzero(outbound)]
        is_svc = (matches(df, "d_host", rf"^{re.escape(node.name)}\.{re.escape(node.namespace)}\..*$")
                  | (eq(df, "d_svc", node.name) & eq(df, "d_svc_ns", node.namespace)))
        unserved = src_rep & eq(df, "d_wl", model.UNKNOWN) & is_svc
        return [np.flatnonzero(unserved), np.flatnonzero(dst_rep & eq(df, "d_svc_ns", node.namespace) & is_svc)]
    if opts.namespaces is None:
        # every namespace: inbound (destination-reported) first, then outbound
        return [np.flatnonzero(dst_rep), np.flatnonzero(src_rep)]
    parts = []
    dest_unknown = eq(df, "d_wl_ns", model.UNKNOWN) & eq(df, "d_wl", model.UNKNOWN)
    for ns in opts.namespaces:
        in_ns = matches(df, "d_host", rf"^.+\.{re.escape(ns)}\..+$") | eq(df, "d_svc_ns", ns)
        s_in = eq(df, "s_ns", ns)
        parts.append(np.flatnonzero(src_rep & ~s_in & dest_unknown & in_ns))
        if opts.ambient != "none":
            # ingress into ambient pods has no destination reporter: take the source's word (requests only)
            parts.append(np.flatnonzero(plain_src & ~s_in & eq(df, "d_wl_ns", ns) & eq(df, "metric", schema.ISTIO_REQUESTS_TOTAL)))
        parts += [np.flatnonzero(dst_rep & eq(df, "d_wl_ns", ns)), np.flatnonzero(src_rep & s_in)]
    return parts


def protocol_and_code(df: pd.DataFrame, metrics: dict[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: protocol, response code (Kiali's rules) and flags; protocol None = unusable row.

    Evaluated once per distinct (metric, request_protocol, response_code, grpc status, flags).
    """
    cols = ["metric", "req_proto", "code_label", "grpc_label", "flags"]
    tid, first = tuple_ids(df, cols)
    combos = list(zip(*(df[c].iloc[first].astype(object).tolist() for c in cols)))
    proto = np.empty(len(combos), dtype=object)
    code = np.empty(len(combos), dtype=object)
    flags = np.empty(len(combos), dtype=object)
    for i, (metric, rp, rc, grpc, fl) in enumerate(combos):
        proto[i], code[i], flags[i] = _code(metrics.get(metric), rp, rc, grpc, fl)
    return proto[tid], code[tid], flags[tid]


def _absent(v) -> bool:
    return v is None or v != v


def _code(kind: str | None, rp, rc, grpc, fl) -> tuple[str | None, str, str]:
    if kind is None:
        return None, "", ""
    if kind == "tcp":
        return (None if _absent(fl) else "tcp"), "-", "" if _absent(fl) else fl
    if kind == "grpc":  # message counts carry neither code nor flags
        return "grpc", "-", ""
    if _absent(rp) or _absent(rc) or _absent(fl) or rp not in ("http", "grpc"):
        return None, "", ""
    if rc == "0":
        return rp, "-", fl
    if rp == "grpc" and not re.match(r"^[45]\d\d$", rc) and not _absent(grpc) and grpc not in ("", model.UNKNOWN):
        return rp, grpc, fl
    return rp, rc, fl
