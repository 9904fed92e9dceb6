"""Istio config -> Envoy resources, checked as data (no Envoy needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from mesh.config import load_text
from mesh.controlplane.ca import MeshCA
from mesh.controlplane.context import ConfigError, duration
from mesh.controlplane.policy import ConfigIndex
from mesh.controlplane.registry import Registry
from mesh.controlplane.translate import CDS, LDS, RDS, SDS, translate
from mesh.demo.config import demo_objects


def load(text: str):
    res = load_text(text, "t.yaml", exclude_namespaces=frozenset())
    assert not res.problems
    return res.objects


@pytest.fixture(scope="module")
def ca():
    return MeshCA()


def build(extra: str = "", ca=None):
    objects = demo_objects()
    if extra:
        from mesh.controlplane.store import with_applied
        objects = with_applied(objects, load(extra))
    reg = Registry(allocate=iter(range(30000, 31000)).__next__)
    reg.update(objects)
    reg.gateway_ports = {8080: 8080}
    ca = ca or MeshCA()
    certs = {w.key: ca.issue(w.namespace, w.service_account) for w in reg.workloads}
    return reg, translate(objects, reg, certs, ca.root_pem, Path("/tmp/logs"))


def node(reg, proxies, name):
    return proxies[next(w for w in reg.workloads if w.name == name).node_id]


def test_every_workload_gets_listeners_clusters_routes_secrets(ca):
    reg, proxies = build(ca=ca)
    assert len(proxies) == 7
    pp = node(reg, proxies, "productpage-v1")
    assert set(pp.resources) == {CDS, LDS, RDS, SDS}
    clusters = pp.resources[CDS]
    assert "outbound|9080||reviews.bookinfo.svc.cluster.local" in clusters
    assert {"outbound|9080|v1|reviews.bookinfo.svc.cluster.local", "outbound|9080|v3|reviews.bookinfo.svc.cluster.local"} <= set(clusters)
    assert "inbound|9080||" in clusters
    v2 = clusters["outbound|9080|v2|reviews.bookinfo.svc.cluster.local"]
    eps = v2["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["metadata"]["filter_metadata"]["istio"]["workload"] for e in eps] == ["reviews-v2"]
    gw = node(reg, proxies, "istio-ingressgateway")
    assert set(gw.resources[RDS]) == {"http.8080"} and "0.0.0.0_8080" in gw.resources[LDS]


def test_auto_mtls_and_dr_tls_disable(ca):
    reg, proxies = build(ca=ca)
    c = node(reg, proxies, "productpage-v1").resources[CDS]["outbound|9080||details.bookinfo.svc.cluster.local"]
    assert [m["name"] for m in c["transport_socket_matches"]] == ["tlsMode-istio", "tlsMode-disabled"]
    tls = c["transport_socket_matches"][0]["transport_socket"]["typed_config"]
    assert tls["sni"] == "outbound_.9080_._.details.bookinfo.svc.cluster.local"
    sans = tls["common_tls_context"]["combined_validation_context"]["default_validation_context"]["match_typed_subject_alt_names"]
    assert sans == [{"san_type": "URI", "matcher": {"exact": "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-details"}}]
    dr = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: bookinfo}
spec:
  host: details
  trafficPolicy:
    tls: {mode: DISABLE}
    connectionPool: {tcp: {maxConnections: 5}}
"""
    reg, proxies = build(dr, ca)
    c = node(reg, proxies, "productpage-v1").resources[CDS]["outbound|9080||details.bookinfo.svc.cluster.local"]
    assert "transport_socket" not in c and "transport_socket_matches" not in c
    assert c["circuit_breakers"]["thresholds"][0]["max_connections"] == 5
    # Istio: a port-level entry replaces the policy for its port wholesale; what it leaves out (tls here) is the
    # default (auto mTLS), not the top level's DISABLE
    reg, proxies = build(dr + """    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {tcp: {maxConnections: 7}}
""", ca)
    c = node(reg, proxies, "productpage-v1").resources[CDS]["outbound|9080||details.bookinfo.svc.cluster.local"]
    assert [m["name"] for m in c["transport_socket_matches"]] == ["tlsMode-istio", "tlsMode-disabled"]
    assert c["circuit_breakers"]["thresholds"][0]["max_connections"] == 7


@pytest.mark.parametrize("tls", ["{}", "{sni: details.example}", "{mode: null}"])
def test_dr_tls_without_mode_is_disable(ca, tls):
    """Istio reads a tls block without a mode as DISABLE (the enum's zero value): plaintext, not auto mTLS."""
    reg, proxies = build(f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: details, namespace: bookinfo}}
spec:
  host: details
  trafficPolicy: {{tls: {tls}}}
""", ca)
    c = node(reg, proxies, "productpage-v1").resources[CDS]["outbound|9080||details.bookinfo.svc.cluster.local"]
    assert "transport_socket" not in c and "transport_socket_matches" not in c


def test_gateway_in_root_namespace_takes_the_service_namespace_rule_first(ca):
    """Istio: a proxy in the root namespace (the ingress gateway) takes the root's exported rules only after the
    service namespace's, so a mesh-wide `*.local` rule does not shadow reviews' own DestinationRule; a private
    (exportTo ".") root rule still comes first."""
    mesh_dr = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mesh, namespace: istio-system}
spec:
  host: "*.local"
  trafficPolicy: {tls: {mode: DISABLE}}
"""
    name = "outbound|9080||reviews.bookinfo.svc.cluster.local"
    reg, proxies = build(mesh_dr, ca)
    gw = node(reg, proxies, "istio-ingressgateway").resources[CDS][name]
    assert gw["metadata"]["filter_metadata"]["istio"]["config"].endswith("/bookinfo/destination-rule/reviews")
    assert [m["name"] for m in gw["transport_socket_matches"]] == ["tlsMode-istio", "tlsMode-disabled"]
    reg, proxies = build(mesh_dr.replace("spec:\n", "spec:\n  exportTo: [.]\n"), ca)
    gw = node(reg, proxies, "istio-ingressgateway").resources[CDS][name]
    assert gw["metadata"]["filter_metadata"]["istio"]["config"].endswith("/istio-system/destination-rule/mesh")
    assert "transport_socket" not in gw and "transport_socket_matches" not in gw


def test_dr_with_workload_selector_applies_to_the_workloads_it_selects(ca):
    """A DestinationRule with a workloadSelector is for the client workloads it selects in its namespace only."""
    reg, proxies = build("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details-from-productpage, namespace: bookinfo}
spec:
  host: details
  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy: {tls: {mode: DISABLE}}
""", ca)
    name = "outbound|9080||details.bookinfo.svc.cluster.local"
    pp = node(reg, proxies, "productpage-v1").resources[CDS][name]
    assert "transport_socket" not in pp and "transport_socket_matches" not in pp
    other = node(reg, proxies, "reviews-v1").resources[CDS][name]
    assert [m["name"] for m in other["transport_socket_matches"]] == ["tlsMode-istio", "tlsMode-disabled"]


def test_peer_authentication_precedence_and_port_level():
    objects = demo_objects() + load("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns, namespace: bookinfo}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9080: {mode: DISABLE}
""")
    reg = Registry(allocate=iter(range(30000, 31000)).__next__)
    reg.update(objects)
    idx = ConfigIndex(objects)
    assert idx.mtls_mode(reg.workload("bookinfo", "details-v1"), 9080) == "PERMISSIVE"  # namespace beats mesh
    assert idx.mtls_mode(reg.workload("bookinfo", "ratings-v1"), 9090) == "STRICT"  # workload beats namespace
    assert idx.mtls_mode(reg.workload("bookinfo", "ratings-v1"), 9080) == "DISABLE"  # port beats workload
    assert idx.mtls_mode(reg.workload("istio-system", "istio-ingressgateway"), 8080) == "STRICT"  # mesh-wide


def test_strict_listener_has_only_the_tls_chain(ca):
    reg, proxies = build("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: r, namespace: bookinfo}
spec: {selector: {matchLabels: {app: ratings}}, mtls: {mode: STRICT}}
""", ca)
    lst = node(reg, proxies, "ratings-v1").resources[LDS]["inbound_9080"]
    assert [c["filter_chain_match"]["transport_protocol"] for c in lst["filter_chains"]] == ["tls"]
    lst = node(reg, proxies, "details-v1").resources[LDS]["inbound_9080"]
    assert [c["filter_chain_match"]["transport_protocol"] for c in lst["filter_chains"]] == ["tls", "raw_buffer"]
    # the stats logger tags connection_security_policy per chain
    tags = {t["name"]: t["value_format"] for t in
            lst["filter_chains"][1]["filters"][0]["typed_config"]["access_log"][1]["typed_config"]["counters"][0]["stat"]["tags"]}
    assert tags["connection_security_policy"] == "none" and tags["reporter"] == "destination"


def test_virtual_service_routes(ca):
    reg, proxies = build("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match: [{headers: {end-user: {exact: jason}}}, {uri: {prefix: /v3}}]
    route: [{destination: {host: reviews, subset: v3}}]
    retries: {attempts: 0}
  - timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,503"}
    fault: {delay: {fixedDelay: 100ms, percentage: {value: 12.5}}, abort: {httpStatus: 500, percentage: {value: 1}}}
    route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
""", ca)
    rc = node(reg, proxies, "productpage-v1").resources[RDS]["outbound"]
    vh = next(v for v in rc["virtual_hosts"] if v["name"] == "reviews.bookinfo.svc.cluster.local:9080")
    assert "reviews:9080" in vh["domains"] and "reviews.bookinfo.svc.cluster.local" in vh["domains"]
    r0, r1, r2 = vh["routes"]
    assert r0["match"]["headers"] == [{"name": "end-user", "string_match": {"exact": "jason"}}]
    assert r1["match"] == {"prefix": "/v3"} and r0["route"]["cluster"] == "outbound|9080|v3|reviews.bookinfo.svc.cluster.local"
    assert "retry_policy" not in r0["route"]
    assert r2["route"]["timeout"] == "2s"
    assert r2["route"]["weighted_clusters"]["clusters"] == [
        {"name": "outbound|9080|v1|reviews.bookinfo.svc.cluster.local", "weight": 90},
        {"name": "outbound|9080|v2|reviews.bookinfo.svc.cluster.local", "weight": 10}]
    rp = r2["route"]["retry_policy"]
    assert rp["num_retries"] == 3 and rp["per_try_timeout"] == "0.5s" and rp["retry_on"] == "5xx,retriable-status-codes"
    fault = r2["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"] == {"fixed_delay": "0.1s", "percentage": {"numerator": 125000, "denominator": "MILLION"}}
    assert fault["abort"]["http_status"] == 500
    # without a VirtualService: Istio's defaults (no timeout, 2 retries incl. 503)
    dvh = next(v for v in rc["virtual_hosts"] if v["name"].startswith("details."))
    assert dvh["routes"][0]["route"]["timeout"] == "0s"
    assert dvh["routes"][0]["route"]["retry_policy"]["num_retries"] == 2


def test_mirror_becomes_a_shadow_policy(ca):
    """`mirror`/`mirrorPercentage` and `mirrors` shadow a share of the route's requests (answers discarded)."""
    reg, proxies = build("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: bookinfo}
spec:
  hosts: [details]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: details, subset: v1}}]
    mirror: {host: ratings}
    mirrorPercentage: {value: 12.5}
  - route: [{destination: {host: details}}]
    mirrors:
    - destination: {host: reviews, subset: v3}
    - destination: {host: ratings, port: {number: 9080}}
      percentage: {value: 50}
""", ca)
    rc = node(reg, proxies, "productpage-v1").resources[RDS]["outbound"]
    r0, r1 = next(v for v in rc["virtual_hosts"] if v["name"].startswith("details."))["routes"]
    assert r0["route"]["request_mirror_policies"] == [
        {"cluster": "outbound|9080||ratings.bookinfo.svc.cluster.local",
         "runtime_fraction": {"default_value": {"numerator": 125000, "denominator": "MILLION"}}}]
    assert [(m["cluster"], m["runtime_fraction"]["default_value"]["numerator"]) for m in r1["route"]["request_mirror_policies"]] == [
        ("outbound|9080|v3|reviews.bookinfo.svc.cluster.local", 1000000),
        ("outbound|9080||ratings.bookinfo.svc.cluster.local", 500000)]
    assert r0["route"]["cluster"] == "outbound|9080|v1|details.bookinfo.svc.cluster.local"


@pytest.mark.parametrize("fragment, message", [
    ("timeout: forever", "spec.http[0].timeout: invalid duration 'forever'"),
    ("fault: {abort: {httpStatus: 99}}", "spec.http[0].fault.abort.httpStatus: must be an HTTP status code"),
    ("fault: {delay: {percentage: {value: 5}}}", "spec.http[0].fault.delay: fixedDelay is required"),
    ("retries: {attempts: -1}", "spec.http[0].retries.attempts: must be a non-negative integer"),
    ("mirror: {host: ratings}\n    mirrorPercentage: {value: 120}", "spec.http[0].mirrorPercentage.value: must be within 0..100"),
])
def test_bad_virtual_service_names_the_field(fragment, message, ca):
    with pytest.raises(ConfigError) as exc:
        build(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: bookinfo}}
spec:
  hosts: [reviews]
  http:
  - {fragment}
    route: [{{destination: {{host: reviews}}}}]
""", ca)
    assert f"VirtualService bookinfo/reviews {message}" in str(exc.value)


def test_authorization_policy_to_rbac(ca):
    reg, proxies = build("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE], notPaths: ["/health*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-reviews, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  rules: [{from: [{source: {namespaces: [bookinfo]}}]}]
""", ca)
    chain = node(reg, proxies, "ratings-v1").resources[LDS]["inbound_9080"]["filter_chains"][0]
    filters = chain["filters"][0]["typed_config"]["http_filters"]
    deny, allow = filters[0]["typed_config"]["rules"], filters[1]["typed_config"]["rules"]
    assert deny["action"] == "DENY" and allow["action"] == "ALLOW"
    d = deny["policies"]["ns[bookinfo]-policy[deny-delete]-rule[0]"]
    rules = d["permissions"][0]["and_rules"]["rules"]
    assert {"not_rule": {"url_path": {"path": {"prefix": "/health"}}}} in rules
    assert {"header": {"name": ":method", "string_match": {"exact": "DELETE"}}} in rules
    a = allow["policies"]["ns[bookinfo]-policy[allow-reviews]-rule[0]"]
    assert a["principals"] == [{"authenticated": {"principal_name": {"safe_regex": {"regex": ".*/ns/bookinfo/.*"}}}}]
    # details has no policy: no RBAC filter at all
    dchain = node(reg, proxies, "details-v1").resources[LDS]["inbound_9080"]["filter_chains"][0]
    assert [f["name"] for f in dchain["filters"][0]["typed_config"]["http_filters"]] == ["envoy.filters.http.router"]


def test_outlier_detection_disables_panic_mode(ca):
    reg, proxies = build("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: bookinfo}
spec:
  host: ratings
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}
""", ca)
    c = node(reg, proxies, "reviews-v2").resources[CDS]["outbound|9080||ratings.bookinfo.svc.cluster.local"]
    assert c["outlier_detection"]["consecutive_5xx"] == 3 and c["outlier_detection"]["base_ejection_time"] == "30s"
    assert c["common_lb_config"]["healthy_panic_threshold"] == {"value": 0.0}


def test_durations():
    assert duration("1.5s", "x") == "1.5s" and duration("100ms", "x") == "0.1s" and duration("2m", "x") == "120s"
    with pytest.raises(ConfigError):
        duration("10 parsecs", "x")


def test_export_to_limits_where_a_virtual_service_applies(ca):
    reg, proxies = build("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: istio-system}
spec:
  hosts: [ratings.bookinfo.svc.cluster.local]
  exportTo: ["."]
  http:
  - route: [{destination: {host: ratings.bookinfo.svc.cluster.local, subset: v1}}]
""", ca)

    def ratings_route(name):
        rc = next(iter(node(reg, proxies, name).resources[RDS].values()))
        vh = next(v for v in rc["virtual_hosts"] if v["name"].startswith("ratings."))
        return vh["routes"][0]["route"]["cluster"]
    # exported only to istio-system: bookinfo's sidecars keep the default route
    assert ratings_route("reviews-v2") == "outbound|9080||ratings.bookinfo.svc.cluster.local"
