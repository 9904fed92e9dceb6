"""The page's view logic without a browser: the threshold, opening what a highlight needs, placing members in place."""
import pytest

from dashboard.components import graph_views
from dashboard.components.positions import PositionMemory
from dashboard.sample import synthetic_snapshot
from dashboard.snapshot_source import SnapshotSource


@pytest.fixture(scope="module")
def source():
    return SnapshotSource(synthetic_snapshot(120, seed=2, namespaces=4))


def ids(result):
    return {e["data"]["id"] for e in result.elements if "source" not in e["data"]}


def test_auto_groups_only_above_the_threshold(source, monkeypatch):
    full = source.graph()
    shown, key = graph_views.apply(source, full, graph_views.initial({}))
    assert shown is full and key == "workload"  # 120 nodes: below 300, nothing changes
    monkeypatch.setenv("MESHSCOPE_AGGREGATE_ABOVE", "100")
    shown, key = graph_views.apply(source, full, graph_views.initial({}))
    assert ids(shown) == {f"agg:ns:ns-{i}" for i in range(4)} and key != "workload"
    none, _ = graph_views.apply(source, full, graph_views.initial({"group": "none"}))
    assert none is full
    monkeypatch.setenv("MESHSCOPE_AGGREGATE_ABOVE", "lots")
    assert graph_views.threshold() == graph_views.DEFAULT_THRESHOLD


def test_one_namespace_above_the_threshold_opens_grouped_by_app(monkeypatch):
    """Within one namespace (a one-namespace mesh, or a namespace filter) grouping by namespace would draw a single
    node: the page opens with the namespace's apps as aggregates instead."""
    snap = synthetic_snapshot(120, seed=3, namespaces=1)
    for i, node in enumerate(snap["graphs"]["workload"]["nodes"]):  # 40 apps of three versions each
        node["app"] = f"app-{i // 3}"
    one = SnapshotSource(snap)
    monkeypatch.setenv("MESHSCOPE_AGGREGATE_ABOVE", "100")
    shown, key = graph_views.apply(one, one.graph(), graph_views.initial({}))
    assert ids(shown) == {graph_views.app_id("ns-0", f"app-{i}") for i in range(40)} and key != "workload"
    # several namespaces still open by namespace
    many = SnapshotSource(synthetic_snapshot(120, seed=3, namespaces=4))
    shown, _ = graph_views.apply(many, many.graph(), graph_views.initial({}))
    assert ids(shown) == {graph_views.namespace_id(f"ns-{i}") for i in range(4)}


def test_a_highlight_opens_the_groups_holding_it(source):
    full = source.graph()
    edge = next(e["data"] for e in full.elements if "source" in e["data"])
    shown, _ = graph_views.apply(source, full, graph_views.initial({"group": "namespace"}, [edge["id"]]))
    assert {edge["source"], edge["target"]} <= ids(shown)
    assert edge["id"] in {e["data"]["id"] for e in shown.elements}
    assert any(i.startswith("agg:ns:") for i in ids(shown))  # the rest stays grouped


def test_opened_members_are_placed_around_their_aggregate_and_nothing_else_moves(source):
    memory = PositionMemory()
    full = source.graph()
    grouped, key = graph_views.apply(source, full, graph_views.initial({"group": "namespace"}))
    memory.place(key, grouped.elements)
    before = memory.known(key)
    view = dict(graph_views.initial({"group": "namespace"}), expand=["agg:ns:ns-1"])
    opened, key2 = graph_views.apply(source, full, view)
    assert key2 == key
    graph_views.place_in_place(memory, key, opened.elements)
    placed = {e["data"]["id"]: e["position"] for e in memory.place(key, opened.elements) if "source" not in e["data"]}
    centre = before["agg:ns:ns-1"]
    members = [p for i, p in placed.items() if i.startswith("wl:ns-1/")]
    assert len(members) == 30
    span = graph_views.MEMBER_GAP * 3
    assert all(abs(p["x"] - centre["x"]) <= span and abs(p["y"] - centre["y"]) <= span for p in members)
    assert all(placed[i] == before[i] for i in before if i in placed)


def test_an_aggregates_panel_lists_the_open_findings_in_its_namespace_with_focus_links():
    from dashboard.pages import topology
    from tests.dashboard.test_api_graph_views import with_incident

    snap, _ = with_incident(synthetic_snapshot(120, seed=3, namespaces=4))
    src = SnapshotSource(snap)
    grouped, _ = graph_views.apply(src, src.graph(), graph_views.initial({"group": "namespace"}))
    ns = snap["findings"][0]["resource"]["namespace"]
    by_id = {e["data"]["id"]: e["data"] for e in grouped.elements}
    text = str(topology._panel(src, by_id[f"agg:ns:{ns}"], False, "workload"))
    assert "panel-agg-findings" in text and "/topology?focus=MS2001" in text and "panel-worst" in text
    other = next(i for i in by_id if i.startswith("agg:ns:") and i != f"agg:ns:{ns}")
    assert "panel-agg-findings" not in str(topology._panel(src, by_id[other], False, "workload"))
