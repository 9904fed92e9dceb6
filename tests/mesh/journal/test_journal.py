"""The config journal: durable, bounded, no re-recording of unchanged objects, honest about what it cannot see."""
from __future__ import annotations

from mesh.journal import Journal, content_of, field_diff, summary, who_from_managed_fields

DR = content_of({"host": "reviews", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}, {"app": "reviews"})
DR2 = content_of({"host": "reviews", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}, {"app": "reviews"})


def test_update_records_field_level_diff_and_who(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.observe("DestinationRule", "bookinfo", "reviews", DR, who="a", resource_version="1").op == "create"
    ch = j.observe("DestinationRule", "bookinfo", "reviews", DR2, who="kubectl-client-side-apply (Update)",
                   resource_version="2", generation=2)
    assert ch.op == "update" and ch.who == "kubectl-client-side-apply (Update)"
    assert ch.diff == [{"path": "spec.trafficPolicy.tls.mode", "old": "ISTIO_MUTUAL", "new": "DISABLE"}]
    assert summary(ch.to_dict()) == "spec.trafficPolicy.tls.mode: ISTIO_MUTUAL -> DISABLE"
    assert (ch.resource_version, ch.generation) == ("2", 2)


def test_bookkeeping_only_changes_are_not_changes(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.observe("DestinationRule", "bookinfo", "reviews", DR, resource_version="1")
    noisy = content_of(DR["spec"], DR["labels"], {"kubectl.kubernetes.io/last-applied-configuration": "{...}"})
    assert j.observe("DestinationRule", "bookinfo", "reviews", noisy, resource_version="7") is None
    assert j.count() == 1


def test_restart_and_relist_do_not_re_record_unchanged_objects(tmp_path):
    objs = [("DestinationRule", "bookinfo", "reviews", DR), ("VirtualService", "bookinfo", "reviews",
                                                            content_of({"hosts": ["reviews"]}))]
    j = Journal(tmp_path / "j.sqlite")
    first = j.sync(objs, who="start")
    assert len(first) == 2 and all(c.initial for c in first)
    j.close()
    j = Journal(tmp_path / "j.sqlite")  # a restart: same file
    assert j.sync(objs, who="relist after 410") == []
    changed = j.sync([objs[0][:3] + (DR2,)], who="relist", scope_kinds={"DestinationRule", "VirtualService"})
    assert [(c.kind, c.op, c.initial) for c in changed] == [("DestinationRule", "update", False),
                                                            ("VirtualService", "delete", False)]
    assert j.count() == 4


def test_a_partial_listing_deletes_only_its_own_kinds(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.sync([("DestinationRule", "a", "x", DR), ("Gateway", "a", "g", content_of({}))])
    assert j.sync([("DestinationRule", "a", "x", DR)]) == []  # Gateway was not listed: not deleted


def test_gap_is_a_marker_not_delete_and_create(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.observe("DestinationRule", "bookinfo", "reviews", DR, at=100)
    j.gap(since=100, until=200, reason="watch expired (410 Gone)")
    assert j.observe("DestinationRule", "bookinfo", "reviews", DR, at=201) is None
    ops = [c["op"] for c in j.query()]
    assert ops == ["gap", "create"]
    assert [c["op"] for c in j.query(kind="VirtualService")] == ["gap"]  # a gap concerns every object


def test_too_large_unknown_kind_and_clock_skew_are_recorded_as_such(tmp_path):
    j = Journal(tmp_path / "j.sqlite", max_diff_bytes=1000)
    big = content_of({"data": "x" * 5000})
    ch = j.observe("ConfigMap", "ns", "huge", big, at=50.0, source_time=50.5)
    assert ch.too_large and ch.diff == [] and "too large" in ch.note and ch.skew_s is None
    ch = j.observe("WasmPlugin", "ns", "w", content_of({"url": "oci://x"}), unknown_kind=True, at=100.0,
                   source_time=160.0)
    assert ch.unknown_kind and ch.skew_s == 60.0 and "+60.0 s" in ch.note
    assert j.query(kind="WasmPlugin")[0]["unknown_kind"] is True


def test_bounded_by_rows_and_age(tmp_path):
    now = [1000.0]
    j = Journal(tmp_path / "j.sqlite", max_age_s=100, max_rows=50, clock=lambda: now[0])
    for i in range(120):
        j.observe("ConfigMap", "ns", f"c{i % 7}", content_of({"i": i}), at=900 + i)
    j.prune()
    assert j.count() == 50
    now[0] = 1200.0
    j.prune()
    assert all(c["time"] >= 1100 for c in j.query())


def test_query_filters_and_history(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    for i, (ns, name) in enumerate([("a", "x"), ("b", "x"), ("a", "y"), ("a", "x")]):
        j.observe("DestinationRule", ns, name, content_of({"i": i}), at=10.0 * i)
    assert [(c["namespace"], c["name"]) for c in j.query(namespace="a", name="x")] == [("a", "x"), ("a", "x")]
    assert len(j.query(since=15, until=25)) == 1
    assert [c["op"] for c in j.history("DestinationRule", "a", "x")] == ["update", "create"]


def test_field_diff_lists_and_removed_fields():
    d = field_diff({"spec": {"http": [{"timeout": "1s"}, {"x": 1}]}}, {"spec": {"http": [{"timeout": "2s"}]}})
    assert d == [{"path": "spec.http[0].timeout", "old": "1s", "new": "2s"},
                 {"path": "spec.http[1].x", "old": 1, "new": None}]


def test_who_from_managed_fields_takes_the_newest_entry():
    meta = {"managedFields": [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-12-06T10:00:00Z"},
        {"manager": "argocd-controller", "operation": "Apply", "time": "2026-12-06T11:00:00Z"}]}
    who, stamp = who_from_managed_fields(meta)
    assert who == "argocd-controller (Apply)" and stamp == 1796554800.0
    assert who_from_managed_fields({}) == ("", None)
