"""The report input record: built from live parts, saved, loaded back, and refused with the field named when broken."""
import json

import pytest

from diagnose.reports import SnapshotError, load_snapshot, save_snapshot

from tests.diagnose.reports.sample import TOTAL_RPS, sample_snapshot


def test_built_snapshot_summarizes_graph_and_counts_findings_per_object():
    s = sample_snapshot()
    assert s.mesh.namespaces == ["bookinfo", "istio-system"]
    nodes = [e["data"] for e in s.graph if "source" not in e["data"] and e["data"].get("node_type") != "box"]
    assert s.mesh.services + s.mesh.workloads == len(nodes) and sum(s.mesh.health.values()) == len(nodes)
    assert s.mesh.health.get("failing", 0) >= 1  # ratings answers 35 % 5xx: failing by Kiali's defaults
    assert s.mesh.requests_per_second == pytest.approx(TOTAL_RPS, rel=1e-3)
    assert s.mesh.error_rate == pytest.approx((0.2 + 1.75) / TOTAL_RPS, rel=1e-2)
    inv = {(o["kind"], o["namespace"], o["name"]): o for o in s.inventory}
    assert len(inv) == 9 and inv[("DestinationRule", "bookinfo", "ratings")]["source"] == "bookinfo.yaml:28"
    # the runtime finding names the DestinationRule and, as related, the PeerAuthentication
    assert inv[("DestinationRule", "bookinfo", "ratings")]["findings"] >= 1
    assert inv[("PeerAuthentication", "bookinfo", "default")]["findings"] >= 1
    named = {(r["kind"], r["namespace"], r["name"]) for f in s.findings for r in [f["resource"], *f["related"]] if r}
    assert {k for k, o in inv.items() if o["findings"]} == named & set(inv)
    assert s.window.seconds == 3600


def test_save_and_load_round_trip(tmp_path):
    s = sample_snapshot()
    save_snapshot(s, tmp_path / "snap.json")
    back = load_snapshot(tmp_path / "snap.json")
    assert back.to_dict() == s.to_dict()


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["window"].pop("start"), "missing field window.start"),
    (lambda d: d.__setitem__("generated_at", "yesterday"), "generated_at must be a number"),
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


def test_bad_entries_are_skipped_and_named_while_the_rest_loads(tmp_path):
    d = sample_snapshot().to_dict()
    n = len(d["findings"])
    d["findings"][1]["code"] = 7
    d["findings"][2]["severity"] = "critical"
    d["slos"].append("not an slo")
    d["graph"].append({"nodata": 1})
    path = tmp_path / "partly.json"
    path.write_text(json.dumps(d))
    s = load_snapshot(path)
    assert len(s.findings) == n - 2 and len(s.slos) == 2
    assert s.problems == [
        f"{path}: graph[{len(d['graph']) - 1}].data must be an object (skipped)",
        f"{path}: findings[1].code must be a string (skipped)",
        f"{path}: findings[2].severity must be one of error, warning, info, got 'critical' (skipped)",
        f"{path}: slos[2] must be an object, got str (skipped)",
    ]
