"""The memory probe's books agree with the kernel's and move with what is allocated (meshscope/memory_probe.py, #18).

Run in a fresh interpreter with the allocator settings of `meshscope up`: RSS as the probe sums it from smaps
equals /proc's VmRSS (within the pages that move between the two reads); a 64 MiB Arrow buffer shows in Arrow's
and jemalloc's figures and leaves them when freed; Python objects show in pymalloc's; a thread shows in the
thread count; the JSON-lines file gets one line per write.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meshscope import memory

SCRIPT = r"""
import json, sys, threading
from pathlib import Path
from meshscope import memory, memory_probe
memory.tune()
import numpy as np, pyarrow as pa

def vmrss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

out = {}
snap = memory_probe.snapshot()
out["smaps_rss"], out["vmrss"] = snap["smaps"]["rss"], vmrss()
before = memory_probe.snapshot()
buf = pa.array(np.ones(8 << 20))  # 64 MiB, zero-copy over numpy: the concat below copies it into Arrow (128 MiB)
buf = pa.concat_arrays([buf, buf])
objs = [str(i) * 3 for i in range(400_000)]
stop = threading.Event()
t = threading.Thread(target=stop.wait, name="probe-test-thread"); t.start()
during = memory_probe.snapshot()
stop.set(); t.join()
del buf
after = memory_probe.snapshot()
out.update(before=before, during=during, after=after)
probe = memory_probe.Probe(sys.argv[1], every=3600)
probe.write(); probe.write()
print(json.dumps(out))
"""


@pytest.mark.skipif(memory._libc() is None or not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_probe_books_match_the_kernel_and_follow_allocations(tmp_path):
    path = tmp_path / "probe.jsonl"
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert abs(out["smaps_rss"] - out["vmrss"]) < 8, out  # MB
    before, during, after = out["before"], out["during"], out["after"]
    assert during["arrow"]["allocated"] - before["arrow"]["allocated"] >= 127  # the 128 MiB copy
    if during["jemalloc"]:  # this pyarrow has jemalloc: its own books see the buffer come and go
        assert during["jemalloc"]["allocated"] - before["jemalloc"]["allocated"] >= 127
        assert during["jemalloc"]["allocated"] - after["jemalloc"]["allocated"] >= 127
    assert after["arrow"]["allocated"] < during["arrow"]["allocated"] - 127
    assert during["pymalloc"]["in_use_mb"] - before["pymalloc"]["in_use_mb"] > 10  # 400k small strings
    assert during["threads"]["total"] == before["threads"]["total"] + 1
    assert during["threads"]["by_name"].get("probe-test-thread") == 1
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 2 and all(x["smaps"]["rss"] > 0 for x in lines)


def test_probe_lines_name_what_waits_to_be_stored(tmp_path):
    """A probe line carries the store's bytes and what waits to be stored: access-log lines written and not read
    yet (on disk), the OTLP receivers' queues (in memory); each figure follows what really waits."""
    from types import SimpleNamespace

    from collector.sources.access_log import AccessLogTailer
    from collector.sources.otlp import OtlpReceiver
    from collector.sources.otlp_grpc import OtlpGrpcReceiver
    from collector.store import TelemetryStore
    from tests.collector.test_tail_round import JSON_REAL

    store = TelemetryStore(window_s=10**9)
    log = tmp_path / "ns.wl.log"
    log.write_bytes(b"\n".join(JSON_REAL) + b"\n")
    tailer = AccessLogTailer([str(log)], store)
    http, grpc = OtlpReceiver(store, port=0), OtlpGrpcReceiver(store, port=0)
    try:
        stack = SimpleNamespace(store=store, otlp=http, otlp_grpc=grpc, backend=SimpleNamespace(tailer=tailer))
        tailer.poll()
        first = memory.stack_figures(stack)
        assert "store_mb" in first and first["queues"] == {
            "otlp_http_pending_mb": 0.0, "otlp_grpc_pending_mb": 0.0, "access_log_backlog_mb": 0.0}
        more = b"\n".join(JSON_REAL * 20) + b"\n"
        with open(log, "ab") as f:
            f.write(more)  # written, not read yet
        http.admission.enter(3 * 2**20)  # a batch admitted and being decoded
        queues = memory.stack_figures(stack)["queues"]
        assert queues["access_log_backlog_mb"] == round(len(more) / 2**20, 3)
        assert queues["otlp_http_pending_mb"] == 3.0
        http.admission.leave(3 * 2**20)
        tailer.poll()
        assert memory.stack_figures(stack)["queues"]["access_log_backlog_mb"] == 0.0
    finally:
        tailer.stop()
        http.stop()
        grpc.stop()
