"""Burn-rate math checked against the Sloth and Pyrra test vectors in slo-alerting.md §1-§3."""
import math

import pytest

from diagnose.slo.windows import (
    DAY, HOUR, MINUTE, budget_factor, burn_rate, error_budget, format_duration, google_windows, parse_duration,
    pyrra_windows, windows_from_budget,
)


def rel(x):
    return pytest.approx(x, rel=1e-9)


def test_budget_and_burn_rate():
    assert error_budget(99.9) == rel(0.001)
    assert burn_rate(0.0144, 99.9) == rel(14.4)
    assert burn_rate(0.001, 99.9) == rel(1.0)
    assert math.isinf(burn_rate(0.1, 100.0))


@pytest.mark.parametrize("period,expected", [
    ("30d", (14.4, 6, 3, 1)),
    ("28d", (13.44, 5.6000000000000005, 2.8000000000000003, 0.9333333333333333)),  # Sloth alert_test.go
])
def test_google_windows_match_sloth_factors(period, expected):
    ws = google_windows(parse_duration(period))
    assert [w.factor for w in ws] == [rel(x) for x in expected]
    assert [(w.severity, w.long_s, w.short_s) for w in ws] == [
        ("page", HOUR, 5 * MINUTE), ("page", 6 * HOUR, 30 * MINUTE),
        ("ticket", DAY, 2 * HOUR), ("ticket", 3 * DAY, 6 * HOUR)]


def test_sloth_7d_custom_catalog():
    ws = windows_from_budget(7 * DAY, (("page", 8, 5 * MINUTE, HOUR), ("page", 12.5, 30 * MINUTE, 6 * HOUR),
                                       ("ticket", 20, 2 * HOUR, DAY), ("ticket", 42, 6 * HOUR, 3 * DAY)))
    assert [w.factor for w in ws] == [rel(13.44), rel(3.5), rel(1.4000000000000001), rel(0.98)]


def test_sloth_base_vector_thresholds_for_99_9():
    """in-base.yaml slo1: 99.9 over 30d -> 0.0144, 0.006, 0.003, 0.001 for both windows of each pair."""
    ws = google_windows(30 * DAY)
    assert [w.threshold(99.9) for w in ws] == [rel(0.0144), rel(0.006), rel(0.003), rel(0.001)]
    page = ws[0]
    assert page.fires(0.0145, 0.02, 99.9) and not page.fires(0.0145, 0.0143, 99.9)
    at = page.threshold(99.9)  # 14.4 * 0.0009999999999999432, Sloth's float budget
    assert not page.fires(at, at, 99.9)  # strictly greater, as the generated `>` rule


def test_factor_is_budget_share_times_period_over_long_window():
    for pct, long_s, k in ((2, HOUR, 14.4), (5, 6 * HOUR, 6), (10, DAY, 3), (10, 3 * DAY, 1)):
        assert budget_factor(pct, 30 * DAY, long_s) == rel(k)


def test_other_periods_scale_the_windows_and_keep_the_factors():
    ws = google_windows(parse_duration("1d"))
    assert [w.factor for w in ws] == [rel(14.4), rel(6), rel(3), rel(1)]
    assert [(format_duration(w.long_s), format_duration(w.short_s)) for w in ws] == [
        ("2m", "10s"), ("12m", "1m"), ("48m", "4m"), ("2h24m", "12m")]
    # the share of budget each alert spends before firing is unchanged
    assert [w.budget_percent for w in ws] == [2, 5, 10, 10]


def test_pyrra_windows_28d_exact():
    ws = pyrra_windows(28 * DAY)
    assert [(w.severity, format_duration(w.long_s), format_duration(w.short_s), format_duration(w.for_s), w.factor)
            for w in ws] == [("critical", "1h", "5m", "2m", 14), ("critical", "6h", "30m", "15m", 7),
                             ("warning", "1d", "2h", "1h", 2), ("warning", "4d", "6h", "3h", 1)]


@pytest.mark.parametrize("target,expected", [(99.0, (0.14, 0.07, 0.02, 0.01)), (99.5, (0.07, 0.035, 0.01, 0.005))])
def test_pyrra_thresholds(target, expected):
    """Pyrra rules_test http-ratio (0.99) and http-latency (0.995) thresholds."""
    assert [w.threshold(target) for w in pyrra_windows(28 * DAY)] == [pytest.approx(x) for x in expected]


def test_pyrra_30d_windows_derived():
    ws = pyrra_windows(30 * DAY)
    assert [(format_duration(w.long_s), format_duration(w.short_s), format_duration(w.for_s)) for w in ws] == [
        ("1h4m", "5m", "2m"), ("6h26m", "32m", "16m"), ("1d1h43m", "2h9m", "1h4m"), ("4d6h51m", "6h26m", "3h13m")]


@pytest.mark.parametrize("text,seconds", [("30d", 30 * DAY), ("1h30m", 5400), ("90s", 90), ("4w", 28 * DAY),
                                          (120, 120), ("500ms", 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "30", "1x", "-5m", "0s", "d30", 0])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_budget_series_is_in_time_order_across_the_rings_wrap() -> None:
    """`SliHistory.series` walks the ring from its oldest slot (no sort): cumulative counts in time order, after
    the ring wrapped, with buckets older than the span and in the future of `now` left out."""
    import numpy as np

    from diagnose.slo.history import SliHistory

    h = SliHistory(span_s=100.0, resolution_s=10.0)  # 10 slots
    t0 = 1_000_000.0
    h.add(t0 + np.arange(0.0, 150.0, 10.0), 1.0, 0.0)  # 15 buckets: the first 5 overwritten
    h.add(np.array([t0 + 145.0]), 0.0, 1.0)
    got = h.series(t0 + 140.0, points=100)  # the newest bucket (t0 + 140) counts; nothing after it
    assert [t for t, _, _ in got] == [t0 + 10.0 * (k + 1) for k in range(5, 15)]
    assert [tot for _, tot, _ in got] == [float(k) for k in range(1, 11)]
    assert got[-1][2] == 1.0 and all(bad == 0.0 for _, _, bad in got[:-1])
    assert [t for t, _, _ in h.series(t0 + 125.0, points=100)][-1] == t0 + 130.0  # later buckets left out
