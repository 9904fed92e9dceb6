"""Prometheus text exposition (format 0.0.4) -> a samples table.

Why not `prometheus_client.parser`: it builds Python objects per sample and runs at ~17k
samples/s on Istio's long label sets. Here the whole text goes through Arrow's C++ kernels
(RE2 regex, string split, take) with no Python loop per line. Lines the strict fast grammar
does not cover (escapes, spaces inside braces, odd spacing) go through a small, correct
per-line parser; only lines that parser rejects count as malformed.

Output columns: `metric`, `labels` (the series' label text, canonical, used as series
identity), every Istio label in `schema.ISTIO_LABELS` ("unknown" when absent), `le` (float,
NaN when absent) and `value`. Pure function: text in, table out, no I/O.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema

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

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ExpositionResult:
    """Parsed samples plus the lines that were skipped; `types` maps metric family -> TYPE."""

    table: pa.Table
    errors: list[ParseError] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def samples(self) -> pd.DataFrame:
        return self.table.to_pandas()


def parse_exposition(text: str) -> ExpositionResult:
    """Parse Prometheus text exposition; malformed lines become `errors`, never exceptions."""
    if not text:
        return ExpositionResult(_empty_table())
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    if len(text) < 2**31 - 1:
        lines = lines.cast(pa.string())
    stripped = pc.ascii_trim_whitespace(lines)
    is_comment = pc.starts_with(stripped, "#")
    sample_line = pc.invert(pc.or_(is_comment, pc.equal(pc.binary_length(stripped), 0)))
    candidates = sample_line
    if "\\" in text:  # escapes only in some lines: those go the careful way
        candidates = pc.and_(candidates, pc.invert(pc.match_substring(lines, "\\")))
    cand_idx = np.flatnonzero(candidates.to_numpy(zero_copy_only=False))
    slow = np.flatnonzero(sample_line.to_numpy(zero_copy_only=False))
    tables: list[pa.Table] = []
    if len(cand_idx):
        table, ok = _fast(pc.take(lines, pa.array(cand_idx, pa.int64())))
        tables.append(table)
        slow = np.setdiff1d(slow, cand_idx[ok], assume_unique=True)

    errors: list[ParseError] = []
    types: dict[str, str] = {}
    for i in np.flatnonzero(is_comment.to_numpy(zero_copy_only=False)):  # a few per family, not per sample
        _parse_comment(lines[int(i)].as_py(), types)
    rows: list[tuple[str, dict[str, str], float]] = []
    for i in slow:  # lines with escapes, odd spacing, or errors: rare in practice
        try:
            rows.append(parse_sample_line(lines[int(i)].as_py()))
        except ValueError as exc:
            errors.append(ParseError(int(i) + 1, str(exc)))
    if rows:
        tables.append(_build_from_rows(rows))
    table = pa.concat_tables(tables) if tables else _empty_table()
    return ExpositionResult(table, errors, types)


def _list_part(lists: pa.Array, i: int, default: str = "") -> pa.Array:
    """Element i of each list, `default` where the list is shorter (Arrow's list_element raises)."""
    lengths = pc.list_value_length(lists).to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pos = np.where(lengths > i, starts + i, -1)
    flat = pc.list_flatten(lists)
    if (pos >= 0).all():
        return pc.take(flat, pa.array(pos))
    return pc.fill_null(pc.take(flat, pa.array(pos, mask=pos < 0)), default)


def _fast(lines: pa.Array) -> tuple[pa.Table, np.ndarray]:
    """Split well-formed lines with Arrow kernels only; returns the table and which lines it holds."""
    n = len(lines)
    has_labels = pc.greater_equal(pc.find_substring(lines, "{"), 0)
    # name{labels} value [ts]  -> split at the LAST '}' (label values may hold '}')
    halves = pc.split_pattern(lines, "}", max_splits=1, reverse=True)
    head = pc.if_else(has_labels, _list_part(halves, 0), "")
    tail = pc.if_else(has_labels, _list_part(halves, 1), lines)
    name_body = pc.split_pattern(head, "{", max_splits=1)
    body = _list_part(name_body, 1)
    tokens = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(tail))
    n_tok = pc.list_value_length(tokens).to_numpy()
    first = _list_part(tokens, 0)
    name = pc.if_else(has_labels, _list_part(name_body, 0), first)
    value_off = np.where(has_labels.to_numpy(zero_copy_only=False), 0, 1)
    value = pc.if_else(pa.array(value_off == 0), first, _list_part(tokens, 1))
    ts = pc.if_else(pa.array(value_off == 0), _list_part(tokens, 1), _list_part(tokens, 2))
    ok = (n_tok - value_off >= 1) & (n_tok - value_off <= 2)
    ok &= pc.match_substring_regex(name, r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").to_numpy(zero_copy_only=False)
    ok &= pc.match_substring_regex(value, _VALUE_OK).to_numpy(zero_copy_only=False)
    ok &= pc.match_substring_regex(ts, r"^(-?[0-9]+)?$").to_numpy(zero_copy_only=False)
    # labels body: k="v",k="v"[,]  -> strip one trailing comma
    body = pc.utf8_rtrim(body, characters=",")
    ok &= pc.or_(pc.ends_with(body, '"'), pc.equal(pc.binary_length(body), 0)).to_numpy(zero_copy_only=False)
    label_text = body
    # Histogram buckets share their label set and differ only in a trailing le="...": cut it
    # off, so the label set is pivoted once per distinct set (often 20+ lines each), not per line.
    le_split = pc.split_pattern(body, ',le="', max_splits=1, reverse=True)
    le_tail = _list_part(le_split, 1, "")
    has_le = (pc.list_value_length(le_split).to_numpy() == 2)
    has_le &= pc.equal(pc.count_substring(le_tail, '"'), 1).to_numpy(zero_copy_only=False)
    stem = pc.if_else(pa.array(has_le), _list_part(le_split, 0), body)
    le_text = pc.if_else(pa.array(has_le), pc.utf8_slice_codeunits(le_tail, 0, -1), pa.scalar(None, pa.string()))
    enc = pc.dictionary_encode(stem)
    idx = enc.indices
    cols, uniq_ok = _pivot(enc.dictionary)
    ok &= uniq_ok[idx.to_numpy()]
    columns: dict[str, pa.Array] = {schema.METRIC: name, LABELS: label_text}
    for col in schema.ISTIO_LABELS:
        columns[col] = pc.take(cols[col], idx)
    le_all = pc.coalesce(le_text, pc.take(cols["le"], idx))
    le_ok = pc.fill_null(pc.match_substring_regex(le_all, _VALUE_OK), True).to_numpy(zero_copy_only=False)
    ok &= le_ok
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
    columns: dict[str, list] = {schema.METRIC: [r[0] for r in rows], LABELS: [format_labels(r[1]) for r in rows]}
    for col in schema.ISTIO_LABELS:
        columns[col] = [r[1].get(col, UNKNOWN) for r in rows]
    columns[schema.LE] = [_float(r[1]["le"]) if "le" in r[1] else math.nan for r in rows]
    columns[schema.VALUE] = [r[2] for r in rows]
    return _conform(pa.table(columns))


def _conform(table: pa.Table) -> pa.Table:
    return table.cast(_empty_table().schema)


def _empty_table() -> pa.Table:
    fields = [pa.field(schema.METRIC, pa.string()), pa.field(LABELS, pa.string())]
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
                    buf.append({"n": "\n", "\\": "\\", '"': '"'}.get(e, "\\" + e))
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                buf.append(c)
                i += 1
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
    if not rest:
        raise ValueError(f"missing value for {name}")
    if len(rest) > 2:
        raise ValueError(f"unexpected text after the value of {name}: {' '.join(rest[2:])[:40]!r}")
    value = _float(rest[0])
    if len(rest) == 2 and not re.fullmatch(r"-?[0-9]+", rest[1]):
        raise ValueError(f"invalid timestamp {rest[1]!r}")
    if "le" in labels:
        try:
            _float(labels["le"])
        except ValueError:
            raise ValueError(f"invalid histogram bound le={labels['le']!r} on {name}") from None
    return name, labels, value
