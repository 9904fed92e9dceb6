"""Envoy access logs in Istio's two shapes (JSON and the default text format) -> requests table.

Both parsers are vectorized: JSON goes through Arrow's C++ JSON reader, text through one RE2
pattern over all lines. A bad line never spoils its neighbours: lines that are not a JSON
object are set aside up front; a block the typed Arrow reader still refuses is halved until
the pieces are small (<= 2048 lines), and only those pieces are read line by line, leniently
(numbers written as strings are accepted there), with the reason for each line refused.

An access log line does not name the workload that wrote it; the file does. `LogContext`
carries that (workload, namespace, principal of the sidecar), and the reporter side is read
from the upstream cluster (`outbound|...` = source side, `inbound|...` = destination side),
like Istio's own reporter label. The peer's namespace comes from its SPIFFE identity.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from collector import schema as s
from collector.parse.exposition import ParseError
from collector.tables import REQUESTS, TS

# Istio's default text format (meshConfig.accessLogFormat unset), one named group per operator.
TEXT_PATTERN = (
    r'^\[(?P<start_time>[^\]]*)\] "(?P<method>\S*) (?P<path>.*?) (?P<protocol>\S*)" (?P<response_code>[0-9]+) '
    r'(?P<response_flags>\S+) (?P<response_code_details>\S+) (?P<connection_termination_details>\S+) '
    r'"(?P<upstream_transport_failure_reason>[^"]*)" (?P<bytes_received>[0-9]+) (?P<bytes_sent>[0-9]+) '
    r'(?P<duration>[0-9]+) (?P<upstream_service_time>\S+) "(?P<x_forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" '
    r'"(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" (?P<upstream_cluster>\S+) '
    r'(?P<upstream_local_address>\S+) (?P<downstream_local_address>\S+) (?P<downstream_remote_address>\S+) '
    r'(?P<requested_server_name>\S+)(?: (?P<route_name>\S+))?[ \t\r]*$'
)
_ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})$"

# fields read from a JSON line; anything else in the line is ignored
_JSON_STRINGS = (
    "start_time", "method", "path", "protocol", "response_flags", "response_code_details",
    "upstream_transport_failure_reason", "authority", "upstream_host", "upstream_cluster", "request_id",
    "requested_server_name", "downstream_peer_uri_san", "upstream_peer_uri_san", "downstream_tls_version",
    "traceparent", "route_name",
)
_JSON_NUMBERS = ("response_code", "bytes_received", "bytes_sent", "duration")
_FIRST_CHAR = re.compile(rb"\S")
_JSON_SCHEMA = pa.schema([(k, pa.string()) for k in _JSON_STRINGS] + [(k, pa.int64()) for k in _JSON_NUMBERS])


@dataclass(frozen=True)
class LogContext:
    """Who wrote the log: the sidecar's workload identity, and the file name for `log_source`."""

    source: str = ""
    workload: str = "unknown"
    namespace: str = "unknown"
    principal: str = "unknown"


@dataclass
class AccessLogResult:
    table: pa.Table
    errors: list[ParseError] = field(default_factory=list)

    @property
    def requests(self):
        from collector.tables import to_pandas
        return to_pandas(self.table)


def parse_json_log(data: bytes | str, context: LogContext = LogContext(), first_line: int = 1) -> AccessLogResult:
    """Newline-delimited Istio JSON access log -> requests rows (+ errors with line numbers)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    first = _FIRST_CHAR.search(raw)
    if first is None:
        return AccessLogResult(REQUESTS.empty_table())
    # Fast path: the whole buffer in one go. Only when something in it is refused do we split
    # it into lines (to know which ones, and keep the rest).
    whole = _read_buffer(pa.py_buffer(raw), _JSON_SCHEMA) if first.group() == b"{" else None
    if whole is not None and whole.num_rows == raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1):
        table, bad = derive_requests(whole.append_column("_line", pa.array(np.arange(whole.num_rows))), context)
        return AccessLogResult(table, [ParseError(first_line + int(i), msg) for i, msg in bad])
    lines = _split_lines(raw)
    stripped = pc.ascii_trim_whitespace(lines)
    blank = pc.equal(pc.binary_length(stripped), 0).to_numpy(zero_copy_only=False)
    shaped = pc.and_(pc.starts_with(stripped, "{"), pc.ends_with(stripped, "}")).to_numpy(zero_copy_only=False)
    errors = [ParseError(first_line + int(i), "not a JSON object") for i in np.flatnonzero(~blank & ~shaped)]
    good_idx = np.flatnonzero(shaped)
    parts: list[pa.Table] = []
    _read_json_rows(stripped, good_idx, parts, errors, first_line)
    errors.sort(key=lambda e: e.line)
    if not parts:
        return AccessLogResult(REQUESTS.empty_table(), errors)
    raw_table = pa.concat_tables(parts, promote_options="permissive")
    table, bad = derive_requests(raw_table, context)
    errors.extend(ParseError(first_line + int(i), msg) for i, msg in bad)
    errors.sort(key=lambda e: e.line)
    return AccessLogResult(table, errors)


def _read_json_rows(lines: pa.Array, idx: np.ndarray, out: list[pa.Table], errors: list[ParseError], first_line: int) -> None:
    """Parse lines[idx] in one go (Arrow); a block Arrow refuses is read line by line."""
    if len(idx) == 0:
        return
    chunk = pc.take(lines, pa.array(idx))
    buf = _join(chunk)
    t = _read_buffer(buf, _JSON_SCHEMA)
    if (t is None or t.num_rows != len(idx)) and len(idx) > 2048:
        mid = len(idx) // 2
        _read_json_rows(lines, idx[:mid], out, errors, first_line)
        _read_json_rows(lines, idx[mid:], out, errors, first_line)
        return
    if t is None or t.num_rows != len(idx):
        # unusual types or broken lines somewhere in this small block: read it line by line
        t, ok, why = _read_lines_python(chunk.to_pylist())
        for i in np.flatnonzero(~ok):
            errors.append(ParseError(first_line + int(idx[i]), why[int(i)]))
        idx = idx[ok]
    out.append(t.append_column("_line", pa.array(idx.astype(np.int64))))


def _read_buffer(buf: pa.Buffer, schema: pa.Schema) -> pa.Table | None:
    try:
        return pj.read_json(pa.BufferReader(buf),
                            read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, buf.size + 1)),
                            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                                          newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _read_lines_python(lines: list[str]) -> tuple[pa.Table, np.ndarray, dict[int, str]]:
    """The careful path for a block the typed reader refused: per line, lenient on types.

    Numbers written as strings ("200") are accepted; a value that is not a number where one
    is needed, or a line that is not a JSON object, is reported with the reason.
    """
    cols: dict[str, list] = {k: [] for k in (*_JSON_STRINGS, *_JSON_NUMBERS)}
    ok = np.zeros(len(lines), dtype=bool)
    why: dict[int, str] = {}
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            why[i] = f"invalid JSON: {exc}"
            continue
        if not isinstance(obj, dict):
            why[i] = "not a JSON object"
            continue
        row: dict[str, object] = {}
        for k in _JSON_STRINGS:
            v = obj.get(k)
            row[k] = None if v is None else (v if isinstance(v, str) else json.dumps(v))
        if row["start_time"] is None and "start_time" in obj:
            why[i] = "start_time is not a string"
            continue
        bad = None
        for k in _JSON_NUMBERS:
            v = obj.get(k)
            if v is None or v in ("", "-"):
                row[k] = None
            elif isinstance(v, bool) or not isinstance(v, (int, float, str)):
                bad = k
            elif isinstance(v, str):
                try:
                    row[k] = int(v)
                except ValueError:
                    bad = k
            else:
                row[k] = int(v)
            if bad:
                break
        if bad:
            why[i] = f"{bad} is not a number: {obj.get(bad)!r}"[:160]
            continue
        ok[i] = True
        for k, v in row.items():
            cols[k].append(v)
    return pa.table({f.name: pa.array(cols[f.name], f.type) for f in _JSON_SCHEMA}), ok, why


def _join(chunk: pa.Array) -> pa.Buffer:
    """Lines -> one newline-separated buffer, built by Arrow (no Python object per line)."""
    values = chunk.cast(pa.large_string())
    one_list = pa.LargeListArray.from_arrays(pa.array([0, len(values)], pa.int64()), values)
    return pc.binary_join(one_list, pa.scalar("\n", pa.large_string()))[0].as_buffer()


def parse_text_log(data: bytes | str, context: LogContext = LogContext(), first_line: int = 1) -> AccessLogResult:
    """Istio default text format -> requests rows (+ errors with line numbers).

    The format has exactly 14 double quotes per line, so splitting on '"' and then on spaces
    finds every field with memchr-speed kernels; a line that does not have that exact shape
    (or whose numbers are not numbers) is reported with its line number.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    lines = _split_lines(raw)
    if len(lines) == 0:
        return AccessLogResult(REQUESTS.empty_table())
    blank = pc.equal(pc.binary_length(pc.ascii_trim_whitespace(lines)), 0).to_numpy(zero_copy_only=False)
    parts = pc.split_pattern(pc.utf8_rtrim(lines, characters=" \r\t"), '"')
    ok = pc.list_value_length(parts).to_numpy() == 15
    idx = np.flatnonzero(ok)
    cols: dict[str, pa.Array] = {}
    if len(idx):
        flat = pc.list_flatten(pc.take(parts, pa.array(idx)))
        part = lambda j: pc.take(flat, pa.array(np.arange(len(idx)) * 15 + j))  # noqa: E731
        groups = {  # quoted segments and the space-separated runs between them
            0: ("@time",), 1: ("method", "path", "protocol"),
            2: ("response_code", "response_flags", "response_code_details", "connection_termination_details"),
            4: ("bytes_received", "bytes_sent", "duration", "upstream_service_time"),
            14: ("upstream_cluster", "upstream_local_address", "downstream_local_address", "downstream_remote_address",
                 "requested_server_name", "route_name"),
        }
        quoted = {3: "upstream_transport_failure_reason", 5: "x_forwarded_for", 7: "user_agent", 9: "request_id",
                  11: "authority", 13: "upstream_host"}
        good = np.ones(len(idx), dtype=bool)
        for j, name in quoted.items():
            cols[name] = part(j)
        for j in (6, 8, 10, 12):  # single spaces between quoted fields
            good &= pc.equal(part(j), " ").to_numpy(zero_copy_only=False)
        for j, names in groups.items():
            seg = part(j)
            if j == 0:
                good &= pc.match_substring_regex(seg, r"^\[[^\]]*\] $").to_numpy(zero_copy_only=False)
                cols["start_time"] = pc.utf8_slice_codeunits(seg, 1, -2)
                continue
            toks = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(seg))
            n_tok = pc.list_value_length(toks).to_numpy()
            want = len(names)
            fits = (n_tok == want) | ((j == 14) & (n_tok == want - 1))  # older formats end before ROUTE_NAME
            good &= fits
            for k, name in enumerate(names):
                cols[name] = _nth(toks, k)
        for name in ("response_code", "bytes_received", "bytes_sent", "duration"):
            good &= pc.match_substring_regex(cols[name], r"^[0-9]+$").to_numpy(zero_copy_only=False)
        ok[idx[~good]] = False
        keep = pa.array(good)
        cols = {k: v.filter(keep) for k, v in cols.items()}
        for name in ("response_code", "bytes_received", "bytes_sent", "duration"):
            cols[name] = pc.cast(cols[name], pa.int64())
        idx = idx[good]
    errors = [ParseError(first_line + int(i), "line does not match Istio's access log format") for i in np.flatnonzero(~ok & ~blank)]
    if not len(idx):
        return AccessLogResult(REQUESTS.empty_table(), errors)
    cols["_line"] = pa.array(idx.astype(np.int64))
    table, bad = derive_requests(pa.table(cols), context)
    errors.extend(ParseError(first_line + int(i), msg) for i, msg in bad)
    errors.sort(key=lambda e: e.line)
    return AccessLogResult(table, errors)


def _nth(lists: pa.Array, k: int) -> pa.Array:
    """Element k of each list ('' when the list is shorter), by position arithmetic (no Python loop)."""
    lengths = pc.list_value_length(lists).to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pos = np.where(lengths > k, starts + k, -1)
    return pc.fill_null(pc.take(pc.list_flatten(lists), pa.array(pos, mask=pos < 0)), "")


def parse_access_log(data: bytes | str, context: LogContext = LogContext(), first_line: int = 1) -> AccessLogResult:
    """Either format, decided by the first non-blank character ('{' = JSON)."""
    head = (data[:4096].decode(errors="replace") if isinstance(data, bytes) else data[:4096]).lstrip()
    parse = parse_json_log if head.startswith("{") else parse_text_log
    return parse(data, context, first_line)


def _split_lines(raw: bytes) -> pa.Array:
    if not raw:
        return pa.array([], pa.string())
    text = raw.decode("utf-8", errors="replace")
    if text.endswith("\n"):
        text = text[:-1]
    return pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten().cast(pa.string())


def _col(t: pa.Table, name: str, typ: pa.DataType = pa.string()) -> pa.Array:
    if name in t.column_names:
        c = t.column(name)
        c = c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
        return pc.cast(c, typ) if c.type != typ else c
    return pa.nulls(t.num_rows, typ)


def _clean(a: pa.Array) -> pa.Array:
    """Envoy writes '-' (text) or null (JSON) for a missing value; the table holds ''."""
    a = pc.fill_null(a, "")
    return pc.if_else(pc.equal(a, "-"), "", a)


def _per_distinct(col: pa.Array, fn) -> pa.Array:
    """Apply `fn` to each distinct value once: these columns repeat a handful of values."""
    enc = pc.dictionary_encode(col)
    return pc.take(fn(enc.dictionary), enc.indices)


def _ns_of(principal: pa.Array) -> pa.Array:
    return _per_distinct(principal, lambda d: pc.fill_null(pc.struct_field(pc.extract_regex(d, r"/ns/(?P<ns>[^/]+)/"), "ns"), "unknown"))


def _or_unknown(a: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(a, ""), "unknown", a)


def derive_requests(raw: pa.Table, ctx: LogContext) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Raw access-log fields -> requests table in the store's schema (vectorized).

    Returns the table and (line index, reason) for rows dropped for an unreadable timestamp.
    """
    n = raw.num_rows
    line = _col(raw, "_line", pa.int64())
    start = _clean(_col(raw, "start_time"))
    time_ok = pc.match_substring_regex(start, _ISO_TIME)
    bad_idx = np.flatnonzero(~time_ok.to_numpy(zero_copy_only=False))
    bad = [(int(line[int(i)].as_py()), f"invalid start_time {start[int(i)].as_py()!r}") for i in bad_idx]
    if len(bad_idx):
        raw, start, line = raw.filter(time_ok), start.filter(time_ok), line.filter(time_ok)
        n = raw.num_rows
    start_ts = pc.cast(start, TS)

    cluster = _clean(_col(raw, "upstream_cluster"))
    sni = _clean(_col(raw, "requested_server_name"))
    # No upstream cluster (NR, FI before routing...): an inbound listener is recognised by the
    # mesh SNI; anything else is a client-side (source) request, as Istio reports NR.
    no_cluster = pc.equal(cluster, "")
    inbound = pc.or_(pc.starts_with(cluster, "inbound|"), pc.and_(no_cluster, pc.starts_with(sni, "outbound_")))
    outbound = pc.and_(pc.invert(inbound), pc.or_(pc.starts_with(cluster, "outbound|"), no_cluster))
    reporter = pc.if_else(outbound, "source", pc.if_else(inbound, "destination", "unknown"))
    down_san = _clean(_col(raw, "downstream_peer_uri_san"))
    up_san = _clean(_col(raw, "upstream_peer_uri_san"))
    tls = _clean(_col(raw, "downstream_tls_version"))

    def const(v: str) -> pa.Array:
        return pa.repeat(pa.scalar(v, pa.string()), n)

    me_wl, me_ns, me_pr = const(ctx.workload), const(ctx.namespace), const(ctx.principal)
    unknown = const("unknown")
    src_principal = pc.if_else(inbound, _or_unknown(down_san), pc.if_else(outbound, me_pr, unknown))
    dst_principal = pc.if_else(outbound, _or_unknown(up_san), pc.if_else(inbound, me_pr, unknown))
    src_ns = pc.if_else(inbound, _ns_of(src_principal), pc.if_else(outbound, me_ns, unknown))
    dst_ns = pc.if_else(outbound, _ns_of(dst_principal), pc.if_else(inbound, me_ns, unknown))
    src_wl = pc.if_else(outbound, me_wl, unknown)
    dst_wl = pc.if_else(inbound, me_wl, unknown)
    # destination service: outbound|port|subset|host, or the SNI outbound_.port_.subset_.host on inbound
    out_host = _per_distinct(cluster, lambda d: pc.struct_field(pc.extract_regex(d, r"^outbound\|[^|]*\|[^|]*\|(?P<h>.*)$"), "h"))
    sni_host = _per_distinct(sni, lambda d: pc.struct_field(pc.extract_regex(d, r"^outbound_\.[^_]*_\.[^_]*_\.(?P<h>.*)$"), "h"))
    authority_host = _per_distinct(_clean(_col(raw, "authority")), lambda d: pc.struct_field(pc.extract_regex(d, r"^(?P<h>[^:]+)"), "h"))
    dst_service = pc.if_else(outbound, out_host, pc.if_else(inbound, sni_host, pa.scalar(None, pa.string())))
    dst_service = pc.fill_null(pc.coalesce(dst_service, authority_host), "unknown")
    mtls = pc.if_else(outbound, pc.not_equal(up_san, ""),
                      pc.or_(pc.not_equal(down_san, ""), pc.or_(pc.not_equal(tls, ""), pc.starts_with(sni, "outbound_"))))
    mtls = pc.and_(mtls, pc.or_(outbound, inbound))
    tp = _clean(_col(raw, "traceparent"))
    tp_ok = pc.match_substring_regex(tp, r"^[0-9a-fA-F]{2}-[0-9a-fA-F]{32}-")
    trace = pc.if_else(tp_ok, pc.utf8_slice_codeunits(tp, 3, 35), pa.scalar(None, pa.string()))
    flags = pc.fill_null(_col(raw, "response_flags"), "-")
    cols = {
        s.START_TIME: start_ts, s.REPORTER: reporter,
        s.SOURCE_WORKLOAD: src_wl, s.SOURCE_WORKLOAD_NAMESPACE: src_ns, s.SOURCE_PRINCIPAL: src_principal,
        s.DESTINATION_WORKLOAD: dst_wl, s.DESTINATION_WORKLOAD_NAMESPACE: dst_ns, s.DESTINATION_PRINCIPAL: dst_principal,
        s.DESTINATION_SERVICE: dst_service,
        s.METHOD: _clean(_col(raw, "method")), s.PATH: _clean(_col(raw, "path")),
        s.AUTHORITY: _clean(_col(raw, "authority")), s.PROTOCOL: _clean(_col(raw, "protocol")),
        s.RESPONSE_CODE: pc.fill_null(_col(raw, "response_code", pa.int64()), 0).cast(pa.int32()),
        s.RESPONSE_FLAGS: pc.if_else(pc.equal(flags, ""), "-", flags),
        s.RESPONSE_CODE_DETAILS: _clean(_col(raw, "response_code_details")),
        s.UPSTREAM_TRANSPORT_FAILURE_REASON: _clean(_col(raw, "upstream_transport_failure_reason")),
        s.DURATION_MS: pc.cast(pc.fill_null(_col(raw, "duration", pa.int64()), 0), pa.float64()),
        s.BYTES_RECEIVED: pc.fill_null(_col(raw, "bytes_received", pa.int64()), 0),
        s.BYTES_SENT: pc.fill_null(_col(raw, "bytes_sent", pa.int64()), 0),
        s.UPSTREAM_CLUSTER: cluster, s.UPSTREAM_HOST: _clean(_col(raw, "upstream_host")),
        s.REQUEST_ID: _clean(_col(raw, "request_id")), s.TRACE_ID: pc.fill_null(pc.utf8_lower(trace), ""),
        s.MTLS: mtls, s.LOG_SOURCE: const(ctx.source),
    }
    arrays = []
    for f in REQUESTS:
        a = cols[f.name]
        arrays.append(pc.dictionary_encode(a).cast(f.type) if pa.types.is_dictionary(f.type) else a.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=REQUESTS), bad
