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


TIMEOUT_CHAIN = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - timeout: 0.5s
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
"""


def test_effects_up_a_call_chain_are_one_incident_headed_by_the_failing_route():
    """The class: requests fail (time out) through a route of their own because a dependency is slow, and the
    callers above see latency. One incident: the failing route's timeout first, the delay and latency as its
    symptoms; neither the delay nor the latency two levels up is a second problem."""
    from mesh.config import Snapshot, load_text
    from tests.diagnose.runtime.test_correlate import BOOKINFO

    res = load_text(BOOKINFO + "---\n" + TIMEOUT_CHAIN, "bookinfo.yaml")
    assert not res.problems
    snap = Snapshot(res.objects)
    df = table(
        requests("productpage-v1", fqdn("reviews"), "timeout", 20, duration_ms=500),
        requests("productpage-v1", fqdn("reviews"), "ok", 10, duration_ms=20),
        requests("reviews-v2", fqdn("ratings"), "fault_delay", 20, duration_ms=1000),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 100, start=T0, end=T0 + 20, duration_ms=10),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 50, start=T0 + 20, end=T0 + 30, duration_ms=600),
    )
    out = correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap)),
                    analyze(snap), snap)
    for f in out:
        f.status = "open"
    codes = {f.code for f in out}
    assert {"MS3008", "MS3011", "MS3014"} <= codes, codes
    serious = [i for i in group(out) if i.severity in ("error", "warning")]
    assert len(serious) == 1, [(i.root.code, [f.code for f in i.members]) for i in serious]
    inc = serious[0]
    assert inc.root.code == "MS3008"
    assert (inc.cause.kind, inc.cause.name, inc.cause.path) == ("VirtualService", "reviews", "spec/http[0]/timeout")
    assert {"MS3011", "MS3014"} <= {f.code for f in inc.symptoms}
    # the same findings in any order give the same incident (union-find, no order dependence)
    again = [i for i in group(list(reversed(out))) if i.severity in ("error", "warning")]
    assert [(i.id, i.root.code) for i in again] == [(inc.id, "MS3008")]


def test_a_delay_alone_still_heads_its_incident_above_the_latency_it_causes():
    from mesh.config import Snapshot, load_text
    from tests.diagnose.runtime.test_correlate import BOOKINFO

    res = load_text(BOOKINFO + "---\n" + TIMEOUT_CHAIN.split("---")[1], "bookinfo.yaml")
    snap = Snapshot(res.objects)
    df = table(
        requests("reviews-v1", fqdn("ratings"), "fault_delay", 20, duration_ms=1000),
        requests("productpage-v1", fqdn("reviews"), "ok", 100, start=T0, end=T0 + 20, duration_ms=10),
        requests("productpage-v1", fqdn("reviews"), "ok", 50, start=T0 + 20, end=T0 + 30, duration_ms=1010),
    )
    out = correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap)), [], snap)
    for f in out:
        f.status = "open"
    serious = [i for i in group(out) if i.severity in ("error", "warning")]
    assert [i.root.code for i in serious] == ["MS3011"]
    assert (serious[0].cause.kind, serious[0].cause.name) == ("VirtualService", "ratings")


def test_a_breakers_rejections_are_a_symptom_of_the_failing_upstream_not_its_cause():
    """Any family's finding measured on an edge (here ASM's circuit-breaker 499s, blamed on the breaker) belongs to
    the incident of the failure on the same service, which stays its root."""
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef

    df = table(requests("reviews-v2", fqdn("ratings"), "refused", 20), requests("reviews-v2", fqdn("ratings"), "ok", 20))
    out = findings(df)
    breaker = make("MS6021", resource=ResourceRef("ASMCircuitBreaker", "reviews-cb", "bookinfo", source="cb.yaml:3"),
                   count=5, total=40, workload="ratings", share="12.5%", status=499, breaker="reviews-cb",
                   thresholds="error_percent 50", break_duration="10s")
    breaker.evidence = {"edge_key": fqdn("ratings"), "edges": [{"source_workload": "reviews-v2", "rps": 0.2}]}
    breaker.impact = {"rps": 0.2, "share": 0.125}
    breaker.status = "open"
    incidents = [i for i in group([*out, breaker]) if i.severity in ("error", "warning")]
    assert [i.root.code for i in incidents] == ["MS3003"]
    assert incidents[0].roles[breaker.fingerprint] == "symptom"


def test_latency_two_hops_above_a_failure_is_its_symptom():
    """productpage -> reviews -> ratings: ratings fails (reviews retries, so reviews shows nothing of its own) and
    the gateway sees productpage slow down. The latency joins the failure it waits on through reviews."""
    df = table(
        requests("reviews-v2", fqdn("ratings"), "refused", 20), requests("reviews-v2", fqdn("ratings"), "ok", 5),
        requests("productpage-v1", fqdn("reviews"), "ok", 40, duration_ms=30),
        requests("reviews-v2", fqdn("reviews"), "ok", 40, reporter="destination", destination_workload="reviews-v2"),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 100, start=T0, end=T0 + 20, duration_ms=10),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 50, start=T0 + 20, end=T0 + 30, duration_ms=600),
    )
    out = findings(df)
    slow = next(f for f in out if f.code == "MS3014")
    assert slow.evidence["edge_key"] == fqdn("productpage")
    assert slow.evidence["depends_on"][:2] == [fqdn("reviews"), fqdn("ratings")]
    serious = [i for i in group(out) if i.severity in ("error", "warning")]
    assert [i.root.code for i in serious] == ["MS3003"]
    assert serious[0].roles[slow.fingerprint] == "symptom"


def test_latency_seen_by_callers_whose_requests_fail_at_that_moment_joins_that_failure():
    """The gateway's route breaks (NC at the gateway, no destination service): its last requests to productpage
    before the break were slow. Nothing below productpage fails, so the latency belongs to the failure the same
    caller sees, not to an incident of its own."""
    from collector import schema as s

    broken = requests("istio-ingressgateway", fqdn("productpage"), "no_cluster", 30, start=T0 + 20, end=T0 + 30)
    broken[s.DESTINATION_SERVICE], broken[s.AUTHORITY] = "unknown", "bookinfo.example.com:8080"
    df = table(
        broken,
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 100, start=T0, end=T0 + 20, duration_ms=10),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 20, start=T0 + 20, end=T0 + 22, duration_ms=900),
    )
    out = findings(df)
    assert {"MS3006", "MS3014"} <= {f.code for f in out}
    serious = [i for i in group(out) if i.severity in ("error", "warning")]
    assert [i.root.code for i in serious] == ["MS3006"]


def test_one_change_breaking_two_edges_is_one_incident():
    """A namespace-wide STRICT: the edge whose DestinationRule sends plaintext blames that rule (the
    PeerAuthentication beside it), another edge's resets blame the PeerAuthentication itself. Same failure class,
    one names the other's cause as its co-cause: one incident."""
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef

    pa = ResourceRef("PeerAuthentication", "default", "bookinfo", path="spec/mtls/mode", source="f.yaml:5")
    dr = ResourceRef("DestinationRule", "details", "bookinfo", path="spec/trafficPolicy/tls/mode", source="f.yaml:12")
    a = make("MS3001", resource=dr, related=[ResourceRef("Service", "details", "bookinfo"), pa],
             source="productpage-v1", destination=fqdn("details"), count=30, total=30)
    a.evidence, a.impact = {"edge_key": fqdn("details"), "edges": [{"source_workload": "productpage-v1"}]}, \
        {"rps": 1.0, "share": 1.0}
    b = make("MS3001", resource=pa, related=[ResourceRef("Service", "productpage", "bookinfo")],
             source="istio-ingressgateway", destination=fqdn("productpage"), count=6, total=80)
    b.evidence, b.impact = {"edge_key": fqdn("productpage"), "edges": [{"source_workload": "istio-ingressgateway"}]}, \
        {"rps": 0.2, "share": 0.075}
    other = make("MS3001", resource=ResourceRef("DestinationRule", "ratings", "bookinfo"), source="reviews-v2",
                 destination=fqdn("ratings"), count=5, total=5)
    other.evidence, other.impact = {"edge_key": fqdn("ratings"), "edges": [{"source_workload": "reviews-v2"}]}, \
        {"rps": 0.5, "share": 1.0}
    for f in (a, b, other):
        f.status = "open"
    incidents = group([b, other, a])
    assert sorted(len(i.members) for i in incidents) == [1, 2]
    joined = next(i for i in incidents if len(i.members) == 2)
    assert joined.root is a and joined.cause.kind == "DestinationRule"


def _failure(code: str, service: str, obj=None, caller: str = "productpage-v1"):
    from diagnose.findings import Finding, ResourceRef
    resource = ResourceRef(*obj) if obj else ResourceRef("Service", service.split(".")[0], "bookinfo")
    return Finding(code=code, severity="error", category="runtime", message=f"{code} {service}", resource=resource,
                   evidence={"edge_key": service, "edges": [{"source_workload": caller, "destination": service}]},
                   impact={"rps": 1.0, "share": 0.5})


def test_an_unexplained_failure_joins_the_same_service_failure_that_has_a_cause():
    """The class: on one service at one moment, a failure no object explains (a reset, a refused connection)
    beside a failure blamed on a config object is that object's incident; two explained failures, or
    failures of different services, stay apart."""
    details, ratings = fqdn("details"), fqdn("ratings")
    ejected = _failure("MS3004", details, ("DestinationRule", "details", "bookinfo"))
    reset = _failure("MS3003", details)
    incidents = group([reset, ejected])
    assert len(incidents) == 1 and incidents[0].root.code == "MS3004"
    # a failure of another service with no cause stays its own incident
    elsewhere = _failure("MS3003", ratings, caller="reviews-v2")
    assert len(group([reset, ejected, elsewhere])) == 2
    # two failures of one service, each blamed on its own object: two faults, two incidents
    misrouted = _failure("MS3006", details, ("VirtualService", "details", "bookinfo"))
    assert len(group([ejected, misrouted])) == 2
    # alone, an unexplained failure is an incident of its own
    assert [i.root.code for i in group([reset])] == ["MS3003"]
