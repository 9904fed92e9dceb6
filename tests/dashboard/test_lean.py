"""What the topology page ships per element (`lean`) and what it keeps for the side panel (`FullData`)."""
from __future__ import annotations

from dashboard.components.graph_style import edge_label_data
from dashboard.components.lean import LABEL_MAX, PANEL_ONLY, FullData, lean, truncate, view_key
from dashboard.elements import ui_elements
from dashboard.sample import bookinfo_snapshot


def _bookinfo() -> list[dict]:
    g = bookinfo_snapshot()["graphs"]["workload"]
    return edge_label_data(ui_elements(g["nodes"], g["edges"]))


def test_truncate_keeps_both_ends_within_the_limit():
    for n in (0, 1, LABEL_MAX - 1, LABEL_MAX):
        assert truncate("a" * n) == "a" * n
    for n in (LABEL_MAX + 1, 300, 5000):
        name = "checkout-" + "x" * n + "-v12"
        cut = truncate(name)
        assert len(cut) == LABEL_MAX and "\u2026" in cut
        assert cut.startswith("checkout-") and cut.endswith("-v12")


def test_lean_keeps_what_selectors_read_and_drops_the_rest():
    full = _bookinfo()
    slim = lean(full)
    assert [e["data"]["id"] for e in slim] == [e["data"]["id"] for e in full]
    for before, after in zip(full, slim):
        assert after.get("classes") == before.get("classes") and after.get("position") == before.get("position")
        d = after["data"]
        assert all(v is None or isinstance(v, (str, int, float, bool)) for v in d.values())
        assert not (set(d) & PANEL_ONLY) and not any(k.startswith("lbl_") for k in d)
        # everything find/hide, the stylesheet and the browser's label joining read is still there
        keys = ("source", "target", "rps", "error_pct", "p95_ms", "p99_ms", "health", "mtls_state", "protocol",
                "label_rps", "label_err", "label_p95", "lock") if "source" in before["data"] else \
            ("name", "namespace", "app", "version", "type", "health", "rps_in", "error_pct", "label")
        assert all(d.get(k) == before["data"].get(k) for k in keys if k != "label")
    assert sum(len(str(e)) for e in slim) < 0.7 * sum(len(str(e)) for e in full)


def test_lean_truncates_long_node_labels_only():
    g = bookinfo_snapshot()["graphs"]["workload"]
    long = "reviews-" + "z" * 400 + "-v2"
    g["nodes"][4]["name"] = long
    slim = {e["data"]["id"]: e["data"] for e in lean(ui_elements(g["nodes"], g["edges"]))}
    node = slim[g["nodes"][4]["id"]]
    assert node["name"] == long and len(node["label"]) == LABEL_MAX
    assert all(len(d.get("label", "")) <= LABEL_MAX for d in slim.values())


def test_full_data_answers_by_view_then_newest_and_stays_bounded():
    full = FullData(views=2)
    a, b = view_key("workload", ["b", "a"], 300.0, 0), view_key("workload", [], 60.0, 0)
    assert a == view_key("workload", ["a", "b"], 300.0, 0)
    full.remember(a, [{"data": {"id": "x", "rps": 1.0, "codes": {"200": 1.0}}}])
    full.remember(b, [{"data": {"id": "x", "rps": 2.0}}, {"data": {"id": "y", "rps": 3.0}}])
    assert full.get(a, "x")["codes"] == {"200": 1.0}
    assert full.get(a, "y")["rps"] == 3.0  # not in its view: the newest view that has it
    assert full.get(b, "nope") is None
    got = full.get(a, "x")
    got["rps"] = 99.0
    assert full.get(a, "x")["rps"] == 1.0  # callers get copies
    full.remember(view_key("app", [], 300.0, 0), [])
    assert full.get(a, "x")["rps"] == 2.0  # the oldest view (a) went; x is found in b


def test_the_large_stylesheet_sets_few_properties_and_keeps_every_mark_but_full_mtls():
    from dashboard.components.graph_style import stylesheet

    full, large = stylesheet(["rps"]), stylesheet([], large=True)

    def props(sheet, selector):
        return sum(len(r["style"]) for r in sheet if r["selector"] == selector)

    # every property of a base rule is applied to and checked on every node / edge
    assert props(large, "node") <= props(full, "node") // 2 and props(large, "edge") <= props(full, "edge") // 2
    # what tells an SRE something stays: health colours, shapes, config badges, mTLS exceptions, breakers
    kept = {r["selector"] for r in large}
    dropped = {r["selector"] for r in full} - kept
    assert dropped == {"node.workload", "edge.mtls-full"}  # the default ellipse; full mTLS, the norm
    # edge label fonts only once a label is shown
    assert not any("font-size" in r["style"] for r in large if r["selector"] == "edge")
    assert any(r["selector"] == "edge" and r["style"].get("label") == "data(lbl_rps)" and "font-size" in r["style"]
               for r in stylesheet(["rps"], large=True))
