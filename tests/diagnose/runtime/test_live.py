"""The live loop over a real TelemetryStore: findings open, update, resolve; flapping is damped; SLOs tracked."""
import threading
import time

import pytest

from collector.store import TelemetryStore
from diagnose.catalog import make
from diagnose.findings import ResourceRef
from diagnose.live import LiveDiagnoser, LiveSources
from mesh.config import Snapshot, load_text
from tests.diagnose.runtime.tables import T0, fqdn, requests, table
from tests.util import wait_until


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def live():
    clock = Clock(T0)
    store = TelemetryStore(window_s=600, clock=clock)
    diag = LiveDiagnoser(LiveSources.from_store(store), clock=clock, window_s=10, ingest_lag_s=0, resolve_after=2,
                         flap_limit=2, flap_window_s=120)
    yield diag, store, clock
    diag.stop()
    store.close()


def traffic(store, start, end, outcome="ok", dst="reviews", n=None):
    n = n or int(end - start) * 5
    parts = [requests("productpage-v1", fqdn(dst), "ok", n, start=start, end=end)]
    if outcome != "ok":
        parts.append(requests("productpage-v1", fqdn(dst), outcome, n, start=start, end=end))
    store.add_requests(table(*parts))


def tick(diag, clock, t):
    clock.t = t
    return diag.evaluate()


def test_finding_opens_updates_and_resolves_with_timestamps(live):
    diag, store, clock = live
    traffic(store, T0, T0 + 10)
    assert tick(diag, clock, T0 + 10) == []
    traffic(store, T0 + 10, T0 + 12, "no_cluster")
    opened = tick(diag, clock, T0 + 12)
    assert [f.code for f in opened] == ["MS3006"]
    f = opened[0]
    assert f.status == "open" and f.first_seen == T0 + 12 and f.last_seen == T0 + 12
    traffic(store, T0 + 12, T0 + 14, "no_cluster")
    f2 = tick(diag, clock, T0 + 14)[0]
    assert f2.fingerprint == f.fingerprint and f2.first_seen == T0 + 12 and f2.last_seen == T0 + 14
    assert f2.evidence["count"] > f.evidence["count"]  # updated evidence: more hurt requests in the window
    # the fault is fixed: the window still holds failures until they age out, then two clean evaluations resolve it
    traffic(store, T0 + 14, T0 + 40)
    tick(diag, clock, T0 + 20)
    assert diag.findings(status="open")  # still inside the 10 s window
    tick(diag, clock, T0 + 26)
    assert diag.findings(status="open")  # one clean evaluation is not enough
    assert tick(diag, clock, T0 + 28) == []
    resolved = diag.findings(status="resolved")
    assert [r.code for r in resolved] == ["MS3006"]
    assert resolved[0].resolved_at == T0 + 28 and resolved[0].last_seen == T0 + 20
    assert diag.finding(f.fingerprint).status == "resolved"


def test_flapping_finding_is_marked_and_held_open_longer(live):
    diag, store, clock = live
    t = T0
    for _ in range(3):  # fault 2 s, clean 12 s: opens, resolves, reopens ...
        traffic(store, t, t + 2, "overflow")
        tick(diag, clock, t + 2)
        traffic(store, t + 2, t + 16)
        for k in (13, 14, 15, 16):
            tick(diag, clock, t + k)
        t += 16
    traffic(store, t, t + 2, "overflow")
    f = tick(diag, clock, t + 2)[0]
    assert f.code == "MS3007" and f.evidence.get("flapping") is True
    traffic(store, t + 2, t + 40)
    times = [t + 13, t + 14, t + 15, t + 16]
    for k in times:
        tick(diag, clock, k)
    assert diag.findings(status="open"), "a flapping finding needs 3x the quiet evaluations to resolve"
    for k in (t + 17, t + 18):
        tick(diag, clock, k)
    assert not diag.findings(status="open")


def test_filters(live):
    diag, store, clock = live
    # severity follows the share hurt: 1 in 20 NC is a warning, all of ratings denied an error
    store.add_requests(table(requests("productpage-v1", fqdn("reviews"), "no_cluster", 1, start=T0, end=T0 + 10),
                             requests("productpage-v1", fqdn("reviews"), "ok", 19, start=T0, end=T0 + 10),
                             requests("productpage-v1", fqdn("ratings", "other"), "rbac_deny", 20, start=T0,
                                      end=T0 + 10, reporter="destination", source_ns="other")))
    tick(diag, clock, T0 + 10)
    assert {f.code for f in diag.findings()} == {"MS3006", "MS3012"}
    assert [f.code for f in diag.findings(category="route")] == ["MS3006"]
    assert [f.code for f in diag.findings({"category": "security,route", "severity": "error"})] == ["MS3012"]
    assert [f.code for f in diag.findings({"category": "security,route", "severity": "warning"})] == ["MS3006"]
    assert [f.code for f in diag.findings(namespace="other")] == ["MS3012"]
    assert [f.code for f in diag.findings(namespace="bookinfo")] == ["MS3006"]
    assert diag.findings(status="resolved") == []
    assert len(diag.findings(status="all")) == 2


def test_config_findings_stay_open_and_slos_come_through_apply(live):
    diag, store, clock = live
    res = load_text("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 1}}}
---
apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: reviews-availability, namespace: bookinfo}
spec: {service: reviews, objective: 99.9, period: 1d}
---
apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: broken, namespace: bookinfo}
spec: {service: reviews, objective: 150}
""", "live.yaml")
    rest = diag.apply_objects(res.objects)
    assert [o.kind for o in rest] == ["DestinationRule"]
    snap = Snapshot(rest)
    cfg = make("MS2022", resource=ResourceRef("DestinationRule", "reviews", "bookinfo"), kind="DestinationRule",
               selector="{}", namespace="bookinfo")
    diag.sources.snapshot = lambda: snap
    diag.sources.analyze = lambda s: [cfg]
    traffic(store, T0, T0 + 10)
    tick(diag, clock, T0 + 10)
    assert {f.code for f in diag.findings()} == {"MS2022", "MS4004"}  # config finding + bad SLO named
    bad = next(f for f in diag.findings() if f.code == "MS4004")
    assert bad.resource.source == "live.yaml:16" and "spec/objective" in bad.message
    traffic(store, T0 + 10, T0 + 13, "overflow")
    found = tick(diag, clock, T0 + 13)
    codes = [f.code for f in found]
    # a config finding stays open while its object is wrong; MS2022 predicts no overflow, so it is not linked
    assert "MS3007" in codes and "MS2022" in codes
    assert diag.findings(code="MS2022")[0].status == "open"
    uo = next(f for f in found if f.code == "MS3007")
    assert uo.resource.kind == "DestinationRule" and "config_findings" not in uo.evidence
    slo = next(f for f in found if f.category == "slo")
    assert slo.code == "MS4001" and slo.resource.name == "reviews-availability"
    st = diag.slo_status(T0 + 13)
    assert st[0]["name"] == "reviews-availability" and st[0]["alert"] == "page"
    assert st[0]["budget_remaining"] < 1 and st[0]["burn_rates"]["10s"] > 14.4
    # delete removes the SLO
    diag.delete_objects([o for o in res.objects if o.name == "reviews-availability"])
    assert diag.slo_status(T0 + 13) == []


def test_sources_that_fail_are_not_fatal():
    def broken(*a):
        raise ConnectionError("prometheus down")
    diag = LiveDiagnoser(LiveSources(requests=broken, rates=broken, snapshot=broken), clock=lambda: T0)
    assert diag.evaluate() == []


def test_background_loop_on_the_real_clock(tmp_path):
    store = TelemetryStore(data_dir=tmp_path, window_s=600)
    # a long window: on a loaded machine the first evaluation may come seconds after the requests were stored
    diag = LiveDiagnoser(LiveSources.from_store(store), interval_s=0.1, window_s=120, ingest_lag_s=0)
    seen = []
    done = threading.Event()

    def listener(findings, now):
        seen.append(len(findings))
        if findings:
            done.set()
    diag.subscribe(listener)
    diag.start()
    try:
        now = time.time()
        store.add_requests(requests("productpage-v1", fqdn("reviews"), "timeout", 10, start=now - 3, end=now))
        found = wait_until(lambda: diag.findings(status="open"), timeout=60, what="UT finding")
        assert found[0].code == "MS3008"
        assert done.wait(30)
    finally:
        diag.stop()
        store.close()
    assert diag._thread is None


def test_ignore_annotation_on_the_blamed_object_suppresses_the_runtime_finding(live):
    diag, store, clock = live
    dr = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
  annotations: {ANNOT}
spec:
  host: reviews
  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 1}}}
"""
    state = {"snap": Snapshot(load_text(dr.replace("{ANNOT}", '{"meshscope.io/ignore": "MS3007"}'), "dr.yaml").objects)}
    diag.sources.snapshot = lambda: state["snap"]
    diag.sources.analyze = lambda s: []
    traffic(store, T0, T0 + 10, "overflow")
    assert [f.code for f in tick(diag, clock, T0 + 10)] == []
    # an ignore of another code (even one the finding is equivalent to) does not hide it
    state["snap"] = Snapshot(load_text(dr.replace("{ANNOT}", '{"meshscope.io/ignore": "MS2010"}'), "dr.yaml").objects)
    traffic(store, T0 + 10, T0 + 12, "overflow")
    assert [f.code for f in tick(diag, clock, T0 + 12)] == ["MS3007"]


def test_config_is_analysed_again_only_when_the_objects_change(live):
    diag, store, clock = live
    objs = load_text("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec: {host: reviews}
""", "dr.yaml").objects
    state = {"objs": objs}
    calls = []
    diag.sources.snapshot = lambda: Snapshot(state["objs"])  # a new Snapshot per call, like BundledMesh
    diag.sources.analyze = lambda s: calls.append(len(s.objects)) or []
    for k in range(3):
        tick(diag, clock, T0 + k)
    assert calls == [1]
    state["objs"] = objs + load_text("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: bookinfo}
spec: {host: ratings}
""", "dr2.yaml").objects
    tick(diag, clock, T0 + 4)
    assert calls == [1, 2]


def test_open_after_hides_one_off_blips():
    clock = Clock(T0)
    store = TelemetryStore(window_s=600, clock=clock)
    diag = LiveDiagnoser(LiveSources.from_store(store), clock=clock, window_s=4, ingest_lag_s=0, open_after=2)
    try:
        traffic(store, T0, T0 + 1, "overflow")  # a one-second blip: seen by one evaluation only
        assert tick(diag, clock, T0 + 1) == [] and diag.findings() == []
        traffic(store, T0 + 1, T0 + 10)
        assert tick(diag, clock, T0 + 10) == [] and diag.findings(status="all") == []
        traffic(store, T0 + 10, T0 + 14, "overflow")  # a lasting fault: open on its second evaluation
        assert tick(diag, clock, T0 + 12) == []
        assert [f.code for f in tick(diag, clock, T0 + 14)] == ["MS3007"]
    finally:
        store.close()
