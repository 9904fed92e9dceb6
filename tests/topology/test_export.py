"""Cytoscape and Kiali-shaped exports."""
import json

from topology import build_graph, to_cytoscape, to_kiali
from topology.export.kiali import format_rate
from tests.topology.frames import both, bookinfo, frame, series


def test_format_rate_shows_one_significant_digit():
    assert [format_rate(v) for v in (0, 20, 0.5, 0.004, 0.00004, 1 / 3)] == ["0.00", "20.00", "0.50", "0.004", "0.00004", "0.33"]


def test_cytoscape_elements_are_plain_json_with_styling_fields():
    elements = to_cytoscape(build_graph(bookinfo(ratings_5xx=1.0)))
    json.dumps(elements)  # serializable as is
    nodes = [e for e in elements if "source" not in e["data"]]
    edges = [e for e in elements if "source" in e["data"]]
    assert len(nodes) == 7 and len(edges) == 7
    gw = next(n for n in nodes if n["data"]["label"] == "istio-ingressgateway")
    assert "root" in gw["classes"].split()
    bad = next(e for e in edges if e["data"]["health_color"] == "red")
    assert bad["data"]["label"].startswith("3.00rps 33.3%err")
    assert bad["data"]["response_flags"] == {"UF": 1.0}
    assert all(e["data"]["mtls"] == "full" for e in edges if e["data"]["health_color"] == "green")


def test_partial_mtls_is_not_shown_as_a_lock():
    df = frame(series("a-v1", "b-v1", 1.0, csp="mutual_tls"), series("a-v1", "b-v1", 3.0, csp="none"))
    edge = next(e for e in to_cytoscape(build_graph(df)) if "source" in e["data"])
    assert edge["data"]["mtls"] == "partial" and "mtls-partial" in edge["classes"]


def test_untrusted_names_pass_through_as_data_not_markup():
    df = frame(both("<script>x</script>-v1", "b-v1", 1.0))
    labels = [e["data"]["label"] for e in to_cytoscape(build_graph(df)) if "source" not in e["data"]]
    assert "<script>x</script>-v1" in labels  # plain text for the canvas; HTML views must escape it


def test_kiali_export_shape():
    doc = to_kiali(build_graph(bookinfo(), window_s=600, query_time=1700000000))
    assert doc["duration"] == 600 and doc["timestamp"] == 1700000000 and doc["graphType"] == "workload"
    edge = next(e["data"] for e in doc["elements"]["edges"] if e["data"]["traffic"]["rates"]["http"] == "10.00"
                and e["data"]["traffic"]["rates"].get("httpPercentReq") == "50.0")
    assert edge["isMTLS"] == "100"
    assert edge["traffic"]["responses"]["200"]["flags"] == {"-": "100.0"}
    assert "responseTime" not in edge  # no duration buckets in this frame
