"""ASM ServiceLevelObjective import (same burn-rate math, ASM labels kept) and export (objects + PrometheusRule)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from diagnose.slo import SLO, load_slo_text
from diagnose.slo.asm import AsmSLO, to_asm_objects, to_prometheus_rule
from diagnose.slo.windows import DAY, google_windows

PROMTOOL = shutil.which("promtool")
SVC = "httpbin.default.svc.cluster.local"

ASM = """\
apiVersion: istio.alibabacloud.com/v1beta1
kind: ServiceLevelObjective
metadata:
  name: asm-slo-default-httpbin
  namespace: default
spec:
  service: httpbin
  period: 28d
  labels: {owner: finance-team}
  slos:
  - name: avail
    objective: "99.9"
    labels: {description: service availability}
    sli: {plugin: {id: availability}}
    alerting:
      name: asm-alert
      labels: {category: availability}
      annotations: {summary: High error rate on requests}
      pageAlert: {labels: {severity: "10"}}
      ticketAlert: {labels: {channel: call}}
  - name: fast
    objective: 99
    sli: {plugin: {id: latency, options: {threshold: 200ms}}}
    alerting: {name: slow, ticketAlert: {disable: true}}
  - name: http-only
    objective: "99.5"
    sli: {plugin: {id: availability, options: {filter: request_protocol="http"}}}
  - name: broken
    objective: "120"
    sli: {plugin: {id: availability}}
  - name: noplugin
    objective: "99"
    sli: {plugin: {id: throughput}}
"""


def test_import_keeps_objective_period_windows_and_asm_labels():
    loaded = load_slo_text(ASM, "asm-slo.yaml")
    by = {s.name: s for s in loaded.slos}
    assert set(by) == {"httpbin-avail", "httpbin-fast", "httpbin-http-only"}
    avail = by["httpbin-avail"]
    assert isinstance(avail, AsmSLO) and avail.origin == "asm"
    assert (avail.service, avail.sli, avail.objective, avail.period_s) == (SVC, "availability", 99.9, 28 * DAY)
    assert avail.windows == google_windows(28 * DAY)  # same burn-rate math as the Sloth import
    assert avail.labels == {"owner": "finance-team", "description": "service availability"}
    assert (avail.alert_name, avail.alert_labels, avail.page_labels, avail.ticket_labels) == (
        "asm-alert", {"category": "availability"}, {"severity": "10"}, {"channel": "call"})
    assert avail.alert_annotations == {"summary": "High error rate on requests"}
    fast = by["httpbin-fast"]
    assert (fast.sli, fast.threshold_ms, fast.page, fast.ticket) == ("latency", 200.0, True, False)
    http = by["httpbin-http-only"]
    assert http.sli == "promql" and 'request_protocol="http"' in http.error_query
    assert '5..|429' in http.error_query and 'response_code' not in http.total_query
    assert not http.page and not http.ticket  # no alerting block: ASM generates no alert
    problems = {(p.field, p.line) for p in loaded.problems}
    lines = ASM.splitlines()
    assert ("spec/slos[3]/objective", lines.index('    objective: "120"') + 1) in problems
    assert ("spec/slos[4]/sli/plugin/id", lines.index("    sli: {plugin: {id: throughput}}") + 1) in problems
    assert all(p.file == "asm-slo.yaml" for p in loaded.problems)


def test_bad_period_or_service_is_a_problem_not_a_crash():
    text = ASM.replace("period: 28d", "period: 3d")
    loaded = load_slo_text(text, "x.yaml")
    assert loaded.slos == [] and [p.field for p in loaded.problems] == ["spec/period"]
    loaded = load_slo_text(ASM.replace("  service: httpbin\n", ""), "x.yaml")
    assert loaded.slos == [] and [p.field for p in loaded.problems] == ["spec/service"]


def test_export_round_trips_through_import():
    own = [SLO(name="reviews-avail", namespace="bookinfo", service="reviews.bookinfo.svc.cluster.local",
               objective=99.5, period_s=7 * DAY, description="reviews answer", ticket=False),
           SLO(name="reviews-lat", namespace="bookinfo", service="reviews.bookinfo.svc.cluster.local",
               objective=99, sli="latency", threshold_ms=250, period_s=7 * DAY),
           SLO(name="odd", namespace="bookinfo", service="x.bookinfo.svc.cluster.local", objective=99, period_s=3600),
           SLO(name="prom", service="", objective=99, sli="promql", error_query="a", total_query="b")]
    objects, skipped = to_asm_objects(own)
    assert len(objects) == 1 and len(skipped) == 2 and any("1h" in s for s in skipped)
    obj = objects[0]
    assert obj["metadata"] == {"name": "asm-slo-bookinfo-reviews-7d", "namespace": "bookinfo"}
    back = {s.name: s for s in load_slo_text(yaml.safe_dump_all(objects), "exported.yaml").slos}
    avail, lat = back["reviews-reviews-avail"], back["reviews-reviews-lat"]
    assert (avail.service, avail.objective, avail.period_s, avail.page, avail.ticket) == (
        own[0].service, 99.5, 7 * DAY, True, False)
    assert (lat.sli, lat.threshold_ms, lat.objective) == ("latency", 250.0, 99.0)
    assert avail.description == "reviews answer"


def test_asm_import_export_keeps_alert_labels():
    slos = load_slo_text(ASM, "a.yaml").slos
    objects, _ = to_asm_objects([s for s in slos if s.sli != "promql"])
    again = {s.name.split("-", 1)[1]: s for s in load_slo_text(yaml.safe_dump_all(objects), "b.yaml").slos}
    first = again["httpbin-avail"]
    assert (first.alert_name, first.page_labels, first.ticket_labels, first.alert_annotations) == (
        "asm-alert", {"severity": "10"}, {"channel": "call"}, {"summary": "High error rate on requests"})


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus package) not installed")
def test_prometheus_rule_is_valid_and_pages_with_asm_labels(tmp_path: Path):
    avail = next(s for s in load_slo_text(ASM, "a.yaml").slos if s.name == "httpbin-avail")
    rule = to_prometheus_rule([avail])
    assert rule["kind"] == "PrometheusRule"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    check = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    sel = f'reporter="destination",destination_service="{SVC}"'
    labels = {"category": "availability", "severity": "10", "sloth_severity": "page", "sloth_id": "httpbin-httpbin-avail",
              "sloth_service": "httpbin", "sloth_slo": "httpbin-avail", "owner": "finance-team",
              "description": "service availability"}
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [
            {"series": f'istio_requests_total{{{sel},response_code="200"}}', "values": "0+90x120"},
            {"series": f'istio_requests_total{{{sel},response_code="503"}}', "values": "0+10x120"}],
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "asm-alert", "exp_alerts": [
                {"exp_labels": labels, "exp_annotations": {
                    "summary": "High error rate on requests",
                    "title": "(page) httpbin httpbin-avail SLO error budget burn rate is too fast."}},
                # 10 % errors also burns past the ticket windows' factors: the ticket alert carries its own labels
                {"exp_labels": {**{k: v for k, v in labels.items() if k != "severity"}, "channel": "call",
                                "sloth_severity": "ticket"}, "exp_annotations": {
                    "summary": "High error rate on requests",
                    "title": "(ticket) httpbin httpbin-avail SLO error budget burn rate is too fast."}}]}]},
        {"interval": "1m", "input_series": [  # 0.05 % errors: within the 0.1 % budget, nothing fires
            {"series": f'istio_requests_total{{{sel},response_code="200"}}', "values": "0+1999x120"},
            {"series": f'istio_requests_total{{{sel},response_code="503"}}', "values": "0+1x120"}],
         "alert_rule_test": [{"eval_time": "30m", "alertname": "asm-alert", "exp_alerts": []}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    run = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
