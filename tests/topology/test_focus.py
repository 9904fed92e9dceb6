"""The incident view on synthetic meshes: every unhealthy edge kept, nothing farther than k hops, blamed objects shown."""
import networkx as nx
import pytest

from dashboard.elements import from_topology
from topology import build_graph, to_cytoscape
from topology.focus import BLAMES, CONFIG, Blamed, focus
from topology.synthetic import synthetic_rates


@pytest.fixture(scope="module")
def mesh():
    # sparse enough that a 1-hop neighbourhood is not the whole mesh
    rates = synthetic_rates(workloads=400, services=100, edges=220, namespaces=5, seed=5, error_share=0.05)
    return from_topology(to_cytoscape(build_graph(rates, "workload")))


def distances(nodes, edges, start):
    g = nx.Graph()
    g.add_nodes_from(n["id"] for n in nodes)
    g.add_edges_from((e["source"], e["target"]) for e in edges)
    return nx.multi_source_dijkstra_path_length(g, set(start))


def unhealthy(edges):
    return [e for e in edges if e["health"] in ("failing", "degraded")]


@pytest.mark.parametrize("hops", [0, 1, 2])
def test_without_seeds_every_unhealthy_edge_and_exactly_its_k_hop_neighbourhood(mesh, hops):
    nodes, edges = mesh
    bad = unhealthy(edges)
    assert bad and len(bad) < len(edges)
    view = focus(nodes, edges, None, hops)
    kept_edges = {e["id"] for e in view.edges}
    assert {e["id"] for e in bad} <= kept_edges and view.core_edges == {e["id"] for e in bad}
    core_nodes = {e["source"] for e in bad} | {e["target"] for e in bad}
    dist = distances(nodes, edges, core_nodes)
    kept = {n["id"] for n in view.nodes}
    assert kept == {n for n, d in dist.items() if d <= hops}  # nothing farther, nothing nearer left out
    assert all(e["source"] in kept and e["target"] in kept for e in view.edges)
    assert view.hidden_nodes == len(nodes) - len(kept) and view.hidden_edges == len(edges) - len(view.edges)
    if hops == 0:
        assert len(kept) < len(nodes)


def test_seeds_keep_their_edges_the_unhealthy_edges_touching_them_and_blamed_objects(mesh):
    nodes, edges = mesh
    seed = unhealthy(edges)[0]
    healthy = next(e for e in edges if e["health"] == "healthy")
    blamed = Blamed("VirtualService", "ns1", "reviews", "vs.yaml:12", "spec.http[0]", (seed["source"], seed["target"]))
    view = focus(nodes, edges, [seed["id"], healthy["id"]], 1, [blamed])
    kept_edges = {e["id"] for e in view.edges}
    ends = {seed["source"], seed["target"], healthy["source"], healthy["target"]}
    touching = {e["id"] for e in unhealthy(edges) if e["source"] in ends or e["target"] in ends}
    assert {seed["id"], healthy["id"]} | touching <= kept_edges
    assert view.core_edges == {seed["id"], healthy["id"]} | touching
    # far-away unhealthy edges are not this incident's
    far = [e for e in unhealthy(edges) if e["id"] not in kept_edges]
    assert far
    cfg = [n for n in view.nodes if n["type"] == CONFIG]
    assert [c["id"] for c in cfg] == ["cfg:VirtualService/ns1/reviews"] and cfg[0]["file"] == "vs.yaml:12"
    links = {(e["source"], e["target"]) for e in view.edges if e["protocol"] == BLAMES}
    assert links == {(cfg[0]["id"], seed["source"]), (cfg[0]["id"], seed["target"])}
    dist = distances(nodes, edges, {seed["source"], seed["target"], healthy["source"], healthy["target"]}
                     | {e["source"] for e in unhealthy(edges) if e["id"] in touching}
                     | {e["target"] for e in unhealthy(edges) if e["id"] in touching})
    assert all(dist[n["id"]] <= 1 for n in view.nodes if n["type"] != CONFIG)


def test_seeds_absent_from_the_graph_fall_back_to_every_unhealthy_edge_and_bad_hops_are_refused(mesh):
    nodes, edges = mesh
    assert focus(nodes, edges, ["gone"], 0).core_edges == {e["id"] for e in unhealthy(edges)}
    with pytest.raises(ValueError, match="hops"):
        focus(nodes, edges, None, 6)
    assert focus([], [], None, 1).nodes == []
