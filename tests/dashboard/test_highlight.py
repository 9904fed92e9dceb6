"""A finding's elements (workload-graph ids) found again in the app, versioned-app and service graphs.

The graphs are real topology builds of the same Bookinfo traffic, converted as the UI does.
"""
from __future__ import annotations

import pytest

from dashboard.elements import from_topology, ui_elements
from dashboard.highlight import project
from tests.topology.frames import bookinfo
from topology import build_graph, to_cytoscape


def elements(graph_type: str) -> list[dict]:
    return ui_elements(*from_topology(to_cytoscape(build_graph(bookinfo(ratings_5xx=1.0), graph_type))))


def names(els: list[dict], ids: list[str]) -> set[str]:
    """Readable form of picked ids: node 'type:name', edge 'source name -> target name'."""
    nodes = {e["data"]["id"]: e["data"] for e in els if "source" not in e["data"]}
    out = set()
    for e in els:
        d = e["data"]
        if d["id"] in ids:
            out.add(f"{nodes[d['source']]['name']} -> {nodes[d['target']]['name']}" if "source" in d
                    else f"{d['type']}:{d['name']}")
    return out


@pytest.fixture(scope="module")
def workload():
    return elements("workload")


def finding_on(workload: list[dict], caller: str, callee: str) -> list[str]:
    """What a runtime finding about `caller -> callee` touches: both workloads and their edge (as live_source does)."""
    nodes = {e["data"]["id"]: e["data"] for e in workload if "source" not in e["data"]}
    src, dst = (next(i for i, d in nodes.items() if d["type"] == "workload" and d["name"] == n) for n in (caller, callee))
    edge = next(e["data"]["id"] for e in workload if e["data"].get("source") == src and e["data"].get("target") == dst)
    return [src, dst, edge]


def test_workload_graph_keeps_the_ids(workload):
    ids = finding_on(workload, "reviews-v2", "ratings-v1")
    assert project(ids, workload, workload, "workload") == sorted(ids)


def test_app_graph_marks_both_apps_and_their_edge(workload):
    shown = elements("app")
    picked = project(finding_on(workload, "reviews-v2", "ratings-v1"), workload, shown, "app")
    assert names(shown, picked) == {"app:reviews", "app:ratings", "reviews -> ratings"}


def test_versioned_app_graph_marks_only_the_calling_version(workload):
    shown = elements("versionedApp")
    picked = names(shown, project(finding_on(workload, "reviews-v2", "ratings-v1"), workload, shown, "versionedApp"))
    # reviews v2, not v3 which calls ratings too
    assert picked == {"app:reviews v2", "app:ratings v1", "reviews v2 -> ratings v1"}


def test_service_graph_marks_the_services_on_both_ends(workload):
    shown = elements("service")
    picked = names(shown, project(finding_on(workload, "reviews-v2", "ratings-v1"), workload, shown, "service"))
    assert picked == {"service:reviews", "service:ratings", "reviews -> ratings"}


def test_nothing_to_show_stays_nothing(workload):
    assert project([], workload, elements("app"), "app") == []
    assert project(["no-such-id"], workload, elements("service"), "service") == []


def test_side_panel_lists_the_findings_of_an_app_node():
    from dashboard.pages.topology import _findings_touching
    from dashboard.sample import bookinfo_snapshot
    from dashboard.snapshot_source import SnapshotSource

    source = SnapshotSource(bookinfo_snapshot())
    on_graph = {f["code"] for f in source.findings({}) if f.get("elements")}
    app_graph = source.graph("app", None, None).elements
    reviews = next(e["data"]["id"] for e in app_graph if e["data"].get("type") == "app" and e["data"]["name"] == "reviews")
    details = next(e["data"]["id"] for e in app_graph if e["data"].get("type") == "app" and e["data"]["name"] == "details")
    codes = {f["code"] for f in _findings_touching(source, reviews, "app", None, None)}
    assert "MS3002" in codes and codes <= on_graph  # reviews v2 -> ratings fails in the sample
    assert "MS3002" not in {f["code"] for f in _findings_touching(source, details, "app", None, None)}
