"""Classes of cause the held-out faults of session 13 (tests/fixtures/faults) showed the diagnoser getting wrong.

Each test is one class over the demo's own config (mesh/demo/bookinfo.yaml) with objects applied on top, and a
requests table shaped like the collector's: where a traffic policy sits (top level, a port, a subset, a subset's
port) and which one the requests' cluster took; which policies apply to the hurt service (selectors); how far
below a crossed limit (a timeout, an overflowing pool) the slowness that explains it may lie.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from collector import schema as s
from diagnose import analyze
from diagnose.correlate import correlate
from diagnose.incidents import group
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from mesh.config import Snapshot, load_text
from mesh.controlplane.store import with_applied
from tests.diagnose.runtime.tables import T0, fqdn, requests, table

DEMO = (Path(__file__).resolve().parents[3] / "mesh" / "demo" / "bookinfo.yaml").read_text(encoding="utf-8")


def demo_with(extra: str) -> Snapshot:
    base = load_text(DEMO, "bookinfo.yaml")
    res = load_text(extra, "fault.yaml")
    assert not base.problems and not res.problems, (base.problems, res.problems)
    return Snapshot(with_applied(base.objects, res.objects))


def diagnose(df, snap: Snapshot, with_config: bool = True) -> list:
    out = correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap)),
                    analyze(snap) if with_config else [], snap)
    for f in out:
        f.status = "open"
    return out


def via(df, cluster: str):
    """The same requests, logged as sent to `cluster` (the access log's %UPSTREAM_CLUSTER%)."""
    return df.assign(**{s.UPSTREAM_CLUSTER: cluster})


def serious(findings) -> list:
    return [i for i in group(findings) if i.severity in ("error", "warning")]


# --- a crossed limit and the slowness below it, however many hops down --------------------------------------

DELAYED_RATINGS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - fault: {delay: {fixedDelay: 0.5s, percentage: {value: 100}}}
    route: [{destination: {host: ratings, subset: v1}}]
"""

GATEWAY_TIMEOUT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}]
    timeout: 0.25s
    route: [{destination: {host: productpage, port: {number: 9080}}}]
"""

PRODUCTPAGE_POOL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage, namespace: bookinfo}
spec:
  host: productpage
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}
  subsets: [{name: v1, labels: {version: v1}}]
"""


def chain(top_outcome: str) -> object:
    """Gateway -> productpage (`top_outcome` for a third) -> reviews (slow, no error, no finding of its own:
    nobody knows its usual latency) -> ratings (delayed by a fault)."""
    return table(
        requests("istio-ingressgateway", fqdn("productpage"), top_outcome, 20, duration_ms=250),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 40, duration_ms=30),
        requests("productpage-v1", fqdn("reviews"), "ok", 60, duration_ms=30),
        requests("reviews-v2", fqdn("ratings"), "fault_delay", 40, duration_ms=500),
    )


@pytest.mark.parametrize("limit, outcome, code, blamed", [
    (GATEWAY_TIMEOUT, "timeout", "MS3008", ("VirtualService", "bookinfo", "spec/http[0]/timeout")),
    (PRODUCTPAGE_POOL, "overflow", "MS3007", ("DestinationRule", "productpage", "spec/trafficPolicy/connectionPool")),
])
def test_a_limit_crossed_two_hops_above_a_delay_is_one_incident_headed_by_the_limit(limit, outcome, code, blamed):
    """The limit (a route timeout at the gateway, productpage's connection pool) fails requests because ratings,
    two hops down, is slow while reviews in between shows nothing: one incident, the limit first, the delay in it.
    (Before: the timeout looked only one hop down, the pool not at all: the delay was a second incident.)"""
    snap = demo_with(DELAYED_RATINGS + "---\n" + limit)
    out = diagnose(chain(outcome), snap)
    assert {code, "MS3011"} <= {f.code for f in out}
    incidents = serious(out)
    assert len(incidents) == 1, [(i.root.code, [f.code for f in i.members]) for i in incidents]
    inc = incidents[0]
    assert inc.root.code == code and inc.root.evidence["edge_key"] == fqdn("productpage")
    assert (inc.cause.kind, inc.cause.name, inc.cause.path) == blamed
    assert "MS3011" in {f.code for f in inc.members}
    assert fqdn("ratings") in inc.root.evidence["depends_on"]


def test_a_failure_two_hops_down_with_a_cause_of_its_own_stays_its_own_incident():
    """Only slowness explains a crossed limit: an overflowing pool above a service whose calls are aborted (fast
    failures, a fault of their own) is two faults, two incidents."""
    abort = DELAYED_RATINGS.replace("delay: {fixedDelay: 0.5s,", "abort: {httpStatus: 503,")
    snap = demo_with(abort + "---\n" + PRODUCTPAGE_POOL)
    df = table(
        requests("istio-ingressgateway", fqdn("productpage"), "overflow", 20),
        requests("istio-ingressgateway", fqdn("productpage"), "ok", 40),
        requests("productpage-v1", fqdn("reviews"), "ok", 60),
        requests("reviews-v2", fqdn("ratings"), "fault_abort", 40),
    )
    roots = sorted(i.root.code for i in serious(diagnose(df, snap)))
    assert roots == ["MS3007", "MS3010"], roots


# --- where a DestinationRule's traffic policy sits, and which cluster the requests took ------------------------

STRICT_NAMESPACE = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
"""


def ratings_rule(policy: str, subset_policy: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ratings, namespace: bookinfo}}
spec:
  host: ratings
  trafficPolicy: {policy}
  subsets:
  - name: v1
    labels: {{version: v1}}
    trafficPolicy: {subset_policy or "{}"}
"""


@pytest.mark.parametrize("policy, subset_policy, cluster, path", [
    ("{portLevelSettings: [{port: {number: 9080}, tls: {mode: DISABLE}}]}", "", "outbound|9080||{}",
     "spec/trafficPolicy/portLevelSettings[0]/tls/mode"),
    ("{}", "{tls: {mode: DISABLE}}", "outbound|9080|v1|{}", "spec/subsets[0]/trafficPolicy/tls/mode"),
    ("{tls: {mode: ISTIO_MUTUAL}}", "{portLevelSettings: [{port: {number: 9080}, tls: {mode: DISABLE}}]}",
     "outbound|9080|v1|{}", "spec/subsets[0]/trafficPolicy/portLevelSettings[0]/tls/mode"),
])
def test_plaintext_to_a_strict_server_blames_the_tls_setting_the_requests_cluster_took(policy, subset_policy,
                                                                                         cluster, path):
    """The TLS setting in force for a cluster is the most specific one (a subset's port, the subset, the port, the
    top level): the mismatch names that field, wherever it sits. (Before: only the top level and its ports were
    read, so a subset's DISABLE fell back to blaming the namespace's STRICT PeerAuthentication.)"""
    snap = demo_with(STRICT_NAMESPACE + "---\n" + ratings_rule(policy, subset_policy))
    df = via(requests("reviews-v2", fqdn("ratings"), "mtls_plaintext", 30), cluster.format(fqdn("ratings")))
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3001")
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("DestinationRule", "ratings", path)


def test_a_disabled_tls_on_another_port_or_subset_is_not_the_cause():
    """A DISABLE for a port or a subset the failing requests did not use explains nothing: the STRICT server's
    policy is what they hit. (Before: any DISABLE anywhere in the rule was blamed.)"""
    snap = demo_with(STRICT_NAMESPACE + "---\n" + ratings_rule(
        "{portLevelSettings: [{port: {number: 9999}, tls: {mode: DISABLE}}]}", "{tls: {mode: DISABLE}}"))
    df = table(via(requests("reviews-v2", fqdn("ratings"), "mtls_plaintext", 30), f"outbound|9080||{fqdn('ratings')}"),
               requests("ratings-v1", fqdn("ratings"), "listener_tls", 30, reporter="destination"))
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3001")
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("PeerAuthentication", "default", "spec/mtls/mode")


@pytest.mark.parametrize("where, cluster, path", [
    ("port", "outbound|9080||{}", "spec/trafficPolicy/portLevelSettings[0]/connectionPool"),
    ("subset", "outbound|9080|v1|{}", "spec/subsets[0]/trafficPolicy/connectionPool"),
])
def test_an_overflow_blames_the_pool_of_the_port_or_subset_it_hit(where, cluster, path):
    pool = "{connectionPool: {http: {http1MaxPendingRequests: 1}}}"
    policy = f"{{portLevelSettings: [{{port: {{number: 9080}}, connectionPool: {pool[16:-1]}}}]}}" \
        if where == "port" else "{}"
    snap = demo_with(ratings_rule(policy, pool if where == "subset" else ""))
    df = via(requests("reviews-v2", fqdn("ratings"), "overflow", 20), cluster.format(fqdn("ratings")))
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3007")
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("DestinationRule", "ratings", path)


def test_ejected_hosts_blame_the_outlier_detection_of_the_subset_they_were_in():
    snap = demo_with(ratings_rule("{}", "{outlierDetection: {consecutive5xxErrors: 1, interval: 1s}}"))
    df = via(requests("reviews-v2", fqdn("ratings"), "no_endpoints", 20), f"outbound|9080|v1|{fqdn('ratings')}")
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3004")
    assert (f.resource.kind, f.resource.path) == ("DestinationRule", "spec/subsets[0]/trafficPolicy/outlierDetection")


# --- which namespace policies apply to the hurt service (selectors) ----------------------------------------

def test_a_denial_with_no_allow_match_blames_the_allow_policy_that_selects_the_service():
    """`rbac_access_denied_matched_policy[none]` names no policy: the ALLOW policies that apply to the service's
    workloads are the suspects, never one selecting another app. (Before: the namespace's first ALLOW policy.)"""
    snap = demo_with("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-productpage-from-gateway, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: productpage}}
  rules: [{from: [{source: {principals: [cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-allow, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  rules: [{to: [{operation: {paths: [/rating/*]}}]}]
""")
    df = requests("reviews-v2", fqdn("ratings"), "rbac_no_allow", 20, reporter="destination")
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3012")
    assert (f.resource.kind, f.resource.name) == ("AuthorizationPolicy", "ratings-allow")


def test_plaintext_refused_blames_the_strict_policy_that_selects_the_service():
    """With no DestinationRule disabling TLS, the STRICT PeerAuthentication is the cause: the one selecting the
    hurt service's workloads, not a STRICT one for another app listed first."""
    snap = demo_with("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a-details-strict, namespace: bookinfo}
spec: {selector: {matchLabels: {app: details}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-port-strict, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {9080: {mode: STRICT}}
""")
    df = table(requests("reviews-v2", fqdn("ratings"), "mtls_plaintext", 30),
               requests("ratings-v1", fqdn("ratings"), "listener_tls", 30, reporter="destination"))
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3001")
    assert (f.resource.kind, f.resource.name) == ("PeerAuthentication", "ratings-port-strict")


# --- answers a service gives to requests it does not serve ------------------------------------------------

DETAILS_REWRITE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: bookinfo}
spec:
  hosts: [details]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: details, subset: v1}}]
  - match: [{uri: {prefix: /details}}]
    rewrite: {uri: /api/v1/details}
    route: [{destination: {host: details, subset: v1}}]
"""


def answered(code: int, df, route: str | None = None):
    """The same requests, answered `code` by the destination app itself (no flag, via_upstream)."""
    out = df.assign(**{s.RESPONSE_CODE: code, s.RESPONSE_CODE_DETAILS: "via_upstream"})
    return out.assign(**{s.ROUTE_NAME: route}) if route else out


def test_a_route_rewriting_to_a_path_the_service_does_not_serve_is_a_route_finding_blaming_the_rewrite():
    """Every call productpage makes to details comes back 404 from details itself, no flag: no rule saw it (not a
    5xx, not NR). It is now MS3016 on the edge, blamed on the rewrite of the route the requests matched."""
    snap = demo_with(DETAILS_REWRITE)
    df = table(answered(404, requests("productpage-v1", fqdn("details"), "ok", 30), "bookinfo/details.1"),
               requests("istio-ingressgateway", fqdn("productpage"), "ok", 30))
    out = diagnose(df, snap)
    f = next(x for x in out if x.code == "MS3016")
    assert f.evidence["edge_key"] == fqdn("details") and f.severity == "error"
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("VirtualService", "details",
                                                                  "spec/http[1]/rewrite/uri")
    assert serious(out)[0].root.code == "MS3016"


@pytest.mark.parametrize("case", ["a few 404s", "denials mirrored", "rate limited", "from outside"])
def test_client_errors_that_mean_something_else_raise_no_not_served_finding(case):
    """A missing item now and then, the client side's plain 403 of an RBAC denial, 429s of a rate limit and
    strangers' paths through the gateway are not a service asked for what it does not serve."""
    ok = requests("productpage-v1", fqdn("details"), "ok", 100)
    bad = {"a few 404s": answered(404, requests("productpage-v1", fqdn("details"), "ok", 5)),
           "denials mirrored": answered(403, requests("productpage-v1", fqdn("details"), "ok", 60)),
           "rate limited": answered(429, requests("productpage-v1", fqdn("details"), "ok", 60)),
           "from outside": answered(404, requests("istio-ingressgateway", fqdn("productpage"), "ok", 60))}[case]
    out = diagnose(table(ok, bad), demo_with(DETAILS_REWRITE), with_config=False)
    assert "MS3016" not in {f.code for f in out}


# --- which timer fired ---------------------------------------------------------------------------------

REVIEWS_RETRIES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    timeout: 2s
    route: [{destination: {host: reviews, subset: v2}}]
  - timeout: 5s
    retries: {attempts: 1, perTryTimeout: 0.1s}
    route: [{destination: {host: reviews}}]
"""


@pytest.mark.parametrize("details, path", [
    ("upstream_per_try_timeout", "spec/http[1]/retries/perTryTimeout"),
    ("response_timeout", "spec/http[1]/timeout"),
])
def test_a_timeout_blames_the_timer_envoy_says_fired_on_the_route_the_requests_matched(details, path):
    """A retry policy's per-try timeout fails requests by itself (504 UT, `upstream_per_try_timeout`), with or
    without a route timeout beside it. (Before: only `http[].timeout` was read: a per-try timeout alone blamed
    nothing, and beside a route timeout the route's was blamed.)"""
    snap = demo_with(REVIEWS_RETRIES + "---\n" + DELAYED_RATINGS)
    timed_out = requests("productpage-v1", fqdn("reviews"), "timeout", 20, duration_ms=200)
    # the last try's timeout after the retries ran out: Envoy adds URX, which alone would mean a connect failure
    df = table(timed_out.assign(**{s.RESPONSE_CODE_DETAILS: details, s.ROUTE_NAME: "bookinfo/reviews.1",
                                   s.RESPONSE_FLAGS: "UT,URX"}),
               requests("productpage-v1", fqdn("reviews"), "ok", 40),
               requests("reviews-v2", fqdn("ratings"), "fault_delay", 40, duration_ms=300))
    out = diagnose(df, snap)
    f = next(x for x in out if x.code == "MS3008")
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("VirtualService", "reviews", path)
    assert "MS3003" not in {x.code for x in out}  # retries that ran out on timeouts are no connect failure
    assert serious(out)[0].root.code == "MS3008"
