"""SLO files: meshscope's kind, Sloth/OpenSLO/Pyrra imports, and bad input named by file, line and field."""
from pathlib import Path

import pytest

from diagnose.slo import DEMO_SLOS, load_slo_text, load_slos
from diagnose.slo.windows import DAY

GOOD = """
apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: reviews-latency, namespace: bookinfo}
spec:
  service: reviews
  sli: {type: latency, thresholdMs: 250}
  objective: 99.5
  period: 7d
  reporter: destination
"""


def test_meshscope_slo_loads_with_defaults_and_source():
    res = load_slo_text(GOOD + """---
apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: details, namespace: bookinfo}
spec: {service: details.bookinfo.svc.cluster.local, objective: "99.9%"}
""", "slos.yaml")
    assert res.problems == []
    lat, avail = res.slos
    assert (lat.key, lat.service, lat.sli, lat.threshold_ms, lat.objective, lat.period_s, lat.reporter) == \
        ("bookinfo/reviews-latency", "reviews.bookinfo.svc.cluster.local", "latency", 250.0, 99.5, 7 * DAY,
         "destination")
    assert lat.source == "slos.yaml:2"
    assert (avail.sli, avail.objective, avail.period_s, avail.reporter) == ("availability", 99.9, 30 * DAY, "source")


@pytest.mark.parametrize("spec,field,words", [
    ("{service: reviews, objective: 100}", "spec/objective", "between 0 and 100"),
    ("{service: reviews, objective: abc}", "spec/objective", "number"),
    ("{objective: 99}", "spec/service", "required"),
    ("{service: reviews, objective: 99, sli: {type: speed}}", "spec/sli/type", "availability, latency"),
    ("{service: reviews, objective: 99, sli: {type: latency}}", "spec/sli/thresholdMs", "thresholdMs"),
    ("{service: reviews, objective: 99, period: 30}", "spec/period", "duration"),
    ("{service: reviews, objective: 99, reporter: both}", "spec/reporter", "source, destination"),
])
def test_bad_fields_are_problems_naming_file_line_and_field(spec, field, words):
    text = f"""apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {{name: bad, namespace: bookinfo}}
spec: {spec}
""" + "---" + GOOD
    res = load_slo_text(text, "mine.yaml")
    assert [s.name for s in res.slos] == ["reviews-latency"]  # the good one still loads
    assert len(res.problems) == 1
    p = res.problems[0]
    assert (p.file, p.field, p.name) == ("mine.yaml", field, "bad")
    assert p.line == 4 and words in p.message


def test_short_service_without_namespace_resolves_in_the_default_namespace():
    """As kubectl would create the object: no metadata.namespace means `default` (issue 12)."""
    res = load_slo_text("""apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: x}
spec: {service: reviews, objective: 99}
""", "x.yaml")
    assert res.problems == []
    assert [(s.namespace, s.service) for s in res.slos] == [("default", "reviews.default.svc.cluster.local")]


def test_yaml_syntax_error_is_a_problem_not_a_traceback():
    res = load_slo_text("apiVersion: meshscope.io/v1alpha1\nkind: [unclosed\n", "broken.yaml")
    assert res.slos == [] and res.problems and res.problems[0].file == "broken.yaml"


SLOTH_BASE = """
version: "prometheus/v1"
service: "svc01"
labels: {global01k1: global01v1}
slos:
  - name: "slo1"
    objective: 99.9
    description: "This is SLO 01."
    sli:
      events:
        error_query: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      name: myServiceAlert
  - name: "slo02"
    objective: 95
    sli:
      raw:
        error_ratio_query: |
          sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))
          /
          sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
    alerting:
      page_alert: {disable: true}
      ticket_alert: {disable: true}
"""


def test_sloth_base_spec_imports_with_its_thresholds():
    res = load_slo_text(SLOTH_BASE, "sloth.yaml")
    assert res.problems == []
    slo1, slo2 = res.slos
    assert (slo1.name, slo1.objective, slo1.origin, slo1.sli) == ("svc01-slo1", 99.9, "sloth", "promql")
    assert "{{.window}}" in slo1.error_query and slo1.page and slo1.ticket
    assert [w.threshold(slo1.objective) for w in slo1.windows] == [
        pytest.approx(x, rel=1e-9) for x in (0.0144, 0.006, 0.003, 0.001)]
    assert (slo2.objective, slo2.page, slo2.ticket) == (95.0, False, False)  # no alert group for slo02


def test_sloth_istio_query_becomes_a_native_availability_slo():
    text = """version: prometheus/v1
service: reviews
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(istio_requests_total{reporter="destination",destination_service="reviews.bookinfo.svc.cluster.local",response_code=~"5.."}[{{.window}}]))
        total_query: sum(rate(istio_requests_total{reporter="destination",destination_service="reviews.bookinfo.svc.cluster.local"}[{{.window}}]))
  - name: broken
    sli: {plugin: {id: x}}
    objective: 99
"""
    res = load_slo_text(text, "s.yaml")
    assert [(s.sli, s.service, s.reporter) for s in res.slos] == [
        ("availability", "reviews.bookinfo.svc.cluster.local", "destination")]
    assert len(res.problems) == 1 and res.problems[0].field == "slos[1]/sli" and res.problems[0].line == 1


def test_openslo_and_pyrra_import():
    text = """apiVersion: openslo/v1
kind: SLO
metadata: {name: ratings-avail}
spec:
  service: ratings
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  objectives: [{target: 0.995}]
  indicator:
    metadata: {name: ratings-errors}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(istio_requests_total{destination_service_name="ratings",destination_service_namespace="bookinfo",response_code=~"5.."}[5m]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(istio_requests_total{destination_service_name="ratings",destination_service_namespace="bookinfo"}[5m]))'}}}
---
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: http-ratio, namespace: monitoring}
spec:
  target: "99"
  window: 28d
  indicator:
    ratio:
      errors: {metric: 'http_requests_total{job="thanos-receive-default",code=~"5.."}'}
      total: {metric: 'http_requests_total{job="thanos-receive-default"}'}
"""
    res = load_slo_text(text, "imp.yaml")
    assert res.problems == []
    openslo, pyrra = res.slos
    assert (openslo.origin, openslo.sli, openslo.service, openslo.objective, openslo.period_s) == \
        ("openslo", "availability", "ratings.bookinfo.svc.cluster.local", 99.5, 28 * DAY)
    assert (pyrra.origin, pyrra.sli, pyrra.objective) == ("pyrra", "promql", 99.0)
    assert [w.threshold(pyrra.objective) for w in pyrra.windows] == [
        pytest.approx(x) for x in (0.14, 0.07, 0.02, 0.01)]


def test_demo_slos_load_and_files_and_folders(tmp_path: Path):
    demo = load_slos([DEMO_SLOS])
    assert demo.problems == [] and len(demo.slos) >= 4
    assert {s.service.split(".")[0] for s in demo.slos} >= {"productpage", "reviews", "ratings", "details"}
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe not utf8")
    res = load_slos([tmp_path])
    assert [s.name for s in res.slos] == ["reviews-latency"]
    assert any("b.yaml" in p.file for p in res.problems)


def test_a_document_that_is_no_slo_is_a_problem_in_an_slo_file_not_skipped():
    """The config loader skips a document with no apiVersion, kind or metadata (settings beside manifests); an SLO
    file holds only SLOs, so such a document (a Sloth spec without its version line) is still reported, by line."""
    typo = SLOTH_BASE.replace('version: "prometheus/v1"\n', "")
    res = load_slo_text(SLOTH_BASE + "---\n" + typo, "sloth.yaml")
    assert len(res.slos) == len(load_slo_text(SLOTH_BASE, "sloth.yaml").slos) > 0
    (p,) = res.problems
    assert p.file == "sloth.yaml" and p.line > SLOTH_BASE.count("\n") and "not a Kubernetes object" in p.message
