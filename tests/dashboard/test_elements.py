"""topology's Cytoscape export, built by the real topology pipeline, mapped onto what the page styles on."""
from dashboard.elements import edge_element, from_topology, ui_elements, with_context
from topology import build_graph, to_cytoscape
from topology.synthetic import synthetic_rates


def test_topology_export_maps_onto_ui_keys():
    rates = synthetic_rates(workloads=20, services=6, edges=30, namespaces=2, error_share=0.4)
    exported = to_cytoscape(build_graph(rates, "workload", inject_service_nodes=True))
    nodes, edges = from_topology(exported)
    assert len(nodes) + len(edges) == len(exported)
    assert {n["type"] for n in nodes} == {"workload", "service"}
    healths = {e["health"] for e in edges}
    assert "healthy" in healths and healths & {"degraded", "failing"}
    by_id = {e["data"]["id"]: e["data"] for e in exported}
    for e in edges:
        src = by_id[e["id"]]
        assert e["rps"] == src["rate"] and e["p95_ms"] == src.get("latency_p95_ms")
        assert e["health"] == {"Healthy": "healthy", "Degraded": "degraded", "Failure": "failing"}.get(src["health"], "na")
    elements = ui_elements(nodes, edges)
    failing = [el for el in elements if "health-failing" in el["classes"].split()]
    assert failing and all(el["data"]["label_err"].endswith("%err") for el in failing if "source" in el["data"])


def test_mismatch_wins_over_the_measured_share_and_tcp_shows_bytes():
    nodes, edges = from_topology([
        {"data": {"id": "a", "node_type": "workload", "label": "a", "rates": {"httpOut": 2.0}}},
        {"data": {"id": "b", "node_type": "service", "label": "b", "rates": {"httpIn": 2.0, "httpIn5xx": 1.0},
                  "health": "Failure", "is_outside": True}},
        {"data": {"id": "a->b", "source": "a", "target": "b", "protocol": "http", "rate": 2.0, "percent_err": 50.0,
                  "mtls": "none", "mtls_mismatch": True, "health": "Failure"}},
        {"data": {"id": "a->b tcp", "source": "a", "target": "b", "protocol": "tcp", "rate": 2048.0, "health": "NA"}},
    ])
    assert nodes[1]["error_pct"] == 50.0 and nodes[1]["outsider"] and nodes[1]["health"] == "failing"
    assert edges[0]["mtls_state"] == "mismatch"
    assert "mtls-mismatch" in edge_element(edges[0])["classes"]
    assert edge_element(edges[1])["data"]["label_rps"] == "2048Bps"


def test_context_names_edge_ends_and_sums_inbound_breakdowns():
    nodes = [{"id": "a", "name": "caller-v1", "app": "caller"}, {"id": "b", "name": "ratings", "app": "ratings"},
             {"id": "c", "name": "other", "app": "other"}]
    edges = [{"id": "a->b", "source": "a", "target": "b", "codes": {"200": 1.0, "503": 0.5}, "flags": {"UC": 0.5}},
             {"id": "c->b", "source": "c", "target": "b", "codes": {"200": 2.0}, "flags": {}}]
    n2, e2 = with_context(nodes, edges)
    assert n2[1]["codes"] == {"200": 3.0, "503": 0.5} and n2[1]["flags"] == {"UC": 0.5}
    assert n2[0]["codes"] == {} and "codes" not in nodes[1]  # inputs untouched
    assert (e2[0]["source_label"], e2[0]["target_label"], e2[0]["target_app"]) == ("caller-v1", "ratings", "ratings")


def test_circuit_breaker_trips_show_on_the_edge():
    _, edges = from_topology([{"data": {"id": "a"}}, {"data": {"id": "b"}},
                              {"data": {"id": "a->b", "source": "a", "target": "b", "rate": 3.0, "cb_tripped": True,
                                        "mtls": "full", "health": "Failure", "health_reason": "5XX 40% >= 10%"}}])
    el = edge_element(edges[0])
    assert "cb-tripped" in el["classes"].split() and el["data"]["lock"] == "mTLS CB"
    assert el["data"]["health_reason"] == "5XX 40% >= 10%"
