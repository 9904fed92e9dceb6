"""The side panel's series (`LiveSource.element_metrics`) agree with the graph and cost at most one graph build.

Recorded tables (a seeded synthetic mesh with 4xx, 5xx and no-response traffic) check every
element of every graph type; the session `stack` checks the same on the bundled mesh's live
telemetry. The source's clock is pinned so the graph and the series describe one instant.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from collector import schema as s
from dashboard.query import GRAPH_TYPES
from meshscope import live_source
from tests.meshscope.pinned import PinnedSource, settled_with_errors
from tests.util import wait_until
from topology.synthetic import synthetic_rates

WINDOW = 60.0


class RecordedBackend:
    """A backend that answers every window with one recorded rate frame (no config)."""

    name = "recorded"

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.calls = 0

    def rates(self, window_s: float, end: float | None = None) -> pd.DataFrame:
        self.calls += 1
        return self.frame

    def snapshot(self):
        return None



@pytest.fixture
def few_points(monkeypatch):
    """Three points per series instead of the product's 20: the tests hold the last point against the graph,
    and every earlier point is the same code on an earlier frame (recorded traffic answers each with the same
    frame; the live copy holds only the last points' scrapes), so three still run the earlier points' alignment
    path at a quarter of the cost (2.75 s -> 0.62 s an element at load 74)."""
    monkeypatch.setattr(live_source, "SERIES_POINTS", 3)


def recorded_frame() -> pd.DataFrame:
    """Synthetic traffic whose error rows are split into 404, 503 and no response (code 0)."""
    frame = synthetic_rates(workloads=24, services=6, edges=40, namespaces=2, seed=3, error_share=0.5)
    frame[s.RESPONSE_CODE] = frame[s.RESPONSE_CODE].astype(str)
    # both reporters of one request see the same code: pick it per edge, not per row
    edge = frame.groupby([s.SOURCE_WORKLOAD, s.DESTINATION_WORKLOAD], observed=True).ngroup().to_numpy()
    errors = (frame[s.RESPONSE_CODE] == "503").to_numpy()
    frame.loc[errors & (edge % 3 == 0), s.RESPONSE_CODE] = "404"
    frame.loc[errors & (edge % 3 == 1), s.RESPONSE_CODE] = "0"
    return frame


def assert_last_point_is_the_graph(series: dict, element: dict) -> None:
    rps = element["rps"] if "source" in element else element["rps_in"]
    assert series["rps"][-1] == pytest.approx(rps, abs=1e-3), element
    assert series["error_pct"][-1] == pytest.approx(element["error_pct"], abs=1e-9), element
    if "source" in element:
        for key in ("p50", "p95", "p99"):
            want = element[f"{key}_ms"]
            got = series[key][-1]
            assert (got is None) == (want is None or math.isnan(want)), (key, element)
            if got is not None:
                assert got == pytest.approx(want, abs=0.01), (key, element)


@pytest.mark.parametrize("graph_type", GRAPH_TYPES)
@pytest.mark.usefixtures("few_points")
def test_series_end_on_the_graph_numbers_for_every_element_of_recorded_traffic(graph_type):
    src = PinnedSource(SimpleNamespace(backend=RecordedBackend(recorded_frame())), at=1_800_000_000.0)
    elements = [e["data"] for e in src.graph(graph_type, None, WINDOW).elements]
    checked = 0
    for el in elements:
        if el.get("type") == "box":
            continue
        series = src.element_metrics(el["id"], WINDOW, graph_type=graph_type)
        assert series is not None and len(series["t"]) > 1 and series["t"][-1] == pytest.approx(src.at, abs=1e-3)
        assert_last_point_is_the_graph(series, el)
        checked += 1
    assert checked > 10
    assert src.graph_builds == 1  # every series reused the graph the page drew


@pytest.mark.usefixtures("few_points")
def test_4xx_and_no_response_count_as_errors_like_the_graph():
    frame = recorded_frame()
    src = PinnedSource(SimpleNamespace(backend=RecordedBackend(frame)), at=1_800_000_000.0)
    elements = [e["data"] for e in src.graph("workload", None, WINDOW).elements]
    by_id = {d["id"]: d for d in elements}
    dst = frame[(frame[s.REPORTER] == "destination") & (frame[s.METRIC] == s.ISTIO_REQUESTS_TOTAL)]
    with_4xx = dst[dst[s.RESPONSE_CODE] == "404"].iloc[0]
    edge = next(d for d in elements if "source" in d and by_id[d["source"]]["name"] == with_4xx[s.SOURCE_WORKLOAD]
                and by_id[d["target"]]["name"] == with_4xx[s.DESTINATION_WORKLOAD])
    rows = dst[(dst[s.SOURCE_WORKLOAD] == with_4xx[s.SOURCE_WORKLOAD])
               & (dst[s.DESTINATION_WORKLOAD] == with_4xx[s.DESTINATION_WORKLOAD])]
    failed = rows[rows[s.RESPONSE_CODE] != "200"][s.RATE].sum()
    series = src.element_metrics(edge["id"], WINDOW, graph_type="workload")
    assert series["error_pct"][-1] == pytest.approx(round(100 * failed / rows[s.RATE].sum(), 1))
    assert series["error_pct"][-1] == edge["error_pct"] > 0


@pytest.mark.usefixtures("few_points")
def test_one_graph_build_at_most_whatever_graph_the_element_is_in():
    backend = RecordedBackend(recorded_frame())
    src = PinnedSource(SimpleNamespace(backend=backend), at=1_800_000_000.0)
    drawn = {t: {e["data"]["id"] for e in src.graph(t, None, WINDOW).elements} for t in GRAPH_TYPES}
    assert src.graph_builds == len(GRAPH_TYPES)
    # an edge of the versioned-app graph only: the old lookup built the workload and app graphs first
    only_vapp = next(i for i in drawn["versionedApp"] - drawn["workload"] - drawn["app"] - drawn["service"]
                     if any(i == e["data"]["id"] and "source" in e["data"] for e in src.graph("versionedApp").elements))
    src.at += 30  # every cached graph is due now: the panel answers from the drawn graph while it refreshes
    before = src.graph_builds
    assert src.element_metrics(only_vapp, WINDOW) is not None  # found through the graphs drawn for the UI
    wait_until(lambda: src.graph_builds == before + 1, timeout=30, what="the one refresh of the graph it was drawn in")
    assert src.builds_by_view[("versionedApp", (), WINDOW)] == 2

    fresh = PinnedSource(SimpleNamespace(backend=backend), at=src.at)  # has drawn nothing yet
    assert fresh.element_metrics(only_vapp, WINDOW, graph_type="versionedApp") is not None
    assert fresh.graph_builds == 1
    assert fresh.element_metrics(only_vapp, WINDOW) is not None  # remembered from that build
    assert fresh.graph_builds == 1
    assert fresh.element_metrics("no-such-element", WINDOW) is None  # never drawn: looked for in the workload graph
    assert fresh.graph_builds == 2


def test_snapshot_source_takes_the_same_request_and_returns_its_saved_series():
    from dashboard.sample import bookinfo_snapshot
    from dashboard.snapshot_source import SnapshotSource

    src = SnapshotSource(bookinfo_snapshot())
    eid, saved = next(iter(src.snapshot["series"].items()))
    assert src.element_metrics(eid) == saved
    assert src.element_metrics(eid, 300, graph_type="service", namespaces=["bookinfo"]) == saved


@pytest.mark.e2e
@pytest.mark.usefixtures("few_points")
def test_side_panel_numbers_are_the_graph_numbers_on_the_bundled_mesh(stack):
    # one closed instant of the mesh's real telemetry with errors in the window, copied so the graph and the
    # series read the same scrapes (shared with the Service page's e2e; see pinned.py)
    src = settled_with_errors(stack).source()
    checked, failing = 0, 0
    for graph_type in GRAPH_TYPES:
        elements = [e["data"] for e in src.graph(graph_type, None, WINDOW).elements]
        for el in elements:
            if el.get("type") == "box" or not (el.get("rps") or el.get("rps_in")):
                continue
            series = src.element_metrics(el["id"], WINDOW, graph_type=graph_type)
            assert series is not None and series["t"][-1] == pytest.approx(src.at, abs=1e-3)
            assert_last_point_is_the_graph(series, el)
            assert len(series["t"]) > 1 and max(series["rps"]) > 0
            checked += 1
            failing += el["error_pct"] > 0
    assert checked >= 8 and failing >= 2  # edges and nodes, healthy and failing ones
    assert src.graph_builds == len(GRAPH_TYPES)
