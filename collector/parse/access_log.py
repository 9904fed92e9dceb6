"""Envoy access logs in Istio's two shapes (JSON and the default text format) -> requests table.

Also read: the text formats of Istio releases before 1.9 (`istio_formats`), ambient ztunnel's connection lines in
text and JSON (`ztunnel_log`), and JSON lines that hold a stream of documents (`json_stream`); each only for the
lines the usual readers refuse, so a log in today's shape pays nothing for them.

Both parsers are vectorized: JSON goes through Arrow's C++ JSON reader, text through one RE2
pattern over all lines. A bad line never spoils its neighbours: lines that are not a JSON
object are set aside up front; a block the typed Arrow reader still refuses is halved until
the pieces are small (<= 2048 lines), and only those pieces are read line by line, leniently
(numbers written as strings are accepted there), with the reason for each line refused.

An access log line does not name the workload that wrote it; the file does. `LogContext`
carries that (workload, namespace, principal of the sidecar), and the reporter side is read
from the upstream cluster (`outbound|...` = source side, `inbound|...` = destination side),
like Istio's own reporter label. The peer's namespace comes from its SPIFFE identity.

Istio's special clusters are attributed as Istio's telemetry and Kiali do: `PassthroughCluster`
and `BlackHoleCluster` are outbound (reporter `source`, the sidecar is the source) and become
their own destination service; `InboundPassthroughCluster*` is inbound (reporter
`destination`). An ambient waypoint's `inbound-vip|port|proto|host` line gets reporter
`waypoint` and the full service host.

No input stops a batch: every refused line carries a short `reason` (the per-reason counter of
`collector.selfmetrics`) and its first bytes; numbers past int64 or negative, impossible
timestamps, NaN/Inf, deep nesting, invalid UTF-8 and over-long lines are refused one by one,
and if anything unforeseen still raises while deriving a batch, the batch is halved until the
offending rows are alone (only the failing batch pays for that).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from collector import schema as s
from collector.parse.exposition import ParseError
from collector.parse.istio_formats import read_older
from collector.parse.json_stream import documents
from collector.parse.times import cast_each_distinct
from collector.parse.ztunnel_log import JSON_SCHEMA as ZTUNNEL_JSON_SCHEMA
from collector.parse.ztunnel_log import looks_like_ztunnel, read_ztunnel, read_ztunnel_json
from collector.tables import REQUESTS, TS

# Istio's default text format (meshConfig.accessLogFormat unset), one named group per operator.
TEXT_PATTERN = (
    r'^\[(?P<start_time>[^\]]*)\] "(?P<method>\S*) (?P<path>.*?) (?P<protocol>\S*)" (?P<response_code>[0-9]+) '
    r'(?P<response_flags>\S+) (?P<response_code_details>\S+) (?P<connection_termination_details>\S+) '
    r'"(?P<upstream_transport_failure_reason>[^"]*)" (?P<bytes_received>[0-9]+) (?P<bytes_sent>[0-9]+) '
    r'(?P<duration>[0-9]+) (?P<upstream_service_time>\S+) "(?P<x_forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" '
    r'"(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" (?P<upstream_cluster>\S+) '
    r'(?P<upstream_local_address>\S+) (?P<downstream_local_address>\S+) (?P<downstream_remote_address>\S+) '
    r'(?P<requested_server_name>\S+)(?: (?P<route_name>\S(?:.*\S)?))?[ \t\r]*$'
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
MAX_LINE_BYTES = 1 << 20  # a longer line is refused (reason line_too_long): no real access-log line is this long
_INT64_MAX = (1 << 63) - 1
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


def parse_json_log(data: bytes | str, context: LogContext = LogContext(), first_line: int = 1,
                   stream: bool = True) -> AccessLogResult:
    """Newline-delimited Istio JSON access log -> requests rows (+ errors with line numbers).

    Lines that hold a stream of documents rather than one object each (objects written without newlines between
    them, pretty-printed objects) are read document by document (`_recover_documents`; `stream=False` reads
    lines only); a refused document is named by the line it starts on."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    first = _FIRST_CHAR.search(raw)
    if first is None:
        return AccessLogResult(REQUESTS.empty_table())
    # Fast path: the whole buffer in one go. Only when something in it is refused do we split
    # it into lines (to know which ones, and keep the rest).
    not_utf8 = _invalid_utf8_lines(raw)  # Arrow's JSON reader lets invalid UTF-8 inside strings through
    ztunnel = b'"level"' in raw and _ZTUNNEL_JSON.search(raw) is not None  # ambient's ztunnel with LOG_FORMAT=json
    whole = _read_buffer(pa.py_buffer(raw), _JSON_SCHEMA) if first.group() == b"{" and not not_utf8 and not ztunnel else None
    if whole is not None and whole.num_rows == raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1):
        table, bad = _derive_safe(whole.append_column("_line", pa.array(np.arange(whole.num_rows))), context)
        return AccessLogResult(table, _errors(raw, bad, first_line))
    lines = _split_lines(raw)
    stripped = pc.ascii_trim_whitespace(lines)
    blank = pc.equal(pc.binary_length(stripped), 0).to_numpy(zero_copy_only=False)
    shaped = pc.and_(pc.starts_with(stripped, "{"), pc.ends_with(stripped, "}")).to_numpy(zero_copy_only=False)
    too_long = pc.greater(pc.binary_length(lines), MAX_LINE_BYTES).to_numpy(zero_copy_only=False)
    early = [(int(i), f"line longer than {MAX_LINE_BYTES} bytes", "line_too_long") for i in np.flatnonzero(too_long)]
    bad_text = np.zeros(len(lines), dtype=bool)
    bad_text[[i for i in not_utf8 if i < len(lines)]] = True
    early += [(int(i), "not valid UTF-8", "invalid_utf8") for i in np.flatnonzero(bad_text & ~too_long)]
    early += [(int(i), "not a JSON object", "not_json") for i in np.flatnonzero(~blank & ~shaped & ~too_long & ~bad_text)]
    early.sort()
    errors = _errors(raw, early, first_line)
    good_idx = np.flatnonzero(shaped & ~too_long & ~bad_text)
    zt = None
    if ztunnel:
        is_zt = pc.match_substring_regex(pc.take(stripped, pa.array(good_idx)), _ZTUNNEL_JSON.pattern.decode()[4:]
                                         ).to_numpy(zero_copy_only=False)
        zt_table, zt_lines, zt_bad = _ztunnel_json_rows(stripped, good_idx[is_zt], context.source)
        zt = (zt_table, zt_lines)
        errors += _errors(raw, zt_bad, first_line)
        good_idx = good_idx[~is_zt]
    parts: list[pa.Table] = []
    _read_json_rows(stripped, good_idx, parts, errors, first_line)
    errors.sort(key=lambda e: e.line)
    table, kept = REQUESTS.empty_table(), np.zeros(0, dtype=np.int64)
    if parts:
        raw_table = pa.concat_tables(parts, promote_options="permissive")
        if len(parts) > 1:  # pieces of an isolated block come back out of order: restore the file's order
            raw_table = raw_table.take(pc.sort_indices(raw_table.column("_line")))
        table, bad = _derive_safe(raw_table, context)
        errors.extend(_errors(raw, bad, first_line))
        kept = raw_table.column("_line").to_numpy()
        if bad:
            kept = kept[~np.isin(kept, np.array([b[0] for b in bad], dtype=np.int64))]
    if zt is not None and zt[0].num_rows:
        table = _in_line_order(table, kept, [], *zt)
        kept = np.sort(np.concatenate([kept, zt[1]]))
    if stream:  # lines refused as not JSON may be a stream of documents (pretty-printed, written without newlines)
        table, errors = _recover_documents(raw, blank, table, kept, errors, context, first_line)
    errors.sort(key=lambda e: e.line)
    return AccessLogResult(table, errors)


# the first keys ztunnel's JSON formatter writes; no Envoy access log starts its objects with them
_ZTUNNEL_JSON = re.compile(rb'(?m)^\s*\{\s*"level"\s*:\s*"[A-Za-z]+"\s*,\s*"time"\s*:')


def _ztunnel_json_rows(stripped: pa.Array, idx: np.ndarray, source: str) -> tuple[pa.Table, np.ndarray, list]:
    """ztunnel's JSON lines -> rows (Arrow reads them all at once; a block it refuses is read line by line, and a
    line it refuses alone is refused as invalid JSON)."""
    if not len(idx):
        return REQUESTS.empty_table(), np.zeros(0, np.int64), []
    whole = _read_buffer(_join(pc.take(stripped, pa.array(idx))), ZTUNNEL_JSON_SCHEMA)
    if whole is not None and whole.num_rows == len(idx):
        return read_ztunnel_json(whole, idx, source)
    tables, kept, bad = [], [], []
    for i in idx:
        one = _read_buffer(_join(pc.take(stripped, pa.array([i]))), ZTUNNEL_JSON_SCHEMA)
        if one is None or one.num_rows != 1:
            bad.append((int(i), "invalid JSON (a ztunnel line with a field of the wrong type)", "invalid_json"))
        else:
            tables.append(one)
            kept.append(int(i))
    if not tables:
        return REQUESTS.empty_table(), np.zeros(0, np.int64), bad
    table, lines, more = read_ztunnel_json(pa.concat_tables(tables), np.array(kept, dtype=np.int64), source)
    return table, lines, sorted(bad + more)


def _recover_documents(raw: bytes, blank: np.ndarray, table: pa.Table, kept: np.ndarray, errors: list[ParseError],
                       context: LogContext, first_line: int) -> tuple[pa.Table, list[ParseError]]:
    """Lines the line reader refused as not JSON (or invalid JSON), where they hold a stream of documents: pretty-
    printed objects over several lines, objects written without newlines. Each run of such lines (blank lines may
    sit between them) is read document by document; its documents become rows (named by the line each starts on),
    a document still refused keeps the line reader's own error when it is one whole line (so a bad line is refused
    the same way whatever its neighbours) and is one error at its first line otherwise. Only refused lines are
    looked at, so a log of one object per line never pays for this."""
    refused = {e.line - first_line: e for e in errors if e.reason in ("not_json", "invalid_json")}
    if not refused:
        return table, errors
    text_lines = raw.split(b"\n")
    runs: list[list[int]] = []
    for i in sorted(refused):
        if runs and all(blank[k] for k in range(runs[-1][-1] + 1, i)):
            runs[-1].append(i)
        else:
            runs.append([i])
    extra_rows: list[bytes] = []
    extra_at: list[int] = []
    replaced: dict[int, list[ParseError]] = {}
    for run in runs:
        a, b = run[0], run[-1]
        docs = documents(b"\n".join(text_lines[a:b + 1]).decode("utf-8", errors="replace"))
        if not any(isinstance(d.value, dict) for d in docs):
            continue  # nothing here is a document: the line reader's errors stand
        mine: list[ParseError] = []
        for k, d in enumerate(docs):
            line = a + d.line
            end = a + docs[k + 1].line if k + 1 < len(docs) else b + 1
            if isinstance(d.value, dict):
                extra_rows.append(json.dumps(d.value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
                extra_at.append(line)
            elif line in refused and end - line <= 1 and sum(x.line == d.line for x in docs) == 1:
                mine.append(refused[line])
            elif d.error:
                mine += _errors(raw, [(line, d.error, d.reason)], first_line)
            else:
                mine += _errors(raw, [(line, "not a JSON object", "not_json")], first_line)
        for i in run:
            replaced[i] = []
        for e in mine:
            replaced.setdefault(e.line - first_line, []).append(e)
    if not extra_rows:
        return table, errors
    inner = parse_json_log(b"\n".join(extra_rows) + b"\n", context, first_line=1, stream=False)
    at = np.array(extra_at, dtype=np.int64)
    found = [ParseError(first_line + int(at[e.line - 1]), e.message, e.reason, e.sample) for e in inner.errors]
    refused_inner = {e.line for e in inner.errors}
    rows_at = np.array([x for k, x in enumerate(extra_at) if k + 1 not in refused_inner], dtype=np.int64)
    errors = [e for e in errors if (e.line - first_line) not in replaced]
    errors += [e for es in replaced.values() for e in es] + found
    errors.sort(key=lambda e: e.line)
    if inner.table.num_rows:
        table = _in_line_order(table, kept, [], inner.table, rows_at)
    return table, errors


def _invalid_utf8_lines(raw: bytes) -> list[int]:
    """0-based numbers of the lines that are not valid UTF-8; [] at C speed when the buffer is (the usual case)."""
    if raw.isascii():
        return []
    try:
        raw.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    out = []
    for i, line in enumerate(raw.split(b"\n")):  # only a buffer holding a bad line gets here
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            out.append(i)
    return out


def _errors(raw: bytes, bad: list[tuple[int, str, str]], first_line: int) -> list[ParseError]:
    """(0-based line, message, reason) -> ParseErrors carrying the first bytes of each refused line."""
    if not bad:
        return []
    starts = None
    out = []
    for i, msg, reason in bad:
        if starts is None:
            nl = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10)
            starts = np.concatenate([[0], nl + 1])
        a = int(starts[i]) if i < len(starts) else len(raw)
        b = raw.find(b"\n", a, a + 512)
        out.append(ParseError(first_line + i, msg, reason, raw[a:(b if b >= 0 else a + 512)][:512]))
    return out


def _line_errors(raw: bytes | None, lines: pa.Array, bad: list[tuple[int, str, str]], first_line: int) -> list[ParseError]:
    """`_errors`, with the samples taken from the lines themselves when there is no raw buffer."""
    if raw is not None:
        return _errors(raw, bad, first_line)
    return [ParseError(first_line + i, msg, reason, str(lines[i].as_py() or "").encode()[:512]) for i, msg, reason in bad]


_CAREFUL_LINES = 16  # a refused piece this small is read line by line (Python, lenient on types)
_WIDESPREAD = 2048  # a refused block this small whose halves both fail too: read it all line by line


def _read_json_rows(lines: pa.Array, idx: np.ndarray, out: list[pa.Table], errors: list[ParseError], first_line: int) -> None:
    """Parse lines[idx] in one go (Arrow); a block Arrow refuses is halved until the refused
    lines are alone in pieces of <= _CAREFUL_LINES, and only those are read line by line. So a few
    bad lines in a big batch cost a few small Arrow reads, not a Python pass over their blocks;
    a block where failures are everywhere (numbers written as strings) stops halving early."""
    if len(idx) == 0:
        return
    t = _try_rows(lines, idx)
    if t is not None:
        out.append(t)
        return
    _isolate_rows(lines, idx, out, errors, first_line)


def _try_rows(lines: pa.Array, idx: np.ndarray) -> pa.Table | None:
    t = _read_buffer(_join(pc.take(lines, pa.array(idx))), _JSON_SCHEMA)
    if t is None or t.num_rows != len(idx):
        return None
    return t.append_column("_line", pa.array(idx.astype(np.int64)))


def _isolate_rows(lines: pa.Array, idx: np.ndarray, out: list[pa.Table], errors: list[ParseError], first_line: int) -> None:
    """lines[idx] are known to be refused as a block: find the lines that are."""
    if len(idx) <= _CAREFUL_LINES:
        _careful_rows(lines, idx, out, errors, first_line)
        return
    mid = len(idx) // 2
    halves = (idx[:mid], idx[mid:])
    read = [_try_rows(lines, h) for h in halves]
    failed = [h for h, t in zip(halves, read) if t is None]
    out.extend(t for t in read if t is not None)
    if len(failed) == 2 and len(idx) <= _WIDESPREAD:
        for h in failed:
            _careful_rows(lines, h, out, errors, first_line)
        return
    for h in failed:
        _isolate_rows(lines, h, out, errors, first_line)


def _careful_rows(lines: pa.Array, idx: np.ndarray, out: list[pa.Table], errors: list[ParseError], first_line: int) -> None:
    chunk = pc.take(lines, pa.array(idx))
    t, ok, why = _read_lines_python(chunk.to_pylist())
    for i in np.flatnonzero(~ok):
        msg, reason = why[int(i)]
        errors.append(ParseError(first_line + int(idx[i]), msg, reason, chunk[int(i)].as_py().encode()[:512]))
    out.append(t.append_column("_line", pa.array(idx[ok].astype(np.int64))))


def _read_buffer(buf: pa.Buffer, schema: pa.Schema) -> pa.Table | None:
    try:
        return pj.read_json(pa.BufferReader(buf),
                            read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, buf.size + 1)),
                            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                                          newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _read_lines_python(lines: list[str]) -> tuple[pa.Table, np.ndarray, dict[int, tuple[str, str]]]:
    """The careful path for a block the typed reader refused: per line, lenient on types.

    Numbers written as strings ("200") are accepted; a value that is not a number where one
    is needed, or a line that is not a JSON object, is reported with the reason.
    """
    cols: dict[str, list] = {k: [] for k in (*_JSON_STRINGS, *_JSON_NUMBERS)}
    ok = np.zeros(len(lines), dtype=bool)
    why: dict[int, tuple[str, str]] = {}
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line, parse_constant=_no_constant)
        except RecursionError:
            why[i] = ("JSON nested too deeply", "too_deep")
            continue
        except ValueError as exc:
            why[i] = (f"invalid JSON: {exc}"[:200], "invalid_json")
            continue
        if not isinstance(obj, dict):
            why[i] = ("not a JSON object", "not_json")
            continue
        row: dict[str, object] = {}
        for k in _JSON_STRINGS:
            v = obj.get(k)
            row[k] = None if v is None else (v if isinstance(v, str) else json.dumps(v))
        if row["start_time"] is None and "start_time" in obj:
            why[i] = ("start_time is not a string", "bad_timestamp")
            continue
        bad = None
        for k in _JSON_NUMBERS:
            v = obj.get(k)
            if v is None or v in ("", "-"):
                row[k] = None
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                bad = (k, "bad_number", "is not a number")
            elif isinstance(v, float) and not math.isfinite(v):
                bad = (k, "bad_number", "is not finite")
            else:
                try:
                    n = int(v)
                except (ValueError, OverflowError):
                    bad = (k, "bad_number", "is not a number")
                else:
                    if not 0 <= n <= _INT64_MAX:
                        bad = (k, "number_out_of_range", "is out of range")
                    else:
                        row[k] = n
            if bad:
                break
        if bad:
            k, reason, what = bad
            why[i] = (f"{k} {what}: {str(obj.get(k))[:60]!r}", reason)
            continue
        ok[i] = True
        for k, v in row.items():
            cols[k].append(v)
    return pa.table({f.name: pa.array(cols[f.name], f.type) for f in _JSON_SCHEMA}), ok, why


def _no_constant(name: str):
    """json.loads hook: NaN/Infinity are not JSON and never a valid access-log value."""
    raise ValueError(f"{name} is not a JSON number")


def _join(chunk: pa.Array) -> pa.Buffer:
    """Lines -> one newline-separated buffer, built by Arrow (no Python object per line)."""
    values = chunk.cast(pa.large_string())
    one_list = pa.LargeListArray.from_arrays(pa.array([0, len(values)], pa.int64()), values)
    return pc.binary_join(one_list, pa.scalar("\n", pa.large_string()))[0].as_buffer()


# Lines the 14-quote split cannot place (a '"' inside a User-Agent, path or other free-text
# field: Envoy does not escape it) are read again with this pattern, over only those lines:
# the free-text fields may hold quotes, the fields after the User-Agent are anchored from the end.
LENIENT_PATTERN = (
    r'^\[(?P<start_time>[^\]]*)\] "(?P<method>\S*) (?P<path>.*?) (?P<protocol>\S*)" (?P<response_code>\S+) '
    r'(?P<response_flags>\S+) (?P<response_code_details>\S+) (?P<connection_termination_details>\S+) '
    r'"(?P<upstream_transport_failure_reason>.*?)" (?P<bytes_received>\S+) (?P<bytes_sent>\S+) '
    r'(?P<duration>\S+) (?P<upstream_service_time>\S+) "(?P<x_forwarded_for>.*?)" "(?P<user_agent>.*)" '
    r'"(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" (?P<upstream_cluster>\S+) '
    r'(?P<upstream_local_address>\S+) (?P<downstream_local_address>\S+) (?P<downstream_remote_address>\S+) '
    r'(?P<requested_server_name>\S+)(?: (?P<route_name>\S(?:.*\S)?))?[ \t\r]*$'
)
_TEXT_NUMBERS = ("response_code", "bytes_received", "bytes_sent", "duration")


def parse_text_log(data: bytes | str, context: LogContext = LogContext(), first_line: int = 1) -> AccessLogResult:
    """Istio default text format -> requests rows (+ errors with line numbers).

    The format has exactly 14 double quotes per line, so splitting on '"' and then on spaces
    finds every field with memchr-speed kernels. Lines with more quotes (Envoy writes a '"'
    inside a User-Agent as is) are read with `LENIENT_PATTERN` (RE2, over those lines only).
    Byte counts and durations may be '-' (TCP lines flushed by a log interval): kept as 0. A
    line that fits neither, or whose numbers are not numbers, is reported with its line number.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return parse_text_lines(_split_lines(raw), context, first_line, raw)


def parse_text_lines(lines: pa.Array, context: LogContext = LogContext(), first_line: int = 1,
                     raw: bytes | None = None) -> AccessLogResult:
    """`parse_text_log` over lines already apart (OpenTelemetry record bodies: one line each), so no
    joined buffer is built and split again; `raw`, when given, is where error samples are cut from."""
    if len(lines) == 0:
        return AccessLogResult(REQUESTS.empty_table())
    too_long = pc.greater(pc.binary_length(lines), MAX_LINE_BYTES).to_numpy(zero_copy_only=False)
    if too_long.any():  # never split or regex a 10 MB line: it is refused as it is
        lines = pc.if_else(pa.array(too_long), "", lines)
    # trailing blanks after the last quote land in the last part, which is trimmed before it is split
    parts = pc.split_pattern(lines, '"')
    ok = (pc.list_value_length(parts).to_numpy() == 15) & ~too_long
    idx = np.flatnonzero(ok)
    tables: list[pa.Table] = []
    bad: list[tuple[int, str, str]] = []
    if len(idx):
        cols, good = _split_fields(parts, idx)
        ok[idx[~good]] = False
        tables.append(pa.table(cols if good.all() else {k: v.filter(pa.array(good)) for k, v in cols.items()}).append_column(
            "_line", pa.array(idx[good].astype(np.int64))))
    blank = np.zeros(len(lines), dtype=bool)
    unread = np.flatnonzero(~ok)  # only lines the split could not read may be blank
    if len(unread):
        blank[unread] = pc.equal(pc.binary_length(pc.ascii_trim_whitespace(pc.take(lines, pa.array(unread)))), 0).to_numpy(
            zero_copy_only=False)
    odd = np.flatnonzero(~ok & ~blank & ~too_long)
    if len(odd):  # a release's older format (Istio before 1.9) is read by its own format string
        older, odd = read_older(lines, odd)
        tables.extend(older)
    ztunnel = None
    if len(odd):  # ambient's ztunnel: one line per TCP connection, naming both peers
        zt = looks_like_ztunnel(pc.take(lines, pa.array(odd)))
        if zt.any():
            zt_table, zt_lines, zt_bad = read_ztunnel(lines, odd[zt], context.source)
            ztunnel = (zt_table, zt_lines)
            bad += zt_bad
            odd = odd[~zt]
    if len(odd):  # quotes inside free-text fields, or a broken line: the lenient pattern decides
        m = pc.extract_regex(pc.take(lines, pa.array(odd)), LENIENT_PATTERN)
        matched = pc.is_valid(m).to_numpy(zero_copy_only=False)
        if matched.any():
            m = m.filter(pa.array(matched))
            cols = {f.name: m.field(f.name) for f in m.type}
            tables.append(pa.table(cols).append_column("_line", pa.array(odd[matched].astype(np.int64))))
        bad += [(int(i), "line does not match Istio's access log format", "format_mismatch") for i in odd[~matched]]
    bad += [(int(i), f"line longer than {MAX_LINE_BYTES} bytes", "line_too_long") for i in np.flatnonzero(too_long)]
    rows = None
    if tables:
        rows = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        rows, refused = _text_numbers(rows)
        bad += refused
    if rows is None or rows.num_rows == 0:
        bad.sort()
        table = ztunnel[0] if ztunnel is not None else REQUESTS.empty_table()
        return AccessLogResult(table, _line_errors(raw, lines, bad, first_line))
    if len(tables) > 1:
        rows = rows.take(pc.sort_indices(rows.column("_line")))
    table, derived_bad = _derive_safe(rows, context)
    bad += derived_bad
    bad.sort()
    if ztunnel is not None and ztunnel[0].num_rows:
        table = _in_line_order(table, rows.column("_line").to_numpy(), derived_bad, *ztunnel)
    return AccessLogResult(table, _line_errors(raw, lines, bad, first_line))


def _in_line_order(table: pa.Table, lines: np.ndarray, refused: list, other: pa.Table, other_lines: np.ndarray) -> pa.Table:
    """Two row sets of one batch merged back into the file's order (readers attribute rows to files by order)."""
    kept = lines[~np.isin(lines, np.array([b[0] for b in refused], dtype=np.int64))] if refused else lines
    both = pa.concat_tables([table, other]).unify_dictionaries().combine_chunks()
    return both.take(pa.array(np.argsort(np.concatenate([kept, other_lines]), kind="stable")))


def _split_fields(parts: pa.Array, idx: np.ndarray) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Fields of the lines `idx` (each split on '"' into exactly 15 parts); and which fit the format.

    Why it is shaped this way (it is most of the text parse): the 15 parts of every line sit back
    to back in one flat array, so a part is a strided take; the single-space separators are
    checked on the flat offsets and bytes without taking them; each space-separated run is split
    once and all its tokens come out in ONE take (values of rows that do not fit are never read:
    those rows are dropped). Fields no rule reads (x_forwarded_for, user_agent, addresses,
    upstream_service_time, connection_termination_details) are checked but not copied.
    """
    m = len(idx)
    every = m == len(parts) and (m == 0 or (idx[0] == 0 and idx[-1] == m - 1))
    flat = pc.list_flatten(parts if every else pc.take(parts, pa.array(idx)))
    width = np.int64 if pa.types.is_large_string(flat.type) else np.int32
    offsets = np.frombuffer(flat.buffers()[1], dtype=width, count=len(flat) + 1, offset=flat.offset * np.dtype(width).itemsize)
    data = np.frombuffer(flat.buffers()[2], dtype=np.uint8) if flat.buffers()[2] is not None else np.zeros(0, np.uint8)
    rows15 = np.arange(m, dtype=np.int64) * 15
    part = lambda j: pc.take(flat, pa.array(rows15 + j))  # noqa: E731
    cols: dict[str, pa.Array] = {}
    good = np.ones(m, dtype=bool)
    for j in (6, 8, 10, 12):  # single spaces between quoted fields
        at = offsets[rows15 + j]
        one = (offsets[rows15 + j + 1] - at) == 1
        good &= one & (data[np.where(one, at, 0)] == 32) if len(data) else np.zeros(m, dtype=bool)
    for j, name in ((3, "upstream_transport_failure_reason"), (9, "request_id"), (11, "authority"), (13, "upstream_host")):
        cols[name] = part(j)
    seg = part(0)
    good &= pc.match_substring_regex(seg, r"^\[[^\]]*\] $").to_numpy(zero_copy_only=False)
    cols["start_time"] = pc.utf8_slice_codeunits(seg, 1, -2)
    # (part, how many tokens, the wanted ones by position)
    for j, want, names in ((1, 3, ()), (2, 4, ((0, "response_code"), (1, "response_flags"), (2, "response_code_details"))),
                           (4, 4, ((0, "bytes_received"), (1, "bytes_sent"), (2, "duration"))),
                           (14, 6, ((0, "upstream_cluster"), (4, "requested_server_name"), (5, "route_name")))):
        seg = part(j)
        n_tok, starts, tok_flat = _tokens(seg)
        top = max(len(tok_flat) - 1, 0)
        if j == 1:  # a path with spaces (Envoy does not escape them): method first, protocol last
            fits = n_tok >= want
            pos = np.concatenate([starts, starts + 1, starts + n_tok - 1])
            got = pc.take(tok_flat, pa.array(np.clip(pos, 0, top))) if len(tok_flat) else pa.nulls(3 * m, pa.string())
            cols["method"], cols["path"], cols["protocol"] = got.slice(0, m), got.slice(m, m), got.slice(2 * m, m)
            spaced = np.flatnonzero(n_tok > want)
            if len(spaced):
                where = np.arange(m)
                where[spaced] = m + np.arange(len(spaced))
                both = pa.concat_arrays([cols["path"], _middle(pc.take(seg, pa.array(spaced)))])
                cols["path"] = pc.take(both, pa.array(where))
            good &= fits
            continue
        if j == 14:  # older formats end before ROUTE_NAME; a route name (any text, VirtualService http[].name) may hold spaces
            fits = n_tok >= want - 1
        else:
            fits = n_tok == want
        good &= fits
        pos = np.concatenate([starts + k for k, _ in names])
        missing = np.concatenate([n_tok <= k for k, _ in names])  # only route_name may be missing in a row that fits
        got = pc.take(tok_flat, pa.array(np.clip(pos, 0, top), mask=missing)) if len(tok_flat) else pa.nulls(len(pos), pa.string())
        got = pc.fill_null(got, "")
        for k, (_, name) in enumerate(names):
            cols[name] = got.slice(k * m, m)
        if j == 14:
            spaced = np.flatnonzero(n_tok > want)
            if len(spaced):  # the route name is the rest of the line, as written
                where = np.arange(m)
                where[spaced] = m + np.arange(len(spaced))
                both = pa.concat_arrays([cols["route_name"], _after_tokens(pc.take(seg, pa.array(spaced)), want - 1)])
                cols["route_name"] = pc.take(both, pa.array(where))
    return cols, good


def _tokens(seg: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Whitespace-separated tokens of each row of `seg`: (count per row, where each row's first token sits in
    the flat token array, the flat tokens). Why through a dictionary: these runs (" 200 - via_upstream - ",
    method/protocol, cluster and addresses) repeat within a batch, and splitting is the costly step; each
    distinct run is split once, and rows point at its tokens. Runs that are mostly distinct (byte counts and
    durations), judged on the first rows, are split as they are: hashing them first would only add cost."""
    probe = seg.slice(0, 2048)
    codes, distinct = None, seg
    if 4 * len(pc.unique(probe)) <= len(probe):
        enc = pc.dictionary_encode(seg)
        if not enc.indices.null_count and 2 * len(enc.dictionary) <= len(seg):
            codes, distinct = enc.indices.to_numpy(zero_copy_only=False), enc.dictionary
    toks = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(distinct))
    n_tok = pc.list_value_length(toks).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(n_tok)[:-1]]).astype(np.int64)
    tok_flat = pc.list_flatten(toks)
    if codes is None:
        return n_tok, starts, tok_flat
    return n_tok[codes], starts[codes], tok_flat


def _middle(seg: pa.Array) -> pa.Array:
    """'METHOD path with spaces PROTOCOL' -> the path (between the first and the last space)."""
    return pc.fill_null(pc.struct_field(pc.extract_regex(seg, r"^\S* (?P<p>.*) \S*$"), "p"), "")


def _after_tokens(seg: pa.Array, k: int) -> pa.Array:
    """What follows the first `k` whitespace-separated tokens of each row, its inner spacing kept, ends trimmed."""
    return pc.fill_null(pc.struct_field(pc.extract_regex(seg, r"^\s*(?:\S+\s+){%d}(?P<rest>.*?)\s*$" % k), "rest"), "")


def _text_numbers(rows: pa.Table) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Check and cast the numeric text fields: digits (at most 18, so they fit int64), or '-'
    for byte counts and durations (TCP lines written before the connection ends)."""
    line = rows.column("_line").to_numpy()
    keep = np.ones(rows.num_rows, dtype=bool)
    bad: list[tuple[int, str, str]] = []
    cast: dict[str, pa.Array] = {}
    for name in _TEXT_NUMBERS:
        col = rows.column(name).combine_chunks() if name in rows.column_names else pa.nulls(rows.num_rows, pa.string())
        absent = pc.is_null(col).to_numpy(zero_copy_only=False)  # a format without the field (Istio 1.0's TCP lines)
        col = pc.fill_null(col, "")
        digits = pc.match_substring_regex(col, r"^[0-9]+$").to_numpy(zero_copy_only=False)
        dash = (pc.equal(col, "-").to_numpy(zero_copy_only=False) & (name != "response_code")) | absent
        fits = digits & (pc.binary_length(col).to_numpy(zero_copy_only=False) <= 18)
        for i in np.flatnonzero(keep & digits & ~fits):
            bad.append((int(line[i]), f"{name} is out of range", "number_out_of_range"))
        for i in np.flatnonzero(keep & ~digits & ~dash):
            bad.append((int(line[i]), f"{name} is not a number", "bad_number"))
        keep &= fits | dash
        cast[name] = pc.if_else(pa.array(fits), col, pa.scalar(None, pa.string()))
    for name, col in cast.items():
        i = rows.schema.get_field_index(name)
        rows = rows.set_column(i, name, pc.cast(col, pa.int64())) if i >= 0 else rows.append_column(name, pc.cast(col, pa.int64()))
    return (rows if keep.all() else rows.filter(pa.array(keep))), bad


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


def _clean_dict(a: pa.Array) -> pa.DictionaryArray:
    """`_clean`, dictionary-encoded for the store: the few distinct values are cleaned, not every row.
    Same values and the same dictionary order (first occurrence) as encoding the cleaned column."""
    enc = pc.dictionary_encode(a, null_encoding="encode")
    clean = pc.dictionary_encode(_clean(enc.dictionary))  # '-', null and '' fold into one ''
    return pa.DictionaryArray.from_arrays(pc.take(clean.indices, enc.indices), clean.dictionary)


def _per_distinct(col: pa.Array, fn) -> pa.Array:
    """Apply `fn` to each distinct value once: these columns repeat a handful of values."""
    enc = pc.dictionary_encode(col)
    return pc.take(fn(enc.dictionary), enc.indices)


def _ns_of(principal: pa.Array) -> pa.Array:
    return _per_distinct(principal, lambda d: pc.fill_null(pc.struct_field(pc.extract_regex(d, r"/ns/(?P<ns>[^/]+)/"), "ns"), "unknown"))


def _or_unknown(a: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(a, ""), "unknown", a)


def _derive_safe(raw: pa.Table, ctx: LogContext) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """`derive_requests`, but a batch it cannot derive is halved until the rows that break it
    are alone and refused (reason `unreadable`); every other row is kept exactly once."""
    try:
        return derive_requests(raw, ctx)
    except Exception as exc:  # noqa: BLE001 - isolate whatever the row holds; never lose the batch
        if raw.num_rows <= 1:
            lines = raw.column("_line").to_pylist() if "_line" in raw.column_names else [0]
            return REQUESTS.empty_table(), [(int(lines[0] or 0), f"unreadable line: {exc}"[:200], "unreadable")]
    mid = raw.num_rows // 2
    a, bad_a = _derive_safe(raw.slice(0, mid), ctx)
    b, bad_b = _derive_safe(raw.slice(mid), ctx)
    return pa.concat_tables([a, b]), bad_a + bad_b


def _to_timestamps(start: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """ISO strings -> timestamps, and which parsed. One cast for the batch; only when it fails
    (an impossible date such as Feb 30, or a year past 2262) is each distinct value cast alone."""
    try:
        return pc.cast(start, TS), np.ones(len(start), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    plausible = _plausible_times(start)  # the usual culprits, found without a Python loop
    try:
        ts = pc.cast(pc.if_else(pa.array(plausible), start, pa.scalar(None, pa.string())), TS)
        return pc.fill_null(ts, pa.scalar(0, TS)), plausible & pc.is_valid(ts).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ts = cast_each_distinct(start)
    ok = pc.is_valid(ts).to_numpy(zero_copy_only=False)
    return pc.fill_null(ts, 0).cast(TS), ok


def _plausible_times(start: pa.Array) -> np.ndarray:
    """Which ISO strings (already matching _ISO_TIME) name a real instant in timestamp[ns] range:
    year 1678-2261, month 1-12, a day that month has (leap years too), hour < 24, minute and second < 60."""
    def num(a: int, b: int) -> np.ndarray:
        part = pc.utf8_slice_codeunits(start, a, b)
        ok = pc.match_substring_regex(part, r"^[0-9]+$")
        return pc.cast(pc.if_else(ok, part, "0"), pa.int64()).to_numpy(zero_copy_only=False)
    y, mo, d, h, mi, sec = num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo, 0, 12)] + (leap & (mo == 2))
    return (y >= 1678) & (y <= 2261) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= days) & (h < 24) & (mi < 60) & (sec < 60)


_SPECIAL_OUT = ("PassthroughCluster", "BlackHoleCluster")  # Istio's egress catch-alls: their own service


_PEER_FIELDS = ("upstream_cluster", "requested_server_name", "downstream_peer_uri_san", "upstream_peer_uri_san",
                "downstream_tls_version", "authority")


def _distinct_rows(raw: pa.Table, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct combination of `names`, in order of first appearance; each row's combination).
    Why first appearance: a column spread from the combinations then has the same dictionary order as encoding
    the whole column would give."""
    n = raw.num_rows
    key, size = np.zeros(n, dtype=np.int64), 1
    for name in names:
        enc = pc.dictionary_encode(_col(raw, name), null_encoding="encode")
        k = max(len(enc.dictionary), 1)
        if size * k >= 1 << 62:  # renumber the combinations so far (at most n of them) before widening
            key, size = _renumber(key)
        key = key * k + enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        size *= k
    inverse, m = _renumber(key)
    if m == n:
        return np.arange(n, dtype=np.int64), inverse
    seen = np.maximum.accumulate(inverse)
    new = np.empty(n, dtype=bool)  # codes come in order of first appearance: a row is first when its code is the highest so far
    new[0] = True
    new[1:] = inverse[1:] > seen[:-1]
    return np.flatnonzero(new), inverse


def _renumber(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..m-1 for the distinct values of `key`, in order of first appearance (hashing, not sorting)."""
    enc = pc.dictionary_encode(pa.array(key, pa.int64()))
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(enc.dictionary)


def _spread(a: pa.Array, inverse: np.ndarray, needed: bool) -> pa.Array:
    """Values per distinct combination -> values per row; strings come out dictionary-encoded (first appearance order)."""
    if not pa.types.is_string(a.type):
        return pc.take(a, pa.array(inverse)) if needed else a
    enc = pc.dictionary_encode(a)
    if enc.indices.null_count:
        return pc.take(a, pa.array(inverse)) if needed else a
    codes = enc.indices.to_numpy(zero_copy_only=False)
    return pa.DictionaryArray.from_arrays(pa.array(codes[inverse] if needed else codes, pa.int32()), enc.dictionary)


# Envoy's long names of its response flags (%RESPONSE_FLAGS_LONG%, envoy/stream_info/stream_info.h) -> the short
# ones %RESPONSE_FLAGS% writes, which the runtime rules read
_LONG_FLAGS = {
    "FailedLocalHealthCheck": "LH", "NoHealthyUpstream": "UH", "UpstreamRequestTimeout": "UT", "LocalReset": "LR",
    "UpstreamRemoteReset": "UR", "UpstreamConnectionFailure": "UF", "UpstreamConnectionTermination": "UC",
    "UpstreamOverflow": "UO", "UpstreamRetryLimitExceeded": "URX", "NoRouteFound": "NR", "DelayInjected": "DI",
    "FaultInjected": "FI", "RateLimited": "RL", "UnauthorizedExternalService": "UAEX", "RateLimitServiceError": "RLSE",
    "DownstreamConnectionTermination": "DC", "StreamIdleTimeout": "SI", "InvalidEnvoyRequestHeaders": "IH",
    "DownstreamProtocolError": "DPE", "UpstreamMaxStreamDurationReached": "UMSDR", "ResponseFromCacheFilter": "RFCF",
    "NoFilterConfigFound": "NFCF", "DurationTimeout": "DT", "UpstreamProtocolError": "UPE", "NoClusterFound": "NC",
    "OverloadManagerTerminated": "OM", "DnsResolutionFailed": "DF", "DropOverload": "DO", "DownstreamRemoteReset": "DR",
}


def _short_flags(flags: pa.Array) -> pa.Array:
    """Response flags as `%RESPONSE_FLAGS%` writes them (`UF,URX`), also when a format used `%RESPONSE_FLAGS_LONG%`
    (`UpstreamConnectionFailure,UpstreamRetryLimitExceeded`): every rule reads the short codes, so a long name
    would pass as an unknown flag and its finding never fire. Only the distinct values are looked at; a value
    with no long name in it (the usual case) is kept as it is, and unknown names are kept too."""
    values = flags.to_pylist()
    out = [v if v is None or not any(c.islower() for c in v)
           else ",".join(_LONG_FLAGS.get(f.strip(), f.strip()) for f in v.split(","))
           for v in values]
    return flags if out == values else pa.array(out, pa.string())


def _cluster_names(cluster: pa.Array) -> pa.Array:
    """The cluster's own name from what `%UPSTREAM_CLUSTER%` wrote.

    Envoy writes a cluster's observability name there (its `alt_stat_name` when set; the name itself only in
    `%UPSTREAM_CLUSTER_RAW%`), and Istio sets `alt_stat_name` to the name followed by its stat-prefix
    delimiter `;` (ambient waypoints always, sidecars with `outboundClusterStatName` and the like): a waypoint
    writes `inbound-vip|8000|http|barista.caffeine.svc.cluster.local;`. Istio cluster names never hold a `;`,
    so everything from the first one on is the stat decoration; without the cut the destination service
    read `...svc.cluster.local;`, a node of its own beside the real service."""
    return _per_distinct(cluster, lambda d: pc.replace_substring_regex(d, r";.*$", ""))


def _derive_peers(raw: pa.Table, ctx: LogContext) -> dict[str, pa.Array]:
    """Reporter, both peers' workload/namespace/principal, destination service, mTLS and the cleaned upstream
    cluster, from the fields in `_PEER_FIELDS` (and the sidecar's own identity in `ctx`)."""
    n = raw.num_rows
    cluster = _cluster_names(_clean(_col(raw, "upstream_cluster")))
    sni = _clean(_col(raw, "requested_server_name"))
    # No upstream cluster (NR, FI before routing...): an inbound listener is recognised by the
    # mesh SNI; anything else is a client-side (source) request, as Istio reports NR.
    # PassthroughCluster/BlackHoleCluster are the sidecar's own outbound catch-alls;
    # InboundPassthroughCluster* its inbound one; inbound-vip|... is an ambient waypoint.
    no_cluster = pc.equal(cluster, "")
    special_out = pc.is_in(cluster, value_set=pa.array(_SPECIAL_OUT))
    waypoint = pc.starts_with(cluster, "inbound-vip|")
    inbound = pc.or_(pc.or_(pc.starts_with(cluster, "inbound|"), pc.starts_with(cluster, "InboundPassthroughCluster")),
                     pc.and_(no_cluster, pc.starts_with(sni, "outbound_")))
    outbound = pc.and_(pc.invert(inbound), pc.or_(pc.or_(pc.starts_with(cluster, "outbound|"), no_cluster), special_out))
    reporter = pc.if_else(outbound, "source", pc.if_else(inbound, "destination", pc.if_else(waypoint, "waypoint", "unknown")))
    down_san = _clean(_col(raw, "downstream_peer_uri_san"))
    up_san = _clean(_col(raw, "upstream_peer_uri_san"))
    tls = _clean(_col(raw, "downstream_tls_version"))

    def const(v: str) -> pa.Array:
        return pa.repeat(pa.scalar(v, pa.string()), n)

    me_wl, me_ns, me_pr = const(ctx.workload), const(ctx.namespace), const(ctx.principal)
    unknown = const("unknown")
    # a waypoint sits between the two: the client is its downstream peer, the server its upstream one
    peer_in = pc.or_(inbound, waypoint)
    peer_out = pc.or_(outbound, waypoint)
    src_principal = pc.if_else(peer_in, _or_unknown(down_san), pc.if_else(outbound, me_pr, unknown))
    dst_principal = pc.if_else(peer_out, _or_unknown(up_san), pc.if_else(inbound, me_pr, unknown))
    src_ns = pc.if_else(peer_in, _ns_of(src_principal), pc.if_else(outbound, me_ns, unknown))
    dst_ns = pc.if_else(peer_out, _ns_of(dst_principal), pc.if_else(inbound, me_ns, unknown))
    src_wl = pc.if_else(outbound, me_wl, unknown)
    dst_wl = pc.if_else(inbound, me_wl, unknown)
    # destination service: outbound|port|subset|host, or the SNI outbound_.port_.subset_.host on inbound
    out_host = _per_distinct(cluster, lambda d: pc.struct_field(
        pc.extract_regex(d, r"^(?:outbound|inbound-vip)\|[^|]*\|[^|]*\|(?P<h>.*)$"), "h"))
    out_host = pc.if_else(special_out, cluster, out_host)  # Passthrough/BlackHole: a node of their own
    sni_host = _per_distinct(sni, lambda d: pc.struct_field(pc.extract_regex(d, r"^outbound_\.[^_]*_\.[^_]*_\.(?P<h>.*)$"), "h"))
    authority = _clean_dict(_col(raw, "authority"))
    authority_host = pc.take(pc.struct_field(pc.extract_regex(authority.dictionary, r"^(?P<h>[^:]+)"), "h"), authority.indices)
    dst_service = pc.if_else(peer_out, out_host, pc.if_else(inbound, sni_host, pa.scalar(None, pa.string())))
    dst_service = pc.fill_null(pc.coalesce(dst_service, authority_host), "unknown")
    # a client's request that reached no cluster (NC, NR): its authority verbatim, as Istio's stats filter names
    # it (the Host header, istio_stats.cc populatePeerInfo), so the metrics and the log views agree on the name
    auth_full = pc.cast(authority, pa.string())
    dst_service = pc.if_else(pc.and_(pc.and_(outbound, no_cluster), pc.not_equal(auth_full, "")), auth_full, dst_service)
    mtls = pc.if_else(outbound, pc.not_equal(up_san, ""),
                      pc.or_(pc.not_equal(down_san, ""), pc.or_(pc.not_equal(tls, ""), pc.starts_with(sni, "outbound_"))))
    mtls = pc.and_(mtls, pc.or_(outbound, inbound))
    return {
        s.REPORTER: reporter, s.SOURCE_WORKLOAD: src_wl, s.SOURCE_WORKLOAD_NAMESPACE: src_ns,
        s.SOURCE_PRINCIPAL: src_principal, s.DESTINATION_WORKLOAD: dst_wl, s.DESTINATION_WORKLOAD_NAMESPACE: dst_ns,
        s.DESTINATION_PRINCIPAL: dst_principal, s.DESTINATION_SERVICE: dst_service, s.MTLS: mtls,
        s.UPSTREAM_CLUSTER: cluster,
    }


def derive_requests(raw: pa.Table, ctx: LogContext) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Raw access-log fields -> requests table in the store's schema (vectorized).

    Returns the table and (line index, message, reason) for rows refused: an unreadable
    timestamp, a number out of its range.
    """
    line = _col(raw, "_line", pa.int64())
    start = _clean(_col(raw, "start_time"))
    time_ok = pc.match_substring_regex(start, _ISO_TIME).to_numpy(zero_copy_only=False)
    bad = [(int(line[int(i)].as_py()), f"invalid start_time {str(start[int(i)].as_py())[:60]!r}", "bad_timestamp")
           for i in np.flatnonzero(~time_ok)]
    keep = time_ok.copy()
    limits = {"response_code": 999, "bytes_received": _INT64_MAX, "bytes_sent": _INT64_MAX, "duration": _INT64_MAX}
    for name, top in limits.items():
        v = _col(raw, name, pa.int64())
        in_range = pc.fill_null(pc.and_(pc.greater_equal(v, 0), pc.less_equal(v, top)), True).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(keep & ~in_range):
            bad.append((int(line[int(i)].as_py()), f"{name} {v[int(i)].as_py()} is out of range", "number_out_of_range"))
        keep &= in_range
    if not keep.all():
        mask = pa.array(keep)
        raw, start, line = raw.filter(mask), start.filter(mask), line.filter(mask)
    start_ts, ts_ok = _to_timestamps(start)
    if not ts_ok.all():
        for i in np.flatnonzero(~ts_ok):
            bad.append((int(line[int(i)].as_py()), f"impossible start_time {start[int(i)].as_py()!r}", "bad_timestamp"))
        mask = pa.array(ts_ok)
        raw, start_ts, line = raw.filter(mask), start_ts.filter(mask), line.filter(mask)
    n = raw.num_rows
    # everything about the two peers depends only on these six fields, which repeat a handful of
    # combinations per batch: derive once per distinct combination, then spread to the rows by index
    first, inverse = _distinct_rows(raw, _PEER_FIELDS)
    peers = _derive_peers(raw.take(pa.array(first)) if len(first) < n else raw, ctx)
    peer_cols = {name: _spread(a, inverse, len(first) < n) for name, a in peers.items()}
    tp = _clean(_col(raw, "traceparent"))
    tp_ok = pc.match_substring_regex(tp, r"^[0-9a-fA-F]{2}-[0-9a-fA-F]{32}-")
    trace = pc.if_else(tp_ok, pc.utf8_slice_codeunits(tp, 3, 35), pa.scalar(None, pa.string()))
    flags = pc.dictionary_encode(_col(raw, "response_flags"), null_encoding="encode")
    flags_d = pc.dictionary_encode(_short_flags(pc.if_else(pc.equal(pc.fill_null(flags.dictionary, "-"), ""), "-",
                                                           pc.fill_null(flags.dictionary, "-"))))
    flags = pa.DictionaryArray.from_arrays(pc.take(flags_d.indices, flags.indices), flags_d.dictionary)
    cols = {
        **peer_cols, s.START_TIME: start_ts,
        s.METHOD: _clean_dict(_col(raw, "method")), s.PATH: _clean_dict(_col(raw, "path")),
        s.AUTHORITY: _clean_dict(_col(raw, "authority")), s.PROTOCOL: _clean_dict(_col(raw, "protocol")),
        s.RESPONSE_CODE: pc.fill_null(_col(raw, "response_code", pa.int64()), 0).cast(pa.int32()),
        s.RESPONSE_FLAGS: flags,
        s.RESPONSE_CODE_DETAILS: _clean_dict(_col(raw, "response_code_details")),
        s.UPSTREAM_TRANSPORT_FAILURE_REASON: _clean_dict(_col(raw, "upstream_transport_failure_reason")),
        s.DURATION_MS: pc.cast(pc.fill_null(_col(raw, "duration", pa.int64()), 0), pa.float64()),
        s.BYTES_RECEIVED: pc.fill_null(_col(raw, "bytes_received", pa.int64()), 0),
        s.BYTES_SENT: pc.fill_null(_col(raw, "bytes_sent", pa.int64()), 0),
        s.UPSTREAM_HOST: _clean_dict(_col(raw, "upstream_host")),
        s.REQUEST_ID: _clean(_col(raw, "request_id")), s.TRACE_ID: pc.fill_null(pc.utf8_lower(trace), ""),
        s.LOG_SOURCE: pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([ctx.source], pa.string())),
        s.ROUTE_NAME: _clean_dict(_col(raw, "route_name")),
    }
    arrays = []
    for f in REQUESTS:
        a = cols[f.name]
        if a.type == f.type:  # cleaned as a dictionary already
            arrays.append(a)
        else:
            arrays.append(pc.dictionary_encode(a).cast(f.type) if pa.types.is_dictionary(f.type) else a.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=REQUESTS), bad
