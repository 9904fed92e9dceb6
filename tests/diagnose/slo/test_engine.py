"""SLO evaluation from real-shaped request tables: burn rates per window, alerts, budget, findings."""
import numpy as np
import pandas as pd
import pytest

from collector import schema as s
from diagnose.rules.runtime import RuntimeContext
from diagnose.slo import SLO, SliHistory, SloEngine, load_slo_text
from diagnose.slo.windows import DAY, HOUR, MINUTE, parse_duration
from tests.diagnose.runtime.tables import T0, fqdn, requests, table


def test_history_counts_windows_and_drops_old_buckets():
    h = SliHistory(span_s=100, resolution_s=1)
    h.add(np.array([T0, T0 + 1, T0 + 50]), 1.0, np.array([1.0, 0.0, 1.0]))
    assert h.counts(10, T0 + 50) == (1.0, 1.0)
    assert h.counts(60, T0 + 50) == (3.0, 2.0)
    assert h.ratio(60, T0 + 50) == (pytest.approx(2 / 3), 3.0)
    h.add(np.array([T0 + 120]), 5.0, 0.0)  # wraps the ring: T0 and T0+1 fall out of the 100 s span
    assert h.counts(200, T0 + 120) == (6.0, 1.0)
    assert h.ratio(5, T0 + 10) == (0.0, 0.0)  # no events: ratio 0


def test_history_resolution_is_bounded_for_long_periods():
    h = SliHistory(span_s=365 * DAY, resolution_s=1)
    assert h.n == 100_000 and h.resolution_s == pytest.approx(365 * DAY / 100_000)


def feed(engine, df, now):
    engine.ingest_requests(RuntimeContext(start=now - 60, end=now, requests=df).edge_requests, now)


def test_outage_fires_page_with_windows_and_burning_edges_as_evidence():
    slo = SLO(name="reviews-availability", namespace="bookinfo", service=fqdn("reviews"), objective=99.9,
              period_s=parse_duration("1d"))
    eng = SloEngine([slo])
    # 10 minutes of clean traffic, then 30 s where reviews-v2's calls to reviews... (productpage's) fail
    feed(eng, requests("productpage-v1", fqdn("reviews"), "ok", 600, start=T0, end=T0 + 600), T0 + 600)
    st = eng.status(T0 + 600)[0]
    assert st.state == "ok" and st.budget_remaining == pytest.approx(1.0) and st.requests == 600
    bad = table(requests("productpage-v1", fqdn("reviews"), "no_cluster", 20, start=T0 + 600, end=T0 + 630),
                requests("productpage-v1", fqdn("reviews"), "ok", 10, start=T0 + 600, end=T0 + 630),
                requests("productpage-v1", fqdn("details"), "5xx", 30, start=T0 + 600, end=T0 + 630))
    feed(eng, bad, T0 + 630)
    st = eng.status(T0 + 630)[0]
    # 1d period: page pairs are 2m/10s and 12m/1m
    assert st.burn_rates["10s"] == pytest.approx((20 / 30 * 10 / 10) / 0.001, rel=0.25)
    assert st.state == "page"
    page = st.alerts[0]
    assert page.firing and page.threshold == pytest.approx(0.0144)
    assert st.error_ratio == pytest.approx(20 / 630)
    # the day's budget is spent from the 630 s observed, not as if the whole day had failed like this
    assert st.observed_share == pytest.approx(st.history_s / 86400) and 600 < st.history_s <= 631
    assert st.budget_consumed == pytest.approx((20 / 630) / 0.001 * st.observed_share)
    assert st.budget_remaining == pytest.approx(1 - st.budget_consumed) and 0 < st.budget_remaining < 1
    d = st.to_dict()
    assert d["state"] == "page" and d["windows"][0]["long_window"] == "2m" and d["windows"][0]["short_window"] == "10s"
    assert d["edges"][0]["source_workload"] == "productpage-v1" and d["edges"][0]["bad"] == 20
    assert d["budget_series"] and d["budget_series"][-1][1] == pytest.approx(st.budget_remaining)
    codes = {f.code: f for f in eng.findings(T0 + 630)}
    assert set(codes) == {"MS4001"}  # paging; a quarter of the day's budget is gone, not all of it
    f = codes["MS4001"]
    assert f.category == "slo" and f.resource.kind == "ServiceLevelObjective" and f.resource.name == "reviews-availability"
    assert f.related[0].name == "reviews"
    assert f.evidence["alert"]["firing"] and f.evidence["edges"][0]["source_workload"] == "productpage-v1"
    assert "2m/10s" in f.message or "12m/1m" in f.message


def test_recovery_resets_the_page_through_the_short_window():
    slo = SLO(name="r", namespace="bookinfo", service=fqdn("reviews"), objective=99.0, period_s=parse_duration("1d"))
    eng = SloEngine([slo])
    feed(eng, requests("productpage-v1", fqdn("reviews"), "no_cluster", 30, start=T0, end=T0 + 30), T0 + 30)
    assert eng.status(T0 + 30)[0].state == "page"
    feed(eng, requests("productpage-v1", fqdn("reviews"), "ok", 300, start=T0 + 30, end=T0 + 90), T0 + 90)
    st = eng.status(T0 + 90)[0]
    assert st.alerts[0].short_error_ratio == 0.0 and st.state != "page"


def test_latency_slo_counts_slow_requests():
    slo = SLO(name="lat", namespace="bookinfo", service=fqdn("reviews"), objective=99.0, sli="latency",
              threshold_ms=250, period_s=HOUR * 24)
    eng = SloEngine([slo])
    feed(eng, table(requests("productpage-v1", fqdn("reviews"), "ok", 90, duration_ms=20),
                    requests("productpage-v1", fqdn("reviews"), "ok", 10, duration_ms=400)), T0 + 30)
    st = eng.status(T0 + 30)[0]
    assert st.error_ratio == pytest.approx(0.1) and st.state == "page"


def test_reporter_side_is_respected_with_fallback():
    dst_only = requests("productpage-v1", fqdn("reviews"), "ok", 10, reporter="destination")
    slo = SLO(name="x", namespace="bookinfo", service=fqdn("reviews"), objective=99.0, reporter="source")
    eng = SloEngine([slo])
    feed(eng, dst_only, T0 + 30)
    assert eng.status(T0 + 30)[0].requests == 10  # only the server reports it: its view is used
    both = table(requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 10),
                 requests("productpage-v1", fqdn("reviews"), "ok", 5, reporter="destination"))
    eng2 = SloEngine([slo])
    feed(eng2, both, T0 + 30)
    st = eng2.status(T0 + 30)[0]
    assert st.requests == 10 and st.error_ratio == 1.0  # the callers saw resets the server never logged


def test_rate_frame_feeds_availability_and_latency():
    base = {lbl: "unknown" for lbl in s.ISTIO_LABELS}

    def row(metric, code="200", le=float("nan"), rate=1.0):
        r = dict(base)
        r.update({s.REPORTER: "source", s.SOURCE_WORKLOAD: "productpage-v1", s.SOURCE_WORKLOAD_NAMESPACE: "bookinfo",
                  s.DESTINATION_SERVICE: fqdn("reviews"), s.RESPONSE_CODE: code, s.METRIC: metric, s.LE: le,
                  s.RATE: rate})
        return r
    b = s.ISTIO_REQUEST_DURATION_MS + "_bucket"
    rates = pd.DataFrame([row(s.ISTIO_REQUESTS_TOTAL, "200", rate=9.0), row(s.ISTIO_REQUESTS_TOTAL, "503", rate=1.0),
                          row(b, le=100.0, rate=7.0), row(b, le=250.0, rate=8.0), row(b, le=float("inf"), rate=10.0)])
    avail = SLO(name="a", namespace="bookinfo", service=fqdn("reviews"), objective=99.0)
    lat = SLO(name="l", namespace="bookinfo", service=fqdn("reviews"), objective=99.0, sli="latency", threshold_ms=300)
    eng = SloEngine([avail, lat])
    eng.ingest_rates(rates, 10.0, T0)
    st = {x.slo.name: x for x in eng.status(T0)}
    assert st["a"].requests == pytest.approx(100) and st["a"].error_ratio == pytest.approx(0.1)
    assert st["l"].error_ratio == pytest.approx(0.2)  # 300 ms is not a bucket bound: 250 ms bucket used


def test_set_slos_keeps_history_of_unchanged_slos_and_drops_removed():
    text = """apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: r, namespace: bookinfo}
spec: {service: reviews, objective: 99, period: 1d}
"""
    slo = load_slo_text(text, "a.yaml").slos[0]
    eng = SloEngine([slo])
    feed(eng, requests("productpage-v1", fqdn("reviews"), "ok", 10), T0 + 30)
    eng.set_slos(load_slo_text(text.replace("99,", "99.5,"), "a.yaml").slos)
    st = eng.status(T0 + 30)[0]
    assert st.slo.objective == 99.5 and st.requests == 10
    eng.set_slos([])
    assert eng.status(T0 + 30) == []


def test_exhausted_budget_is_a_finding_only_while_it_burns_and_never_below_minus_100():
    """A 3-minute total outage spends a 99 %/1h budget several times over; once the errors stop the finding
    resolves (as multiwindow alerts do) while the SLO still states the budget as exhausted."""
    slo = SLO(name="r", namespace="bookinfo", service=fqdn("reviews"), objective=99.0, period_s=HOUR)
    eng = SloEngine([slo])
    feed(eng, requests("productpage-v1", fqdn("reviews"), "ok", 600, start=T0, end=T0 + 600), T0 + 600)
    feed(eng, requests("productpage-v1", fqdn("reviews"), "no_cluster", 180, start=T0 + 600, end=T0 + 780), T0 + 780)
    st = eng.status(T0 + 780)[0]
    assert st.budget_consumed > 1 and st.budget_remaining == -1.0
    assert min(p[1] for p in st.to_dict()["budget_series"]) >= -1.0
    assert "MS4003" in {f.code for f in eng.findings(T0 + 780)}
    feed(eng, requests("productpage-v1", fqdn("reviews"), "ok", 600, start=T0 + 780, end=T0 + 1380), T0 + 1380)
    st = eng.status(T0 + 1380)[0]
    assert st.budget_remaining == -1.0 and not st.burning
    assert not {f.code for f in eng.findings(T0 + 1380)} & {"MS4001", "MS4003"}


def test_history_and_alert_state_survive_a_restart_without_counting_twice(tmp_path):
    slo = SLO(name="r", namespace="bookinfo", service=fqdn("reviews"), objective=99.0, period_s=HOUR)
    eng = SloEngine([slo])
    eng.persist_to(tmp_path)
    feed(eng, requests("productpage-v1", fqdn("reviews"), "ok", 300, start=T0, end=T0 + 300), T0 + 300)
    feed(eng, requests("productpage-v1", fqdn("reviews"), "no_cluster", 30, start=T0 + 300, end=T0 + 330), T0 + 330)
    before = eng.status(T0 + 330)[0]
    eng.save()  # what the loop does every few seconds (and a kill -9 loses at most that much)
    again = SloEngine([slo])
    again.persist_to(tmp_path)
    after = again.status(T0 + 330)[0]
    assert (after.requests, after.state, after.budget_remaining) == (before.requests, "page", before.budget_remaining)
    # the restarted loop re-reads its first window: events already saved are not added again
    feed(again, requests("productpage-v1", fqdn("reviews"), "no_cluster", 30, start=T0 + 300, end=T0 + 330), T0 + 330)
    assert again.status(T0 + 330)[0].requests == before.requests
    changed = SLO(name="r", namespace="bookinfo", service=fqdn("ratings"), objective=99.0, period_s=HOUR)
    other = SloEngine([changed])
    other.persist_to(tmp_path)  # same name, another service: the saved events are not its own
    assert other.status(T0 + 330)[0].requests == 0
    (tmp_path / next(p.name for p in tmp_path.iterdir())).write_bytes(b"garbage")
    broken = SloEngine([slo])
    broken.persist_to(tmp_path)  # a damaged file is skipped with a warning, not a crash
    assert broken.status(T0 + 330)[0].requests == 0
