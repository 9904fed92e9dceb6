"""istio_rates and histogram_quantile: Prometheus semantics on counters, resets, gaps and new series."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from collector import schema as s
from collector.parse.exposition import parse_exposition
from collector.query import histogram_quantile, istio_rates, rates_from_samples
from collector.store import TelemetryStore


def scrape(store: TelemetryStore, t: float, text: str, target: str = "a") -> None:
    df = parse_exposition(text).samples
    df[s.TIME] = pd.Timestamp(t, unit="s", tz="UTC")
    df[s.TARGET] = target
    store.add_samples(df)


def line(code: str, value: float, src: str = "productpage-v1") -> str:
    return f'istio_requests_total{{reporter="source",source_workload="{src}",response_code="{code}"}} {value}\n'


def rate_of(frame: pd.DataFrame, **labels) -> float:
    sel = frame
    for k, v in labels.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return float(sel[s.RATE].iloc[0])


@pytest.fixture
def store():
    return TelemetryStore(window_s=3600, clock=lambda: 2000.0)


def test_frame_shape(store):
    scrape(store, 1000, line("200", 1))
    scrape(store, 1010, line("200", 11))
    out = istio_rates(store, 10, end=1010)
    assert list(out.columns) == [*s.ISTIO_LABELS, s.METRIC, s.LE, s.RATE]
    assert out[s.DESTINATION_WORKLOAD].iloc[0] == "unknown"
    assert math.isnan(out[s.LE].iloc[0])
    assert rate_of(out, response_code="200") == pytest.approx(1.0)


def test_counter_reset_counts_the_new_value(store):
    for t, v in [(1000, 100), (1010, 150), (1020, 20), (1030, 60)]:  # restart between 1010 and 1020
        scrape(store, t, line("200", v))
    out = istio_rates(store, 30, end=1030)
    assert rate_of(out, response_code="200") == pytest.approx((50 + 20 + 40) / 30)


def test_scrape_gap_keeps_the_increase(store):
    scrape(store, 1000, line("200", 0))
    scrape(store, 1005, line("200", 5))
    scrape(store, 1055, line("200", 105))  # target unreachable for 45 s
    out = istio_rates(store, 60, end=1060)  # baseline at 1000; the last scrape is within 1.1 intervals of the end
    assert rate_of(out, response_code="200") == pytest.approx(105 * (60 / 55) / 60)


def test_new_series_counts_from_zero_at_previous_scrape(store):
    scrape(store, 1000, line("200", 10))
    scrape(store, 1010, line("200", 20) + line("503", 4))
    out = istio_rates(store, 10, end=1010)
    assert rate_of(out, response_code="503") == pytest.approx(0.4)


def test_window_bounds_and_sum_over_targets(store):
    scrape(store, 900, line("200", 0), target="a")  # outside a 10 s window ending at 1010 (and its lookback)
    scrape(store, 1000, line("200", 1000), target="a")
    scrape(store, 1010, line("200", 1010), target="a")
    scrape(store, 1000, line("200", 0), target="b")
    scrape(store, 1010, line("200", 20), target="b")
    out = istio_rates(store, 10, end=1010)
    assert rate_of(out, response_code="200") == pytest.approx(1 + 2)


def test_non_istio_and_gauges_are_left_out(store):
    scrape(store, 1000, 'envoy_cluster_upstream_rq_total{envoy_cluster_name="x"} 1\nistio_build{component="proxy"} 1\n')
    scrape(store, 1010, 'envoy_cluster_upstream_rq_total{envoy_cluster_name="x"} 5\nistio_build{component="proxy"} 1\n')
    assert istio_rates(store, 60, end=1010).empty


def test_histogram_buckets_keep_le(store):
    text = lambda a, b: (f'istio_request_duration_milliseconds_bucket{{reporter="source",le="100"}} {a}\n'
                         f'istio_request_duration_milliseconds_bucket{{reporter="source",le="+Inf"}} {b}\n')
    scrape(store, 1000, text(0, 0))
    scrape(store, 1010, text(50, 100))
    out = istio_rates(store, 10, end=1010)
    assert dict(zip(out[s.LE], out[s.RATE])) == {100.0: 5.0, math.inf: 10.0}


def test_histogram_quantile_matches_prometheus_method():
    # 90 of 100 req/s under 250 ms, the rest under 500 ms: p95 interpolates to 375 (promtool agrees)
    b = pd.DataFrame({"svc": ["a"] * 4, s.LE: [100, 250, 500, np.inf], s.RATE: [50, 90, 100, 100]})
    assert histogram_quantile(0.95, b, by=["svc"])["value"].iloc[0] == pytest.approx(375)
    assert histogram_quantile(0.5, b, by=["svc"])["value"].iloc[0] == pytest.approx(100)
    assert histogram_quantile(0.25, b, by=["svc"])["value"].iloc[0] == pytest.approx(50)  # first bucket from 0


def test_histogram_quantile_edge_cases():
    b = pd.DataFrame({"svc": ["inf", "inf", "zero", "zero", "noinf"], s.LE: [1, np.inf, 1, np.inf, 1],
                      s.RATE: [1, 10, 0, 0, 5]})
    out = histogram_quantile(0.99, b, by=["svc"]).set_index("svc")["value"]
    assert out["inf"] == 1.0  # rank in +Inf: the largest finite bound
    assert math.isnan(out["zero"]) and math.isnan(out["noinf"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=12),
       st.floats(min_value=0.01, max_value=0.99))
def test_quantile_is_within_bucket_bounds(counts, q):
    cum = np.cumsum(counts)
    les = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000][: len(cum) - 1] + [np.inf]
    b = pd.DataFrame({s.LE: les, s.RATE: cum})
    v = histogram_quantile(q, b)["value"].iloc[0]
    if cum[-1] == 0:
        assert math.isnan(v)
    else:
        assert 0 <= v <= max(x for x in les if np.isfinite(x))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=2, max_size=30), st.data())
def test_rate_equals_true_increase_with_random_resets(increments, data):
    """Build a counter with random restarts; the rate must be the true increase / span."""
    values, v = [], 0
    for inc in increments:
        if data.draw(st.booleans()) and inc < v:  # a reset is only visible as a drop
            v = inc  # restarted, then counted `inc`
        else:
            v += inc
        values.append(v)
    frame = pd.DataFrame({s.TIME: pd.to_datetime(np.arange(len(values)) * 5.0 + 1000, unit="s", utc=True),
                          s.TARGET: "t", s.METRIC: "istio_requests_total", s.LABELS: "x", s.VALUE: values})
    out = rates_from_samples(frame)
    expected = sum(increments[1:]) / (5.0 * (len(values) - 1))
    assert out[s.RATE].iloc[0] == pytest.approx(expected)


def test_golden_signals_per_edge_from_scrapes(store):
    def text(ok, err, b100, binf):
        base = 'reporter="destination",source_workload="productpage-v1",source_workload_namespace="bookinfo",destination_service="reviews"'
        return (f'istio_requests_total{{{base},response_code="200"}} {ok}\n'
                f'istio_requests_total{{{base},response_code="503"}} {err}\n'
                f'istio_requests_total{{reporter="source",source_workload="productpage-v1",destination_service="reviews",response_code="200"}} {ok * 7}\n'
                f'istio_request_duration_milliseconds_bucket{{{base},response_code="200",le="100"}} {b100}\n'
                f'istio_request_duration_milliseconds_bucket{{{base},response_code="200",le="+Inf"}} {binf}\n')
    scrape(store, 1000, text(0, 0, 0, 0))
    scrape(store, 1010, text(90, 10, 50, 100))
    from collector.query import golden_signals
    g = golden_signals(istio_rates(store, 10, end=1010), reporter="destination")
    assert len(g) == 1  # the source-reported copy is not counted twice
    row = g.iloc[0]
    assert row["request_rate"] == pytest.approx(10.0)
    assert row["error_5xx_ratio"] == pytest.approx(0.1)
    assert row["p50_ms"] == pytest.approx(100.0)
    assert row["p95_ms"] == pytest.approx(100.0)  # rank in +Inf: largest finite bound


def test_request_and_span_windows():
    from collector.query import request_table, spans
    st = TelemetryStore(window_s=10**10)
    st.add_requests(pd.DataFrame({s.START_TIME: pd.to_datetime([100, 200], unit="s", utc=True), s.PATH: ["/a", "/b"]}))
    st.add_spans(pd.DataFrame({s.TRACE_ID: ["ab" * 16, "cd" * 16], s.SPAN_ID: ["01" * 8, "02" * 8],
                               s.START_TIME: pd.to_datetime([150, 190], unit="s", utc=True)}))
    assert list(request_table(st, 50, end=210)[s.PATH]) == ["/b"]
    assert list(spans(st, 100, end=200, trace_id=("CD" * 16))[s.SPAN_ID]) == ["02" * 8]


def steady(store: TelemetryStore, target: str, t0: float, t1: float, rps: float, code: str = "200", start_value: float = 0,
           step: float = 1.0) -> None:
    """A counter scraped every `step` s from t0 to t1 growing at `rps` (a sidecar under steady load)."""
    times = np.arange(t0, t1 + 1e-9, step)
    store.add_samples(pd.DataFrame({s.TIME: pd.to_datetime(times, unit="s", utc=True), s.TARGET: target,
                                    s.METRIC: "istio_requests_total", s.REPORTER: "source", s.RESPONSE_CODE: code,
                                    s.LABELS: f'response_code="{code}"',
                                    s.VALUE: start_value + rps * (times - t0)}))


def test_rate_is_increase_over_the_window_not_over_each_series_span(store):
    # 5 rps all along; 503s start 10 s before the end at 2 rps: a 60 s window holds 20 of them
    steady(store, "a", 900, 1060, 5.0)
    steady(store, "a", 1051, 1060, 2.0, code="503", start_value=2.0)  # Envoy shows a counter from its first increment
    out = istio_rates(store, 60, end=1060)
    assert rate_of(out, response_code="200") == pytest.approx(5.0, rel=0.02)
    assert rate_of(out, response_code="503") == pytest.approx(20 / 60, rel=0.02)  # not 2 rps over its own 10 s


def test_runs_and_restarts_do_not_add_up(store):
    # one run scraped target a until 1030, the next run (new ports: target b) from 1031: 5 rps throughout
    steady(store, "a", 900, 1030, 5.0)
    steady(store, "b", 1031, 1060, 5.0, start_value=7.0)
    out = istio_rates(store, 60, end=1060)
    assert rate_of(out, response_code="200") == pytest.approx(5.0, rel=0.1)
    # a sidecar restart on the same target: its counters restart from 0
    store2 = TelemetryStore(window_s=3600, clock=lambda: 2000.0)
    steady(store2, "a", 900, 1030, 5.0)
    steady(store2, "a", 1031, 1060, 5.0, start_value=3.0)
    assert rate_of(istio_rates(store2, 60, end=1060), response_code="200") == pytest.approx(5.0, rel=0.1)


def test_a_series_that_stopped_counts_only_its_share_of_the_window(store):
    steady(store, "old", 900, 1020, 6.0)  # stopped 40 s before the end of the window
    out = istio_rates(store, 60, end=1060)
    assert rate_of(out, response_code="200") == pytest.approx(6.0 * 20.5 / 60, rel=0.02)


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=0.5, max_value=5.0), st.floats(min_value=10, max_value=200), st.floats(min_value=0, max_value=1))
def test_steady_rate_is_recovered_for_any_window_and_phase(step, window, phase):
    """Whatever the scrape interval and where the window falls between scrapes, a steady rate is the rate."""
    store = TelemetryStore(window_s=7200, clock=lambda: 5000.0)
    steady(store, "a", 1000, 1000 + 400, 3.0, step=step)
    end = 1000 + 400 - phase * step
    assert rate_of(istio_rates(store, window, end=end), response_code="200") == pytest.approx(3.0, rel=0.01)


def uptime(store: TelemetryStore, target: str, t0: float, t1: float, started: float, step: float = 1.0) -> None:
    """Envoy's `envoy_server_uptime` gauge (whole seconds) in each scrape of `target`."""
    times = np.arange(t0, t1 + 1e-9, step)
    store.add_samples(pd.DataFrame({s.TIME: pd.to_datetime(times, unit="s", utc=True), s.TARGET: target,
                                    s.METRIC: "envoy_server_uptime", s.LABELS: "",
                                    s.VALUE: np.floor(times - started)}))


@pytest.mark.parametrize("window, end", [(20, 1045), (60, 1060), (8, 1040)])
def test_a_process_that_started_inside_the_window_counts_from_its_start(window, end):
    # a new run (new ports: target b) whose sidecar started at 1030.4 and served 5 rps from then; its first
    # scrape at 1032 already shows 8 requests. Old run (target a) until 1029 at 5 rps.
    store = TelemetryStore(window_s=3600, clock=lambda: 2000.0)
    steady(store, "a", 900, 1029, 5.0)
    uptime(store, "a", 900, 1029, started=800.0)
    steady(store, "b", 1032, 1060, 5.0, start_value=5.0 * (1032 - 1030.4))
    uptime(store, "b", 1032, 1060, started=1030.4)
    start = end - window
    served = 5.0 * (min(end, 1029) - start if start < 1029 else 0.0) + 5.0 * (end - max(start, 1030.4))
    got = rate_of(istio_rates(store, window, end=end), response_code="200") * window
    assert got == pytest.approx(served, abs=5.0 * 1.5)  # within the gauge's 1 s resolution plus half a scrape
    # without the start time (a target that does not report it) the first 8 requests are not in the window
    store2 = TelemetryStore(window_s=3600, clock=lambda: 2000.0)
    steady(store2, "b", 1032, 1060, 5.0, start_value=8.0)
    if end - window > 1030.4:
        return
    assert rate_of(istio_rates(store2, window, end=end), response_code="200") * window < got - 4.0


def test_a_restart_is_seen_from_the_start_time_even_when_the_counter_did_not_drop(store):
    # same target: 10 requests before a restart at 1010.5, then 30 within 1.5 s: the counter rose 10 -> 30
    for t, v, up in [(1000, 0, 100), (1010, 10, 110), (1012, 30, 1), (1020, 40, 9)]:
        scrape(store, t, line("200", v) + f"envoy_server_uptime {up}\n")
    out = istio_rates(store, 20, end=1020)
    assert rate_of(out, response_code="200") == pytest.approx((10 + 30 + 10) / 20)


def test_a_window_in_the_past_is_closed_by_the_scrape_after_it(store):
    # scrapes every 1 s, then one round 7 s late (a loaded box): the window ends inside the gap
    steady(store, "a", 901, 1055, 4.0)
    steady(store, "a", 1062, 1090, 4.0, start_value=4.0 * (1062 - 901))
    for end in (1056.5, 1058.0, 1061.9):
        assert rate_of(istio_rates(store, 30, end=end), response_code="200") == pytest.approx(4.0, rel=0.005)


def test_a_sidecar_running_since_before_the_window_counts_from_its_start_even_when_first_scraped_late(store):
    # meshscope started at 1047: the sidecar (up since 500) was never scraped before; a 20 s window ending at 1060
    steady(store, "a", 1048, 1060, 5.0, start_value=50_000.0)
    uptime(store, "a", 1048, 1060, started=500.0)
    assert rate_of(istio_rates(store, 20, end=1060), response_code="200") == pytest.approx(5.0, rel=0.01)
    # a series born 2 s before its first scrape is extrapolated no further than its zero point
    store.add_samples(pd.DataFrame({s.TIME: pd.to_datetime([1048.0, 1060.0], unit="s", utc=True), s.TARGET: "a",
                                    s.METRIC: "istio_requests_total", s.REPORTER: "source", s.RESPONSE_CODE: "503",
                                    s.LABELS: 'response_code="503"', s.VALUE: [2.0, 14.0]}))
    assert rate_of(istio_rates(store, 20, end=1060), response_code="503") == pytest.approx(14.0 / 20, rel=0.01)


def test_golden_signals_count_each_edge_as_the_graph_does():
    """Reports' golden signals and the graph agree edge by edge: one reporter per edge, the caller's where it reports."""
    from collector.query import golden_signals
    from tests.topology.frames import both, frame, series
    from topology import attrs as A
    from topology import build_graph

    rates = frame(
        # a route timeout: the caller sees 504 UT, the server 0 DC for the same 2 rps
        series("productpage-v1", "reviews-v2", 3.0, reporter="source"),
        series("productpage-v1", "reviews-v2", 2.0, reporter="source", code="504", flags="UT"),
        series("productpage-v1", "reviews-v2", 3.0), series("productpage-v1", "reviews-v2", 2.0, code="0", flags="DC"),
        # a client-side abort never reaches the server
        series("reviews-v2", "ratings-v1", 1.0, reporter="source", code="503", flags="FI"),
        both("reviews-v2", "ratings-v1", 4.0),
        # a caller outside the mesh: only the server reports
        series("unknown", "productpage-v1", 5.0),
    )
    g = golden_signals(rates)
    golden = {(r[s.SOURCE_WORKLOAD], r[s.DESTINATION_SERVICE].split(".")[0]): r for _, r in g.iterrows()}
    graph = build_graph(rates, "workload", inject_service_nodes=False)
    drawn = {(graph.nodes[a][A.WORKLOAD], graph.nodes[b][A.APP]): d for a, b, d in graph.edges(data=True)}
    assert set(golden) == set(drawn)
    for key, row in golden.items():
        d = drawn[key]
        assert row["request_rate"] == pytest.approx(d[A.RATE]), key
        assert row["error_5xx_ratio"] + row["error_4xx_ratio"] == pytest.approx(d[A.ERROR_RATE]), key
    assert golden[("productpage-v1", "reviews")]["request_rate"] == pytest.approx(5.0)  # not 10: once, not twice
    assert golden[("reviews-v2", "ratings")]["error_5xx_ratio"] == pytest.approx(0.2)  # the abort the server never saw
    assert golden[("unknown", "productpage")]["request_rate"] == pytest.approx(5.0)
