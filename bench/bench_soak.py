"""Healthy-mesh soak (issue #19): a healthy mesh under steady traffic, with a CPU hog beside it, raises nothing.

The issue asks for 5 minutes; the suite's e2e check runs a shorter window so CI stays fast, this bench runs
the full length (MESHSCOPE_BENCH_SOAK_S, default 300; MESHSCOPE_BENCH_SOAK=0 skips it). A real bundled mesh
(Envoy sidecars, mTLS, steady traffic through the ingress gateway) is tailed into a store and read by the live
diagnoser exactly as in the e2e evaluation; one core is kept busy by a bounded busy-loop subprocess, and 30
requests to random paths go through the ingress gateway (a scanner) at the start.

Figures: `diagnose.healthy_soak.serious_findings` (error/warning findings that opened, the goal is 0) beside the
number of evaluations the diagnoser ran, and the scanner's 404s reported at most as information.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from bench.common import live_diagnosed_mesh, report

SERIOUS = ("error", "warning")


def soak(duration_s: float) -> dict:
    import httpx

    with live_diagnosed_mesh() as (mesh, _files, diag):
        hog = None
        seen: dict[str, str] = {}
        scanner_serious = 0
        try:
            warm = time.monotonic() + 60  # the start-up's first requests (cold pools) are not the soak
            while time.monotonic() < warm and diag.last_evaluation.get("count", 0) < 10:
                time.sleep(0.5)
            start_count = diag.last_evaluation.get("count", 0)
            hog = subprocess.Popen([sys.executable, "-c",  # one core busy for the whole soak, bounded in time
                                    f"import time\nend = time.time() + {duration_s + 5}\nwhile time.time() < end: pass"])
            with httpx.Client(base_url=mesh.gateway_url, timeout=5) as client:
                for i in range(30):
                    client.get(f"/{uuid.uuid4().hex[:8]}/{i}")
            end = time.monotonic() + duration_s
            while time.monotonic() < end:
                for f in diag.findings(status="open"):
                    if f.severity in SERIOUS:
                        seen.setdefault(f.fingerprint, f"{f.severity} {f.code} {f.message[:140]}")
                        scanner_serious += f.code == "MS3005" and "gateway" in f.message
                time.sleep(0.5)
            evaluations = diag.last_evaluation.get("count", 0) - start_count
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    return {"serious": seen, "evaluations": evaluations, "scanner_serious": scanner_serious}


def main() -> None:
    if os.environ.get("MESHSCOPE_BENCH_SOAK", "1") == "0":
        print("# soak skipped (MESHSCOPE_BENCH_SOAK=0)", flush=True)
        return
    duration = float(os.environ.get("MESHSCOPE_BENCH_SOAK_S", "300"))
    out = soak(duration)
    for line in out["serious"].values():
        print(f"# opened during the soak: {line}", flush=True)
    report("diagnose.healthy_soak.seconds", duration, "s")
    report("diagnose.healthy_soak.evaluations", float(out["evaluations"]), "count")
    report("diagnose.healthy_soak.serious_findings", float(len(out["serious"])), "count")


if __name__ == "__main__":
    main()
