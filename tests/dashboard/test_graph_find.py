"""Find and hide reach workloads inside collapsed groups (issue #17): counts, roll-ups without what is hidden, the API."""
import httpx
import pytest

from dashboard.components import graph_views
from dashboard.components.find_hide import edge_mask, node_mask, parse
from dashboard.graph_view import View, apply_view, records
from dashboard.sample import synthetic_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource
from topology.aggregate import aggregate

EXPRESSIONS = ["name ~ svc-1", "error > 5", "failing", "rps > 20 or mismatch", "ns = ns-2 and health = failing",
               "p95 >= 150", "!mtls", "name !~ 7", "unhealthy", "health != healthy"]


def layered(apps_per_ns: int = 3, versions: int = 3, namespaces: int = 3) -> tuple[list[dict], list[dict]]:
    """Namespaces of apps with several versions each (app groups of more than one), calling in a ring."""
    nodes, edges = [], []
    for n in range(namespaces):
        for a in range(apps_per_ns):
            for v in range(versions):
                health = "failing" if (n, a, v) == (1, 2, 0) else "degraded" if v == 2 else "healthy"
                nodes.append({"id": f"wl:ns{n}/app{a}-v{v}", "type": "workload", "namespace": f"ns{n}",
                              "app": f"app{a}", "name": f"app{a}-v{v}", "version": f"v{v}", "health": health,
                              "rps_in": 1.0 + v, "rps_out": 1.0, "error_pct": 30.0 if health == "failing" else 0.0})
    ids = [x["id"] for x in nodes]
    for i, src in enumerate(ids):
        for step in (1, 4):
            dst = ids[(i + step) % len(ids)]
            bad = i % 7 == 0
            edges.append({"id": f"{src}>{dst}", "source": src, "target": dst, "protocol": "http", "rps": 1.0 + i % 3,
                          "error_pct": 20.0 if bad else 0.0, "p95_ms": 10.0 * (1 + i % 5), "mtls_pct": 100.0,
                          "mtls_state": "full" if i % 5 else "none", "health": "failing" if bad else "healthy"})
    return nodes, edges


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("level", ["namespace", "app"])
def test_every_match_is_counted_once_on_what_draws_it(expr, level):
    """Sum of `found` over the drawn graph = matches in the expanded graph, whichever level and expression."""
    nodes, edges = layered()
    alts = parse(expr)
    matches = int(node_mask(nodes, alts).sum() + edge_mask(edges, alts).sum())
    rolled = aggregate(nodes, edges, level)
    from dashboard.graph_find import mark_found
    found, marks = mark_found(nodes, edges, rolled.nodes, rolled.edges, rolled.group_of, alts)
    assert sum(m["found"] for m in marks.values()) == matches
    assert found.shown + found.inside == matches
    for gid, n_members in ((g["id"], g["nodes"]) for g in found.groups if g["id"].startswith("agg:")):
        members = [n for n in nodes if rolled.group_of[n["id"]] == gid]
        assert n_members == int(node_mask(members, alts).sum())  # the group says how many of ITS members match
    # opening what the find offers shows every matching workload as itself
    opened = aggregate(nodes, edges, level, found.expand)
    matched = {n["id"] for n, m in zip(nodes, node_mask(nodes, alts)) if m}
    assert matched <= {n["id"] for n in opened.nodes}


def test_hidden_members_leave_their_groups_roll_up():
    nodes, edges = layered()
    alts = parse("failing")
    from dashboard.graph_find import hide
    kept_n, kept_e, n_gone, e_gone = hide(nodes, edges, alts)
    assert n_gone == 1 and e_gone >= 4  # the failing workload, its own edges and every failing edge
    gone = {n["id"] for n in nodes} - {n["id"] for n in kept_n}
    assert all(e["source"] not in gone and e["target"] not in gone and e["health"] != "failing" for e in kept_e)
    rolled = aggregate(kept_n, kept_e, "namespace")
    ns1 = next(n for n in rolled.nodes if n["id"] == "agg:ns:ns1")
    assert ns1["members"] == 8 and ns1["health"] == "degraded"  # not failing: its failing member is hidden
    assert ns1["rps_in"] == pytest.approx(sum(n["rps_in"] for n in kept_n if n["namespace"] == "ns1"))
    # structural nodes never go with their members
    box = {"id": "box:ns1", "type": "box", "namespace": "ns1", "health": "failing"}
    assert hide([*nodes, box], edges, alts)[0][-1] is box


def test_the_view_hides_before_rolling_up_and_marks_what_it_found():
    nodes, edges = layered()
    from dashboard.query import GraphResult
    from dashboard.elements import ui_elements
    full = GraphResult(ui_elements(nodes, edges), "workload", ["ns0", "ns1", "ns2"], 300.0, 0.0)
    shown = apply_view(None, full, View("namespace", find="name ~ app2", hide="degraded"))
    d_nodes, _ = records(shown.result.elements)
    agg = {n["id"]: n for n in d_nodes}
    # hide went first: app2-v2 is degraded, so each namespace keeps app2-v0 and app2-v1 as matches
    assert {i: agg[i]["members"] for i in agg} == {f"agg:ns:ns{i}": 6 for i in range(3)}
    assert {i: agg[i].get("found") for i in agg} == {f"agg:ns:ns{i}": 2 for i in range(3)}
    assert agg["agg:ns:ns1"]["found_label"] == "ns1 (2 found)"
    assert any(note.startswith("hide 'degraded'") for note in shown.result.notes)
    assert shown.found.expand == [f"agg:app:ns{i}/app2" for i in range(3)]
    assert nodes[0].get("found") is None and all("found" not in e for e in edges)  # the source's records untouched


def test_the_page_runs_find_and_hide_on_the_server_only_when_grouped(monkeypatch):
    source = SnapshotSource(synthetic_snapshot(120, seed=2, namespaces=4))
    full = source.graph()
    plain = graph_views.show(source, full, {"collapse": "none", "find": "failing", "hide": "healthy"})
    assert plain.result is full and plain.state() == {"grouped": False, "found": None}
    grouped = graph_views.show(source, full, {"collapse": "namespace", "find": "name ~ svc-1", "hide": ""})
    state = grouped.state()
    assert state["grouped"] and state["found"]["inside"] == sum(
        n["data"]["name"].count("svc-1") > 0 for n in full.elements if "source" not in n["data"])
    message, offer = graph_views.found_message(state)
    assert offer and message.startswith(f"find: {state['found']['inside']} inside 4 collapsed group(s)")
    bad = graph_views.show(source, full, {"collapse": "namespace", "find": "colour = red"})  # reported by restyle
    assert bad.state()["found"] is None and bad.result.elements


@pytest.fixture(scope="module")
def api():
    ui = start(SnapshotSource(synthetic_snapshot(200, seed=4, namespaces=5)), port=0)
    with httpx.Client(base_url=ui.url, timeout=30) as client:
        yield client
    ui.stop()


def test_the_api_finds_and_hides_inside_groups(api):
    grouped = api.get("/api/v1/graph", params={"collapse": "namespace", "find": "failing"}).json()
    flat = api.get("/api/v1/graph", params={"find": "failing"}).json()
    total = sum(e["data"].get("found", 0) for e in flat["elements"])
    assert total > 0 and sum(e["data"].get("found", 0) for e in grouped["elements"]) == total
    hidden = api.get("/api/v1/graph", params={"collapse": "namespace", "hide": "ns = ns-3"}).json()
    assert "agg:ns:ns-3" not in {e["data"]["id"] for e in hidden["elements"]}
    assert all(e["data"].get("target") != "agg:ns:ns-3" for e in hidden["elements"])


@pytest.mark.parametrize("param, expr", [("find", "colour = red"), ("hide", "rps >"), ("find", "name > 3")])
def test_a_bad_expression_is_a_400_naming_the_parameter(api, param, expr):
    r = api.get("/api/v1/graph", params={"collapse": "namespace", param: expr})
    assert r.status_code == 400 and r.json()["param"] == param


def test_the_refresh_fingerprint_changes_with_any_number_or_position_and_only_then():
    from dashboard.components.lean import digest
    nodes, edges = layered()
    from dashboard.elements import ui_elements
    sent = ui_elements(nodes, edges)
    same = ui_elements([dict(n) for n in nodes], [dict(e) for e in edges])
    assert digest(sent) == digest(same)
    moved = [dict(e, position={"x": 1.0, "y": 2.0}) if i == 3 else e for i, e in enumerate(same)]
    changed = [dict(e, data=dict(e["data"], rps=e["data"]["rps"] + 0.01)) if "source" in e["data"] else e for e in same]
    assert len({digest(sent), digest(moved), digest(changed)}) == 3
