"""The report input record: built from live parts, saved, loaded back, and refused with the field named when broken."""
import json

import pytest

from diagnose.reports import SnapshotError, load_snapshot, save_snapshot

from tests.diagnose.reports.sample import sample_snapshot


def test_built_snapshot_summarizes_graph_and_counts_findings_per_object():
    s = sample_snapshot()
    assert s.mesh.namespaces == ["bookinfo", "istio-system"]
    assert (s.mesh.services, s.mesh.workloads) == (4, 6)
    assert s.mesh.health == {"healthy": 5, "degraded": 2, "failing": 2, "idle": 1}
    assert s.mesh.requests_per_second == pytest.approx(58.2)
    inv = {(o["kind"], o["name"]): o for o in s.inventory}
    # the DestinationRule is named by the config finding and by the runtime finding that explains it
    assert inv[("DestinationRule", "ratings")]["findings"] >= 2
    assert inv[("DestinationRule", "ratings")]["source"] == "bookinfo.yaml:28"
    assert inv[("Service", "reviews")]["findings"] == 0
    assert s.window.seconds == 3600


def test_save_and_load_round_trip(tmp_path):
    s = sample_snapshot()
    save_snapshot(s, tmp_path / "snap.json")
    back = load_snapshot(tmp_path / "snap.json")
    assert back.to_dict() == s.to_dict()


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["window"].pop("start"), "missing field window.start"),
    (lambda d: d.__setitem__("generated_at", "yesterday"), "generated_at must be a number"),
    (lambda d: d["findings"][1].__setitem__("code", 7), "findings[1].code must be a string"),
    (lambda d: d.__setitem__("slos", {"a": 1}), "slos must be a list"),
    (lambda d: d.__setitem__("schema", "meshscope.report/v0"), "this meshscope reads"),
])
def test_broken_snapshot_names_the_field(tmp_path, mutate, needle):
    d = sample_snapshot().to_dict()
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(SnapshotError) as exc:
        load_snapshot(path)
    assert needle in str(exc.value) and str(path) in str(exc.value)


def test_not_json_names_the_line(tmp_path):
    path = tmp_path / "trunc.json"
    path.write_text('{\n "generated_at": 1,\n "window": {"start": 0, \n')
    with pytest.raises(SnapshotError, match=r"trunc.json:\d+: not valid JSON"):
        load_snapshot(path)
