"""Incidents: findings sharing a cause form one incident, root cause first, symptoms after, total impact."""
from diagnose import analyze
from diagnose.correlate import correlate
from diagnose.incidents import group
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from tests.diagnose.runtime.tables import T0, fqdn, requests, table
from tests.diagnose.runtime.test_correlate import snapshot


def unattributed(df):
    """A listener log line as the bundled mesh writes it: no reporter, named after the file's workload."""
    from collector import schema as s
    df = df.copy()
    df[s.REPORTER] = None
    df[s.SOURCE_WORKLOAD] = "reviews-v2"
    df[s.DESTINATION_SERVICE] = "unknown"
    return df


def findings(df, *faults):
    snap = snapshot(*faults)
    out = correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df)), analyze(snap), snap)
    for f in out:
        f.status = "open"
    return out


def test_mtls_incident_holds_its_config_finding_server_refusals_and_upstream_latency():
    df = table(
        requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 30),
        # the servers' listener logs of the refused plaintext: evidence, never a "no route" of their own
        requests("reviews-v1", fqdn("reviews"), "listener_tls", 30, reporter="destination"),
        unattributed(requests("reviews-v2", fqdn("reviews"), "listener_tls", 30, reporter="destination")),
        # productpage's own callers see it slow down and fail because its dependency fails
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 60, start=T0, end=T0 + 20, duration_ms=10),
        requests("istio-ingressgateway", fqdn("productpage"), "5xx", 30, start=T0 + 20, end=T0 + 30,
                 duration_ms=1500),
    )
    out = findings(df, "mtls")
    assert "MS3005" not in {f.code for f in out}
    incidents = group(out)
    inc = incidents[0]
    assert inc.root.code == "MS3001"
    assert (inc.cause.kind, inc.cause.name) == ("DestinationRule", "reviews-plain")
    roles = {f.code: inc.roles[f.fingerprint] for f in inc.members}
    assert roles["MS2010"] == "config"
    assert roles.get("MS3013") == "symptom" or roles.get("MS3014") == "symptom", roles
    # nothing about productpage heads an incident of its own: its failure is reviews'
    assert not [i for i in incidents if i.root.evidence.get("edge_key") == fqdn("productpage")]
    assert inc.impact["rps"] > 0 and fqdn("reviews") in inc.impact["services"]
    d = inc.to_dict()
    assert d["findings"][0]["role"] == "root" and d["cause"]["source"].startswith("bookinfo.yaml:")


def test_two_faults_at_once_are_two_incidents():
    df = table(requests("productpage-v1", fqdn("reviews"), "no_cluster", 20),
               requests("reviews-v1", fqdn("ratings"), "overflow", 20))
    incidents = group(findings(df, "subset", "breaker"))
    runtime_roots = sorted(i.root.code for i in incidents if i.root.code.startswith("MS3"))
    assert runtime_roots == ["MS3006", "MS3007"]


def test_severity_and_rank_follow_impact():
    # every request of productpage -> ratings refused vs one failed connection in a hundred to reviews
    df = table(requests("productpage-v1", fqdn("ratings"), "rbac_deny", 10, reporter="destination"),
               requests("productpage-v1", fqdn("reviews"), "refused", 1),
               requests("productpage-v1", fqdn("reviews"), "ok", 99))
    out = findings(df)
    first = group(out)[0]
    assert first.root.code == "MS3012" and first.severity == "error"
    refused = next(f for f in out if f.code == "MS3003")
    assert refused.severity == "info"


def test_ingress_404s_for_unserved_paths_are_information():
    df = table(requests("istio-ingressgateway", fqdn("productpage"), "no_route", 30),
               requests("istio-ingressgateway", fqdn("productpage"), "ok", 300))
    nr = next(f for f in findings(df) if f.code == "MS3005")
    assert nr.severity == "info" and nr.evidence["outside_traffic"]
