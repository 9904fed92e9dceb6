"""Arrow string views cut out of a buffer must equal plain slicing, at any position and length."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from collector.parse.views import string_views


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.data())
def test_views_equal_slices(body, data):
    n = len(body)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, n)), max_size=12))
    starts = np.array([min(a, b) for a, b in pairs], dtype=np.int64)
    ends = np.array([max(a, b) for a, b in pairs], dtype=np.int64)
    views = string_views(pa.py_buffer(body), np.frombuffer(body, np.uint8), starts, ends)
    assert views.cast(pa.binary()).to_pylist() == [body[a:b] for a, b in zip(starts, ends)]
