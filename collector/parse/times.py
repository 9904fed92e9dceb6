"""Timestamps from text when a batch cast fails: the slow path every log parser shares.

Arrow casts a whole column at once, but one impossible value (February 30, a year past 2262) fails the whole cast.
Then each *distinct* value is cast alone (a log repeats few distinct instants per batch), and the ones that cannot
be instants become nulls for the caller to count."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from collector.tables import TS


def cast_each_distinct(text: pa.Array) -> pa.Array:
    """`text` (strings, nulls allowed) -> int64 nanoseconds since the epoch, null where a value is not an instant."""
    enc = pc.dictionary_encode(text)
    values: list[int | None] = []
    for v in enc.dictionary.to_pylist():  # one per distinct value, not per record
        try:
            values.append(pa.scalar(v).cast(TS).value)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            values.append(None)
    return pc.take(pa.array(values, pa.int64()), enc.indices)
