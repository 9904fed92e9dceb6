"""`meshscope up` overloaded (fast traffic, a flood of OTLP exports, API hammering) still stops on SIGTERM.

Starts its own mesh: what is tested is the process's stop under load.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.util import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _spans_body() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    now = time.time_ns()
    for i in range(200):
        ss.spans.add(trace_id=os.urandom(16), span_id=(i + 1).to_bytes(8, "big"), name="flood",
                     start_time_unix_nano=now, end_time_unix_nano=now + 1000)
    return req.SerializeToString()


def test_overloaded_meshscope_stops_on_sigterm(tmp_path):
    gw, ctl, ui, otlp = free_port(), free_port(), free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "meshscope", "up", "--gateway-port", str(gw), "--control-port",
                             str(ctl), "--port", str(ui), "--otlp-port", str(otlp), "--data-dir", str(tmp_path),
                             "--rate", "50", "--scrape-interval", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    stop = threading.Event()
    codes: list[int] = []
    try:
        lines: list[str] = []
        while not any(ln.startswith("Ready.") for ln in lines):
            line = proc.stdout.readline()
            assert line, "meshscope up exited early:\n" + "".join(lines)
            lines.append(line)
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
        body = _spans_body()

        def flood() -> None:
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    try:
                        r = c.post(f"http://127.0.0.1:{otlp}/v1/traces", content=body,
                                   headers={"content-type": "application/x-protobuf"})
                        codes.append(r.status_code)
                        if r.status_code == 503:
                            assert int(r.headers["retry-after"]) >= 1
                    except httpx.HTTPError:
                        codes.append(0)

        def hammer() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{ui}", timeout=30) as c:
                while not stop.is_set():
                    for path in ("/api/v1/graph", "/api/v1/findings", "/api/v1/slos"):
                        try:
                            c.get(path)
                        except httpx.HTTPError:
                            pass

        workers = [threading.Thread(target=flood, daemon=True) for _ in range(24)]
        workers += [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
        for t in workers:
            t.start()
        wait_until(lambda: len(codes) >= 200, timeout=120, interval=0.5, what="200 OTLP exports answered")
        threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        assert threads < 150, f"{threads} threads: a thread per sender?"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert time.monotonic() - t0 < 60
    finally:
        stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert set(codes) <= {200, 503, 0}  # answered, or shed with Retry-After; 0 only once it is stopping
    assert codes.count(200) > 0
