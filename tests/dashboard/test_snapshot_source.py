"""SnapshotSource: loading with clear errors, graph elements, finding filters and excerpts, traces."""
import json

import pytest

from dashboard.query import QueryError, TraceFilters, Unavailable
from dashboard.sample import bookinfo_snapshot, synthetic_snapshot
from dashboard.elements import fmt_rps
import pandas as pd

from dashboard.snapshot_source import SnapshotError, SnapshotSource, filter_traces, load_snapshot

FAILING_EDGE = "wl:bookinfo/reviews-v2->svc:bookinfo/ratings"


@pytest.fixture(scope="module")
def source():
    return SnapshotSource(bookinfo_snapshot())


def test_load_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"meshscope_snapshot": 1,\n "graphs": {,}}')
    with pytest.raises(SnapshotError, match=r"bad\.json:2:\d+: not valid JSON"):
        load_snapshot(bad)
    with pytest.raises(SnapshotError, match="missing.json: cannot read"):
        load_snapshot(tmp_path / "missing.json")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"meshscope_snapshot": 0}))
    with pytest.raises(SnapshotError, match="meshscope_snapshot is 0"):
        load_snapshot(old)
    snap = bookinfo_snapshot()
    snap["graphs"]["workload"]["edges"][3]["target"] = "nowhere"
    dangling = tmp_path / "dangling.json"
    dangling.write_text(json.dumps(snap))
    with pytest.raises(SnapshotError, match=r"graphs\.workload\.edges\[3\]\.target: unknown node 'nowhere'"):
        load_snapshot(dangling)


def test_round_trip_through_a_file(tmp_path):
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(bookinfo_snapshot()))
    src = SnapshotSource.from_file(path)
    assert len(src.graph().elements) == len(SnapshotSource(bookinfo_snapshot()).graph().elements)


def test_graph_elements_carry_classes_and_labels(source):
    result = source.graph("workload")
    edges = {e["data"]["id"]: e for e in result.elements if "source" in e["data"]}
    nodes = {e["data"]["id"]: e for e in result.elements if "source" not in e["data"]}
    assert len(nodes) == 12 and len(edges) == 12
    bad = edges[FAILING_EDGE]
    assert set(bad["classes"].split()) == {"health-failing", "mtls-mismatch", "proto-http"}
    assert bad["data"]["label_err"] == "61.9%err" and bad["data"]["label_rps"] == "2.10rps"
    assert "service" in nodes["svc:bookinfo/ratings"]["classes"].split()
    assert "health-failing" in nodes["svc:bookinfo/ratings"]["classes"].split()
    assert result.namespaces == ["bookinfo", "istio-system"]


def test_namespace_filter_keeps_edges_crossing_in_and_marks_outsiders(source):
    result = source.graph("workload", ["istio-system"])
    ids = {e["data"]["id"]: e["data"] for e in result.elements}
    assert set(ids) == {"unknown", "wl:istio-system/istio-ingressgateway", "svc:bookinfo/productpage",
                        "unknown->wl:istio-system/istio-ingressgateway",
                        "wl:istio-system/istio-ingressgateway->svc:bookinfo/productpage"}
    assert ids["svc:bookinfo/productpage"]["outsider"] is True
    assert ids["wl:istio-system/istio-ingressgateway"]["outsider"] is False


def test_unknown_graph_type_is_a_query_error_and_missing_type_falls_back(source):
    with pytest.raises(QueryError, match="graphType: unknown graph type 'mesh'"):
        source.graph("mesh")
    result = SnapshotSource(synthetic_snapshot(20)).graph("app")
    assert result.graph_type == "workload" and "not in this snapshot" in result.notes[0]


def test_sample_graph_types_merge_versions_and_services(source):
    app = {e["data"]["id"]: e["data"] for e in source.graph("app").elements}
    assert "app:bookinfo/reviews" in app and "wl:bookinfo/reviews-v2" not in app
    merged = app["app:bookinfo/reviews->svc:bookinfo/ratings"]
    assert merged["rps"] == 4.2 and merged["error_pct"] == 61.9 and merged["mtls_state"] == "mismatch"
    svc = {e["data"]["id"]: e["data"] for e in source.graph("service").elements}
    assert {d["id"] for d in svc.values() if "source" not in d} == {
        "unknown", "wl:istio-system/istio-ingressgateway", "svc:bookinfo/productpage", "svc:bookinfo/details",
        "svc:bookinfo/reviews", "svc:bookinfo/ratings"}
    assert svc["svc:bookinfo/reviews->svc:bookinfo/ratings"]["health"] == "failing"
    assert len(source.graph("versionedApp").elements) == 24


def test_finding_filters(source):
    assert [f["severity"] for f in source.findings()] == ["error", "error", "warning", "warning", "info"]
    assert {f["code"] for f in source.findings({"severity": "error"})} == {"MS2001", "MS3002"}
    assert {f["code"] for f in source.findings({"category": "slo"})} == {"MS4001"}
    assert {f["code"] for f in source.findings({"status": "resolved"})} == {"MS1101"}
    assert {f["code"] for f in source.findings({"element": FAILING_EDGE})} == {"MS2001", "MS3002"}
    assert {f["code"] for f in source.findings({"namespace": "istio-system"})} == {"MS2001"}
    assert source.findings({"namespace": "nope"}) == []
    with pytest.raises(QueryError, match="severity: unknown severity 'fatal'"):
        source.findings({"severity": "fatal"})
    with pytest.raises(QueryError, match="colour: unknown filter"):
        source.findings({"colour": "red"})


def test_finding_detail_highlights_the_offending_yaml_line(source):
    fp = next(f["fingerprint"] for f in source.findings() if f["code"] == "MS2001")
    detail = source.finding(fp)
    main, related = detail["yaml_excerpts"]
    lines = dict(main["lines"])
    assert lines[main["highlight"][0]].strip() == "mode: DISABLE"
    assert dict(related["lines"])[related["highlight"][0]].strip() == "mode: STRICT"
    assert source.finding("nope") is None


def test_config_objects_list_their_findings_and_marked_lines(source):
    objects = {(o["kind"], o["name"]): o for o in source.config_objects()}
    dr = objects[("DestinationRule", "ratings")]
    assert set(dr["findings"]) == {"MS2001", "MS3002"}
    assert [dr["yaml"].splitlines()[n - 1].strip() for n in dr["highlight"]] == ["mode: DISABLE"]
    assert objects[("DestinationRule", "reviews")]["findings"] == []


def test_trace_service_filter_takes_the_name_with_or_without_namespace():
    summary = pd.DataFrame({"trace_id": ["a", "b", "c", "d"], "start": [4.0, 3.0, 2.0, 1.0],
                            "duration_ms": [1.0] * 4, "status": ["ok"] * 4,
                            "services": [["productpage.bookinfo", "reviews.bookinfo"], ["reviews-ui.bookinfo"],
                                         ["reviews"], ["reviews.shop"]]})

    def ids(service: str) -> list[str]:
        return [t["trace_id"] for t in filter_traces(summary, TraceFilters(service=service))]

    assert ids("reviews") == ["a", "c", "d"]  # newest first; not reviews-ui
    assert ids("reviews.bookinfo") == ["a"]
    assert ids("view") == []  # no substring matches
    assert ids("reviews-ui") == ["b"]


def test_trace_search_and_tree_order(source):
    everything = source.traces(TraceFilters(limit=1000))
    assert len(everything) == 40
    errors = source.traces(TraceFilters(status="error", limit=1000))
    assert errors and all(t["status"] == "error" and "ratings" in t["services"] for t in errors)
    slow = source.traces(TraceFilters(min_duration_ms=70, limit=1000))
    assert slow and all(t["duration_ms"] >= 70 for t in slow) and len(slow) < len(everything)
    assert all("details" in t["services"] for t in source.traces(TraceFilters(service="details", limit=5)))
    with pytest.raises(QueryError, match="status"):
        source.traces(TraceFilters(status="bad"))
    spans = source.trace(errors[0]["trace_id"])
    assert spans[0]["depth"] == 0 and spans[0]["parent_span_id"] == ""
    seen = set()
    for s in spans:  # every parent comes before its children
        assert s["parent_span_id"] in seen | {""}
        seen.add(s["span_id"])
    assert source.trace("0" * 32) is None


def test_spans_whose_parent_is_missing_start_their_own_tree_marked_orphan():
    from dashboard.components.charts import waterfall
    from dashboard.snapshot_source import order_spans

    def span(sid: str, parent: str, start: float) -> dict:
        return {"span_id": sid, "parent_span_id": parent, "start_time": start, "duration_ms": 1.0,
                "service_name": "reviews.bookinfo", "name": f"op {sid}", "status_code": "OK"}

    # root r -> a; b's parent x was not received (yet); c is b's child
    ordered = order_spans([span("r", "", 0), span("a", "r", 1), span("b", "x", 2), span("c", "b", 3)])
    assert [(s["span_id"], s["depth"], s["orphan"]) for s in ordered] == [
        ("r", 0, False), ("a", 1, False), ("b", 0, True), ("c", 1, False)]
    labels = waterfall(ordered)["data"][0]["y"]
    assert [("(parent missing)" in y) for y in labels] == [False, False, True, False]


def test_reports_render_through_diagnose_reports(source):
    body, ctype = source.report("md")
    assert ctype.startswith("text/markdown") and b"MS2001" in body
    assert source.report("pdf")[0].startswith(b"%PDF")
    assert b"MS2001" in source.report("html")[0]
    with pytest.raises(QueryError, match="unsupported report format 'docx'"):
        source.report("docx")


def test_a_saved_report_snapshot_opens_in_the_ui(source, tmp_path):
    path = tmp_path / "report.json"
    path.write_bytes(source.report("json")[0])
    reopened = SnapshotSource.from_file(path)
    assert {f["code"] for f in reopened.findings()} == {f["code"] for f in source.findings()}
    edges = {e["data"]["id"]: e for e in reopened.graph().elements if "source" in e["data"]}
    assert "health-failing" in edges[FAILING_EDGE]["classes"]
    assert {s["name"] for s in reopened.slos()} == {s["name"] for s in source.slos()}


def test_scenarios_are_unavailable_from_a_snapshot(source):
    assert source.scenarios() == []
    with pytest.raises(Unavailable):
        source.apply_scenario("mtls-mismatch")


def test_synthetic_snapshot_is_consistent():
    src = SnapshotSource(synthetic_snapshot(300))
    nodes = [e for e in src.graph().elements if "source" not in e["data"]]
    assert len(nodes) == 300
    assert {n["data"]["health"] for n in nodes} >= {"healthy", "failing"}


@pytest.mark.parametrize("value, text", [(0, "0rps"), (12.3, "12.30rps"), (0.004, "0.004rps"), (0.00001, "0.00001rps")])
def test_rate_format_follows_kiali(value, text):
    assert fmt_rps(value) == text
