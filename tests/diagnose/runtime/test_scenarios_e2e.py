"""End to end on the shared bundled mesh: SLOs on live traffic (a latency regression pages; an SLO applied to the
mesh's config is tracked until deleted).

Real Envoy sidecars write JSON access logs; the collector's tailer stores them;
the live diagnoser reads the store and the mesh's config snapshot. Nothing here
is simulated: the flags, details and config objects are the mesh's own.

Each built-in scenario's runtime finding (it appears, names its category, caller, flags, impact and blamed
object, links its config codes, and resolves) is checked where the scenario is applied once for the whole
suite: tests/diagnose/test_diagnosis_eval_e2e.py (`check_scenario_evidence`).
"""
from __future__ import annotations

import time

import pytest

from collector.sources.access_log import AccessLogTailer, LogFile
from collector.store import TelemetryStore
from diagnose.live import LiveDiagnoser, LiveSources
from diagnose.slo import DEMO_SLOS
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]



def log_files(mesh) -> list[LogFile]:
    return [LogFile(a.path, a.workload, a.namespace, a.principal, a.format) for a in mesh.access_logs()]


@pytest.fixture(scope="module")
def live(bundled_mesh, tmp_path_factory):
    store = TelemetryStore(data_dir=tmp_path_factory.mktemp("diag-store"), window_s=900)
    tailer = AccessLogTailer(lambda: log_files(bundled_mesh), store, interval=0.2)
    diag = LiveDiagnoser(LiveSources.from_store(store, snapshot=bundled_mesh.snapshot), interval_s=0.5,
                         window_s=10.0, ingest_lag_s=0.5, resolve_after=2)
    diag.load_slos([DEMO_SLOS])
    tailer.start()
    diag.start()
    yield diag
    diag.stop()
    tailer.stop()
    store.close()


def open_runtime(diag):
    return [f for f in diag.findings(status="open") if f.code.startswith("MS3")]


HEALTHY_SINCE = [0.0]  # when a test of this module last put the mesh back to its baseline (epoch s)


def clear(mesh) -> None:
    """Back to the baseline; the next test starts once the diagnoser's window holds nothing older."""
    try:
        mesh.clear_scenario()
    finally:
        HEALTHY_SINCE[0] = time.time()


def wait_healthy(diag, service=None, timeout=90.0):
    """Earlier tests on the shared mesh may leave failures in the window: start from a clean state, after
    the diagnoser has watched healthy traffic to `service` (its usual latency learned): no open runtime
    finding, and two fresh evaluations whose window starts after this module last cleared a scenario (a
    whole window of healthy traffic; it has usually slid that far while the last finding resolved)."""
    wait_until(lambda: not open_runtime(diag), timeout=timeout, interval=0.2,
               what=f"no open runtime findings (still: {[f.code for f in open_runtime(diag)]})")
    start = diag.last_evaluation.get("count", 0)
    wait_until(lambda: diag.last_evaluation.get("count", 0) >= start + 2
               and diag.last_evaluation["window"]["start"] >= HEALTHY_SINCE[0]
               and (service is None or service in diag.latency_baseline) and not open_runtime(diag),
               timeout=timeout, interval=0.1, what=f"healthy traffic to {service} watched")


def test_latency_regression_breaches_the_details_latency_slo(bundled_mesh, live):
    wait_healthy(live)
    bundled_mesh.apply_scenario("latency-regression")
    try:
        slo = wait_until(lambda: [f for f in live.findings(status="open", category="slo")
                                  if f.code == "MS4001" and f.resource.name == "details-latency"],
                         timeout=60, interval=0.2, what="MS4001 on details-latency")[0]
        assert slo.evidence["alert"]["firing"] and slo.evidence["edges"][0]["destination"].startswith("details.")
        # the status is the latest cycle's, the finding stays open across cycles: a read at one instant may
        # fall on a cycle where the short window's burn had just dipped to the ticket level (seen once)
        wait_until(lambda: next(s for s in live.slo_status() if s["name"] == "details-latency")["alert"] == "page",
                   timeout=30, interval=0.2, what="details-latency status at page")
        status = next(s for s in live.slo_status() if s["name"] == "details-latency")
        assert status["budget_remaining"] < 1, status
    finally:
        clear(bundled_mesh)
    wait_until(lambda: next(s for s in live.slo_status() if s["name"] == "details-latency")["alert"] != "page",
               timeout=180, interval=0.5, what="details-latency page to stop after clear (short window resets)")


APPLIED_SLO = """apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: ratings-latency-applied, namespace: bookinfo}
spec: {service: ratings, sli: {type: latency, thresholdMs: 100}, objective: 99, period: 1d}
"""


def test_slo_applied_to_the_mesh_config_is_tracked_until_deleted(bundled_mesh, live):
    """`meshscope apply -f slo.yaml` puts the object in the mesh's config; the diagnoser follows it."""
    from mesh.config import load_text

    objs = load_text(APPLIED_SLO, "slo-apply.yaml").objects
    bundled_mesh.apply(objs)
    try:
        st = wait_until(lambda: [s for s in live.slo_status() if s["name"] == "ratings-latency-applied"],
                        timeout=30, interval=0.2, what="applied SLO tracked")[0]
        assert st["service"] == "ratings.bookinfo.svc.cluster.local" and st["source"] == "slo-apply.yaml:1"
        wait_until(lambda: next(s for s in live.slo_status() if s["name"] == "ratings-latency-applied")["requests"] > 0,
                   timeout=60, interval=0.2, what="applied SLO counting ratings traffic")
    finally:
        bundled_mesh.delete(objs)
    wait_until(lambda: not [s for s in live.slo_status() if s["name"] == "ratings-latency-applied"],
               timeout=90, interval=0.2, what="deleted SLO dropped")
