"""Bundled mesh figures: startup to the first 200 through the gateway, idle memory, config push latency.

Baselines measured in the same run: one bare Envoy (admin only) for startup and
memory, and the pure Istio -> Envoy translation for the push.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import report


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _bare_envoy(tmp: Path) -> tuple[float, int]:
    """Seconds from spawn to LIVE, and idle PSS (KiB), of one admin-only Envoy."""
    from mesh.controlplane.registry import free_local_port
    from mesh.dataplane.envoy import envoy_binary

    port = free_local_port()
    cfg = tmp / "bare.json"
    cfg.write_text(json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}))
    t0 = time.perf_counter()
    proc = subprocess.Popen([envoy_binary(), "-c", str(cfg), "--disable-hot-restart", "--concurrency", "1",
                             "-l", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.read().strip() == b"LIVE":
                        break
            except OSError:
                time.sleep(0.005)
        startup = time.perf_counter() - t0
        time.sleep(1.0)
        return startup, _pss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(5)


def main() -> None:
    import os

    from mesh.bundled import BundledConfig, BundledMesh
    from mesh.config import load_text
    from mesh.controlplane.registry import free_local_port

    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as d:
        tmp = Path(d)
        bare_start, bare_pss = _bare_envoy(tmp)
        mesh = BundledMesh(BundledConfig(gateway_port=free_local_port(), control_port=None, data_dir=tmp / "mesh",
                                         traffic_rate=0))
        t0 = time.perf_counter()
        mesh.start()
        try:
            startup = time.perf_counter() - t0
            report("mesh_startup_to_first_200", startup, "s", baseline=("one bare envoy to LIVE", bare_start))
            time.sleep(3)  # idle: no traffic
            pids = list(mesh.pids().values())
            children = sum(_pss_kib(p) for p in pids) / 1024
            own = _pss_kib(os.getpid()) / 1024
            report("mesh_idle_memory_pss", children + own, "MiB", baseline=("one bare envoy", bare_pss / 1024))
            report("mesh_idle_memory_control_plane", own, "MiB")
            vs = {v: load_text(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: bookinfo}}
spec:
  hosts: [reviews]
  http:
  - route: [{{destination: {{host: reviews, subset: {v}}}}}]
""", "bench.yaml").objects for v in ("v1", "v3")}
            pushes, translations = [], []
            for i in range(10):
                objs = vs["v1" if i % 2 else "v3"]
                t = time.perf_counter()
                mesh._translate(mesh.objects)  # the pure translation part, for the baseline
                translations.append(time.perf_counter() - t)
                pushes.append(mesh.apply(objs).seconds)
            report("mesh_config_push_acked_median", statistics.median(pushes) * 1000, "ms",
                   baseline=("translation only", statistics.median(translations) * 1000))
            report("mesh_config_push_acked_max", max(pushes) * 1000, "ms")
        finally:
            mesh.stop()


if __name__ == "__main__":
    main()
