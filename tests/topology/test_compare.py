"""Two windows compared edge by edge: appeared/vanished, deltas of rate, error %, p95 and mTLS, judged better/worse."""
import pandas as pd

from topology import build_graph
from topology.compare import compare_graphs
from tests.topology.frames import both, bookinfo, frame


def test_identical_windows_compare_as_same():
    out = compare_graphs(build_graph(bookinfo()), build_graph(bookinfo()))
    assert out["edges"] == [] and out["nodes"] == {"appeared": [], "vanished": []}
    assert out["summary"]["same"] > 0 and out["summary"]["changed"] == 0


def test_appeared_vanished_and_worse_errors():
    before = build_graph(bookinfo())
    after_df = pd.concat([bookinfo(ratings_5xx=1.0), frame(both("reviews-v3", "mongodb-v1", 2.0))], ignore_index=True)
    after_df = after_df[after_df["destination_workload"] != "details-v1"]
    out = compare_graphs(before, build_graph(after_df))
    assert out["nodes"] == {"appeared": ["mongodb-v1"], "vanished": ["details-v1"]}
    by = {e["label"]: e for e in out["edges"]}
    assert by["reviews-v3 -> mongodb-v1 (http)"]["status"] == "appeared"
    assert by["reviews-v3 -> mongodb-v1 (http)"]["rate_before"] is None  # null, not NaN, for JSON
    assert by["productpage-v1 -> details-v1 (http)"]["status"] == "vanished"
    hurt = by["reviews-v2 -> ratings-v1 (http)"]
    assert hurt["status"] == "changed" and hurt["error_pct_verdict"] == "worse" and hurt["error_pct_delta"] > 5
    back = compare_graphs(build_graph(after_df), before)
    assert {e["label"]: e for e in back["edges"]}["reviews-v2 -> ratings-v1 (http)"]["error_pct_verdict"] == "better"
    assert out["summary"]["appeared"] == 1 and out["summary"]["vanished"] == 1


def test_rate_moves_are_changes_without_a_verdict_and_small_moves_are_same():
    before = build_graph(bookinfo())
    nudged = bookinfo()
    nudged["rate"] = nudged["rate"] * 1.1
    assert compare_graphs(before, build_graph(nudged))["edges"] == []
    tripled = bookinfo()
    tripled.loc[tripled["destination_workload"] == "details-v1", "rate"] *= 3
    (edge,) = compare_graphs(before, build_graph(tripled))["edges"]
    assert edge["label"] == "productpage-v1 -> details-v1 (http)" and edge["rate_verdict"] == "changed"
    assert edge["rate_delta"] == 20.0
