"""The long-running commands' allocator settings give freed memory back (meshscope/memory.py, #18).

What the settings are for, reproduced in a fresh interpreter: big buffers (as Arrow columns and pandas
blocks are) freed while small long-lived objects sit after them on the heap. glibc's default keeps such
buffers on the heap once a bigger block has been freed (its mmap threshold rises), so they stay resident;
with the settings they are mapped on their own and leave with `free`. Arrow's buffers come from jemalloc,
which returns freed pages after its decay (a second), or from that malloc where jemalloc is missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from meshscope import memory

SCRIPT = r"""
import json, sys
from pathlib import Path

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "tuned":
    from meshscope import memory
    applied = memory.tune()
else:
    applied = {}
import pyarrow as pa
pool = pa.default_memory_pool().backend_name
bigger = bytearray(8 << 20); del bigger  # glibc's threshold would rise past the blocks below
warm = [pa.array(range(250_000)) for _ in range(20)]; del warm  # Arrow's first use loads its code (file pages, counted in RSS once)
before = rss_mb()
keep, big = [], []
for i in range(100):  # 200 MiB in 2 MiB blocks, each followed by a small object that stays
    b = bytearray(2 << 20)
    b[::4096] = b"x" * len(b[::4096])  # touched: resident
    big.append(b)
    keep.append(bytearray(200))
arrays = [pa.array(range(250_000)) for _ in range(20)]  # 40 MB of Arrow buffers
peak = rss_mb()
del big, arrays
print(json.dumps({"applied": applied, "pool": pool, "grew": peak - before, "kept": rss_mb() - before}))
"""


def _run(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(memory._libc() is None or not sys.platform.startswith("linux"), reason="glibc settings")
def test_freed_buffers_leave_the_process_with_the_settings():
    tuned = _run("tuned")
    assert tuned["applied"]["arena_max"] == memory.ARENAS and tuned["pool"] in ("jemalloc", "system")
    assert tuned["grew"] > 180  # the 200 MiB of buffers were resident ...
    assert tuned["kept"] < 25, tuned  # ... and left when freed, though small objects stay after each


def test_tune_is_applied_once_and_leaves_a_users_choice_alone(monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    out = subprocess.run([sys.executable, "-c", "from meshscope import memory; import json; "
                          "print(json.dumps([memory.tune(), memory.tune()]))"],
                         capture_output=True, text=True, timeout=60)
    first, second = json.loads(out.stdout)
    assert first == second and "arrow_pool" not in first


IPC_SCRIPT = r"""
import json
from meshscope import memory
applied = memory.tune()
import numpy as np, pyarrow as pa, pyarrow.parquet as pq, sys
t = pa.table({"a": np.arange(1_000_000), "s": pa.array(["x", "y"] * 500_000).dictionary_encode()})
sink = pa.BufferOutputStream()
with pa.ipc.new_stream(sink, t.schema) as w:  # what the store writes for every write-ahead record
    w.write_table(t)
back = pa.ipc.open_stream(pa.BufferReader(sink.getvalue())).read_all()
pq.write_table(back, sys.argv[1], compression="zstd")
pq.read_table(sys.argv[1])
others = {name: getattr(pa, f"{name}_memory_pool")().max_memory() for name in ("mimalloc", "system")
          if name in pa.supported_memory_backends() and name != pa.default_memory_pool().backend_name}
print(json.dumps({"applied": applied, "others": others, "pool": pa.default_memory_pool().backend_name}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the settings are for Linux")
def test_arrow_code_taking_cxx_default_pool_allocates_from_the_same_pool(tmp_path):
    """The IPC writer and readers take C++'s default pool, not pyarrow's: with the settings both are one pool, so
    no Arrow memory sits in a second allocator (mimalloc's 1 GiB huge-page region, unseen by any figure)."""
    out = subprocess.run([sys.executable, "-c", IPC_SCRIPT, str(tmp_path / "t.parquet")], capture_output=True,
                         text=True, timeout=120, env={k: v for k, v in os.environ.items()
                                                      if k not in ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF")})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    if got["pool"] != "jemalloc":
        pytest.skip("this pyarrow has no jemalloc")
    assert got["applied"]["cxx_default_pool"] is True
    assert all(peak == 0 for peak in got["others"].values()), got


DECAY_SCRIPT = r"""
import json, time
from meshscope import memory, memory_probe
memory.tune()
import pyarrow as pa
bufs = [pa.allocate_buffer(4 << 20) for _ in range(16)]  # a 64 MiB burst, as a query's columns
for b in bufs:
    memoryview(b).cast("B")[::4096] = b"x" * len(memoryview(b).cast("B")[::4096])  # touched: resident
del bufs
freed = time.monotonic()
while True:  # the pages go back on their own (jemalloc's background thread), no allocation needed to trigger it
    je = memory_probe.jemalloc()
    if je["resident"] - je["active"] < 16 or time.monotonic() - freed > 60:
        break
    time.sleep(0.05)
print(json.dumps({"decay_ms": memory_probe.jemalloc_setting("opt.dirty_decay_ms"), "dirty": je["resident"] - je["active"],
                  "pool": pa.default_memory_pool().backend_name}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the settings are for Linux")
def test_arrow_returns_a_freed_burst_after_its_short_decay():
    """Freed Arrow pages are kept for reuse `DIRTY_DECAY_MS` (not Arrow's own 1 s, which left about a second's worth
    of every query's buffers resident), then handed back without waiting for another allocation."""
    out = subprocess.run([sys.executable, "-c", DECAY_SCRIPT], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF")})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    if got["pool"] != "jemalloc":
        pytest.skip("this pyarrow has no jemalloc")
    assert got["decay_ms"] == memory.DIRTY_DECAY_MS
    assert got["dirty"] < 16, got  # the 64 MiB left (the loop waited for it, up to 60 s)
