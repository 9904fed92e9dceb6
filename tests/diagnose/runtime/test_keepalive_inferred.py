"""503 UC connection_termination: keep-alive race vs mTLS break; and causes inferred from metrics alone."""
from __future__ import annotations

import pandas as pd
import pytest

from collector import schema as s
from diagnose.correlate import correlate
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from tests.diagnose.runtime.tables import T0, fqdn, requests, table
from tests.diagnose.runtime.test_correlate import snapshot

END = T0 + 30


def run(df=None, snap=None, rates=None):
    return analyze_runtime(RuntimeContext(start=T0, end=END, requests=df, rates=rates, snapshot=snap))


def codes(findings):
    return sorted({f.code for f in findings})


def uc(n, reporter="source", source="productpage-v1", dst="reviews"):
    return requests(source, fqdn(dst), "mtls_plaintext", n, reporter=reporter) if reporter == "source" else \
        _server_uc(source, dst, n)


def _server_uc(source, dst, n):
    df = requests(source, fqdn(dst), "ok", n, reporter="destination")
    df[s.RESPONSE_CODE] = 503
    df[s.RESPONSE_FLAGS] = "UC"
    df[s.RESPONSE_CODE_DETAILS] = "upstream_reset_before_response_started{connection_termination}"
    df[s.UPSTREAM_CLUSTER] = "inbound|9080||"
    return df


@pytest.mark.parametrize("reporter", ["source", "destination"])
def test_uc_connection_termination_without_mtls_evidence_is_the_keepalive_race_not_ms3001(reporter):
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 200), uc(6, reporter))
    found = run(df, snapshot())  # healthy config: no STRICT + DISABLE conflict, no server TLS errors
    assert "MS3001" not in codes(found)
    ka = [f for f in found if f.code == "MS3040"]
    assert len(ka) == 1 and ka[0].resource.name == "reviews"
    assert ka[0].evidence["count"] == 6 and ka[0].evidence["evidence_source"] == "seen in access logs"
    assert "idleTimeout" in ka[0].remediation and "reset" in ka[0].remediation
    assert "productpage-v1" in ka[0].message


@pytest.mark.parametrize("evidence", ["config", "server_tls_errors"])
def test_with_mtls_evidence_the_same_rows_are_ms3001_and_not_the_race(evidence):
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 100), uc(30))
    snap = snapshot("mtls") if evidence == "config" else snapshot()
    if evidence == "server_tls_errors":
        df = table(df, requests("unknown", fqdn("reviews"), "listener_tls", 5, reporter="destination"))
    found = run(df, snap)
    assert "MS3001" in codes(found) and "MS3040" not in codes(found)
    f = next(f for f in found if f.code == "MS3001")
    assert ("config_conflict" in f.evidence) == (evidence == "config")
    assert ("server_tls_errors" in f.evidence) == (evidence == "server_tls_errors")


def test_a_single_reset_is_noise():
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 100), uc(1))
    assert "MS3040" not in codes(run(df, snapshot()))


@pytest.mark.parametrize("reporter", ["source", "destination"])
@pytest.mark.parametrize("n", [2, 6])
def test_resets_in_one_burst_are_a_drain_not_the_race(reporter, n):
    """A config push that changes a server's listener drains its connections: the callers' pooled ones are reset
    at once (the eval saw 2 of 72 right after an AuthorizationPolicy). The race recurs; a burst is not it."""
    burst = uc(n, reporter)
    at = burst[s.START_TIME].iloc[0] + pd.Timedelta(seconds=20)
    burst[s.START_TIME] = [at + pd.Timedelta(milliseconds=50 * i) for i in range(n)]
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 200), burst)
    assert "MS3040" not in codes(run(df, snapshot()))
    spread = uc(n, reporter)  # the same resets over the window: the race
    assert "MS3040" in codes(run(table(requests("productpage-v1", fqdn("reviews"), "ok", 200), spread), snapshot()))


def test_keepalive_race_points_at_the_destination_rule_pool_settings():
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 100), uc(5, "destination"))
    snap = snapshot("breaker")  # a DestinationRule with connectionPool.http for reviews
    f = next(x for x in correlate(run(df, snap), [], snap) if x.code == "MS3040")
    assert (f.resource.kind, f.resource.name, f.resource.path) == \
        ("DestinationRule", "reviews-cb", "spec/trafficPolicy/connectionPool/http")


def _rates(rows):
    base = {lbl: "unknown" for lbl in s.ISTIO_LABELS}
    out = []
    for reporter, src, dst, dst_wl, code, flags, rate in rows:
        r = dict(base)
        r.update({s.REPORTER: reporter, s.SOURCE_WORKLOAD: src, s.SOURCE_WORKLOAD_NAMESPACE: "bookinfo",
                  s.DESTINATION_SERVICE: fqdn(dst), s.DESTINATION_WORKLOAD: dst_wl, s.RESPONSE_CODE: code,
                  s.RESPONSE_FLAGS: flags, s.METRIC: s.ISTIO_REQUESTS_TOTAL, s.LE: float("nan"), s.RATE: rate})
        out.append(r)
    return pd.DataFrame(out)


@pytest.mark.parametrize("flag", ["UC", "URX,UF"])
def test_metrics_only_mtls_mismatch_is_inferred_and_blames_the_destination_rule(flag):
    snap = snapshot("mtls")
    rates = _rates([("source", "productpage-v1", "reviews", "unknown", "503", flag, 1.0),
                    ("source", "productpage-v1", "reviews", "reviews-v1", "200", "-", 1.0)])
    found = run(rates=rates, snap=snap)
    assert codes(found) == ["MS3041"]  # not a generic reset / connect failure
    f = correlate(found, [], snap)[0]
    assert (f.resource.kind, f.resource.name, f.resource.path) == \
        ("DestinationRule", "reviews-plain", "spec/trafficPolicy/tls/mode")
    assert f.evidence["evidence_source"] == "inferred from metrics"
    assert "inferred from metrics" in f.message and "access logs would show" in f.evidence["confirm_with"]


def test_metrics_only_uc_without_a_conflict_stays_a_generic_reset():
    rates = _rates([("source", "productpage-v1", "reviews", "unknown", "503", "UC", 1.0)])
    assert codes(run(rates=rates, snap=snapshot())) == ["MS3015"]


def test_metrics_only_403_at_a_destination_a_policy_selects_blames_that_policy():
    snap = snapshot("rbac")
    rates = _rates([("destination", "productpage-v1", "reviews", "reviews-v1", "403", "-", 2.0),
                    ("source", "productpage-v1", "reviews", "reviews-v1", "403", "-", 2.0)])
    found = run(rates=rates, snap=snap)
    assert codes(found) == ["MS3042"]
    f = correlate(found, [], snap)[0]
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("AuthorizationPolicy", "deny-reviews", "spec/rules[0]")
    assert "productpage-v1" in f.message and f.evidence["evidence_source"] == "inferred from metrics"
    # no policy selects the destination: nothing is inferred
    assert codes(run(rates=rates, snap=snapshot())) == []


def test_inferred_rules_stay_quiet_when_access_logs_exist():
    df = table(requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 10))
    assert not {"MS3041", "MS3042"} & set(codes(run(df, snapshot("mtls", "rbac"))))


def test_server_tls_refusals_count_only_while_the_resets_happen():
    """Listener refusals that name no service are evidence for resets at the same time, not for later ones."""
    early = requests("unknown", "127.0.0.1", "listener_tls", 5, reporter="destination", start=T0, end=T0 + 5)
    late = requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 4, start=T0 + 20, end=T0 + 30)
    found = codes(run(table(requests("productpage-v1", fqdn("reviews"), "ok", 50), early, late), snapshot()))
    assert "MS3001" not in found and "MS3040" in found
    during = requests("unknown", "127.0.0.1", "listener_tls", 5, reporter="destination", start=T0 + 20, end=T0 + 30)
    found = codes(run(table(requests("productpage-v1", fqdn("reviews"), "ok", 50), during, late), snapshot()))
    assert "MS3001" in found and "MS3040" not in found
