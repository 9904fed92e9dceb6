"""Prometheus text exposition (format 0.0.4) -> a samples table.

Why not `prometheus_client.parser`: it builds Python objects per sample and runs at ~17k
samples/s on Istio's long label sets. Here no Python code runs per line: numpy finds each
line's name, label braces and trailing `le` from byte offsets (small windows at the start and
end of every line), Arrow string views cut the pieces out of the text without copying, and
each distinct label set (a histogram's buckets share one) is split into labels once with
Arrow kernels. Lines the strict fast grammar does not cover (escapes, spaces inside braces,
odd spacing, very long names) go through a small, correct per-line parser; only lines that
parser rejects count as malformed.

Output columns: `metric`, `labels` (the series' label text without `le`, dictionary-encoded;
with `le` it identifies the series), every Istio label in `schema.ISTIO_LABELS` ("unknown"
when absent), `le` (float, NaN when absent) and `value`. Pure function: text in, table out.

Strict grammar, both paths alike: a line the text format forbids is refused (an error with a
short `reason`), never altered. Refused: a label value cut by a stray quote
(`reporter="source,le="5"`), `__name__` or another `__` name as a label, a label name given twice, escapes other
than \\\\ \\" \\n, an empty pair (`{,}`), bytes that are not UTF-8, and bad names/values. The
fast path declines every such line (it goes to the careful parser, which names what is wrong).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from collector import schema
from collector.parse.views import string_views as _views

LABELS = schema.LABELS
UNKNOWN = "unknown"
_LABEL_COLUMNS = (*schema.ISTIO_LABELS, "le")

_VALUE_OK = r'^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[Ii][Nn][Ff]|[Nn][Aa][Nn])$'
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class ParseError:
    """One rejected line: 1-based line number and why."""

    line: int
    message: str
    reason: str = "malformed"  # a short fixed word for the per-reason counter (never free text)
    sample: bytes = b""  # the first bytes of the refused line, for `selfmetrics.recent_rejects()`

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ExpositionResult:
    """Parsed samples plus the lines that were skipped; `types` maps metric family -> TYPE."""

    table: pa.Table
    errors: list[ParseError] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    lines: np.ndarray | None = None  # 0-based line of each row (rows keep the text's order)

    @property
    def samples(self) -> pd.DataFrame:
        return self.table.to_pandas()


def parse_exposition(text: str | bytes) -> ExpositionResult:
    """Parse Prometheus text exposition; malformed lines become `errors`, never exceptions."""
    raw = text.encode("utf-8", errors="replace") if isinstance(text, str) else bytes(text)
    if not raw:
        return ExpositionResult(_empty_table(), lines=np.zeros(0, dtype=np.int64))
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    start = np.concatenate([[0], newlines + 1]).astype(np.int64)
    end = np.concatenate([newlines, [len(data)]]).astype(np.int64)
    end = np.where((end > start) & (data[np.maximum(end - 1, 0)] == 13), end - 1, end)  # CRLF
    n = len(start)
    first = np.where(end > start, data[np.minimum(start, len(data) - 1)], 0)
    blank = end == start
    is_comment = first == ord("#")
    odd_start = (first == ord(" ")) | (first == ord("\t"))  # the careful path decides
    candidates = ~blank & ~is_comment & ~odd_start
    bad_utf8 = _invalid_utf8_lines(raw, data, start, end)
    candidates &= ~bad_utf8
    backslashes = np.flatnonzero(data == ord("\\"))
    if len(backslashes):  # escapes only in some lines: those go the careful way
        candidates[np.searchsorted(start, backslashes, side="right") - 1] = False
    cand_idx = np.flatnonzero(candidates)
    slow = np.flatnonzero(~blank & ~is_comment & ~bad_utf8)
    tables: list[pa.Table] = []
    order: list[np.ndarray] = []  # line number of every row, to keep the text's order
    if len(cand_idx):
        table, ok = _fast(pa.py_buffer(raw), data, start[cand_idx], end[cand_idx])
        tables.append(table)
        order.append(cand_idx[ok])
        slow = np.setdiff1d(slow, cand_idx[ok], assume_unique=True)

    def line(i: int) -> str:
        return raw[start[i]:end[i]].decode("utf-8", errors="replace")

    errors: list[ParseError] = [ParseError(int(i) + 1, "line is not valid UTF-8", "invalid_utf8", raw[start[i]:end[i]][:512])
                                for i in np.flatnonzero(bad_utf8)]
    types: dict[str, str] = {}
    for i in np.flatnonzero(is_comment):  # a few per family, not per sample
        _parse_comment(line(int(i)), types)
    rows: list[tuple[str, dict[str, str], float]] = []
    row_lines: list[int] = []
    for i in slow:  # lines with escapes, odd spacing, or errors: rare in practice
        text_line = line(int(i))
        stripped = text_line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            _parse_comment(stripped, types)
            continue
        try:
            rows.append(parse_sample_line(text_line))
            row_lines.append(int(i))
        except ValueError as exc:
            errors.append(ParseError(int(i) + 1, str(exc), _reason(str(exc)), raw[start[i]:end[i]][:512]))
    del n
    errors.sort(key=lambda e: e.line)
    if rows:
        tables.append(_build_from_rows(rows))
        order.append(np.array(row_lines, dtype=np.int64))
    table = pa.concat_tables(tables) if tables else _empty_table()
    lines = np.concatenate(order).astype(np.int64) if order else np.zeros(0, dtype=np.int64)
    if len(tables) > 1:  # both paths produced rows: put them back in line order
        back = np.argsort(lines, kind="stable")
        table, lines = table.take(pa.array(back)), lines[back]
    return ExpositionResult(table, errors, types, lines)


def _invalid_utf8_lines(raw: bytes, data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Lines holding bytes that are not UTF-8 (one C-speed decode of the whole text; only when
    it fails are the lines with non-ASCII bytes decoded one by one)."""
    bad = np.zeros(len(start), dtype=bool)
    try:
        raw.decode("utf-8")
        return bad
    except UnicodeDecodeError:
        pass
    high = np.flatnonzero(data >= 0x80)
    for i in np.unique(np.searchsorted(start, high, side="right") - 1):
        try:
            raw[start[i]:end[i]].decode("utf-8")
        except UnicodeDecodeError:
            bad[i] = True
    return bad


_REASONS = (("invalid escape", "bad_escape"), ("given twice", "duplicate_label"), ("is reserved", "reserved_label"),
            ("sample value", "bad_value"), ("timestamp", "bad_timestamp"), ("histogram bound", "bad_value"),
            ("metric name", "bad_name"), ("label name", "bad_name"))


def _reason(message: str) -> str:
    """The careful parser's message -> a short fixed reason for the per-reason counter."""
    return next((r for key, r in _REASONS if key in message), "bad_syntax")


def _list_part(lists: pa.Array, i: int, default: str = "") -> pa.Array:
    """Element i of each list, `default` where the list is shorter (Arrow's list_element raises)."""
    lengths = pc.list_value_length(lists).to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pos = np.where(lengths > i, starts + i, -1)
    flat = pc.list_flatten(lists)
    if (pos >= 0).all():
        return pc.take(flat, pa.array(pos))
    return pc.fill_null(pc.take(flat, pa.array(pos, mask=pos < 0)), default)


def _encode(views: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(indices, distinct values as plain strings) of a string_view array."""
    enc = pc.dictionary_encode(views)
    return enc.indices, enc.dictionary.cast(pa.string())


def _find_last(window: np.ndarray, pattern: bytes, limit: np.ndarray) -> np.ndarray:
    """Per row, the last start index of `pattern` in `window` that ends before `limit` (-1 if none)."""
    w = window.shape[1]
    m = len(pattern)
    hit = np.ones((window.shape[0], w - m + 1), dtype=bool)
    for j, ch in enumerate(pattern):
        hit &= window[:, j: w - m + 1 + j] == ch
    hit &= (np.arange(w - m + 1)[None, :] + m) <= limit[:, None]
    any_hit = hit.any(axis=1)
    last = w - m - np.argmax(hit[:, ::-1], axis=1)
    return np.where(any_hit, last, -1)


_HEAD = 96  # bytes from the start of a line searched for the end of the metric name
_TAIL = 72  # bytes from the end of a line searched for the closing brace (value and timestamp are short)


def _fast(dbuf: pa.Buffer, data: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Well-formed lines, cut by byte offsets (no copies of the label text); returns the table and
    which of these lines it holds."""
    n = len(start)
    # the name ends at '{' or at the first blank, within the first _HEAD bytes
    h = np.arange(_HEAD)
    padded = np.concatenate([np.zeros(_TAIL, np.uint8), data, np.full(_HEAD, ord(" "), np.uint8)])
    head = sliding_window_view(padded, _HEAD)[start + _TAIL]  # one contiguous row per line
    head = np.where(h[None, :] < (end - start)[:, None], head, ord(" "))
    is_open = head == ord("{")
    is_blank = (head == ord(" ")) | (head == ord("\t"))
    first_open = np.where(is_open.any(axis=1), np.argmax(is_open, axis=1), _HEAD)
    first_blank = np.where(is_blank.any(axis=1), np.argmax(is_blank, axis=1), _HEAD)
    has_labels = first_open < first_blank
    open_abs = start + first_open
    ok_head = np.minimum(first_open, first_blank) < _HEAD
    # the last '}' lies in the line's tail: search a small window of every line at once
    w0 = np.maximum(end - _TAIL, start)
    k = np.arange(_TAIL)
    window = sliding_window_view(padded, _TAIL)[w0 + _TAIL]
    window = np.where(k[None, :] < (end - w0)[:, None], window, 0)
    is_close = window == ord("}")
    close_rel = _TAIL - 1 - np.argmax(is_close[:, ::-1], axis=1)
    close_abs = np.where(is_close.any(axis=1), w0 + close_rel, -1)
    ok = ok_head & (~has_labels | (close_abs > open_abs))
    # a trailing le="..." just before the brace (histogram buckets)
    le_rel = _find_last(window, b',le="', np.where(close_abs >= 0, close_abs - w0, 0))
    le_abs = np.where(le_rel >= 0, w0 + le_rel, -1)
    body_end = np.where(has_labels & ok, close_abs, start)
    body_start = np.where(has_labels & ok, open_abs + 1, start)
    last = data[np.maximum(body_end - 1, 0)]
    trailing = (body_end > body_start) & (last == ord(","))
    body_end = np.where(trailing, body_end - 1, body_end)  # k="v", allowed (but not a lone ',')
    last = data[np.maximum(body_end - 1, 0)]
    ok &= ((body_end == body_start) & ~trailing) | ((body_end > body_start) & (last == ord('"')))
    le_value_start = le_abs + 5
    has_le = has_labels & (le_abs >= body_start) & (le_value_start < close_abs - 1) & (data[np.maximum(close_abs - 1, 0)] == ord('"'))
    # the le value must not hold a quote (else the ',le="' was inside another value)
    quote_in = np.zeros(n, dtype=bool)
    if has_le.any():
        qwin = (window == ord('"')) & (k[None, :] >= (le_value_start - w0)[:, None]) & (k[None, :] < (close_abs - 1 - w0)[:, None])
        quote_in = qwin.any(axis=1)
    has_le &= ~quote_in
    # a label set that is only le="..." (Envoy's unlabelled histograms)
    span = body_end - body_start
    short = sliding_window_view(padded, 24)[body_start + _TAIL]
    mask24 = np.arange(24)[None, :] < span[:, None]
    alone = has_labels & ~has_le & (span >= 6) & (span <= 24)
    alone &= (short[:, 0] == ord("l")) & (short[:, 1] == ord("e")) & (short[:, 2] == ord("=")) & (short[:, 3] == ord('"'))
    alone &= (((short == ord('"')) & mask24).sum(axis=1) == 2) & ~((short == ord(",")) & mask24).any(axis=1)
    le_abs = np.where(alone, body_start - 1, le_abs)  # as if a comma preceded it
    le_value_start = np.where(alone, body_start + 4, le_value_start)
    has_le |= alone
    stem_end = np.where(alone, body_start, np.where(has_le, le_abs, body_end))
    # what precedes ',le="' must close a value: else the quote was a stray one inside a value
    # (reporter="source,le="5") and cutting there would alter the label: the careful path refuses it
    ok &= ~has_le | alone | (data[np.maximum(stem_end - 1, 0)] == ord('"'))

    name_end = np.where(has_labels, open_abs, start)  # unlabelled lines: name comes from the tokens
    tail_start = np.where(has_labels, close_abs + 1, start)
    tail = pc.ascii_trim_whitespace(_views(dbuf, data, tail_start, end).cast(pa.string()))
    tokens = pc.ascii_split_whitespace(tail)
    n_tok = pc.list_value_length(tokens).to_numpy()
    tok0 = _list_part(tokens, 0)
    value_off = np.where(has_labels, 0, 1)
    name_idx, name_dict = _encode(_views(dbuf, data, start, name_end))
    name = pc.if_else(pa.array(has_labels), pc.take(name_dict, name_idx), tok0)
    value = pc.if_else(pa.array(has_labels), tok0, _list_part(tokens, 1))
    ts = pc.if_else(pa.array(has_labels), _list_part(tokens, 1), _list_part(tokens, 2))
    ok &= (n_tok - value_off >= 1) & (n_tok - value_off <= 2)
    ok &= pc.match_substring_regex(name, r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").to_numpy(zero_copy_only=False)
    ok &= pc.match_substring_regex(value, _VALUE_OK).to_numpy(zero_copy_only=False)
    ok &= pc.match_substring_regex(ts, r"^(-?[0-9]+)?$").to_numpy(zero_copy_only=False)

    # the label set, pivoted once per distinct set; buckets share theirs (le cut off)
    stem_idx, stems = _encode(_views(dbuf, data, body_start, np.where(ok, stem_end, body_start)))
    cols, uniq_ok = _pivot(stems)
    uniq_ok &= pc.is_null(cols["le"]).to_numpy(zero_copy_only=False)  # le not last: the careful path
    ok &= uniq_ok[stem_idx.to_numpy()]
    # series identity: the label text without le (le has its own column); dictionary-encoded,
    # so a histogram's 20 buckets share one string
    columns: dict[str, pa.Array] = {schema.METRIC: name, LABELS: pa.DictionaryArray.from_arrays(stem_idx, stems)}
    for col in schema.ISTIO_LABELS:
        columns[col] = pc.take(cols[col], stem_idx)
    le_text = _views(dbuf, data, np.where(has_le, le_value_start, 0), np.where(has_le, close_abs - 1, 0)).cast(pa.string())
    le_text = pc.if_else(pa.array(has_le), le_text, pa.scalar(None, pa.string()))
    le_all = le_text
    ok &= pc.fill_null(pc.match_substring_regex(le_all, _VALUE_OK), True).to_numpy(zero_copy_only=False)
    le_all = pc.if_else(pa.array(ok), le_all, pa.scalar(None, pa.string()))
    columns[schema.LE] = pc.fill_null(pc.cast(_normalize_values(le_all), pa.float64()), math.nan)
    columns[schema.VALUE] = pc.cast(_normalize_values(pc.if_else(pa.array(ok), value, "0")), pa.float64())
    table = pa.table(columns).select(_empty_table().schema.names)
    return table.filter(pa.array(ok)), ok


def _pivot(bodies: pa.Array) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Distinct label texts (k="v",...,k="v" with the final quote) -> one column per wanted label.

    Returns string columns for every Istio label ("unknown" when absent) and `le` (null when
    absent), plus which texts are well formed.
    """
    n = len(bodies)
    ok = np.ones(n, dtype=bool)
    body = pc.utf8_slice_codeunits(bodies, 0, -1)  # drop the final quote so pairs split on '",'
    pairs = pc.split_pattern(body, '",')
    parent = pc.list_parent_indices(pairs).to_numpy()
    flat = pc.list_flatten(pairs)
    nonempty = pc.greater(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)
    parent, flat = parent[nonempty], flat.filter(pa.array(nonempty))
    kv = pc.split_pattern(flat, '="', max_splits=1)
    pair_ok = pc.list_value_length(kv).to_numpy() == 2
    keys, vals = _list_part(kv, 0), _list_part(kv, 1)
    # label names repeat on every line: check and look them up once per distinct name
    enc = pc.dictionary_encode(keys)
    distinct = enc.dictionary
    name_ok = pc.match_substring_regex(distinct, r"^[a-zA-Z_][a-zA-Z0-9_]*$").to_numpy(zero_copy_only=False)
    wanted = pc.index_in(distinct, value_set=pa.array(_LABEL_COLUMNS)).to_numpy(zero_copy_only=False)
    wanted = np.nan_to_num(wanted.astype(float), nan=-1).astype(np.int64)
    codes = enc.indices.to_numpy()
    if len(codes):
        pair_ok &= name_ok[codes]
    pair_ok &= ~pc.match_substring(vals, '"').to_numpy(zero_copy_only=False)
    if len(codes):  # __name__ and other __ names are reserved; a name given twice is ambiguous: refused
        pair_ok &= ~pc.starts_with(distinct, "__").to_numpy(zero_copy_only=False)[codes]
        pair_key = parent.astype(np.int64) * (len(distinct) + 1) + codes
        _, first, counts = np.unique(pair_key, return_index=True, return_counts=True)
        if (counts > 1).any():
            pair_ok &= ~np.isin(pair_key, pair_key[first[counts > 1]])
    ok[np.unique(parent[~pair_ok])] = False
    key_pos = np.where(pair_ok, wanted[codes], -1) if len(codes) else np.zeros(0, dtype=np.int64)
    cols: dict[str, pa.Array] = {}
    for j, col in enumerate(_LABEL_COLUMNS):
        hit = np.flatnonzero(key_pos == j)
        if not len(hit):
            cols[col] = pa.nulls(n, pa.string()) if col == "le" else pa.repeat(pa.scalar(UNKNOWN, pa.string()), n)
            continue
        pos = np.full(n, -1, dtype=np.int64)
        pos[parent[hit]] = hit
        taken = pc.take(vals, pa.array(pos, mask=pos < 0))
        cols[col] = taken if col == "le" else pc.fill_null(taken, UNKNOWN)
    return cols, ok


def _normalize_values(values: pa.Array) -> pa.Array:
    """Arrow's float cast accepts inf/nan in any case but not a leading '+'."""
    return pc.replace_substring_regex(values, r"^\+", "")


def _build_from_rows(rows: list[tuple[str, dict[str, str], float]]) -> pa.Table:
    columns: dict[str, list] = {schema.METRIC: [r[0] for r in rows],
                                LABELS: [format_labels({k: v for k, v in r[1].items() if k != "le"}) for r in rows]}
    for col in schema.ISTIO_LABELS:
        columns[col] = [r[1].get(col, UNKNOWN) for r in rows]
    columns[schema.LE] = [_float(r[1]["le"]) if "le" in r[1] else math.nan for r in rows]
    columns[schema.VALUE] = [r[2] for r in rows]
    return _conform(pa.table(columns))


def _conform(table: pa.Table) -> pa.Table:
    return table.cast(_empty_table().schema)


def _empty_table() -> pa.Table:
    fields = [pa.field(schema.METRIC, pa.string()), pa.field(LABELS, pa.dictionary(pa.int32(), pa.string()))]
    fields += [pa.field(c, pa.string()) for c in schema.ISTIO_LABELS]
    fields += [pa.field(schema.LE, pa.float64()), pa.field(schema.VALUE, pa.float64())]
    return pa.schema(fields).empty_table()


def _float(text: str) -> float:
    t = text.strip()
    low = t.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    if not re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", t):
        raise ValueError(f"invalid sample value {text!r}")
    return float(t)


def format_labels(labels: dict[str, str]) -> str:
    """Canonical label text (same form the fast path keeps): k="v" pairs, escaped, comma-joined."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())


def _parse_comment(line: str, types: dict[str, str]) -> None:
    parts = line.lstrip("#").split(None, 3)
    if len(parts) >= 3 and parts[0] == "TYPE":
        types[parts[1]] = parts[2].strip()


# a sample's timestamp: integer milliseconds (Prometheus text), or seconds with a fraction or exponent (OpenMetrics)
_TIMESTAMP = r"-?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"


def _exemplar(name: str, text: str) -> None:
    """Check an OpenMetrics exemplar (`{labels} value [timestamp]`): it is kept out of the sample, but a malformed
    one still refuses the line, as OpenMetrics parsers do."""
    if not text.startswith("{") or "}" not in text:
        raise ValueError(f"invalid exemplar after the value of {name}: {text[:40]!r}")
    labels, _, after = text[1:].rpartition("}")
    try:
        parse_sample_line(f"x{{{labels}}} 0")
    except ValueError as exc:
        raise ValueError(f"invalid exemplar labels after the value of {name}: {exc}") from None
    parts = after.split()
    if not 1 <= len(parts) <= 2:
        raise ValueError(f"invalid exemplar after the value of {name}: {text[:40]!r}")
    _float(parts[0])
    if len(parts) == 2 and not re.fullmatch(_TIMESTAMP, parts[1]):
        raise ValueError(f"invalid exemplar timestamp {parts[1]!r}")


def parse_sample_line(line: str) -> tuple[str, dict[str, str], float]:
    """Parse one sample line with full escape handling; raise ValueError naming what is wrong."""
    s = line.strip()
    m = _NAME.match(s)
    if not m:
        raise ValueError(f"expected a metric name at {s[:40]!r}")
    name = m.group(0)
    i = m.end()
    labels: dict[str, str] = {}
    n = len(s)
    while i < n and s[i] in " \t":
        i += 1
    if i < n and s[i] == "{":
        i += 1
        while True:
            while i < n and s[i] in " \t":
                i += 1
            if i < n and s[i] == "}":
                i += 1
                break
            lm = _LABEL_NAME.match(s, i)
            if not lm:
                raise ValueError(f"expected a label name after {s[:i][-40:]!r}")
            key = lm.group(0)
            i = lm.end()
            while i < n and s[i] in " \t":
                i += 1
            if i >= n or s[i] != "=":
                raise ValueError(f"expected '=' after label {key!r}")
            i += 1
            while i < n and s[i] in " \t":
                i += 1
            if i >= n or s[i] != '"':
                raise ValueError(f"expected '\"' to open the value of label {key!r}")
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise ValueError(f"unterminated value of label {key!r}")
                c = s[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise ValueError(f"dangling escape in label {key!r}")
                    e = s[i + 1]
                    if e not in 'n\\"':
                        raise ValueError(f"invalid escape \\{e} in the value of label {key!r}")
                    buf.append({"n": "\n", "\\": "\\", '"': '"'}[e])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                buf.append(c)
                i += 1
            if key.startswith("__"):
                raise ValueError(f"label name {key!r} is reserved (__ prefix)")
            if key in labels:
                raise ValueError(f"label {key!r} given twice")
            labels[key] = "".join(buf)
            while i < n and s[i] in " \t":
                i += 1
            if i < n and s[i] == ",":
                i += 1
                continue
            if i < n and s[i] == "}":
                i += 1
                break
            raise ValueError(f"expected ',' or '}}' after label {key!r}")
    rest = s[i:].split()
    if "#" in rest[1:3]:  # an OpenMetrics exemplar after the value (and timestamp): ` # {trace_id="..."} 0.5 [ts]`
        at = rest.index("#", 1)
        _exemplar(name, " ".join(rest[at + 1:]))
        rest = rest[:at]
    if not rest:
        raise ValueError(f"missing value for {name}")
    if len(rest) > 2:
        raise ValueError(f"unexpected text after the value of {name}: {' '.join(rest[2:])[:40]!r}")
    value = _float(rest[0])
    if len(rest) == 2 and not re.fullmatch(_TIMESTAMP, rest[1]):
        raise ValueError(f"invalid timestamp {rest[1]!r}")
    if "le" in labels:
        try:
            _float(labels["le"])
        except ValueError:
            raise ValueError(f"invalid histogram bound le={labels['le']!r} on {name}") from None
    return name, labels, value
