"""ztunnel (Istio ambient's node proxy) access-log lines -> requests rows, one per TCP connection.

ztunnel writes one line when a connection completes (src/proxy/metrics.rs, `access_log!`): its own log header
(time, level, the target `access`), the message `connection complete`, then `key=value` fields: `src.addr`,
`src.workload` (the pod), `src.namespace`, `src.identity` (only under mTLS), the same for `dst.*` plus
`dst.hbone_addr` and `dst.service`, `direction` (outbound = the client's ztunnel), `bytes_sent`, `bytes_recv`,
`duration` ("13ms"), and `error` when the connection failed. Values are quoted Rust strings (1.23 on) or bare
(1.22), fields absent when ztunnel had no value; the header is tab-separated (Istio's format) or spaced (the
tracing default `INFO access:`, or a log pasted where tabs became spaces). Unlike a sidecar's line, it names
both peers, so each row's peers come from the line, not from which file it is in.

How a connection becomes a row, as Istio's own TCP telemetry would count it: start = log time - duration;
response code 0 (TCP); bytes as a sidecar's TCP line counts them (received = what the client sent); the
failure's response flag is the one ztunnel's metrics give that error (`CONNECT`, `DENY`, ...), its text the
response-code details. A pod name `name-<replicaset hash>-<suffix>` is its Deployment's workload name, as the
metrics label it.

Lines that cannot carry a record are refused one by one with a reason: ztunnel's other log lines (xDS, DNS,
`connection opened`), and connection lines naming no workload or service (ztunnel before 1.22 wrote only
addresses; `connection failed` lines of early denials too). All of it is vectorised (RE2 over the lines);
only the distinct quoted values holding a backslash are unescaped in Python.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema as s
from collector.parse.times import cast_each_distinct
from collector.tables import REQUESTS, TS, SPECS, conform

_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z$"
# a ztunnel log line: RFC 3339 UTC time, a level, a target (`access`, `xds::client`, ...), then the rest
HEAD = (r"^(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z)[ \t]+"
        r"(?P<level>(?i:trace|debug|info|warn|error))[ \t]+(?P<target>\S+?):?[ \t]+(?P<rest>.*?)[ \t\r]*$")
_FIELDS = ("src.workload", "src.namespace", "src.identity", "dst.addr", "dst.service", "dst.workload",
           "dst.namespace", "dst.identity", "direction", "bytes_sent", "bytes_recv", "duration", "error")
_POD = r"-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$"  # ReplicaSet hash + pod suffix
# ztunnel's response flag per error (proxy::Error's Display -> ResponseFlags in metrics.rs); any other error: CONNECT
_ERROR_FLAGS = ((r"^connection closed due to policy", "DENY"), (r"^tls error", "TLS_FAILURE"),
                (r"^(?:http2 handshake failed|h2 failed)", "H2_HANDSHAKE_FAILURE"),
                (r"^connection timed out, maybe a NetworkPolicy", "NETWORK_POLICY"), (r"^identity error", "IDENTITY_ERROR"),
                (r"^connection closed: peer certificate revoked", "CERT_REVOKED"))
_NOT_A_CONNECTION = "ztunnel log line that records no connection (not target/scope access, message connection complete)"
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def looks_like_ztunnel(lines: pa.Array) -> np.ndarray:
    """Which lines start like a ztunnel log line (time, level, target)."""
    return pc.match_substring_regex(lines, HEAD).to_numpy(zero_copy_only=False)


def read_ztunnel(lines: pa.Array, idx: np.ndarray, source: str = "") -> tuple[pa.Table, np.ndarray, list[tuple[int, str, str]]]:
    """lines[idx] (each known to match HEAD) -> (requests rows, the 0-based line of each row, refused lines as
    (line, message, reason))."""
    idx = np.asarray(idx, dtype=np.int64)
    head = pc.extract_regex(pc.take(lines, pa.array(idx)), HEAD)
    target, rest = head.field("target"), head.field("rest")
    is_access = pc.and_(pc.equal(target, "access"), pc.match_substring_regex(
        rest, r"^connection (?:complete|failed)(?:[ \t]|$)")).to_numpy(zero_copy_only=False)
    bad: list[tuple[int, str, str]] = [(int(i), _NOT_A_CONNECTION, "not_a_connection") for i in idx[~is_access]]
    keep = np.flatnonzero(is_access)
    if not len(keep):
        return REQUESTS.empty_table(), np.zeros(0, np.int64), bad
    rest = pc.take(rest, pa.array(keep))
    time = pc.take(head.field("time"), pa.array(keep))
    table, rows, more_bad = connection_rows(time, {name: _field(rest, name) for name in _FIELDS}, idx[keep], source)
    return table, rows, sorted(bad + more_bad)


# ztunnel's JSON lines (LOG_FORMAT=json): the same fields as keys, `time`, `scope` (the target) and `message`
JSON_SCHEMA = pa.schema([("time", pa.string()), ("scope", pa.string()), ("message", pa.string())]
                        + [(k, pa.int64() if k.startswith("bytes_") else pa.string()) for k in _FIELDS])


def read_ztunnel_json(raw: pa.Table, lines: np.ndarray, source: str = "") -> tuple[pa.Table, np.ndarray, list[tuple[int, str, str]]]:
    """ztunnel JSON lines read by Arrow with `JSON_SCHEMA` (one row per line, `lines` their 0-based numbers) ->
    (requests rows, their lines, refused lines), as `read_ztunnel` for the text shape."""
    lines = np.asarray(lines, dtype=np.int64)
    is_access = pc.and_(pc.equal(pc.fill_null(raw.column("scope").combine_chunks(), ""), "access"), pc.match_substring_regex(
        pc.fill_null(raw.column("message").combine_chunks(), ""), r"^connection (?:complete|failed)$")).to_numpy(zero_copy_only=False)
    bad = [(int(i), _NOT_A_CONNECTION, "not_a_connection") for i in lines[~is_access]]
    keep = pa.array(is_access)
    raw = raw.filter(keep)
    f = {k: raw.column(k).combine_chunks() for k in _FIELDS}
    for k in ("bytes_sent", "bytes_recv"):
        f[k] = pc.cast(f[k], pa.string())
    table, rows, more_bad = connection_rows(raw.column("time").combine_chunks(), f, lines[is_access], source)
    return table, rows, sorted(bad + more_bad)


def connection_rows(time: pa.Array, f: dict[str, pa.Array], idx: np.ndarray, source: str
                    ) -> tuple[pa.Table, np.ndarray, list[tuple[int, str, str]]]:
    """Connection records' fields (one array per key of `_FIELDS`, null when absent) -> requests rows; `idx` is each
    record's line. Records without peers or readable numbers and times are refused with a reason."""
    bad: list[tuple[int, str, str]] = []
    time_ns, time_ok = _times(time)
    named = pc.or_(pc.or_(pc.is_valid(f["src.workload"]), pc.is_valid(f["dst.workload"])), pc.is_valid(f["dst.service"]))
    direction_ok = pc.is_in(f["direction"], value_set=pa.array(["inbound", "outbound"]))
    numbers = [pc.match_substring_regex(pc.fill_null(f[k], ""), r"^[0-9]{1,18}$") for k in ("bytes_sent", "bytes_recv")]
    dur_ns = _duration_ns(f["duration"])
    ok = pc.and_(pc.and_(pc.fill_null(named, False), pc.fill_null(direction_ok, False)),
                 pc.and_(pc.and_(numbers[0], numbers[1]), pc.and_(pc.is_valid(dur_ns), time_ok))).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~ok):
        row = idx[i]
        if not (named[i].as_py() and direction_ok[i].as_py()):
            bad.append((int(row), "ztunnel connection line names no workload, service or direction (ztunnel before 1.22)",
                        "no_peers"))
        else:
            bad.append((int(row), "ztunnel connection line without a readable time, bytes_sent, bytes_recv or duration",
                        "bad_number"))
    if not ok.all():
        mask = pa.array(ok)
        time_ns, dur_ns = time_ns.filter(mask), dur_ns.filter(mask)
        f = {k: v.filter(mask) for k, v in f.items()}
    lines_of_rows = idx[ok]
    n = len(lines_of_rows)
    outbound = pc.equal(f["direction"], "outbound")
    sent, recv = (pc.cast(f[k], pa.int64()) for k in ("bytes_sent", "bytes_recv"))
    start = pc.cast(pc.subtract(time_ns, dur_ns), TS)
    src_id, dst_id = pc.fill_null(f["src.identity"], ""), pc.fill_null(f["dst.identity"], "")
    error = f["error"]
    cols = {
        s.START_TIME: start,
        s.REPORTER: pc.if_else(outbound, "source", "destination"),
        s.SOURCE_WORKLOAD: _workload(f["src.workload"]), s.SOURCE_WORKLOAD_NAMESPACE: _or_unknown(f["src.namespace"]),
        s.SOURCE_PRINCIPAL: _or_unknown(src_id),
        s.DESTINATION_WORKLOAD: _workload(f["dst.workload"]),
        s.DESTINATION_WORKLOAD_NAMESPACE: _or_unknown(f["dst.namespace"]), s.DESTINATION_PRINCIPAL: _or_unknown(dst_id),
        s.DESTINATION_SERVICE: _or_unknown(f["dst.service"]),
        s.MTLS: pc.or_(pc.not_equal(src_id, ""), pc.not_equal(dst_id, "")),
        s.RESPONSE_CODE: pa.repeat(pa.scalar(0, pa.int32()), n),
        s.RESPONSE_FLAGS: _flags(error),
        s.RESPONSE_CODE_DETAILS: pc.fill_null(error, ""),
        s.DURATION_MS: pc.divide(pc.cast(dur_ns, pa.float64()), 1e6),
        # the client's side: what it sent is the request; a server's ztunnel `sent` the response (as Envoy counts)
        s.BYTES_RECEIVED: pc.if_else(outbound, sent, recv), s.BYTES_SENT: pc.if_else(outbound, recv, sent),
        s.UPSTREAM_HOST: pc.fill_null(f["dst.addr"], ""),
        s.LOG_SOURCE: pa.repeat(pa.scalar(source, pa.string()), n),
    }
    return conform(pa.table(cols), SPECS["requests"]), lines_of_rows, bad


def _times(time: pa.Array) -> tuple[pa.Array, pa.Array]:
    """RFC 3339 UTC times -> (int64 nanoseconds, which are real instants). One cast; only when it fails (Feb 30, a
    year past 2262) is each distinct value cast alone."""
    shaped = pc.fill_null(pc.match_substring_regex(time, _TIME), False)
    text = pc.if_else(shaped, time, pa.scalar(None, pa.string()))
    try:
        ns = pc.cast(pc.cast(text, TS), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ns = cast_each_distinct(text)
    return pc.fill_null(ns, 0), pc.is_valid(ns)


def _field(rest: pa.Array, key: str) -> pa.Array:
    """The value of `key=...` in each row (null when absent): a quoted Rust string (unescaped) or a bare token.
    One RE2 pass per key; the quotes come with the match and are cut off after."""
    m = pc.extract_regex(rest, r'(?:^|[ \t])%s=(?P<v>"(?:[^"\\]|\\.)*"|[^ \t"]*)' % re.escape(key))
    found = pc.is_valid(m)
    v = pc.if_else(found, m.field("v"), pa.scalar(None, pa.string()))
    quoted = pc.fill_null(pc.starts_with(v, '"'), False)
    if not pc.any(quoted).as_py():
        return v
    inner = _unescape(pc.utf8_slice_codeunits(pc.if_else(quoted, v, '""'), 1, -1))
    return pc.if_else(quoted, inner, v)


def _unescape(a: pa.Array) -> pa.Array:
    """Rust's Debug escapes (\\" \\\\ \\n \\t \\r \\u{..}) undone; only the distinct values holding a backslash."""
    if not pc.any(pc.fill_null(pc.match_substring(a, "\\"), False)).as_py():
        return a
    enc = pc.dictionary_encode(a)
    values = [None if v is None else re.sub(r"\\(u\{[0-9a-fA-F]{1,6}\}|.)", _one_escape, v) for v in enc.dictionary.to_pylist()]
    return pc.take(pa.array(values, pa.string()), enc.indices)


def _one_escape(m: re.Match) -> str:
    e = m.group(1)
    if e.startswith("u{"):
        try:
            return chr(int(e[2:-1], 16))
        except ValueError:
            return "\ufffd"
    return {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(e, e)


def _duration_ns(d: pa.Array) -> pa.Array:
    """"13ms" / "1.5s" / "250µs" -> int64 nanoseconds (null when unreadable)."""
    m = pc.extract_regex(pc.fill_null(d, ""), r"^(?P<v>[0-9]{1,15}(?:\.[0-9]{1,9})?)(?P<u>ns|us|µs|ms|s)$")
    hit = pc.is_valid(m)  # a row that did not match is a null struct whose fields may still hold ""
    value = pc.cast(pc.if_else(hit, m.field("v"), "0"), pa.float64())
    unit = pc.if_else(hit, m.field("u"), "ms")
    scale = pc.take(pa.array(list(_UNIT_NS.values()), pa.float64()),
                    pc.index_in(unit, value_set=pa.array(list(_UNIT_NS.keys()))))
    ns = pc.cast(pc.round(pc.multiply(value, scale)), pa.int64())
    return pc.if_else(hit, ns, pa.scalar(None, pa.int64()))


def _flags(error: pa.Array) -> pa.Array:
    text = pc.fill_null(error, "")
    out = pc.if_else(pc.is_valid(error), "CONNECT", "-")
    for pattern, flag in reversed(_ERROR_FLAGS):
        out = pc.if_else(pc.match_substring_regex(text, pattern), flag, out)
    return out


def _workload(pod: pa.Array) -> pa.Array:
    return _or_unknown(pc.replace_substring_regex(pc.fill_null(pod, ""), _POD, ""))


def _or_unknown(a: pa.Array) -> pa.Array:
    a = pc.fill_null(a, "")
    return pc.if_else(pc.equal(a, ""), "unknown", a)
