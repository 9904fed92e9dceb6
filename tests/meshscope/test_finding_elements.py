"""A finding names the graph elements its evidence is about, including the edge its failing traffic drew.

Requests that fail before any workload answers (a plaintext call refused by a strict server, no healthy endpoint,
a connect timeout) are reported by the client with the destination workload unknown: Istio's graph draws them as an
edge from the caller to the *service* node, next to the healthy edges to each version. That edge is the one that
turns red, so the topology panel a user opens by clicking it must list the finding. The finding comes from the real
runtime rules over a requests table, the graph from the real builder over the matching rate series.
"""
from __future__ import annotations

import pytest

from dashboard.elements import from_topology, ui_elements
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from meshscope.live_source import _toucher
from tests.diagnose.runtime.tables import T0, fqdn, requests, table
from tests.topology.frames import both, frame, series
from topology import build_graph, to_cytoscape

VERSIONS = ("reviews-v1", "reviews-v2", "reviews-v3")


def elements_of(*rows) -> list[dict]:
    return ui_elements(*from_topology(to_cytoscape(build_graph(frame(*rows)))))


def edges_from(elements: list[dict], source_name: str) -> dict[str, dict]:
    """{edge id: target node data} of the edges leaving the node named `source_name`."""
    nodes = {e["data"]["id"]: e["data"] for e in elements if "source" not in e["data"]}
    src = next(i for i, d in nodes.items() if d.get("name") == source_name)
    return {e["data"]["id"]: nodes[e["data"]["target"]] for e in elements
            if e["data"].get("source") == src}


def finding(code: str, outcome: str, destination: str) -> dict:
    df = table(requests("productpage-v1", destination, "ok", 60), requests("productpage-v1", destination, outcome, 30),
               requests("productpage-v1", fqdn("details"), "ok", 60))
    if code == "MS3001":  # plaintext refusals need the server's side too (else it is the keep-alive race)
        df = table(df, requests("unknown", destination, "listener_tls", 5, reporter="destination"))
    found = [f for f in analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df)) if f.code == code]
    assert found, f"the rule did not fire for {outcome}"
    return found[0].to_dict()


@pytest.mark.parametrize("code,outcome,flags", [
    ("MS3001", "mtls_plaintext", "UC"),
    ("MS3004", "no_endpoints", "UH"),
    ("MS3003", "refused", "URX,UF"),
])
def test_failures_that_reached_no_workload_touch_the_edge_to_the_service_node(code, outcome, flags):
    elements = elements_of(*[both("productpage-v1", v, 1.0) for v in VERSIONS],
                           series("productpage-v1", "unknown", 1.0, reporter="source", code="503", flags=flags,
                                  service="reviews"),
                           both("productpage-v1", "details-v1", 2.0))
    out = edges_from(elements, "productpage-v1")
    to_service = [i for i, d in out.items() if d.get("type") == "service" and d.get("name") == "reviews"]
    to_versions = [i for i, d in out.items() if d.get("name") in VERSIONS]
    to_details = [i for i, d in out.items() if d.get("name") == "details-v1"]
    assert len(to_service) == 1 and len(to_versions) == 3 and len(to_details) == 1  # the graph the page draws

    touched = set(_toucher(elements)(finding(code, outcome, fqdn("reviews"))))
    assert to_service[0] in touched, "the red edge's panel must list the finding"
    assert set(to_versions) <= touched  # the service's workloads are still the finding's
    assert not set(to_details) & touched  # a healthy neighbour is not


def test_a_service_entry_host_touches_its_service_node():
    host = "api.payments.example.com"  # not name.namespace: a ServiceEntry host keeps its whole name
    elements = elements_of(series("productpage-v1", "unknown", 1.0, reporter="source", code="503", flags="UH",
                                  service=host, dst_ns="bookinfo"),
                           both("productpage-v1", "details-v1", 2.0))
    out = edges_from(elements, "productpage-v1")
    to_host = [i for i, d in out.items() if d.get("name") == host]
    assert len(to_host) == 1
    touched = set(_toucher(elements)(finding("MS3004", "no_endpoints", host)))
    assert to_host[0] in touched
    assert not {i for i, d in out.items() if d.get("name") == "details-v1"} & touched


def test_a_named_destination_workload_keeps_the_service_node_out():
    elements = elements_of(*[both("productpage-v1", v, 1.0) for v in VERSIONS],
                           series("productpage-v1", "unknown", 1.0, reporter="source", code="503", flags="UH",
                                  service="reviews"))
    out = edges_from(elements, "productpage-v1")
    v2 = next(i for i, d in out.items() if d.get("name") == "reviews-v2")
    f = {"evidence": {"edges": [{"source_workload": "productpage-v1", "source_namespace": "bookinfo",
                                 "destination": fqdn("reviews"), "destination_workload": "reviews-v2"}]}}
    touched = set(_toucher(elements)(f))
    assert v2 in touched
    assert not {i for i, d in out.items() if d.get("type") == "service" or d.get("name") in ("reviews-v1", "reviews-v3")} & touched
