"""Node positions stay put between refreshes; new nodes go in layers by call depth, without overlaps."""
from dashboard.components.positions import COLUMN_GAP, PositionMemory


def _graph(nodes, edges):
    return ([{"data": {"id": n, "name": n, "namespace": "ns"}} for n in nodes] +
            [{"data": {"id": f"{s}->{t}", "source": s, "target": t}} for s, t in edges])


def _pos(elements):
    return {e["data"]["id"]: (e["position"]["x"], e["position"]["y"]) for e in elements if "position" in e}


def test_layers_follow_call_depth_and_do_not_overlap():
    placed = _pos(PositionMemory().place("workload", _graph(
        ["gw", "a", "b", "c", "d"], [("gw", "a"), ("gw", "b"), ("a", "c"), ("b", "c"), ("c", "d")])))
    assert [placed[n][0] / COLUMN_GAP for n in ("gw", "a", "b", "c", "d")] == [0, 1, 1, 2, 3]
    assert placed["a"][1] != placed["b"][1]
    assert len(set(placed.values())) == 5


def test_positions_survive_refresh_and_new_nodes_are_added_around_them():
    memory = PositionMemory()
    first = _pos(memory.place("workload", _graph(["gw", "a", "b"], [("gw", "a"), ("gw", "b")])))
    second = _pos(memory.place("workload", _graph(["gw", "a", "b", "new"], [("gw", "a"), ("gw", "b"), ("a", "new")])))
    assert {k: second[k] for k in first} == first
    assert second["new"][0] == 2 * COLUMN_GAP
    third = _pos(memory.place("workload", _graph(["gw", "a", "b", "new", "new2"],
                                                 [("gw", "a"), ("gw", "b"), ("gw", "new2")])))
    assert third["new2"][0] == COLUMN_GAP and third["new2"] not in {third["a"], third["b"]}
    # graph types are remembered separately
    assert _pos(memory.place("app", _graph(["x"], []))) == {"x": (0.0, 0.0)}


def test_cycles_terminate():
    placed = _pos(PositionMemory().place("workload", _graph(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])))
    assert len(placed) == 3


def test_boxes_get_no_position_of_their_own():
    elements = _graph(["a", "b"], [("a", "b")]) + [{"data": {"id": "box", "type": "box"}}]
    placed = PositionMemory().place("app", elements)
    assert "position" not in placed[-1] and len(_pos(placed)) == 2


def test_a_hub_with_many_callers_wraps_into_lanes_and_boxes_stay_together():
    callers = [f"c{i}" for i in range(60)]
    elements = _graph(["hub", *callers], [(c, "hub") for c in callers])
    placed = _pos(PositionMemory().place("workload", elements))
    xs = {placed[c][0] for c in callers}
    assert len(xs) > 1 and max(placed[c][1] for c in callers) < 60 * 100 / 2  # wrapped, not one tall strip
    assert placed["hub"][0] > max(xs)  # callees still to the right of every caller lane
    versions = [{"data": {"id": f"r-{v}", "name": f"r-{v}", "parent": "box-r"}} for v in ("v1", "v2", "v3")]
    boxed = _pos(PositionMemory().place("versionedApp", _graph(["gw", "x"], [("gw", "x"), ("x", "r-v3")]) + versions +
                                        [{"data": {"id": "gw->r-v1", "source": "gw", "target": "r-v1"}}]))
    assert len({boxed[f"r-{v}"][0] for v in ("v1", "v2", "v3")}) == 1  # one column for the whole box


def _layered(layers: int, per_layer: int, callers: int = 2, seed: int = 5):
    import random
    rng = random.Random(seed)
    names = [[f"l{i}-n{j}" for j in range(per_layer)] for i in range(layers)]
    edges = [(rng.choice(names[i - 1]), n) for i in range(1, layers) for n in names[i] for _ in range(callers)]
    return _graph([n for layer in names for n in layer], edges)


def _box(placed):
    xs, ys = [p[0] for p in placed.values()], [p[1] for p in placed.values()]
    return max(xs) - min(xs), max(ys) - min(ys)


def test_a_big_layered_graph_is_laid_out_near_the_screen_s_shape_without_overlaps():
    from dashboard.components.positions import ASPECT
    for layers, per_layer in ((50, 200), (8, 400), (40, 12)):  # deep and wide, shallow and tall, deep and thin
        placed = _pos(PositionMemory().place("workload", _layered(layers, per_layer)))
        width, height = _box(placed)
        assert width / max(height, 1) >= ASPECT / 2, (layers, per_layer)  # never a tall sliver
        # wider than the screen only when the depths alone are (lanes never wrap a depth's column)
        assert width / max(height, 1) <= ASPECT * 2 or layers * 180 / (per_layer * 100) > ASPECT, (layers, per_layer)
        assert len(set(placed.values())) == layers * per_layer  # no two nodes on one spot


def test_a_column_does_not_slide_below_its_callers_depth_after_depth():
    # one lane a column (as wide as tall already): each node wants its callers' mean height; the old layout
    # slid every column's block half its height further down, 30 depths over
    placed = _pos(PositionMemory().place("workload", _layered(30, 40)))
    _, height = _box(placed)
    assert height <= 2 * 40 * 100  # (it was 5x: 21,000)
