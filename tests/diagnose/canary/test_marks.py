"""Canary verdicts on the graph (candidate version nodes and the edges into them) and on the service page."""
from __future__ import annotations

import json

from diagnose.canary.findings import findings_of
from diagnose.canary.marks import for_service, mark_graph
from diagnose.canary.verdict import evaluate
from mesh.config import load_text
from tests.diagnose.canary.test_live import SPLIT
from tests.diagnose.canary.test_verdict import WINDOW, _frame, _version


def _found():
    verdicts = evaluate(_frame(_version("cart", "v1", 4000, 0.005, 40), _version("cart", "v2", 1000, 0.08, 40),
                               _version("cart", "v3", 1000, 0.005, 40)), WINDOW)
    return verdicts, findings_of(verdicts, load_text(SPLIT, "mesh.yaml").objects)


def _graph(version_of_app: str = "version"):
    nodes = [{"id": f"wl-{v}", "type": "workload", "namespace": "shop", "app": "cart", version_of_app: v, "badges": []}
             for v in ("v1", "v2", "v3")]
    nodes += [{"id": "svc", "type": "service", "namespace": "shop", "app": "cart", "version": "v2"},
              {"id": "other", "type": "workload", "namespace": "elsewhere", "app": "cart", "version": "v2"},
              {"id": "web", "type": "workload", "namespace": "shop", "app": "web", "version": "v1"}]
    edges = [{"id": f"e-{v}", "source": "web", "target": f"wl-{v}"} for v in ("v1", "v2", "v3")]
    return nodes, edges


def test_the_regressing_version_and_the_edges_into_it_are_marked_only() -> None:
    _, findings = _found()
    nodes, edges = _graph()
    assert mark_graph(nodes, edges, findings) == 2  # v2 to roll back, v3 to promote
    by = {n["id"]: n for n in nodes}
    assert by["wl-v2"]["canary"] == "rollback" and "canary-rollback" in by["wl-v2"]["badges"]
    assert "error rate" in by["wl-v2"]["canary_reason"] and by["wl-v2"]["canary_stable"] == "v1"
    assert by["wl-v3"]["canary"] == "promote"
    # the stable version, a service node, the same app in another namespace: untouched
    assert not any("canary" in by[i] for i in ("wl-v1", "svc", "other", "web"))
    assert {e["id"]: e.get("canary") for e in edges} == {"e-v1": None, "e-v2": "rollback", "e-v3": "promote"}
    # findings arrive as objects from the live loop or as dicts from the API: the same marks
    nodes2, edges2 = _graph()
    mark_graph(nodes2, edges2, [json.loads(json.dumps(f.to_dict())) for f in findings])
    assert nodes2 == nodes and edges2 == edges


def test_no_canary_findings_leave_the_graph_as_it_was() -> None:
    nodes, edges = _graph()
    before = json.dumps([nodes, edges])
    assert mark_graph(nodes, edges, []) == 0 and json.dumps([nodes, edges]) == before


def test_service_page_section_shows_each_candidate_and_the_rollback_yaml() -> None:
    from dashboard.pages.service import canary_section

    verdicts, findings = _found()
    body = {"window_s": 600.0, "verdicts": [v.to_dict() for v in verdicts], "findings": [f.to_dict() for f in findings]}
    assert [v["candidate"] for v in for_service(body["verdicts"], "cart.shop.svc.cluster.local")] == ["v2", "v3"]
    assert for_service(body["verdicts"], "cart.other") == [] and for_service(body["verdicts"], "pay") == []

    class Source:
        def canary(self):
            return body

    text = json.dumps([c.to_plotly_json() for c in canary_section(Source(), "cart.shop.svc.cluster.local")],
                      default=lambda o: o.to_plotly_json())
    assert "rollback" in text and "promote" in text and "svc-canary-rollback-v2" in text
    assert "weight: 100" in text  # the rollback YAML, as text (Dash escapes it)
    assert canary_section(Source(), "pay.shop.svc.cluster.local") == []  # not split: no section
    assert canary_section(object(), "cart.shop") == []  # a source without live verdicts (a snapshot)


def test_a_regressing_canary_alerts_and_reports_with_its_rollback_yaml() -> None:
    """The live loop's MS5010 becomes an alert (the YAML as an annotation) and a report finding (a YAML block)."""
    import yaml

    from diagnose.alerts.model import alert_from_finding
    from diagnose.reports.build import build_snapshot
    from diagnose.reports.markdown import render_markdown

    _, findings = _found()
    [bad] = [f for f in findings if f.code == "MS5010"]
    alert = alert_from_finding(bad, 1000.0)
    assert alert.labels["code"] == "MS5010" and alert.labels["severity"] == "error"
    assert alert.labels["kind"] == "VirtualService" and alert.labels["name"] == "cart"
    assert yaml.safe_load(alert.annotations["rollback_yaml"])["spec"]["http"][0]["route"][0]["weight"] == 100
    assert "rolled back" in alert.annotations["summary"]
    md = render_markdown(build_snapshot(findings, generated_at=1000.0))
    block = md.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    assert yaml.safe_load(block) == yaml.safe_load(bad.evidence["rollback_yaml"])
    assert "MS5010" in md and "MS5011" in md and "- rollback_yaml:" not in md
