"""End to end on the shared bundled mesh: every scenario's runtime finding appears, names its cause, and resolves.

Real Envoy sidecars write JSON access logs; the collector's tailer stores them;
the live diagnoser reads the store and the mesh's config snapshot. Nothing here
is simulated: the flags, details and config objects are the mesh's own.
"""
from __future__ import annotations

import time

import pytest

from collector.sources.access_log import AccessLogTailer, LogFile
from collector.store import TelemetryStore
from diagnose.live import LiveDiagnoser, LiveSources
from diagnose.slo import DEMO_SLOS
from mesh.scenarios import SCENARIOS
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNTIME_SCENARIOS = [s for s in SCENARIOS if any(c.startswith("MS3") for c in s.expected_codes)]
# what kind of problem each scenario is, as an operator would file it
CATEGORY = {"mtls-mismatch": "mtls", "missing-subset": "route", "unknown-host": "route", "rbac-deny": "security"}


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


def callers_of(f) -> set[str]:
    return {e.get("source_workload") for e in f.evidence.get("edges", []) + f.evidence.get("client_edges", [])}


def flags_of(f) -> set[str]:
    out = set(f.evidence.get("response_flags", {}))
    return out


@pytest.mark.parametrize("scenario", RUNTIME_SCENARIOS, ids=lambda s: s.name)
def test_scenario_finding_appears_names_its_cause_and_resolves(bundled_mesh, live, scenario):
    wait_healthy(live, scenario.edge[1])
    want = [c for c in scenario.expected_codes if c.startswith("MS3")]
    t0 = time.monotonic()
    bundled_mesh.apply_scenario(scenario.name)
    try:
        dst = scenario.edge[1]
        # the finding about the scenario's edge (a slow service also makes its callers slow: those are extra)
        found = wait_until(lambda: [f for f in live.findings(status="open") if f.code in want
                                    and f.evidence.get("edge_key") == dst],
                           timeout=60, interval=0.1, what=f"{want} on {dst} for {scenario.name}")
        elapsed = time.monotonic() - t0
        f = next(x for x in found if x.code == want[0])
        assert f.category == CATEGORY.get(scenario.name, "runtime"), (scenario.name, f.category)
        # the caller is named once its own sidecar's lines are in (the server side may be read first and knows
        # only the peer's service account; another caller of the same service may trip first): evidence is
        # refreshed every evaluation, so poll the open finding for it
        f = wait_until(lambda: (x := live.finding(f.fingerprint)) is not None and x.status == "open"
                       and scenario.edge[0] in callers_of(x) and x,
                       timeout=30, interval=0.1, what=f"{scenario.edge[0]} among the callers of {f.code} "
                       f"(first seen: {sorted(callers_of(f))})")
        # evidence with the right flags
        for flag in scenario.expected_flags:
            assert flag in flags_of(f), (scenario.name, f.evidence.get("response_flags"))
        assert f.impact["rps"] > 0 and 0 < f.impact["share"] <= 1
        # the config object to blame
        if scenario.blame:
            kind, ref = scenario.blame.split(" ", 1)
            ns, name = ref.split("/")
            blamed = [x for x in found if x.resource and (x.resource.kind, x.resource.namespace, x.resource.name)
                      == (kind, ns, name)]
            assert blamed, (scenario.blame, [(x.code, x.resource) for x in found])
            assert blamed[0].resource.source, "the blamed object points at its file:line"
        # the scenario's config findings are linked to the runtime finding and stay open (their object is
        # still wrong): every code the scenario declares appears live, in one incident
        config_codes = [c for c in scenario.expected_codes if c[:3] in ("MS1", "MS2")]
        if config_codes:
            linked = wait_until(lambda: {c["code"] for x in live.findings(status="open") if x.code in want
                                         for c in x.evidence.get("config_findings", [])} >= set(config_codes),
                                timeout=30, interval=0.1, what=f"{config_codes} linked to {want}")
            assert linked
            assert {x.code for x in live.findings(status="open")} >= set(config_codes)
        print(f"\n{scenario.name}: {want} after {elapsed:.1f}s: {f.message}")
    finally:
        clear(bundled_mesh)
    fp = f.fingerprint
    wait_until(lambda: (x := live.finding(fp)) is not None and x.status == "resolved", timeout=90, interval=0.2,
               what=f"{f.code} resolved after clearing {scenario.name}")
    assert live.finding(fp).resolved_at is not None


def test_config_only_scenario_opens_and_resolves_its_config_finding(bundled_mesh, live):
    """weights-typo hurts no request (the canary just gets the traffic): only config analysis can tell."""
    bundled_mesh.apply_scenario("weights-typo")
    try:
        f = wait_until(lambda: [x for x in live.findings(status="open") if x.code == "MS1006"], timeout=60,
                       interval=0.1, what="MS1006 for weights-typo")[0]
        assert (f.resource.kind, f.resource.name) == ("VirtualService", "reviews") and f.resource.source
    finally:
        clear(bundled_mesh)
    wait_until(lambda: live.finding(f.fingerprint).status == "resolved", timeout=60, interval=0.1,
               what="MS1006 resolved after clear")


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
               timeout=30, interval=0.2, what="deleted SLO dropped")
