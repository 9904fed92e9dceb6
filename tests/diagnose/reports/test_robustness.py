"""Whatever a snapshot carries inside its free-form fields (evidence, impact, graph data, SLO numbers),
every text format (and the PDF's print HTML) renders it, escaped, without crashing."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnose.reports import Snapshot, render
from diagnose.reports.print_html import render_print_html

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20) | st.sampled_from(
    ["<script>alert(1)</script>", "a|b", "`x`", "</td>", "&amp;", "\n\n# h1", "]]>", "{{ 7*7 }}"])
scalar = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True) | text
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8)

finding = st.fixed_dictionaries({
    "code": st.sampled_from(["MS3001", "MS1002", "MS4001"]), "severity": st.sampled_from(["error", "warning", "info"]),
    "category": text, "message": text,
    "resource": st.none() | st.fixed_dictionaries({"kind": text, "name": text, "namespace": st.none() | text, "source": st.none() | text}),
    "evidence": st.dictionaries(text, value, max_size=4), "impact": st.dictionaries(st.sampled_from(["rps", "share", "requests", "x"]), value, max_size=3),
    "remediation": text,
})
node = st.fixed_dictionaries({"data": st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "c"]), "label": text,
                                                              "node_type": st.sampled_from(["service", "workload", "box", ""]),
                                                              "health": st.sampled_from(["Healthy", "Failure", "NA", "weird"]),
                                                              "namespace": text})})
edge = st.fixed_dictionaries({"data": st.fixed_dictionaries({"source": st.sampled_from(["a", "b", "c", "d"]),
                                                              "target": st.sampled_from(["a", "b", "c"]),
                                                              "rate": value, "error_rate": value, "health": text})})
slo = st.fixed_dictionaries({"name": text, "objective": value, "budget_remaining": st.none() | st.floats(-5, 5),
                             "burn_rates": st.dictionaries(text, value, max_size=3), "alert": st.none() | text,
                             "budget_series": st.lists(st.lists(value, max_size=3), max_size=5)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(findings=st.lists(finding, max_size=4), graph=st.lists(node | edge, max_size=8), slos=st.lists(slo, max_size=3))
def test_any_content_renders_escaped(findings, graph, slos):
    doc = {"schema": "meshscope.report/v1", "generated_at": 1.0, "window": {"start": 0, "end": 60},
           "findings": findings, "graph": graph, "slos": slos, "inventory": []}
    snap = Snapshot.from_dict(json.loads(json.dumps(doc, default=str)))
    html = render(snap, "html").decode()
    assert "<script>" not in html
    assert "<script>" not in render_print_html(snap)  # the PDF's layout, with its hand-built text tables
    md = render(snap, "md").decode()
    assert "<script>" not in md
    json.loads(render(snap, "json"))
