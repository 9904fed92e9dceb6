"""Grouping with explicit clocks: group_wait batches, group_interval gates changes, repeat_interval re-sends, resolves are sent once."""
from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.grouping import Grouper
from diagnose.alerts.model import FIRING, RESOLVED, alert_from_finding

from tests.diagnose.alerts.findings_data import route_finding, runtime_finding, slo_finding


def receiver(**kw):
    base = dict(group_by=["alertname"], group_wait=30, group_interval=300, repeat_interval=3600)
    base.update(kw)
    return ReceiverConfig(name="r", url="http://127.0.0.1:1/", **base)


def alerts(*findings, now=0.0):
    return [alert_from_finding(f, now) for f in findings]


def summary(notes):
    return [(n.group_labels.get("alertname"), sorted((a.labels.get("name"), a.status) for a in n.alerts)) for n in notes]


def test_group_wait_batches_a_burst_into_one_notification():
    g = Grouper([receiver()])
    g.observe(alerts(route_finding("reviews")), 0)
    assert g.flush(10) == []  # still waiting
    g.observe(alerts(route_finding("reviews"), route_finding("ratings")), 20)
    notes = g.flush(30)
    assert summary(notes) == [("MS1001", [("ratings", FIRING), ("reviews", FIRING)])]
    assert g.flush(31) == []


def test_same_finding_seen_again_is_not_a_new_alert():
    g = Grouper([receiver(group_wait=0)])
    for t in (0, 5, 10, 15):
        g.observe(alerts(route_finding("reviews"), now=t), t)
    notes = g.flush(15)
    assert len(notes) == 1 and len(notes[0].alerts) == 1
    assert notes[0].alerts[0].starts_at == 0  # when it first fired, not when last seen


def test_changes_wait_for_group_interval_and_resolves_are_sent_once():
    g = Grouper([receiver(group_wait=0, group_interval=60)])
    g.observe(alerts(route_finding("reviews"), route_finding("ratings")), 0)
    assert len(g.flush(0)) == 1
    g.observe(alerts(route_finding("reviews")), 10)  # ratings recovered
    assert g.flush(30) == []  # group_interval not yet elapsed
    notes = g.flush(60)
    assert summary(notes) == [("MS1001", [("ratings", RESOLVED), ("reviews", FIRING)])]
    resolved = [a for a in notes[0].alerts if a.status == RESOLVED][0]
    assert resolved.ends_at == 10
    assert g.flush(120) == []  # nothing changed, repeat not due
    g.observe([], 130)
    notes = g.flush(180)
    assert summary(notes) == [("MS1001", [("reviews", RESOLVED)])]
    assert g.groups == {}  # empty groups are forgotten


def test_repeat_interval_resends_unchanged_firing_group():
    g = Grouper([receiver(group_wait=0, group_interval=60, repeat_interval=600)])
    g.observe(alerts(route_finding()), 0)
    assert len(g.flush(0)) == 1
    sends = [t for t in range(60, 1260, 60) if g.flush(t)]
    assert sends == [600, 1200]


def test_alert_that_resolves_before_it_was_announced_is_dropped():
    g = Grouper([receiver(group_wait=30)])
    g.observe(alerts(route_finding()), 0)
    g.observe([], 10)
    assert g.flush(30) == [] and g.groups == {}


def test_send_resolved_false_keeps_resolves_quiet():
    g = Grouper([receiver(group_wait=0, group_interval=10, send_resolved=False)])
    g.observe(alerts(route_finding("a"), route_finding("b")), 0)
    g.flush(0)
    g.observe(alerts(route_finding("a")), 1)
    assert g.flush(10) == []
    g.observe(alerts(route_finding("a"), route_finding("c")), 11)
    assert summary(g.flush(20)) == [("MS1001", [("a", FIRING), ("c", FIRING)])]


def test_routing_by_category_and_severity_and_group_by_labels():
    slo_only = ReceiverConfig(name="slo", url="http://127.0.0.1:1/", categories=["slo"], group_by=["namespace"], group_wait=0)
    each = ReceiverConfig(name="each", url="http://127.0.0.1:1/", group_by=["..."], group_wait=0, severities=["warning"])
    g = Grouper([slo_only, each])
    g.observe(alerts(route_finding(), slo_finding("ratings"), slo_finding("details"), runtime_finding("a->b"), runtime_finding("c->b")), 0)
    notes = g.flush(0)
    by_rec = {}
    for n in notes:
        by_rec.setdefault(n.receiver, []).append(n)
    assert len(by_rec["slo"]) == 1 and by_rec["slo"][0].group_labels == {"namespace": "bookinfo"}
    assert sorted(a.labels["name"] for a in by_rec["slo"][0].alerts) == ["details", "ratings"]
    # same code and resource, different edges: two alerts, two groups with "..."
    assert sorted(n.alerts[0].labels["edge"] for n in by_rec["each"]) == ["a->b", "c->b"]


def test_state_round_trips_through_a_dict():
    g = Grouper([receiver(group_wait=30)])
    g.observe(alerts(route_finding()), 0)
    g2 = Grouper([receiver(group_wait=30)])
    g2.load(g.to_dict())
    assert g2.flush(29) == []
    assert summary(g2.flush(30)) == [("MS1001", [("reviews", FIRING)])]
