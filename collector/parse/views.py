"""Arrow string views over a byte buffer: cut thousands of substrings out of a body without copying.

Parsers find field boundaries with numpy (byte offsets); `string_views` turns (start, end) pairs
into an Arrow `string_view` array that points into the original buffer (16 bytes per row, the
first 12 bytes inline). Arrow then hashes, dictionary-encodes or casts them in C++.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view


def string_views(data_buffer: pa.Buffer, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """Zero-copy string_view array of data[starts:ends] (Arrow binary views, 16 bytes per row)."""
    n = len(starts)
    starts = starts.astype(np.int64)
    lens = np.maximum(ends - starts, 0).astype(np.int64)
    head = np.zeros((n, 12), dtype=np.uint8)  # the first 12 bytes of every row
    tail_from = max(len(data) - 12, 0)
    near_end = (starts > tail_from) | (len(data) < 12)  # rows whose 12-byte window would run past the buffer
    if len(data) >= 12 and (~near_end).any():
        head[~near_end] = sliding_window_view(data, 12)[starts[~near_end]]
    if near_end.any():
        tail = np.concatenate([data[tail_from:], np.zeros(12, np.uint8)])
        head[near_end] = sliding_window_view(tail, 12)[starts[near_end] - tail_from]
    head &= (np.arange(12)[None, :] < lens[:, None]).astype(np.uint8) * 255  # zero past the end
    words = np.ascontiguousarray(head).view("<u4").reshape(n, 3)
    inline = lens <= 12
    views = np.empty((n, 4), dtype="<u4")  # length | prefix | buffer index | offset (or 12 inline bytes)
    views[:, 0] = lens
    views[:, 1] = words[:, 0]
    views[:, 2] = np.where(inline, words[:, 1], 0)
    views[:, 3] = np.where(inline, words[:, 2], starts.astype("<u4"))
    return pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views.tobytes()), data_buffer])
