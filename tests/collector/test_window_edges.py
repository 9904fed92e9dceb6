"""A closed window's rate is the counters' increase between its edges, interpolated at each edge.

The class: traffic that starts or stops between the last scrape inside a window and the first one
after it (or before it at the start). A rate that stretched each series' average over its whole
sampled span counted part of the other state into the window (#20: the first window after a change).
"""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from collector import schema as s
from collector.parse.exposition import parse_exposition
from collector.query import istio_rates
from collector.store import TelemetryStore

LINE = 'istio_requests_total{{reporter="source",source_workload="productpage-v1",response_code="200"}} {}\n'


def store_with(points: list[tuple[float, float]]) -> TelemetryStore:
    store = TelemetryStore(window_s=3600, clock=lambda: 1100.0)
    for t, v in points:
        df = parse_exposition(LINE.format(v)).samples
        df[s.TIME] = pd.Timestamp(t, unit="s", tz="UTC")
        df[s.TARGET] = "a"
        store.add_samples(df)
    return store


def requests_in(store: TelemetryStore, start: float, end: float) -> float:
    r = istio_rates(store, end - start, end)
    r = r[r[s.METRIC] == "istio_requests_total"]
    return float(r[s.RATE].sum()) * (end - start)


@pytest.mark.parametrize("points, window, want", [
    # traffic stops right after the window's last scrape: the scrape after the end adds nothing
    ([(1000, 0), (1010, 100), (1020, 100)], (1000, 1010), 100),
    # traffic starts right after the window's baseline: all of it is in the window
    ([(1000, 0), (1010, 0), (1020, 100)], (1010, 1020), 100),
    # edges between scrapes: linear between the two around each edge
    ([(1000, 0), (1010, 100), (1020, 100), (1030, 300)], (1005, 1025), 50 + 100),
])
def test_a_past_window_counts_what_its_edges_enclose(points, window, want):
    assert requests_in(store_with(points), *window) == pytest.approx(want, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=4, max_size=12), st.data())
def test_any_window_on_scrapes_reads_the_exact_increase(steps, data):
    """Windows whose edges are scrapes read the counter's increase between them, whatever the traffic did."""
    values = [sum(steps[:i + 1]) for i in range(len(steps))]
    points = [(1000.0 + 5 * i, float(v)) for i, v in enumerate(values)]
    i = data.draw(st.integers(0, len(points) - 2))
    j = data.draw(st.integers(i + 1, len(points) - 1))
    got = requests_in(store_with(points), points[i][0], points[j][0])
    assert got == pytest.approx(values[j] - values[i], abs=1e-6)
