"""When the topology page draws on its own canvas, what it ships there, and find/hide evaluated for it on the server."""
from __future__ import annotations

import pytest

from dashboard.components import graph_canvas
from dashboard.components.lean import Recent, lean
from dashboard.components.positions import PositionMemory
from dashboard.sample import bookinfo_snapshot, synthetic_snapshot
from dashboard.snapshot_source import SnapshotSource


def _elements(snapshot: dict, graph_type: str = "workload") -> list[dict]:
    return lean(PositionMemory().place(graph_type, SnapshotSource(snapshot).graph(graph_type).elements))


@pytest.fixture(scope="module")
def mesh() -> list[dict]:
    snap = synthetic_snapshot(300, seed=7, namespaces=3)
    node = snap["graphs"]["workload"]["nodes"][5]
    node["name"] = "checkout-" + "x" * 200 + "-v2"  # its drawn label is truncated, its name is not
    return _elements(snap)


def test_graphs_above_the_threshold_go_to_the_canvas_in_any_view_and_forced_choices_as_asked(monkeypatch):
    elements = [{"data": {"id": str(i)}} for i in range(50)]
    monkeypatch.setenv("MESHSCOPE_CANVAS_ABOVE", "49")
    assert graph_canvas.wanted(elements, grouped=False)
    assert graph_canvas.wanted(elements, grouped=True)  # by size whatever the view: an opened group can be huge
    monkeypatch.setenv("MESHSCOPE_CANVAS_ABOVE", "50")
    assert not graph_canvas.wanted(elements, grouped=False)  # at the threshold: nothing changes
    assert graph_canvas.wanted(elements, grouped=False, renderer="canvas")
    monkeypatch.setenv("MESHSCOPE_CANVAS_ABOVE", "1")
    assert not graph_canvas.wanted(elements, grouped=False, renderer="cytoscape")
    monkeypatch.setenv("MESHSCOPE_CANVAS_ABOVE", "many")
    assert graph_canvas.threshold() == graph_canvas.DEFAULT_THRESHOLD
    assert graph_canvas.renderer_of({"renderer": "CANVAS"}) == "canvas"
    for odd in ({}, {"renderer": ""}, {"renderer": "webgl"}):
        assert graph_canvas.renderer_of(odd) == "auto"


def test_the_columns_describe_every_positioned_node_and_every_edge_between_them(mesh):
    p = graph_canvas.decoded(graph_canvas.payload(mesh))
    nodes = [e for e in mesh if "source" not in e["data"]]
    edges = [e for e in mesh if "source" in e["data"]]
    N, E = p["nodes"], p["edges"]
    assert N["id"] == [e["data"]["id"] for e in nodes]
    assert graph_canvas.edge_ids(p) == [e["data"]["id"] for e in edges]
    # an id the browser can rebuild from the ends is not sent (most of the bytes of a dense graph)
    assert all(sent is None or sent != f"{e['data']['source']}->{e['data']['target']}"
               for sent, e in zip(E["id"], edges))
    assert all(len(col) == len(nodes) for k, col in N.items() if k not in ("outsider", "found_label"))
    assert all(len(col) == len(edges) for col in E.values())
    for i, e in enumerate(nodes):
        d = e["data"]
        assert (N["x"][i], N["y"][i]) == (e["position"]["x"], e["position"]["y"])
        assert p["classes"][N["cls"][i]] == e["classes"] and N["type"][i] == d["type"]
        assert (N["label"][i] or N["name"][i]) == d["label"] and N["name"][i] == d["name"]
    assert any(label and label != name for label, name in zip(N["label"], N["name"]))  # the long name
    for i, e in enumerate(edges):
        d = e["data"]
        assert (N["id"][E["s"][i]], N["id"][E["t"][i]]) == (d["source"], d["target"])
        assert p["classes"][E["cls"][i]] == e["classes"]
        assert (E["rps"][i], E["err"][i], E["p95"][i], E["lock"][i]) == tuple(
            d.get(k) or None for k in ("label_rps", "label_err", "label_p95", "lock"))
    assert len(p["classes"]) == len(set(p["classes"])) < 40  # a few distinct styles, however many elements


def test_nodes_without_a_position_and_their_edges_are_left_out():
    elements = _elements(bookinfo_snapshot())
    box = {"data": {"id": "box:x", "type": "box"}}  # a compound parent: no position of its own
    tied = {"data": {"id": "e:box", "source": "box:x", "target": elements[0]["data"]["id"]}}
    p = graph_canvas.decoded(graph_canvas.payload([*elements, box, tied]))
    assert "box:x" not in p["nodes"]["id"] and "e:box" not in graph_canvas.edge_ids(p)
    assert len(p["nodes"]["id"]) == sum("source" not in e["data"] for e in elements)


FIND_CASES = [
    ("rps > 10", lambda d: d.get("rps_in", -1) > 10, lambda d: d.get("rps", -1) > 10),
    ("name ~ svc-1 and health = failing", lambda d: "svc-1" in d.get("name", "") and d.get("health") == "failing",
     lambda d: False),
    ("mismatch or error >= 5", lambda d: d.get("error_pct", -1) >= 5,
     lambda d: d.get("mtls_state") == "mismatch" or d.get("error_pct", -1) >= 5),
    ("p95 > 200 and !mtls", lambda d: False, lambda d: d.get("p95_ms", -1) > 200 and d.get("mtls_state") == "none"),
    ("healthy", lambda d: d.get("health") == "healthy", lambda d: d.get("health") == "healthy"),
]


@pytest.mark.parametrize("expr,node_hit,edge_hit", FIND_CASES, ids=[c[0] for c in FIND_CASES])
def test_find_and_hide_mark_the_ids_the_selectors_would_match(mesh, expr, node_hit, edge_hit):
    expected = [e["data"]["id"] for e in mesh if "source" not in e["data"] and node_hit(e["data"])]
    expected += [e["data"]["id"] for e in mesh if "source" in e["data"] and edge_hit(e["data"])]
    marks = graph_canvas.marks(mesh, expr, expr)
    assert marks["found"] == expected and marks["hidden"] == expected


def test_an_empty_or_bad_expression_marks_nothing(mesh):
    assert graph_canvas.marks(mesh, "", None) == {"found": [], "hidden": []}
    assert graph_canvas.marks(mesh, "rps >> 3", "colour = red") == {"found": [], "hidden": []}
    assert graph_canvas.marks(mesh, "rps >> 3", "healthy")["hidden"]  # one bad box does not void the other


def test_sent_graphs_are_remembered_by_digest_newest_first_and_bounded():
    sent = Recent(2)  # what the topology page keeps of the canvas graphs it sent
    for key in ("a", "b", "c"):
        sent.put(key, [{"data": {"id": key}}])
    assert sent.get("a") is None and sent.get(None) is None
    assert sent.get("c") == [{"data": {"id": "c"}}] and sent.get("b") is not None


def test_the_page_s_full_elements_give_the_columns_the_lean_ones_would():
    """The page hands the canvas its full elements (no lean copy of a big graph): same columns, long labels cut."""
    snap = synthetic_snapshot(200, seed=3, namespaces=2)
    snap["graphs"]["workload"]["nodes"][4]["name"] = "ledger-" + "y" * 300 + "-v3"
    full = PositionMemory().place("workload", SnapshotSource(snap).graph("workload").elements)
    assert any(len(e["data"].get("label") or "") > 300 for e in full)  # the full record is not cut
    assert graph_canvas.payload(full) == graph_canvas.payload(lean(full))
    # an edge id that is not `source->target` (two edges between one pair, say) is sent as it is
    odd = [dict(e, data={**e["data"], "id": e["data"]["id"] + "#tcp"}) if "source" in e["data"] else e for e in full]
    p = graph_canvas.decoded(graph_canvas.payload(odd))
    assert all(eid and eid.endswith("#tcp") for eid in p["edges"]["id"])
    assert graph_canvas.edge_ids(p) == [e["data"]["id"] for e in odd if "source" in e["data"]]


@pytest.mark.parametrize("values", [
    [], [0], [255], [256], [65_535], [65_536], [2**31 - 1], list(range(300)), [7] * 1000,
], ids=["empty", "zero", "u8-top", "u16-low", "u16-top", "i32-low", "i32-top", "ramp", "constant"])
def test_integer_columns_come_back_exactly_in_the_narrowest_type_that_holds_them(values):
    col = graph_canvas._ints(values)
    assert graph_canvas.column(col) == values
    top = max(values, default=0)
    assert col["dtype"] == ("u1" if top < 256 else "u2" if top < 65_536 else "i4")


@pytest.mark.parametrize("values", [[], [0.0], [-12.5, 1e-9, 3.141592653589793, 1e300, -0.0], [100.0 * i / 7 for i in range(500)]])
def test_float_columns_come_back_bit_for_bit(values):
    back = graph_canvas.column(graph_canvas._floats(values))
    assert back == values and [str(v) for v in back] == [str(v) for v in values]


@pytest.mark.parametrize("values", [
    [], ["a"], [f"svc-{i}" for i in range(100)],  # all distinct: sent as they are
    ["mTLS", None, "mTLS", "", "\u26a0 mTLS", None] * 50,  # repeating, with nulls and empty strings: codes
    [None] * 40_000,  # one value
    [f"v{i % 300}" for i in range(1_000)],  # 300 distinct: codes wider than a byte
], ids=["empty", "one", "distinct", "repeating", "all-null", "u16-codes"])
def test_string_columns_come_back_exactly_and_repeating_ones_are_sent_as_codes(values):
    col = graph_canvas._strings(values)
    assert graph_canvas.column(col) == values
    assert isinstance(col, list) == (len(set(values)) * 2 > len(values))


def test_a_grouped_view_on_the_canvas_marks_what_the_server_found_and_its_columns_change_with_the_find():
    """Grouped views now reach the canvas too: their find ran on the server (members, not summed numbers), so the
    marks are its `found` elements, nothing is hidden (already out of the roll-up), and a new find changes the
    columns' digest (the page re-marks on `topo-sent`)."""
    from dashboard.components.lean import digest
    from dashboard.graph_view import View, apply_view

    source = SnapshotSource(synthetic_snapshot(400, seed=5, namespaces=8))
    result = source.graph("workload")
    nodes = [e["data"] for e in result.elements if "source" not in e["data"]]
    shown = {}
    for find in (None, "name ~ svc-1", "name ~ svc-2"):
        view = View("namespace", ("agg:ns:ns-2",), None, 1)
        view.find = find
        elements = PositionMemory().place("g", apply_view(source, result, view, strict=False).result.elements)
        marks = graph_canvas.server_marks(elements)
        assert marks["hidden"] == []
        found_nodes = {i for i in marks["found"] if "->" not in i and not i.startswith("agg:agg:")
                       and not i.startswith("agg:wl:")}
        want = {n["id"] for n in nodes if find and n["namespace"] == "ns-2" and find.split("~ ")[1] in n["name"]}
        want |= {f"agg:ns:{n['namespace']}" for n in nodes
                 if find and n["namespace"] != "ns-2" and find.split("~ ")[1] in n["name"]}
        assert found_nodes == want, find
        shown[find] = digest(graph_canvas.payload(elements))
    assert len(set(shown.values())) == 3
