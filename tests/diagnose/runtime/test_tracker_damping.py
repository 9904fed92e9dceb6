"""Damping: a finding from a statistic opens only once it lasts; a fact opens at first sight."""
from diagnose.catalog import make
from diagnose.findings import ResourceRef
from diagnose.live.tracker import STATISTICAL_OPEN_AFTER, FindingTracker


def latency(p95: float):
    f = make("MS3014", resource=ResourceRef("Service", "productpage", "bookinfo"), source="gateway",
             destination="productpage.bookinfo.svc.cluster.local", p95_ms=p95, reason="3.0x its usual")
    f.evidence = {"edge_key": "productpage.bookinfo.svc.cluster.local", "statistical": True}
    return f


def denial():
    f = make("MS3012", resource=ResourceRef("Service", "ratings", "bookinfo"), source="reviews-v2",
             destination="ratings.bookinfo.svc.cluster.local", count=5, total=5, policy="deny-all")
    f.evidence = {"edge_key": "ratings.bookinfo.svc.cluster.local"}
    return f


def test_a_passing_latency_spike_never_opens_while_a_denial_opens_at_once():
    tr = FindingTracker(resolve_after=2)
    tr.update([latency(900), denial()], 1.0)
    assert [f.code for f in tr.findings()] == ["MS3012"]
    for k in range(1, STATISTICAL_OPEN_AFTER - 1):  # still short of the streak
        tr.update([latency(900), denial()], 1.0 + k)
    assert [f.code for f in tr.findings()] == ["MS3012"]
    tr.update([denial()], 10.0)  # the spike is gone: it never was a finding
    tr.update([latency(950), denial()], 11.0)  # a new spike starts its streak from zero
    assert "MS3014" not in {f.code for f in tr.findings()}


def test_a_lasting_latency_rise_opens_after_the_streak():
    tr = FindingTracker(resolve_after=2)
    for k in range(STATISTICAL_OPEN_AFTER):
        tr.update([latency(900)], 1.0 + k)
    assert [(f.code, f.status) for f in tr.findings()] == [("MS3014", "open")]
