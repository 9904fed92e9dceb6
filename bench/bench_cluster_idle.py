"""Idle is idle on a cluster (#18): the live diagnoser's CPU while nothing moves, with and without `data_version`.

A real Prometheus scrapes an exporter whose counter never moves; the config is Bookinfo from the replaying
Kubernetes API, read by `ClusterBackend` as `meshscope serve` reads it. The same diagnoser runs in turns without a
version (what both cluster backends had before session 11: a cycle every interval) and with
`ClusterBackend.data_version`. CPU is this process's (the diagnoser, the kube watches, the fingerprint queries).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.common import report

SECONDS = 15.0  # per turn
INTERVAL_S = 2.0  # the diagnoser's default cycle


def _turn(be, version) -> tuple[float, int]:
    from diagnose.live import LiveDiagnoser, LiveSources
    from tests.util import wait_until

    diag = LiveDiagnoser(LiveSources(rates=be.rates, snapshot=be.snapshot), interval_s=INTERVAL_S,
                         data_version=version, idle_interval_s=10.0).start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 1, timeout=60, what="the first cycle")
        cpu, cycles = time.process_time(), diag.last_evaluation["count"]
        time.sleep(SECONDS)  # the measured span itself, not a synchronisation
        return time.process_time() - cpu, diag.last_evaluation["count"] - cycles
    finally:
        diag.stop()


def main() -> None:
    from meshscope.cluster import ClusterBackend, ClusterOptions
    from tests.cluster.conftest import bookinfo_docs
    from tests.cluster.kubedata import list_bodies
    from tests.cluster.test_data_version import Exporter
    from tests.fixtures.kubeapi import KubeAPIServer
    from tests.fixtures.prometheus import start_prometheus, stop_prometheus
    from tests.util import wait_until

    work = Path(tempfile.mkdtemp(prefix="meshscope-bench-idle-"))
    prom = start_prometheus(work)
    exporter = Exporter()
    kube = KubeAPIServer().start()
    kube.lists.update(list_bodies(bookinfo_docs()))
    be = ClusterBackend(ClusterOptions(prometheus_url=prom.url, kubeconfig=str(kube.kubeconfig(work))))
    try:
        prom.set_targets([exporter.url])
        wait_until(lambda: prom.targets_up() >= 1, timeout=60, what="Prometheus scraping the exporter")
        be.start()
        wait_until(lambda: be.data_version()[1], timeout=60, what="the exporter's series in Prometheus")
        base = [0.0, 0]
        new = [0.0, 0]
        for _ in range(2):  # in turns, so the machine's load falls on both alike
            for acc, version in ((base, None), (new, be.data_version)):
                cpu, cycles = _turn(be, version)
                acc[0] += cpu
                acc[1] += cycles
        per_min = 60.0 / (2 * SECONDS)
        report("cluster_idle_cpu_without_version", base[0] * per_min, "CPU-s/min")
        report("cluster_idle_cpu", new[0] * per_min, "CPU-s/min", ("without data_version", base[0] * per_min))
        report("cluster_idle_cycles_without_version", base[1] * per_min, "cycles/min")
        report("cluster_idle_cycles", new[1] * per_min, "cycles/min", ("without data_version", base[1] * per_min))
    finally:
        be.stop()
        exporter.close()
        kube.stop()
        stop_prometheus(prom)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
