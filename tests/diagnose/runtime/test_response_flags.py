"""Response flags map to causes: one finding per hurt service, with evidence and impact from the table."""
import pandas as pd
import pytest

from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from tests.diagnose.runtime.tables import T0, fqdn, requests, table

END = T0 + 30


def run(df, **opts):
    return analyze_runtime(RuntimeContext(start=T0, end=END, requests=df, options=opts))


def by_code(findings):
    return {f.code: f for f in findings}


@pytest.mark.parametrize("outcome,code,flag", [
    ("mtls_plaintext", "MS3001", "UC"),
    ("san_mismatch", "MS3002", "UF"),
    ("refused", "MS3003", "URX"),
    ("no_endpoints", "MS3004", "UH"),
    ("no_route", "MS3005", "NR"),
    ("no_cluster", "MS3006", "NC"),
    ("overflow", "MS3007", "UO"),
    ("timeout", "MS3008", "UT"),
    ("fault_abort", "MS3010", "FI"),
    ("fault_delay", "MS3011", "DI"),
])
def test_each_flag_maps_to_its_cause(outcome, code, flag):
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 60),
               requests("productpage-v1", fqdn("reviews"), outcome, 30),
               requests("productpage-v1", fqdn("details"), "ok", 90))
    if code == "MS3001":  # the flag alone is also the keep-alive race: MS3001 needs the server's TLS refusals too
        df = table(df, requests("unknown", fqdn("reviews"), "listener_tls", 5, reporter="destination"))
    found = by_code(run(df))
    assert code in found, f"{outcome}: got {sorted(found)}"
    f = found[code]
    assert f.resource.kind == "Service" and f.resource.name == "reviews" and f.resource.namespace == "bookinfo"
    assert f.evidence["response_flags"][flag] == 30
    assert f.evidence["count"] == 30 and f.evidence["total"] == 90
    assert f.evidence["edges"][0]["source_workload"] == "productpage-v1"
    assert len(f.evidence["sample_trace_ids"]) == 5
    tr = f.evidence["time_range"]
    assert pd.Timestamp(tr["start"]) >= pd.Timestamp(T0, unit="s", tz="UTC") and tr["start"] < tr["end"]
    assert f.impact["rps"] == pytest.approx(1.0)
    assert f.impact["share"] == pytest.approx(30 / 90, abs=1e-3)
    # details travel as evidence when the access log had them
    assert f.evidence["response_code_details"]
    # the healthy service is not blamed
    assert all(x.resource.name != "details" for x in run(df))


def test_tls_and_plain_connect_failures_are_told_apart():
    df = table(requests("productpage-v1", fqdn("reviews"), "san_mismatch", 10),
               requests("productpage-v1", fqdn("ratings"), "refused", 10))
    found = {(f.code, f.resource.name): f for f in run(df)}
    assert ("MS3002", "reviews") in found and ("MS3003", "ratings") in found
    assert ("MS3002", "ratings") not in found and ("MS3003", "reviews") not in found
    assert "CERTIFICATE_VERIFY_FAILED" in found[("MS3002", "reviews")].message
    assert "SAN" in found[("MS3002", "reviews")].message
    assert "Connection refused" in found[("MS3003", "ratings")].message


def test_mtls_mismatch_collects_the_server_listener_tls_errors():
    df = table(requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 12),
               requests("unknown", fqdn("reviews"), "listener_tls", 12, reporter="destination"))
    f = by_code(run(df))["MS3001"]
    assert f.evidence["server_tls_errors"] == 12
    # the server-side NR of the listener log is not mistaken for a client-side no-route
    assert "MS3005" not in by_code(run(df))


def test_one_finding_per_service_lists_every_hurt_caller():
    df = table(requests("reviews-v2", fqdn("ratings"), "no_cluster", 20),
               requests("reviews-v3", fqdn("ratings"), "no_cluster", 10),
               requests("reviews-v3", fqdn("ratings"), "ok", 10))
    found = [f for f in run(df) if f.code == "MS3006"]
    assert len(found) == 1
    edges = {e["source_workload"]: e for e in found[0].evidence["edges"]}
    assert set(edges) == {"reviews-v2", "reviews-v3"}
    assert edges["reviews-v3"]["share"] == pytest.approx(0.5)
    assert edges["reviews-v2"]["share"] == pytest.approx(1.0)
    assert "reviews-v2" in found[0].message and "ratings.bookinfo.svc.cluster.local" in found[0].message


def test_downstream_disconnect_is_read_on_the_server_side():
    df = table(requests("productpage-v1", fqdn("reviews"), "disconnect", 4, reporter="destination"),
               requests("productpage-v1", fqdn("reviews"), "ok", 4, reporter="destination"))
    f = by_code(run(df))["MS3009"]
    assert f.severity == "info" and f.evidence["reporter"] == "destination" and f.evidence["count"] == 4


def test_healthy_traffic_has_no_findings():
    df = table(requests("productpage-v1", fqdn("reviews"), "ok", 500),
               requests("reviews-v2", fqdn("ratings"), "ok", 200))
    assert run(df) == []


def test_empty_or_missing_tables_give_no_findings():
    assert run(None) == []
    assert run(requests("a", fqdn("b"), "ok", 0)) == []


def test_rate_frame_gives_the_same_causes_without_access_logs():
    """A real cluster's Prometheus gives only rates: counts are rate x window, flags still map."""
    from collector import schema as s
    base = {lbl: "unknown" for lbl in s.ISTIO_LABELS}
    rows = []
    for flags, code, rate in (("-", "200", 2.0), ("NC", "503", 1.0)):
        r = dict(base)
        r.update({s.REPORTER: "source", s.SOURCE_WORKLOAD: "productpage-v1", s.SOURCE_WORKLOAD_NAMESPACE: "bookinfo",
                  s.DESTINATION_SERVICE: fqdn("reviews"), s.RESPONSE_CODE: code, s.RESPONSE_FLAGS: flags,
                  s.METRIC: s.ISTIO_REQUESTS_TOTAL, s.LE: float("nan"), s.RATE: rate})
        rows.append(r)
    rates = pd.DataFrame(rows)
    found = by_code(analyze_runtime(RuntimeContext(start=T0, end=END, rates=rates)))
    f = found["MS3006"]
    assert f.evidence["count"] == 30 and f.evidence["total"] == 90
    assert f.impact["rps"] == pytest.approx(1.0) and f.impact["share"] == pytest.approx(1 / 3, abs=1e-3)


def test_unattributed_client_lines_are_named_after_their_log_file():
    """The tailer was given bare paths: the bundled mesh's `<ns>.<workload>.log` layout names the caller."""
    from collector import schema as s
    df = requests("productpage-v1", fqdn("reviews"), "no_cluster", 10)
    df[s.SOURCE_WORKLOAD] = "unknown"
    df[s.SOURCE_WORKLOAD_NAMESPACE] = "unknown"
    df[s.LOG_SOURCE] = "/tmp/x/logs/bookinfo.productpage-v1.log"
    f = by_code(run(df))["MS3006"]
    assert f.evidence["edges"][0]["source"] == "bookinfo/productpage-v1"


@pytest.mark.parametrize("authority", ["ratings:9080", "ratings", "ratings.bookinfo.svc.cluster.local:9080"])
def test_a_request_named_by_its_authority_is_filed_under_the_service_it_asked_for(authority):
    """Istio names a request that reached no cluster (NC) by its Host header, port included: with the
    logged requests and with the rate frame alike, the finding names the service FQDN in the caller's namespace."""
    from collector import schema as s
    df = requests("reviews-v2", fqdn("ratings"), "no_cluster", 20)
    df[s.DESTINATION_SERVICE], df[s.AUTHORITY], df[s.UPSTREAM_CLUSTER] = authority, authority, ""
    base = {lbl: "unknown" for lbl in s.ISTIO_LABELS}
    base.update({s.REPORTER: "source", s.SOURCE_WORKLOAD: "reviews-v2", s.SOURCE_WORKLOAD_NAMESPACE: "bookinfo",
                 s.DESTINATION_SERVICE: authority, s.RESPONSE_CODE: "503", s.RESPONSE_FLAGS: "NC",
                 s.METRIC: s.ISTIO_REQUESTS_TOTAL, s.LE: float("nan"), s.RATE: 1.0})
    for found in (run(df), analyze_runtime(RuntimeContext(start=T0, end=END, rates=pd.DataFrame([base])))):
        nc = [f for f in found if f.code == "MS3006"]
        assert len(nc) == 1 and "ratings.bookinfo.svc.cluster.local" in nc[0].message, [f.message for f in found]
        assert "9080" not in nc[0].message
