"""Diff of two windows: appeared/vanished nodes and edges, health and rate changes beyond a threshold."""
from topology import build_graph, diff_graphs
from tests.topology.frames import both, bookinfo, frame
import pandas as pd


def test_identical_windows_have_no_diff():
    assert diff_graphs(build_graph(bookinfo()), build_graph(bookinfo())).empty


def test_small_rate_moves_are_ignored_large_ones_reported():
    before = build_graph(bookinfo())
    nudged = bookinfo()
    nudged["rate"] = nudged["rate"] * 1.1
    assert diff_graphs(before, build_graph(nudged)).empty
    doubled = bookinfo()
    doubled.loc[doubled["destination_workload"] == "details-v1", "rate"] *= 3
    d = diff_graphs(before, build_graph(doubled))
    assert [(c.label, c.field, c.before, c.after) for c in d.changes] == [
        ("productpage-v1 -> details-v1 (http)", "rate", 10.0, 30.0)]


def test_health_change_and_edges_that_appear_or_vanish():
    before = build_graph(bookinfo())
    after_df = pd.concat([bookinfo(ratings_5xx=1.0), frame(both("reviews-v3", "mongodb-v1", 2.0))], ignore_index=True)
    after_df = after_df[after_df["destination_workload"] != "details-v1"]
    d = diff_graphs(before, build_graph(after_df))
    assert d.nodes_added == ["mongodb-v1"] and d.nodes_removed == ["details-v1"]
    assert d.edges_added == ["reviews-v3 -> mongodb-v1 (http)"]
    assert d.edges_removed == ["productpage-v1 -> details-v1 (http)"]
    health = [(c.label, c.before, c.after) for c in d.changes if c.field == "health"]
    assert health == [("reviews-v2 -> ratings-v1 (http)", "Healthy", "Failure")]
    assert d.node_health_changes == [("ratings-v1", "Healthy", "Failure"), ("reviews-v2", "Healthy", "Failure")]
    assert d.to_dict()["edges_added"] == d.edges_added
