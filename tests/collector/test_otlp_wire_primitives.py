"""The wire walk's primitives against a plain Python reading of the same bytes.

Why: `_varint_at` and `_fixed64_at` have fast paths (one- and two-byte varints; an unaligned
uint64 view) beside the general loop; each path is chosen by what the batch holds, so every
mix of lengths and every position up to the buffer's last byte is checked here, not only the
shapes the bench payloads happen to have.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from collector.parse import otlp_wire as w
from tests.collector.wire import varint



@pytest.mark.parametrize("top", [0x7F, 0x3FFF, 0x1FFFFF, 2**64 - 1])
def test_varints_of_every_width_mix_read_as_python_reads_them(top):
    rnd = random.Random(top)
    values = [rnd.randint(0, top) for _ in range(400)] + [0, top]
    body = bytearray()
    pos = []
    for v in values:
        pos.append(len(body))
        body += varint(v)
    buf = np.frombuffer(bytes(body), dtype=np.uint8)
    got, length = w._varint_at(buf, np.array(pos, dtype=np.int64))
    assert [int(x) for x in got] == values
    assert list(length) == [len(varint(v)) for v in values]


def test_a_varint_running_past_the_buffer_is_refused():
    buf = np.frombuffer(b"\x05\x96", dtype=np.uint8)  # the second varint's continuation bit points past the end
    with pytest.raises(w._Bad):
        w._varint_at(buf, np.array([0, 1], dtype=np.int64))


def test_fixed64_at_every_position_including_the_last_eight_bytes():
    rnd = random.Random(5)
    body = bytes(rnd.getrandbits(8) for _ in range(67))
    buf = np.frombuffer(body, dtype=np.uint8)
    pos = np.arange(len(body) - 7, dtype=np.int64)
    got, after = w._fixed64_at(buf, pos, np.full(len(pos), len(body)))
    assert [int(x) for x in got] == [int.from_bytes(body[p:p + 8], "little") for p in pos]
    assert (after == pos + 8).all()
    with pytest.raises(w._Bad):
        w._fixed64_at(buf, np.array([len(body) - 7]), np.array([len(body)]))


def test_walk_splits_fields_alike_for_uniform_and_mixed_iterations():
    """Messages whose fields come in one order (whole iterations per field) and in different orders
    (mixed iterations) give the same occurrences, message by message, as a sequential reading."""
    rnd = random.Random(9)
    msgs, time_at = [], []
    for i in range(60):
        fields = [(1, b"\x09" + rnd.getrandbits(64).to_bytes(8, "little")),
                  (2, b"\x12" + varint(n := rnd.choice([3, 200])) + bytes(n)),
                  (3, b"\x18" + varint(rnd.randint(0, 10**6)))]
        if i % 3 == 0:
            rnd.shuffle(fields)
        msgs.append(b"".join(f for _, f in fields))
        time_at.append(sum(len(f) for _, f in fields[:[fid for fid, _ in fields].index(1)]) + 1)
    body = b"".join(msgs)
    starts = np.cumsum([0] + [len(m) for m in msgs[:-1]]).astype(np.int64)
    ends = starts + np.array([len(m) for m in msgs])
    buf = np.frombuffer(body, dtype=np.uint8)
    f = w._walk(buf, starts, ends, {1: "fixed64", 2: "len", 3: "varint"})
    for fid in (1, 2, 3):
        m = f[fid][0]
        assert sorted(m.tolist()) == list(range(len(msgs)))
        assert (np.diff(f[fid][3]) >= 0).all()  # iteration order kept
    for k in range(len(msgs)):
        j = int(np.flatnonzero(f[2][0] == k)[0])
        start, length = int(f[2][1][j]), int(f[2][2][j])
        assert length in (3, 200) and bytes(body[start:start + length]) == bytes(length)
        j1 = int(np.flatnonzero(f[1][0] == k)[0])
        at = time_at[k] + int(starts[k])
        assert int(f[1][1][j1]) == int.from_bytes(body[at:at + 8], "little")
