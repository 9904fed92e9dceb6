"""Arrow schemas of the store's tables and one function that makes any input fit them.

Column *names* live in `collector.schema` (shared); the *types* live here because only the
collector decides how data is held. Repetitive strings are dictionary-encoded: a million
requests then cost a few bytes per string column instead of a Python object each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema as s

DICT = pa.dictionary(pa.int32(), pa.string())
TS = pa.timestamp("ns", tz="UTC")
# span and log attributes: keys and values dictionary-encoded. A span's attributes were ~425 of its row's ~550
# bytes as plain strings, though almost every value repeats (the peer, the cluster, the method, the code; a request
# id is the exception): encoded, ~100 bytes, so the store's memory budget holds about twice the minutes of spans (#18)
ATTRS = pa.map_(DICT, DICT)


def _fields(names, types: dict[str, pa.DataType], default: pa.DataType = DICT) -> pa.Schema:
    return pa.schema([pa.field(n, types.get(n, default)) for n in names])


METRICS = _fields(s.METRICS_COLUMNS, {s.TIME: TS, s.LE: pa.float64(), s.VALUE: pa.float64()})
REQUESTS = _fields(s.REQUESTS_COLUMNS, {
    s.START_TIME: TS, s.RESPONSE_CODE: pa.int32(), s.DURATION_MS: pa.float64(),
    s.BYTES_RECEIVED: pa.int64(), s.BYTES_SENT: pa.int64(), s.MTLS: pa.bool_(),
    s.REQUEST_ID: pa.string(), s.TRACE_ID: pa.string(),
})
SPANS = _fields(s.SPANS_COLUMNS, {
    s.TRACE_ID: pa.string(), s.SPAN_ID: pa.string(), s.PARENT_SPAN_ID: pa.string(),
    s.START_TIME: TS, s.END_TIME: TS, s.DURATION_MS: pa.float64(), s.RESPONSE_CODE: pa.int32(),
    s.ATTRIBUTES: ATTRS,
})
LOGS = _fields(s.LOGS_COLUMNS, {
    s.TIME: TS, s.TRACE_ID: pa.string(), s.SPAN_ID: pa.string(), s.BODY: pa.string(), s.ATTRIBUTES: ATTRS,
})


@dataclass(frozen=True)
class TableSpec:
    """A store table: its name on disk, Arrow schema, and the column that orders it in time."""

    name: str
    schema: pa.Schema
    time_column: str
    string_default: str = ""


SPECS = {
    "metrics": TableSpec("metrics", METRICS, s.TIME, "unknown"),
    "requests": TableSpec("requests", REQUESTS, s.START_TIME, ""),
    "spans": TableSpec("spans", SPANS, s.START_TIME, ""),
    "logs": TableSpec("logs", LOGS, s.TIME, ""),
}


def conform(data: pd.DataFrame | pa.Table, spec: TableSpec) -> pa.Table:
    """Cast `data` to the table's schema: known columns only, missing ones filled with defaults.

    Raises ValueError naming the column when a value cannot be converted; the caller counts
    and reports it, and nothing already stored is touched.
    """
    if isinstance(data, pd.DataFrame):
        data = _from_pandas(data, spec)
    n = data.num_rows
    arrays = []
    for field in spec.schema:
        if field.name in data.column_names:
            col = data.column(field.name)
            try:
                arrays.append(_cast(col, field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise ValueError(f"{spec.name}: column {field.name!r} cannot be read as {field.type}: {exc}") from None
        else:
            arrays.append(_default(field.type, n, spec.string_default))
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def _from_pandas(df: pd.DataFrame, spec: TableSpec) -> pa.Table:
    cols = {}
    for field in spec.schema:
        if field.name not in df.columns:
            continue
        series = df[field.name]
        if field.type == ATTRS:
            cols[field.name] = pa.array([_attr_items(v) for v in series], ATTRS)  # dicts: no vector form
        elif pa.types.is_timestamp(field.type) and not pd.api.types.is_datetime64_any_dtype(series):
            cols[field.name] = pa.array(pd.to_datetime(series, utc=True, format="mixed"))
        else:
            cols[field.name] = pa.array(series, from_pandas=True)
    return pa.table(cols) if cols else pa.table({"_": pa.nulls(len(df))})


def _attr_items(v) -> list[tuple[str, str]] | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, dict):
        return [(str(k), str(x)) for k, x in v.items()]
    return list(v)


def _cast(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if col.type == target:
        return col
    if pa.types.is_dictionary(target):
        if pa.types.is_dictionary(col.type):
            return pc.cast(col, target)
        return pc.dictionary_encode(pc.cast(col, pa.string())).cast(target)
    if pa.types.is_timestamp(target):
        if pa.types.is_timestamp(col.type) and col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        return pc.cast(col, target)
    return pc.cast(col, target)


def _default(t: pa.DataType, n: int, string_default: str) -> pa.Array:
    if pa.types.is_dictionary(t):
        return pa.DictionaryArray.from_arrays(pa.repeat(pa.scalar(0, pa.int32()), n), pa.array([string_default], pa.string()))
    if pa.types.is_string(t):
        return pa.repeat(pa.scalar(string_default, pa.string()), n)
    if pa.types.is_floating(t):
        return pa.repeat(pa.scalar(math.nan, t), n)
    if pa.types.is_integer(t):
        return pa.repeat(pa.scalar(0, t), n)
    if pa.types.is_boolean(t):
        return pa.repeat(pa.scalar(False), n)
    if t == ATTRS:
        return pa.array([[] for _ in range(n)], ATTRS)
    return pa.nulls(n, t)


def to_pandas(table: pa.Table, categorical: bool = False) -> pd.DataFrame:
    """Hand out plain columns: dictionary strings as pandas strings (not categoricals), maps as dicts.

    Categoricals would surprise consumers (concat turns them into object, groupby keeps unused
    categories with observed=False); pandas strings are Arrow-backed and just as cheap to read.
    `categorical=True` keeps dictionary columns as categoricals, for an internal computation that
    hands out only its (small) result (`plain_strings` turns it back): a string column costs ~5x its
    dictionary indices, and a read of many label columns (the metrics table has 27) spelled out
    as strings was the largest transient allocation of `meshscope up` (#18).
    """
    arrays = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_dictionary(field.type) and not categorical:
            col = pc.cast(col, pa.string())
        arrays.append(col)
    plain = pa.Table.from_arrays(arrays, names=table.column_names)
    maps = [f.name for f in plain.schema if pa.types.is_map(f.type)]
    df = plain.drop_columns(maps).to_pandas()
    for name in maps:
        df[name] = [dict(v) if v else {} for v in plain.column(name).to_pylist()]
    return df[table.column_names]


def plain_strings(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its categorical columns as the string dtype `to_pandas` hands out (undoes `categorical=True`)."""
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return df
    return df.astype({c: _STRING_DTYPE for c in cats})


_STRING_DTYPE = pa.table({"x": pa.array([], pa.string())}).to_pandas()["x"].dtype  # what a plain string column becomes
