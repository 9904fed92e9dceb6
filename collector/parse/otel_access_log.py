"""Envoy OpenTelemetry access-log records (Istio's `envoyOtelAls`) -> rows of the requests table.

Istio configures Envoy's `envoy.access_loggers.open_telemetry` logger with the record *body*
set to its default text format (`EnvoyTextLogFormat`, the same line the file logger writes)
and the record *attributes* set to the provider's `logFormat.labels` (none unless configured).
Both shapes become the same requests rows the file tailer produces, through the same
`derive_requests`, so every runtime rule reads them unchanged:

- a record whose attributes carry the access-log fields by Istio's JSON names
  (`response_code`, `response_flags`, `upstream_cluster`, ...) is read from the attributes;
- otherwise its string body is read as Istio's text format;
- a record with neither is rejected (counted, with a reason), its neighbours are kept.

A log record does not say which workload wrote it. The identity comes, per record, from
attributes (`workload`, `namespace`, `service_account`: what docs/cluster.md tells Istio to send,
from the proxy's own environment) or, per resource, from what an OpenTelemetry Collector's
`k8sattributes` processor adds (`k8s.deployment.name`, `k8s.pod.name`, `k8s.namespace.name`) or
Envoy's built-in resource labels (`node_name` = `sidecar~IP~pod.ns~ns.svc.cluster.local`,
`cluster_name` = `app.ns`). Missing identity is `unknown`, as Istio reports it. Unknown
attributes are ignored.

Decoding is vectorized: the protobuf wire format is walked for all records at once (the same
lockstep walker the trace fast path uses); the upb object walk is only the fallback for
payload shapes that walker refuses (array or kvlist attribute values), and it names what is
broken when the payload is not OTLP at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector import schema as s
from collector.parse import otlp_wire as w
from collector.parse import slices
from collector.parse.access_log import LogContext, derive_requests, parse_json_log, parse_text_lines
from collector.tables import REQUESTS

# the access-log fields read from attributes (Istio's JSON access-log names); numbers may be sent as text
STRING_FIELDS = (
    "start_time", "method", "path", "protocol", "response_flags", "response_code_details",
    "upstream_transport_failure_reason", "authority", "upstream_host", "upstream_cluster", "request_id",
    "requested_server_name", "downstream_peer_uri_san", "upstream_peer_uri_san", "downstream_tls_version",
    "traceparent", "route_name",
)
NUMBER_FIELDS = ("response_code", "bytes_received", "bytes_sent", "duration")
# identity of the proxy that wrote the record, most specific first (record attributes, then resource)
WORKLOAD_KEYS = ("workload", "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name")
POD_KEYS = ("pod_name", "k8s.pod.name")
NAMESPACE_KEYS = ("namespace", "k8s.namespace.name")
SERVICE_ACCOUNT_KEYS = ("service_account", "k8s.serviceaccount.name")
PRINCIPAL_KEYS = ("principal",)
_IDENTITY_KEYS = (*WORKLOAD_KEYS, *POD_KEYS, *NAMESPACE_KEYS, *SERVICE_ACCOUNT_KEYS, *PRINCIPAL_KEYS)
# Deployment pods are <deployment>-<replicaset hash>-<5 chars>; Istio names the workload by the deployment
_POD_SUFFIX = r"-[a-z0-9]{6,10}-[a-z0-9]{5}$"
# markers derive_requests writes where the reporting proxy's identity goes; replaced per row afterwards
_MARK_WL, _MARK_NS, _MARK_PR = "\x01wl", "\x01ns", "\x01pr"
MAX_ERRORS = 5


class OtelLogError(ValueError):
    """The payload is not an ExportLogsServiceRequest at all (the gRPC INVALID_ARGUMENT reason)."""


@dataclass
class OtelLogsResult:
    table: pa.Table  # requests rows
    records: int = 0  # log records in the payload
    rejected: int = 0  # records that could not become a row
    errors: list[str] = field(default_factory=list)  # a few reasons, for partial_success and logs


@dataclass
class _RawBodies:
    """Where each record's string body sits in the payload (start -1: no string body): bodies become
    strings only for the records that need them (not for those whose attributes carry the fields)."""

    data: pa.Buffer
    buf: np.ndarray
    start: np.ndarray  # int64
    length: np.ndarray  # int64


@dataclass
class _Records:
    """Every log record of a payload as columns, whichever decoder produced them."""

    n: int
    time_ns: np.ndarray  # int64, 0 when unset
    body: pa.Array | None  # string body (null when absent or not a string); None: see `raw`
    trace_id: pa.Array  # hex ('' when absent)
    owner: np.ndarray  # resource index per record
    resources: list[dict[str, str]]
    a_owner: np.ndarray  # attribute -> record
    a_keys: pa.Array
    a_values: pa.Array
    raw: _RawBodies | None = None

    def lines(self, idx: np.ndarray) -> pa.Array:
        """The string bodies of records `idx` without their trailing line breaks ('' where a record has none).
        From the payload, the breaks are cut off the slices before the one copy (a few steps; a body
        ending in a longer run of them is trimmed by Arrow afterwards)."""
        if self.body is not None:
            return pc.utf8_rtrim(pc.fill_null(self.bodies(idx), ""), characters="\r\n")
        r = self.raw
        at = r.start[idx]
        start = np.maximum(at, 0)
        length = np.where(at >= 0, r.length[idx], 0)
        for _ in range(4):
            cut = length > 0
            cut[cut] = np.isin(r.buf[(start + length - 1)[cut]], (10, 13))
            if not cut.any():
                break
            length = length - cut
        else:
            return pc.utf8_rtrim(_strings_in_order(r.data, r.buf, start, length), characters="\r\n")
        return _strings_in_order(r.data, r.buf, start, length)

    def bodies(self, idx: np.ndarray) -> pa.Array:
        """The string bodies of records `idx` (null where a record has none)."""
        if self.body is not None:
            return pc.take(self.body, pa.array(idx, pa.int64()))
        r = self.raw
        at = r.start[idx]
        strings = _strings_in_order(r.data, r.buf, np.maximum(at, 0), np.where(at >= 0, r.length[idx], 0))
        return pc.if_else(pa.array(at >= 0), strings, pa.scalar(None, pa.string()))


def decode_access_logs(body: bytes, origin: str = "otlp", trust_domain: str = "cluster.local") -> OtelLogsResult:
    """An ExportLogsServiceRequest (protobuf) -> requests rows. Raises OtelLogError when undecodable."""
    try:
        rec = _wire_records(body)
    except (w._Bad, IndexError, ValueError, OverflowError):
        rec = _upb_records(body)  # complete decoder: odd shapes, or the reason the payload is broken
    return records_to_requests(rec, origin, trust_domain)


def decode_access_logs_http(body: bytes, content_type: str = "application/x-protobuf",
                            origin: str = "otlp-http") -> OtelLogsResult:
    """The OTLP/HTTP `/v1/logs` body (protobuf or OTLP/JSON) -> requests rows; records that are not
    access logs (application logs sharing the endpoint) simply give no row there."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("application/json", "text/json"):
        from collector.parse.otlp import OtlpError, _parse  # the JSON traps (hex ids) are handled there
        try:
            body = _parse(body, content_type, ExportLogsServiceRequest).SerializeToString()
        except OtlpError as exc:
            raise OtelLogError(str(exc)) from None
    return decode_access_logs(body, origin)


# -- decoding ----------------------------------------------------------------------------------
def _resource_attrs(data: bytes) -> dict[str, str]:
    res = Resource.FromString(data)
    return {kv.key: _any_str(kv.value) for kv in res.attributes}


def _any_str(v) -> str:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind in ("int_value", "double_value"):
        return str(getattr(v, kind))
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    return ""


def _wire_records(body: bytes) -> _Records:
    buf = np.frombuffer(body, dtype=np.uint8)
    body_buffer = pa.py_buffer(body)
    resources: list[dict[str, str]] = []
    owner_l, start_l, len_l = [], [], []
    for _, r0, rl in w._seq_fields(body, 0, len(body), {1}):  # resource logs: one per sidecar batch
        attrs: dict[str, str] = {}
        scopes = []
        for fid, s0, ln in w._seq_fields(body, r0, r0 + rl, {1, 2}):
            if fid == 1:
                attrs = _resource_attrs(body[s0:s0 + ln])
            else:
                scopes.append((s0, ln))
        owner = len(resources)
        resources.append(attrs)
        for s0, ln in scopes:
            p0, pl = _repeated_field(body, buf, s0, s0 + ln, 2, _LOG_RECORD_TAGS)
            owner_l.append(np.full(len(p0), owner, dtype=np.int64))
            start_l.append(p0)
            len_l.append(pl)
    start = np.concatenate(start_l) if start_l else np.zeros(0, np.int64)
    length = np.concatenate(len_l) if len_l else np.zeros(0, np.int64)
    owner_l = np.concatenate(owner_l) if owner_l else np.zeros(0, np.int64)
    n = len(start)
    f = w._walk(buf, start, start + length, {1: "fixed64", 11: "fixed64", 5: "len", 6: "len", 9: "len"})

    def last_of(fid: int, col: int) -> tuple[np.ndarray, np.ndarray]:
        last = w._last_per(n, f[fid])
        vals = f[fid][col]
        out = np.zeros(n, dtype=vals.dtype)  # keep the dtype: fixed64 nanoseconds do not survive float64
        has = last >= 0
        out[has] = vals[last[has]]
        return out, has

    t, _ = last_of(1, 1)
    observed, _ = last_of(11, 1)
    time_ns = np.where(t > 0, t, observed).astype(np.int64)
    b_start, has_body = last_of(5, 1)
    b_len, _ = last_of(5, 2)
    body_at = np.full(n, -1, dtype=np.int64)
    body_len = np.zeros(n, dtype=np.int64)
    if has_body.any():  # AnyValue: string_value is field 1; other kinds leave the body null
        idx = np.flatnonzero(has_body)
        bs = b_start[idx].astype(np.int64)
        sub = w._walk(buf, bs, bs + b_len[idx].astype(np.int64), {1: "len"})
        last = w._last_per(len(idx), sub[1])
        ok = last >= 0
        s_s = np.where(ok, sub[1][1][np.maximum(last, 0)] if len(sub[1][1]) else 0, 0).astype(np.int64)
        s_l = np.where(ok, sub[1][2][np.maximum(last, 0)] if len(sub[1][2]) else 0, 0).astype(np.int64)
        body_at[idx[ok]], body_len[idx[ok]] = s_s[ok], s_l[ok]
        _check_utf8(body_buffer, buf, body_at, body_len)
    tid_s, _ = last_of(9, 1)
    tid_l, _ = last_of(9, 2)
    trace, _ = w.ids_hex(buf, tid_s.astype(np.int64), tid_l.astype(np.int64), 16)

    a_owner, a_start, a_len, a_order = f[6]
    o = np.lexsort((a_order, a_owner))
    a_owner, a_start, a_len = a_owner[o].astype(np.int64), a_start[o].astype(np.int64), a_len[o].astype(np.int64)
    k_s, k_l, v_s, v_l, simple = w._simple_string_attributes(buf, a_start, a_len)
    rendered: dict[int, str] = {}
    rest = np.flatnonzero(~simple)
    if len(rest):  # numbers, bools, long strings: the general walk, on those only
        rk_s, rk_l, rv_s, rv_l, r = w._general_attributes(buf, a_start[rest], a_len[rest])
        k_s[rest], k_l[rest], v_s[rest], v_l[rest] = rk_s, rk_l, rv_s, rv_l
        rendered = {int(rest[j]): v for j, v in r.items()}
    values = _strings_in_order(body_buffer, buf, v_s, v_l)
    if rendered:
        py = values.to_pylist()
        for j, v in rendered.items():
            py[j] = v
        values = pa.array(py, pa.string())
    keys = _strings_in_order(body_buffer, buf, k_s, k_l)  # one copy: keys too come in payload order
    return _Records(n, time_ns, None, trace, owner_l, resources, a_owner, keys, values,
                    _RawBodies(body_buffer, buf, body_at, body_len))


def _strings_in_order(data: pa.Buffer, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Slices of the payload as strings: in one copy when they come in payload order (record bodies,
    attribute values), else through string views; invalid UTF-8 is `_Bad` either way."""
    try:
        out = slices.in_order(data, starts, lengths)
    except pa.ArrowInvalid:
        raise w._Bad("invalid UTF-8") from None
    return out if out is not None else w._strings(data, buf, starts, lengths)


def _check_utf8(data: pa.Buffer, buf: np.ndarray, at: np.ndarray, length: np.ndarray) -> None:
    """Every string body must be UTF-8 (as upb insists); only bodies with a non-ASCII byte need the check."""
    has = np.flatnonzero((at >= 0) & (length > 0))
    if not len(has):
        return
    a, b = at[has], at[has] + length[has]
    edges = np.empty(2 * len(has), dtype=np.int64)
    edges[0::2], edges[1::2] = a, b
    if (np.diff(edges) >= 0).all() and edges[0] >= 0 and edges[-1] <= len(buf):
        # bodies in payload order (always, from the walk): one pass says which body holds a high byte; the
        # protobuf framing between bodies (lengths, fixed64 times) is full of them and is never looked at
        high = np.zeros(len(buf) + 1, dtype=bool)
        np.greater_equal(buf, 0x80, out=high[:-1])
        some = has[np.logical_or.reduceat(high, edges)[0::2]]
    else:
        lo, hi = int(a.min()), int(b.max())
        pos = np.flatnonzero(buf[lo:hi] >= 0x80) + lo
        some = has[np.searchsorted(pos, b) > np.searchsorted(pos, a)]
    if len(some):
        w._strings(data, buf, at[some], length[some])  # raises _Bad on invalid UTF-8


# the tag bytes a LogRecord's fields start with (time 0x09 first, as Envoy writes it; any field of LogRecord)
_LOG_RECORD_TAGS = np.array([0x09, 0x10, 0x1A, 0x2A, 0x32, 0x38, 0x45, 0x4A, 0x52, 0x59, 0x62], dtype=np.uint8)


def _may_start(buf: np.ndarray, tag_at: np.ndarray, first_tags: np.ndarray) -> np.ndarray:
    """Which candidate tags are followed by a length and then one of `first_tags` (or an empty field).

    Why: the record tag's byte (0x12) is also every attribute's value tag, so most candidates are
    attributes; an attribute's value starts with AnyValue's 0x0a, never a LogRecord tag. A real record
    dropped here (a writer that starts it with an unknown field) is still read, one field at a time.
    Lengths of up to 3 varint bytes are judged; longer ones are kept."""
    last = len(buf) - 1
    b1, b2, b3, b4 = (buf[np.minimum(tag_at + k, last)] for k in (1, 2, 3, 4))
    first = np.where(b1 < 0x80, b2, np.where(b2 < 0x80, b3, b4))
    judged = (b1 < 0x80) | (b2 < 0x80) | (b3 < 0x80)
    return ~judged | (b1 == 0) | np.isin(first, first_tags)


def _repeated_field(body: bytes, buf: np.ndarray, start: int, end: int, field: int,
                    first_tags: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(data start, length) of every occurrence of length-delimited `field` in ONE message's bytes [start, end).

    A scope holds thousands of log records back to back, each found only from the one before it,
    which a plain walk does one Python step per record. Instead every byte equal to the record's
    tag gets the position of the field that would follow it; from the first record that pointer is
    followed by doubling (each step jumps twice as far), so a run of n records takes log2(n) array
    steps. Bytes that merely look like the tag are never reached from a real field. Other fields
    (the scope, schema_url) are stepped over one at a time; a field running past `end` is an error
    (the caller falls back to the complete decoder, which names it).
    """
    tag = (field << 3) | 2
    cand = np.flatnonzero(buf[start:end] == tag).astype(np.int64) + start
    if first_tags is not None and len(cand):
        cand = cand[_may_start(buf, cand, first_tags)]
    nxt, data, length = _next_field(buf, cand, end)
    # the candidate index of the field that follows each candidate (-1: not a candidate, so the run ends there)
    j = np.minimum(np.searchsorted(cand, nxt), max(len(cand) - 1, 0))
    jump = np.where(cand[j] == nxt, j, -1) if len(cand) else j
    starts: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    p = start
    while p < end:
        at = int(np.searchsorted(cand, p)) if buf[p] == tag else -1
        if 0 <= at < len(cand) and cand[at] == p:  # a run of records: follow the pointers by doubling
            run = np.array([at], dtype=np.int64)
            hop = jump
            while True:
                after = hop[run]
                run = np.concatenate([run, after[after >= 0]])
                if (after < 0).any():
                    break
                hop = np.where(hop >= 0, hop[np.maximum(hop, 0)], -1)
            last = run[-1]
            if nxt[last] > end or (length[run] < 0).any():
                raise w._Bad("field runs past the end of its message")
            starts.append(data[run])
            lens.append(length[run])
            p = int(nxt[last])
            continue
        one = w._seq_fields(body, p, _field_end(body, p, end), {field})  # one other field, stepped over
        for _, d0, dl in one:
            starts.append(np.array([d0], np.int64))
            lens.append(np.array([dl], np.int64))
        p = _field_end(body, p, end)
    if p != end:
        raise w._Bad("message ends inside a field")
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(starts), np.concatenate(lens)


def _next_field(buf: np.ndarray, tag_at: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one-byte tags of length-delimited fields at `tag_at`: (position after the field, data start, length).
    Lengths are varints of at most 5 bytes here; anything else (or past `end`) gives a position past `end`."""
    value = np.zeros(len(tag_at), dtype=np.int64)
    nbytes = np.zeros(len(tag_at), dtype=np.int64)
    done = np.zeros(len(tag_at), dtype=bool)
    for k in range(5):
        at = tag_at + 1 + k
        b = buf[np.minimum(at, len(buf) - 1)].astype(np.int64)
        live = ~done & (at < end)
        value[live] |= (b[live] & 0x7F) << (7 * k)
        nbytes[live] = k + 1
        done |= live & (b < 0x80)
    data = tag_at + 1 + nbytes
    nxt = np.where(done, data + value, end + 1)
    return nxt, data, np.where(done, value, -1)


def _field_end(body: bytes, p: int, end: int) -> int:
    """Where the field starting at `p` ends (one sequential step: tag, then its value)."""
    tag, q = w._py_varint(body, p)
    wt = tag & 7
    if wt == 2:
        ln, q = w._py_varint(body, q)
        q += ln
    elif wt == 0:
        _, q = w._py_varint(body, q)
    elif wt in (1, 5):
        q += 8 if wt == 1 else 4
    else:
        raise w._Bad("unsupported wire type")
    if q > end:
        raise w._Bad("field runs past the end of its message")
    return q


def _upb_records(body: bytes) -> _Records:
    try:
        req = ExportLogsServiceRequest.FromString(body)
    except (DecodeError, ValueError) as exc:
        raise OtelLogError(f"not an OTLP ExportLogsServiceRequest: {exc}") from None
    resources, owner, times, bodies, traces = [], [], [], [], []
    a_owner, a_keys, a_vals = [], [], []
    for rl in req.resource_logs:
        resources.append({kv.key: _any_str(kv.value) for kv in rl.resource.attributes})
        r = len(resources) - 1
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                i = len(times)
                owner.append(r)
                times.append(lr.time_unix_nano or lr.observed_time_unix_nano)
                bodies.append(lr.body.string_value if lr.body.WhichOneof("value") == "string_value" else None)
                traces.append(lr.trace_id.hex() if len(lr.trace_id) == 16 else "")
                for kv in lr.attributes:
                    a_owner.append(i)
                    a_keys.append(kv.key)
                    a_vals.append(_any_str(kv.value))
    return _Records(len(times), np.array(times, dtype=np.uint64).astype(np.int64), pa.array(bodies, pa.string()),
                    pa.array(traces, pa.string()), np.array(owner, dtype=np.int64), resources,
                    np.array(a_owner, dtype=np.int64), pa.array(a_keys, pa.string()), pa.array(a_vals, pa.string()))


# -- records -> rows ---------------------------------------------------------------------------
def _pivot(rec: _Records, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """Per wanted attribute key, its value per record (null where absent; the last occurrence wins)."""
    out: dict[str, pa.Array] = {}
    if not len(rec.a_keys):
        return {k: pa.nulls(rec.n, pa.string()) for k in names}
    enc = pc.dictionary_encode(rec.a_keys)
    dict_keys = enc.dictionary.to_pylist()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    for name in names:
        if name not in dict_keys:
            out[name] = pa.nulls(rec.n, pa.string())
            continue
        hit = np.flatnonzero(codes == dict_keys.index(name))
        pos = np.full(rec.n, -1, dtype=np.int64)
        pos[rec.a_owner[hit]] = hit  # hit is ascending, so the last occurrence per record wins
        out[name] = pc.take(rec.a_values, pa.array(pos, mask=pos < 0))
    return out


def _resource_identity(res: dict[str, str], trust_domain: str) -> tuple[str, str, str]:
    """(workload, namespace, principal) of one resource, from k8sattributes or Envoy's built-in labels."""
    wl = next((res[k] for k in WORKLOAD_KEYS if res.get(k)), "")
    pod = next((res[k] for k in POD_KEYS if res.get(k)), "")
    ns = next((res[k] for k in NAMESPACE_KEYS if res.get(k)), "")
    node = res.get("node_name", "").split("~")
    if len(node) >= 3 and "." in node[2]:  # sidecar~IP~pod.namespace~namespace.svc.cluster.local
        pod = pod or node[2].rsplit(".", 1)[0]
        ns = ns or node[2].rsplit(".", 1)[1]
    if not ns and "." in res.get("cluster_name", ""):
        ns = res["cluster_name"].rsplit(".", 1)[1]
    if not wl and pod:
        wl = pc.replace_substring_regex(pa.array([pod]), _POD_SUFFIX, "")[0].as_py()
    sa = next((res[k] for k in SERVICE_ACCOUNT_KEYS if res.get(k)), "")
    pr = res.get("principal") or (f"spiffe://{trust_domain}/ns/{ns}/sa/{sa}" if sa and ns else "")
    return wl or "unknown", ns or "unknown", pr or "unknown"


def _first(cols: dict[str, pa.Array], keys: tuple[str, ...], n: int) -> pa.Array:
    """Per record, the first of `keys` with a non-empty value (null: none). Keys no record sent are skipped:
    most payloads carry one or two of the identity keys, not every spelling of them."""
    out = None
    for k in keys:
        col = cols[k]
        if col.null_count == len(col):
            continue
        col = pc.if_else(pc.equal(pc.fill_null(col, ""), ""), pa.scalar(None, pa.string()), col)
        out = col if out is None else pc.coalesce(out, col)
    return pa.nulls(n, pa.string()) if out is None else out


def _identity(rec: _Records, attrs: dict[str, pa.Array], trust_domain: str) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per record: (workload, namespace, principal) of the proxy that wrote it."""
    n = rec.n
    per_res = [_resource_identity(r, trust_domain) for r in rec.resources] or [("unknown",) * 3]
    owner = pa.array(rec.owner)
    res_wl, res_ns, res_pr = (pc.take(pa.array([p[i] for p in per_res], pa.string()), owner) for i in range(3))
    pod = _first(attrs, POD_KEYS, n)
    wl = _first(attrs, WORKLOAD_KEYS, n)
    if pod.null_count < n:
        wl = pc.coalesce(wl, pc.replace_substring_regex(pod, _POD_SUFFIX, ""))
    ns = _first(attrs, NAMESPACE_KEYS, n)
    sa = _first(attrs, SERVICE_ACCOUNT_KEYS, n)
    ns_all = pc.coalesce(ns, res_ns)
    from_sa = pc.binary_join_element_wise(f"spiffe://{trust_domain}/ns/", ns_all, "/sa/", sa, "")
    pr = pc.coalesce(_first(attrs, PRINCIPAL_KEYS, n), from_sa)
    return pc.coalesce(wl, res_wl), ns_all, pc.coalesce(pr, res_pr)


def _iso(time_ns: np.ndarray) -> pa.Array:
    return pc.strftime(pa.array(time_ns, pa.timestamp("ns", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")


def records_to_requests(rec: _Records, origin: str = "otlp", trust_domain: str = "cluster.local") -> OtelLogsResult:
    """Decoded records -> requests rows through the file tailer's own derivation (same columns, same rules)."""
    if rec.n == 0:
        return OtelLogsResult(REQUESTS.empty_table())
    attrs = _pivot(rec, (*STRING_FIELDS, *NUMBER_FIELDS, *_IDENTITY_KEYS))
    wl, ns, pr = _identity(rec, attrs, trust_domain)
    marker = proxy_marker(origin)
    structured = pc.is_valid(attrs["response_code"]).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(~structured)  # only these records' bodies are read
    body = rec.lines(rest)
    has_text = pc.not_equal(body, "").to_numpy(zero_copy_only=False)
    errors: list[str] = []
    rejected = int((~has_text).sum())
    if rejected:
        errors.append(f"{rejected} record(s) with neither a string body nor access-log attributes (response_code ...)")
    parts: list[pa.Table] = []
    rows_of: list[np.ndarray] = []

    idx = np.flatnonzero(structured)
    if len(idx):
        take = pa.array(idx)
        raw = {k: pc.take(attrs[k], take) for k in STRING_FIELDS}
        no_time = np.flatnonzero(pc.is_null(raw["start_time"]).to_numpy(zero_copy_only=False))
        if len(no_time):  # the record's own time, formatted only where the labels leave start_time out
            at = np.full(len(idx), -1, dtype=np.int64)
            at[no_time] = np.arange(len(no_time))
            filled = pc.take(_iso(rec.time_ns[idx[no_time]]), pa.array(at, mask=at < 0))
            raw["start_time"] = pc.coalesce(raw["start_time"], filled)
        raw["traceparent"] = pc.coalesce(raw["traceparent"], _traceparent(pc.take(rec.trace_id, take)))
        number_ok = np.ones(len(idx), dtype=bool)
        for k in NUMBER_FIELDS:
            v = pc.take(attrs[k], take)
            v = pc.if_else(pc.is_in(v, pa.array(["", "-"])), pa.scalar(None, pa.string()), v)
            good = pc.fill_null(pc.or_kleene(pc.is_null(v), pc.match_substring_regex(v, r"^-?[0-9]+(\.[0-9]*)?$")), False)
            number_ok &= good.to_numpy(zero_copy_only=False)
            raw[k] = pc.cast(pc.cast(pc.if_else(good, v, pa.scalar(None, pa.string())), pa.float64()), pa.int64())
        raw["_line"] = pa.array(idx)
        table = pa.table(raw)
        bad_numbers = idx[~number_ok]
        if len(bad_numbers):
            table = table.filter(pa.array(number_ok))
            rejected += len(bad_numbers)
            errors.append(f"{len(bad_numbers)} record(s) with a non-numeric response_code/bytes/duration attribute")
        derived, bad = derive_requests(table, marker)
        dropped = np.array([b[0] for b in bad], dtype=np.int64)  # (line, message[, reason])
        rejected += len(dropped)
        errors.extend(b[1] for b in bad[:MAX_ERRORS])
        parts.append(derived)
        rows_of.append(np.setdiff1d(idx[number_ok], dropped, assume_unique=True))

    # a body is Istio's text line (the default), or a JSON object: `logFormat.text` set to JSON, or an OpenTelemetry
    # Collector's filelog receiver shipping the sidecar's JSON stdout log
    json_body = _starts_with_brace(body)
    text, json_ = np.flatnonzero(has_text & ~json_body), np.flatnonzero(has_text & json_body)
    def of(local: np.ndarray) -> pa.Array:  # usually every body is of one kind: no copy then
        return body if len(local) == len(body) else pc.take(body, pa.array(local))

    groups = [_rows_of(_text_bodies(of(text), marker), rest[text])] if len(text) else []
    if len(json_):
        groups.append(_rows_of(_json_bodies(of(json_), marker), rest[json_]))
    for table, kept, errs in groups:
        rejected += len(np.unique(np.array([e[0] for e in errs], dtype=np.int64)))
        errors.extend(f"record {i}: body {msg}" for i, msg in errs[:MAX_ERRORS])
        tp = pc.take(rec.trace_id, pa.array(kept))
        table = table.set_column(table.schema.get_field_index(s.TRACE_ID), s.TRACE_ID,
                                 pc.if_else(pc.equal(table.column(s.TRACE_ID), ""), tp, table.column(s.TRACE_ID)))
        parts.append(table)
        rows_of.append(kept)

    if not parts:
        return OtelLogsResult(REQUESTS.empty_table(), rec.n, rejected, errors[:MAX_ERRORS])
    table = pa.concat_tables(parts)
    rows = pa.array(np.concatenate(rows_of))
    table = patch_identity(table, pc.take(wl, rows), pc.take(ns, rows), pc.take(pr, rows))
    return OtelLogsResult(table, rec.n, rejected, errors[:MAX_ERRORS])


def _starts_with_brace(body: pa.Array) -> np.ndarray:
    """Which bodies start with '{' after leading whitespace, read from each body's first byte; only bodies
    whose first byte is a control/space or non-ASCII byte (whitespace may start there) are trimmed to see."""
    body = body.cast(pa.string()) if body.type != pa.string() else body
    n = len(body)
    offsets = np.frombuffer(body.buffers()[1], dtype=np.int32, count=n + 1, offset=body.offset * 4)
    data = body.buffers()[2]
    first = np.full(n, 0x7F, dtype=np.uint8)  # empty bodies: a plain byte
    has = offsets[1:] > offsets[:-1]
    if data is not None and has.any():
        first[has] = np.frombuffer(data, dtype=np.uint8)[offsets[:-1][has]]
    out = first == ord("{")
    unsure = np.flatnonzero((first <= 0x20) | (first >= 0x80))
    if len(unsure):
        trimmed = pc.utf8_ltrim_whitespace(pc.take(body, pa.array(unsure)))
        out[unsure] = pc.fill_null(pc.starts_with(trimmed, "{"), False).to_numpy(zero_copy_only=False)
    return out


_Part = tuple[pa.Table, np.ndarray, list[tuple[int, str]]]  # rows, the record of each row, (record, error) sorted


def _rows_of(result, idx: np.ndarray) -> _Part:
    """A parser's result over the bodies of records `idx` -> rows, their records, errors by record."""
    dropped = np.unique(np.array([e.line for e in result.errors], dtype=np.int64))
    kept = np.setdiff1d(np.arange(len(idx)), dropped, assume_unique=True)
    return result.table, idx[kept], [(int(idx[e.line]), e.message) for e in result.errors]


def _text_bodies(bodies: pa.Array, marker: LogContext):
    """One record, one line: the bodies go to the text parser as they are (no joined buffer split again)."""
    return parse_text_lines(bodies, marker, first_line=0)


def _json_bodies(bodies: pa.Array, marker: LogContext):
    """JSON bodies, one object per record: a line break inside one (pretty-printed) is only JSON whitespace."""
    one_line = pc.replace_substring(bodies, "\n", " ").cast(pa.large_string())
    joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array([0, len(one_line)], pa.int64()), one_line),
                            pa.scalar("\n", pa.large_string()))
    return parse_json_log(joined[0].as_buffer().to_pybytes(), marker, first_line=0)


def _traceparent(trace_hex: pa.Array) -> pa.Array:
    """A traceparent-shaped string from the record's trace id, so derive_requests reads it the same way."""
    return pc.if_else(pc.equal(trace_hex, ""), pa.scalar(None, pa.string()),
                      pc.binary_join_element_wise("00-", trace_hex, "-0000000000000000-01", ""))


def proxy_marker(source: str = "") -> LogContext:
    """A parse context whose workload, namespace and principal are markers: one parse of lines from many proxies
    (the tailer's files of a poll, an OTLP batch of many sidecars) writes them where the reporting proxy's identity
    goes, and `patch_identity` puts each row's own identity there."""
    return LogContext(source=source, workload=_MARK_WL, namespace=_MARK_NS, principal=_MARK_PR)


def patch_identity(table: pa.Table, wl: pa.Array, ns: pa.Array, pr: pa.Array) -> pa.Table:
    """Put each row's own proxy identity (`wl`, `ns`, `pr`: one value per row) where a parse with `proxy_marker`
    wrote the markers (reporter-side columns).
    Done on dictionary codes: the identities are encoded once, and each column's marked rows point at them
    (no string copied per row); the result is what encoding the patched strings would give."""
    encoded = {}
    for mark, value in ((_MARK_WL, wl), (_MARK_NS, ns), (_MARK_PR, pr)):
        enc = pc.dictionary_encode(value)
        encoded[mark] = None if enc.indices.null_count else (enc.indices.to_numpy(zero_copy_only=False), enc.dictionary)
    for name, mark in ((s.SOURCE_WORKLOAD, _MARK_WL), (s.DESTINATION_WORKLOAD, _MARK_WL),
                       (s.SOURCE_WORKLOAD_NAMESPACE, _MARK_NS), (s.DESTINATION_WORKLOAD_NAMESPACE, _MARK_NS),
                       (s.SOURCE_PRINCIPAL, _MARK_PR), (s.DESTINATION_PRINCIPAL, _MARK_PR)):
        i = table.schema.get_field_index(name)
        col = table.column(i).combine_chunks()
        typ = table.schema.field(i).type
        value = {_MARK_WL: wl, _MARK_NS: ns, _MARK_PR: pr}[mark]
        if pa.types.is_dictionary(col.type) and encoded[mark] is not None and not col.indices.null_count:
            patched = _patch_codes(col, mark, *encoded[mark])
            table = table.set_column(i, name, patched.cast(typ))
            continue
        if pa.types.is_dictionary(col.type):  # compare the few distinct values, not every row's string
            hit = pc.take(pc.equal(col.dictionary, mark), col.indices)
            plain = col.cast(pa.string())
        else:
            hit, plain = pc.equal(col, mark), col
        plain = pc.if_else(hit, value, plain)
        table = table.set_column(i, name, pc.dictionary_encode(plain).cast(typ) if pa.types.is_dictionary(typ) else plain)
    return table


def _patch_codes(col: pa.DictionaryArray, mark: str, v_codes: np.ndarray, v_dict: pa.Array) -> pa.DictionaryArray:
    """Rows of `col` holding `mark` take the value's code instead; equal strings of the two dictionaries merge,
    and the dictionary is in first-appearance order (as `dictionary_encode` of the patched strings)."""
    codes = col.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    k = len(col.dictionary)
    is_mark = pc.fill_null(pc.equal(col.dictionary, mark), False).to_numpy(zero_copy_only=False)
    if is_mark.any():
        codes = np.where(is_mark[codes], k + v_codes, codes)
    both = pc.dictionary_encode(pa.concat_arrays([col.dictionary.cast(pa.string()), v_dict.cast(pa.string())]))
    canon = both.indices.to_numpy(zero_copy_only=False).astype(np.int64)[codes]  # equal strings: one code
    order = pc.dictionary_encode(pa.array(canon, pa.int64()))  # codes renumbered by first appearance
    return pa.DictionaryArray.from_arrays(pa.array(order.indices.to_numpy(zero_copy_only=False), pa.int32()),
                                          pc.take(both.dictionary, order.dictionary))
