"""Correlation: runtime findings point at the config object behind them and absorb its config finding."""
import pytest

from diagnose import analyze
from diagnose.catalog import make
from diagnose.correlate import correlate, rank
from diagnose.findings import ResourceRef
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from mesh.config import Snapshot, load_text
from tests.diagnose.runtime.tables import T0, fqdn, requests, table

BOOKINFO = """
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec: {selector: {app: reviews}, ports: [{port: 9080, name: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {serviceAccountName: reviews, containers: [{name: app, image: reviews}]}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec: {selector: {app: ratings}, ports: [{port: 9080, name: http}]}
"""

FAULTS = {
    "mtls": """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-plain, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: DISABLE}
""",
    "subset": """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v4}
      weight: 50
""",
    "breaker": """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-cb, namespace: bookinfo}
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy:
    connectionPool: {http: {http1MaxPendingRequests: 1}}
""",
    "abort": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-fault, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: reviews}}]
""",
    "rbac": """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-reviews, namespace: bookinfo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [/]}}]}]
""",
}


def snapshot(*faults):
    res = load_text(BOOKINFO + "".join("---\n" + FAULTS[f] for f in faults), "bookinfo.yaml")
    assert not res.problems
    return Snapshot(res.objects)


def runtime(df, snap=None):
    return analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap))


def test_mtls_mismatch_names_the_destination_rule_and_links_the_config_finding():
    snap = snapshot("mtls")
    dr = snap.find("DestinationRule", "bookinfo", "reviews-plain")
    config = analyze(snap)  # the real config analysis of the same snapshot
    assert "MS2010" in {c.code for c in config}
    unrelated = make("MS2022", resource=ResourceRef("PeerAuthentication", "other", "bookinfo"),
                     kind="PeerAuthentication", selector="{app: x}", namespace="bookinfo")
    df = table(requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 30),
               requests("productpage-v1", fqdn("details"), "ok", 30))
    out = correlate(runtime(df, snap), [*config, unrelated], snap)  # MS3001 needs the config's mTLS conflict
    f = out[0]
    assert f.code == "MS3001"
    assert (f.resource.kind, f.resource.namespace, f.resource.name) == ("DestinationRule", "bookinfo", "reviews-plain")
    assert f.resource.path == "spec/trafficPolicy/tls/mode"
    assert f.resource.source == f"bookinfo.yaml:{dr.line_of('spec/trafficPolicy/tls/mode')}"
    assert {(r.kind, r.name) for r in f.related} >= {("Service", "reviews"), ("PeerAuthentication", "strict")}
    # linked, never absorbed: the config finding stays (its object is still wrong) and names what it explains
    assert "MS2010" in [c["code"] for c in f.evidence["config_findings"]]
    assert "MS2010" in f.equivalents
    ms2010 = next(x for x in out if x.code == "MS2010")
    assert ms2010.evidence["explains"] == [f.fingerprint]
    assert out[-1].code == "MS2022"  # unrelated config findings stay, after the ranked runtime ones


def test_missing_subset_points_at_the_virtual_service_route():
    snap = snapshot("subset")
    df = table(requests("productpage-v1", fqdn("reviews"), "no_cluster", 15),
               requests("productpage-v1", fqdn("reviews"), "ok", 15))
    f = next(x for x in correlate(runtime(df), [], snap) if x.code == "MS3006")
    assert (f.resource.kind, f.resource.name) == ("VirtualService", "reviews")
    assert f.resource.path == "spec/http[0]/route[1]/destination/subset"
    merged = next(x for x in correlate(runtime(df), analyze(snap), snap) if x.code == "MS3006")
    assert "MS1002" in merged.equivalents  # the config rule's finding on the same route, absorbed
    assert f.resource.source.startswith("bookinfo.yaml:")
    assert ("DestinationRule", "reviews") in {(r.kind, r.name) for r in f.related}
    assert "subset v4" in f.evidence["cause"]


@pytest.mark.parametrize("fault,outcome,code,kind,path", [
    ("breaker", "overflow", "MS3007", "DestinationRule", "spec/trafficPolicy/connectionPool"),
    ("abort", "fault_abort", "MS3010", "VirtualService", "spec/http[0]/fault/abort"),
])
def test_traffic_policy_causes(fault, outcome, code, kind, path):
    df = requests("productpage-v1", fqdn("reviews"), outcome, 10)
    f = next(x for x in correlate(runtime(df), [], snapshot(fault)) if x.code == code)
    assert f.resource.kind == kind and f.resource.path == path


def test_rbac_denial_points_at_the_policy_rule():
    df = requests("productpage-v1", fqdn("reviews"), "rbac_deny", 10, reporter="destination")
    f = next(x for x in correlate(runtime(df), [], snapshot("rbac")) if x.code == "MS3012")
    assert (f.resource.kind, f.resource.namespace, f.resource.name, f.resource.path) == \
        ("AuthorizationPolicy", "bookinfo", "deny-reviews", "spec/rules[0]")


def test_no_endpoints_blames_the_service_selector():
    df = requests("reviews-v2", fqdn("ratings"), "no_endpoints", 10)
    f = next(x for x in correlate(runtime(df), [], snapshot()) if x.code == "MS3004")
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("Service", "ratings", "spec/selector")


def test_unexplained_findings_keep_the_service_and_config_findings_survive():
    df = requests("productpage-v1", fqdn("reviews"), "refused", 10)
    cfg = [make("MS2022", resource=ResourceRef("PeerAuthentication", "x", "bookinfo"),
                kind="PeerAuthentication", selector="{}", namespace="bookinfo")]
    out = correlate(runtime(df), cfg, snapshot())
    assert [(f.code, f.resource.kind) for f in out] == [("MS3003", "Service"), ("MS2022", "PeerAuthentication")]


def test_rank_orders_by_hurt_rate_then_severity():
    df = table(requests("productpage-v1", fqdn("reviews"), "no_cluster", 5),
               requests("productpage-v1", fqdn("ratings"), "overflow", 50))
    out = rank(runtime(df))
    assert [f.code for f in out] == ["MS3007", "MS3006"]


def test_a_slow_dependency_explains_its_callers_latency():
    end = T0 + 30
    df = table(requests("istio-ingressgateway", fqdn("productpage"), "ok", 100, start=T0, end=T0 + 20, duration_ms=10),
               requests("istio-ingressgateway", fqdn("productpage"), "ok", 50, start=T0 + 20, end=end, duration_ms=300),
               requests("productpage-v1", fqdn("details"), "ok", 100, start=T0, end=T0 + 20, duration_ms=3),
               requests("productpage-v1", fqdn("details"), "ok", 50, start=T0 + 20, end=end, duration_ms=280))
    out = {f.evidence["edge_key"]: f for f in correlate(runtime(df), [], snapshot()) if f.code == "MS3014"}
    assert set(out) == {fqdn("productpage"), fqdn("details")}
    assert out[fqdn("productpage")].evidence["slow_dependency"]["service"] == fqdn("details")
    assert "dependency details.bookinfo.svc.cluster.local is slow" in out[fqdn("productpage")].message
    assert "slow_dependency" not in out[fqdn("details")].evidence


def test_a_new_config_rule_with_a_declared_signature_is_correlated_with_no_other_change(monkeypatch):
    """A code nobody wired into correlation: its catalog entry declares what traffic shows, and that is enough."""
    from diagnose.catalog import registry
    from diagnose.context import resource_ref
    from diagnose.rule import Metadata

    entry = registry.parse_catalog([{
        "code": "MS1998", "name": "SyntheticBalancerStarves", "severity": "warning", "category": "route",
        "template": "load balancer {lb} of {host} starves its endpoints",
        "signature": {"flags": ["UH"], "codes": [503], "edges": ["host"]}}], "synthetic.yaml")[0]
    monkeypatch.setitem(registry.CATALOG, "MS1998", entry)

    class Starves:
        metadata = Metadata("synthetic.Starves", "test rule", ("DestinationRule",), ("MS1998",))

        def analyze(self, ctx):
            for dr in ctx.snapshot.of_kind("DestinationRule"):
                lb = (dr.spec.get("trafficPolicy") or {}).get("loadBalancer")
                if lb:
                    ctx.findings.append(registry.make("MS1998", resource_ref(dr, "spec/trafficPolicy/loadBalancer"),
                                                      lb=str(lb), host=dr.spec["host"]))

    res = load_text(BOOKINFO + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings-lb, namespace: bookinfo}
spec:
  host: ratings
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
""", "bookinfo.yaml")
    snap = Snapshot(res.objects)
    config = analyze(snap, rules=[Starves()])
    assert [c.code for c in config] == ["MS1998"]
    df = table(requests("reviews-v1", fqdn("ratings"), "no_endpoints", 20),
               requests("productpage-v1", fqdn("reviews"), "no_endpoints", 20))
    out = correlate(runtime(df), config, snap)
    uh = {f.evidence["edge_key"]: f for f in out if f.code == "MS3004"}
    hit = uh[fqdn("ratings")]
    assert (hit.resource.kind, hit.resource.name, hit.resource.path) == \
        ("DestinationRule", "ratings-lb", "spec/trafficPolicy/loadBalancer")
    assert hit.resource.source == f"bookinfo.yaml:{snap.find('DestinationRule', 'bookinfo', 'ratings-lb').line_of('spec/trafficPolicy/loadBalancer')}"
    assert "MS1998" in hit.equivalents and "starves" in hit.evidence["cause"]
    # the edge the object does not govern is not blamed on it
    assert "config_findings" not in uh[fqdn("reviews")].evidence
    # evidence that does not show the signature is not joined either (NC is not UH)
    nc = correlate(runtime(requests("reviews-v1", fqdn("ratings"), "no_cluster", 20)), config, snap)
    assert all("config_findings" not in f.evidence for f in nc if f.code == "MS3006")
    # and without the declaration nothing joins them: the signature is the only link
    monkeypatch.setitem(registry.CATALOG, "MS1998", registry.parse_catalog([{
        k: v for k, v in {"code": "MS1998", "name": "SyntheticBalancerStarves", "severity": "warning",
                          "category": "route", "template": "load balancer {lb} of {host} starves its endpoints"}.items()
    }], "synthetic.yaml")[0])
    plain = correlate(runtime(df), config, snap)
    assert all("config_findings" not in f.evidence for f in plain)


@pytest.mark.parametrize("signature,error", [
    ({"flags": "NC", "edges": ["sideways"]}, "signature.edges 'sideways'"),
    ({"codes": ["abc"]}, "signature.codes"),
    ({"details": ["("]}, "signature.details"),
    ({"edges": ["host"]}, "at least one of flags, codes, details"),
    ({"flags": ["NC"], "color": 1}, "unknown field(s) color"),
])
def test_a_bad_signature_is_rejected_naming_the_entry_and_field(signature, error):
    from diagnose.catalog.registry import CatalogError, parse_catalog
    with pytest.raises(CatalogError) as exc:
        parse_catalog([{"code": "MS1998", "name": "Synthetic", "severity": "error", "category": "route",
                        "template": "x", "signature": signature}], "synthetic.yaml")
    assert "synthetic.yaml MS1998" in str(exc.value) and error in str(exc.value)


def test_every_signature_in_the_catalog_names_known_flags():
    from diagnose.catalog.registry import CATALOG
    envoy_flags = {"UC", "UF", "URX", "UH", "NR", "NC", "UO", "UT", "DC", "FI", "DI", "UR", "LR", "RL", "UAEX", "DPE"}
    sigs = {c: e.signature for c, e in CATALOG.items() if e.signature}
    assert len(sigs) >= 15
    for code, sig in sigs.items():
        assert set(sig.flags) <= envoy_flags, code
        assert not code.startswith(("MS3", "MS4")), f"{code}: signatures belong to config codes"


def test_a_sidecars_no_route_blames_the_mesh_route_not_the_gateways_wildcard_one():
    """The gateway's VirtualService (hosts: *) covers every host but governs only what gateway pods send."""
    res = load_text(BOOKINFO + """---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: bookinfo}
spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: bookinfo}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template:
    metadata: {labels: {istio: ingressgateway}}
    spec: {containers: [{name: istio-proxy, image: proxy}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: bookinfo}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http: [{match: [{headers: {x-canary: {exact: "1"}}}], route: [{destination: {host: ratings}}]}]
""", "bookinfo.yaml")
    snap = Snapshot(res.objects)
    nr = next(f for f in correlate(runtime(requests("reviews-v1", fqdn("ratings"), "no_route", 10)), [], snap)
              if f.code == "MS3005")
    assert (nr.resource.kind, nr.resource.name) == ("VirtualService", "ratings")
    from_gateway = next(f for f in correlate(runtime(requests("istio-ingressgateway", fqdn("ratings"), "no_route", 10)),
                                             [], snap) if f.code == "MS3005")
    assert (from_gateway.resource.kind, from_gateway.resource.name) == ("VirtualService", "edge")
