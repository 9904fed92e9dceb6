"""The graph's diff mode and replay slider (issue #14): real topology builds compared as /api/v1/graph/diff does,
drawn as the topology page draws them; replay marks over a real journal."""
from __future__ import annotations

from dashboard.components import diff_view, replay
from dashboard.elements import from_topology, ui_elements
from mesh.journal import Journal, content_of
from tests.topology.frames import both, frame
from topology import build_graph, to_cytoscape
from topology.compare import compare_graphs

HOSTILE = "<b>x</b>"


def _traffic(ratings_5xx: float, with_details: bool, new_caller: bool):
    return frame(
        both("productpage-v1", "details-v1", 10.0) if with_details else [],
        both("productpage-v1", "reviews-v2", 3.0),
        both("reviews-v2", "ratings-v1", 3.0 - ratings_5xx),
        both("reviews-v2", "ratings-v1", ratings_5xx, code="503", flags="UF") if ratings_5xx else [],
        both("reviews-v2", "cache-v1", 2.0) if new_caller else [],
    )


def _elements(g):
    return ui_elements(*from_topology(to_cytoscape(g)))


def _named(elements):
    by_id = {e["data"]["id"]: e["data"].get("label") or e["data"].get("name") for e in elements}
    return {(by_id.get(e["data"]["source"]), by_id.get(e["data"]["target"])) if "source" in e["data"]
            else by_id[e["data"]["id"]]: e.get("classes", "") for e in elements}


def test_diff_mode_colours_appeared_vanished_worse_and_brings_back_ghosts():
    before = build_graph(_traffic(0.0, with_details=True, new_caller=False), "workload")
    after = build_graph(_traffic(2.0, with_details=False, new_caller=True), "workload")
    diff = compare_graphs(before, after)
    diff.update(config_changes=[{"op": "update", "kind": "DestinationRule", "namespace": "bookinfo",
                                 "name": HOSTILE}], before={"end": 940.0}, after={"end": 1000.0})
    shown = diff_view.apply(_elements(after), diff)
    classes = {k: v for k, v in _named(shown).items() if isinstance(k, tuple)}
    worse = [k for k, v in classes.items() if "diff-worse" in v]
    appeared = [k for k, v in classes.items() if "diff-appeared" in v]
    vanished = [k for k, v in classes.items() if "diff-vanished" in v]
    assert len(worse) == 1 and worse[0][1] and "ratings" in worse[0][1]
    assert len(appeared) == 1 and "cache" in appeared[0][1]
    assert len(vanished) == 1 and "details" in (vanished[0][1] or "")  # the ghost edge of the window before
    ghosts = [e for e in shown if e.get("classes") == "diff-vanished" and "source" not in e["data"]]
    assert [g["data"]["label"] for g in ghosts] and all(g["data"]["id"] for g in ghosts)
    ids = {e["data"]["id"] for e in shown}
    assert all(e["data"]["source"] in ids and e["data"]["target"] in ids for e in shown if "source" in e["data"])
    why = next(e["data"]["diff"] for e in shown if "diff-worse" in e.get("classes", ""))
    assert why.startswith("error_pct 0 -> ")
    assert any(r["selector"] == "edge.diff-worse" for r in diff_view.styles())
    # every edge of the window on screen is still drawn; untouched ones keep no diff class
    assert len([e for e in shown if "source" in e["data"] and "diff-" not in e.get("classes", "")]) >= 1


def test_compared_hook_reads_the_sources_diff_and_says_what_changed_between():
    before = build_graph(_traffic(0.0, True, False), "workload")
    after = build_graph(_traffic(0.0, True, True), "workload")
    calls = []

    class Source:  # the live source's graph_diff contract, answering from the two real builds
        def now(self):
            return 10_000.0

        def graph_diff(self, graph_type, namespaces, window_s, before_end, after_end):  # noqa: ANN001
            calls.append((graph_type, window_s, before_end, after_end))
            out = compare_graphs(before, after)
            out.update(config_changes=[{"op": "gap"}, {"op": "create", "kind": "ServiceEntry", "namespace": "b",
                                                       "name": "cache", "time": 9_700.0},
                                       {"op": "create", "kind": "Namespace", "name": "b", "initial": True}],
                       before={"end": before_end}, after={"end": after_end})
            return out

    elements = _elements(after)
    assert diff_view.compared(Source(), "workload", None, 300, 0, 0, elements) == (elements, [])
    shown, notes = diff_view.compared(Source(), "workload", None, 300, 60, -1, elements)
    assert calls == [("workload", 300.0, 10_000.0 - 360, 10_000.0 - 60)]  # the previous window of the same length
    assert notes == ["compared with the window ending -300 s: 1 appeared, 0 vanished, 0 changed (green new, grey "
                     "dashed gone, red worse, blue better); 1 config change(s) between: create ServiceEntry b/cache"]
    diff_view.compared(Source(), "workload", ["b"], 60, 0, 900, elements)
    assert calls[-1] == ("workload", 60.0, 10_000.0 - 900, 10_000.0)
    assert any("diff-appeared" in e.get("classes", "") for e in shown)


def test_replay_steps_through_slices_and_marks_the_changes(tmp_path):
    assert replay.view(300, 0, None) == (300, 0) and replay.view(300, 60, replay.STEPS) == (300, 60)
    assert replay.view(300, 0, replay.STEPS - 1) == (30.0, 0.0)  # the last slice ends with the window
    assert replay.view(300, 60, 0) == (30.0, 60 + 270.0)  # the first slice ends 9 slices before it
    assert replay.view(60, 0, 5)[0] == replay.MIN_SLICE_S

    j = Journal(tmp_path / "j.sqlite")
    now = 1_700_000_000.0
    j.observe("VirtualService", "bookinfo", "reviews", content_of({"hosts": ["reviews"]}), who="a", at=now - 1000,
              initial=True)
    j.observe("VirtualService", "bookinfo", "reviews", content_of({"hosts": ["reviews"], "x": 1}), who="a",
              at=now - 155)  # in the slice ending at -150 (step 4 of a 300 s window ending now)
    j.observe("VirtualService", "bookinfo", "reviews", content_of({"hosts": ["reviews"], "x": 2}), who="a", at=now - 152)
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews"}), who="a", at=now - 400)
    j.gap(now - 20, now - 10)

    class Source:
        def now(self):
            return now

        def changes(self, since=None, until=None, limit=1000, **kw):  # noqa: ANN001, ANN003
            return j.query(since=since, until=until, limit=limit)

    marks = replay.marks(Source(), 300, 0)
    flagged = {k: v["label"] for k, v in marks.items() if "\u25b2" in v["label"]}
    assert flagged == {"4": "\u25b22 -150s"}, marks  # two changes in one slice; the gap and the older one are not
    assert marks[str(replay.STEPS)]["label"] == "all"
    shifted = replay.marks(Source(), 300, 300)  # the window that ended 5 min ago holds the DestinationRule's change
    assert [v["label"] for v in shifted.values() if "\u25b2" in v["label"]] == ["\u25b21 -90s"]
    j.close()


def test_compare_from_the_url_is_one_of_the_offered_choices():
    assert diff_view.compare_of({"compare": "-1"}) == -1 and diff_view.compare_of({"compare": "900"}) == 900
    assert diff_view.compare_of({}) == 0 and diff_view.compare_of({"compare": "7"}) == 0
    assert diff_view.compare_of({"compare": "<x>"}) == 0


def test_autoplay_starts_at_the_first_slice_waits_for_each_drawing_and_stops_at_the_end():
    S = replay.STEPS
    assert replay.advance("topo-play", S, S, playing=False) == (0, True)  # from "all": the first slice
    assert replay.advance("topo-play", 4, 4, playing=False) == (None, True)  # paused mid-way: resume there
    assert replay.advance("topo-play", 4, 4, playing=True) == (None, False)  # pause
    assert replay.advance("topo-replay-tick", 4, 3, playing=True) == (None, True)  # step 4 not drawn yet: hold
    assert replay.advance("topo-replay-tick", 4, 4, playing=True) == (5, True)
    assert replay.advance("topo-replay-tick", S - 1, S - 1, playing=True) == (S, False)  # the whole window: stop
    assert replay.advance("topo-replay-tick", 4, 4, playing=False) == (None, False)  # a stray tick after pause
    assert replay.advance("topo-speed", 4, 4, playing=True) == (None, True)
    assert replay.tick_ms(4.0) < replay.tick_ms(1.0) < replay.tick_ms(0.5)
