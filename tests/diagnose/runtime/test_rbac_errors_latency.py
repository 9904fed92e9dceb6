"""RBAC denials, plain 5xx error rates and latency anomalies from real-shaped tables."""
import pytest

from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from diagnose.rules.runtime.rbac import denied_by
from tests.diagnose.runtime.tables import T0, fqdn, requests, table

END = T0 + 30


def run(df, baseline=None):
    return analyze_runtime(RuntimeContext(start=T0, end=END, requests=df, latency_baseline=baseline))


def test_rbac_details_name_the_policy():
    assert denied_by("rbac_access_denied_matched_policy[ns[bookinfo]-policy[deny-reviews]-rule[0]]") == \
        ("bookinfo", "deny-reviews", 0)
    assert denied_by("rbac_access_denied_matched_policy[none]") == (None, None, None)


def test_rbac_denial_finding_names_the_policy_from_server_side_details():
    df = table(requests("productpage-v1", fqdn("reviews"), "rbac_deny", 20, reporter="destination"),
               requests("productpage-v1", fqdn("reviews"), "ok", 20, reporter="destination"),
               # the client only sees a plain 403 via_upstream: not an RBAC finding on its own
               requests("productpage-v1", fqdn("reviews"), "ok", 40))
    found = [f for f in run(df) if f.code == "MS3012"]
    assert len(found) == 1
    f = found[0]
    assert f.category == "security"
    assert f.evidence["policies"] == [{"namespace": "bookinfo", "name": "deny-reviews", "rule": 0}]
    assert "AuthorizationPolicy bookinfo/deny-reviews" in f.message
    assert f.impact["share"] == pytest.approx(0.5)
    # the server knows the caller only by its identity; without client-side 403s that is what is named
    assert f.evidence["edges"][0]["source_workload"] == "sa:productpage-v1"


def test_rbac_denial_names_the_calling_workloads_from_their_plain_403s():
    from tests.diagnose.runtime.tables import OUTCOMES
    df = table(requests("reviews-v2", fqdn("ratings"), "rbac_deny", 10, reporter="destination"),
               requests("reviews-v2", fqdn("ratings"), "ok", 10))
    df.loc[df.index[10:], "response_code"] = 403  # the client's view: 403 via_upstream
    f = next(f for f in run(df) if f.code == "MS3012")
    assert f.message.startswith("bookinfo/reviews-v2 -> ratings")
    assert f.evidence["client_edges"][0]["source_workload"] == "reviews-v2"


def test_rbac_without_allow_match_says_so():
    df = requests("ratings-v1", fqdn("reviews"), "rbac_no_allow", 5, reporter="destination")
    f = next(f for f in run(df) if f.code == "MS3012")
    assert "no ALLOW policy" in f.message and f.evidence["policies"][0]["no_allow_match"]


@pytest.mark.parametrize("errors,expected", [(0, None), (2, None), (5, "warning"), (30, "error")])
def test_plain_5xx_error_rate_thresholds(errors, expected):
    df = table(requests("productpage-v1", fqdn("details"), "ok", 200 - errors),
               requests("productpage-v1", fqdn("details"), "5xx", errors) if errors else
               requests("productpage-v1", fqdn("details"), "ok", 0))
    found = [f for f in run(df) if f.code == "MS3013"]
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].severity == expected
        assert found[0].evidence["error_pct"] == pytest.approx(100 * errors / 200)
        assert found[0].evidence["response_codes"] == {"500": errors}


def test_flagged_5xx_are_not_counted_again_as_plain_errors():
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 50),
               requests("productpage-v1", fqdn("reviews"), "no_cluster", 50))
    codes = {f.code for f in run(df)}
    assert "MS3006" in codes and "MS3013" not in codes


def test_latency_regression_within_one_window_is_found_against_the_older_part():
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 100, start=T0, end=T0 + 20, duration_ms=8),
               requests("productpage-v1", fqdn("reviews"), "ok", 50, start=T0 + 20, end=END, duration_ms=400),
               requests("productpage-v1", fqdn("details"), "ok", 150, start=T0, end=END, duration_ms=8))
    found = [f for f in run(df) if f.code == "MS3014"]
    assert [f.resource.name for f in found] == ["reviews"]
    f = found[0]
    assert f.evidence["p95_ms"] == pytest.approx(400) and f.evidence["baseline_p95_ms"] == pytest.approx(8)
    assert f.evidence["count"] == 50 and len(f.evidence["sample_trace_ids"]) == 5
    assert "400 ms" in f.message


def test_latency_uses_the_live_baseline_when_given():
    df = requests("productpage-v1", fqdn("reviews"), "ok", 60, duration_ms=120)
    assert [f for f in run(df, baseline={fqdn("reviews"): 100.0}) if f.code == "MS3014"] == []
    hot = [f for f in run(df, baseline={fqdn("reviews"): 10.0}) if f.code == "MS3014"]
    assert len(hot) == 1 and hot[0].evidence["baseline_p95_ms"] == 10.0


def test_latency_above_the_absolute_bound_without_history():
    df = requests("productpage-v1", fqdn("reviews"), "ok", 30, start=END - 5, end=END, duration_ms=2500)
    found = [f for f in run(df) if f.code == "MS3014"]
    assert len(found) == 1 and "bound" in found[0].message


def test_latency_from_histogram_bucket_rates_against_the_baseline():
    """Prometheus gives only bucket rates: p95 by histogram_quantile, compared with the live baseline."""
    import pandas as pd
    from collector import schema as s
    base = {lbl: "unknown" for lbl in s.ISTIO_LABELS}
    rows = []
    # 10 req/s; 20 % above 250 ms -> p95 inside the (250, 500] bucket
    for le, rate in ((5.0, 2.0), (25.0, 6.0), (250.0, 8.0), (500.0, 10.0), (float("inf"), 10.0)):
        r = dict(base)
        r.update({s.REPORTER: "source", s.SOURCE_WORKLOAD: "productpage-v1", s.SOURCE_WORKLOAD_NAMESPACE: "bookinfo",
                  s.DESTINATION_SERVICE: fqdn("details"), s.METRIC: s.ISTIO_REQUEST_DURATION_MS + "_bucket",
                  s.LE: le, s.RATE: rate})
        rows.append(r)
    rates = pd.DataFrame(rows)
    ctx = RuntimeContext(start=T0, end=END, rates=rates, latency_baseline={fqdn("details"): 20.0})
    found = [f for f in analyze_runtime(ctx) if f.code == "MS3014"]
    assert len(found) == 1
    f = found[0]
    assert f.evidence["p95_ms"] == pytest.approx(437.5)  # 250 + (9.5 - 8) / (10 - 8) * 250
    assert f.evidence["edges"][0]["source_workload"] == "productpage-v1" and f.impact["requests"] == 300
    quiet = RuntimeContext(start=T0, end=END, rates=rates, latency_baseline={fqdn("details"): 400.0})
    assert [f for f in analyze_runtime(quiet) if f.code == "MS3014"] == []
