"""What-if replay over the bookinfo config and a window of edges shaped like the collector's rate frame."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from collector import schema
from diagnose.whatif import edges_of, predict
from mesh.config import load_paths, load_text

BOOKINFO = Path(__file__).resolve().parents[3] / "mesh" / "demo" / "bookinfo.yaml"
TD = "cluster.local"


def _live():
    return load_paths([BOOKINFO]).objects


def _row(src_ns, src_wl, dst_wl, host, rps, mtls=True, sa=None, code="200", reporter="destination"):
    return {schema.REPORTER: reporter, schema.METRIC: schema.ISTIO_REQUESTS_TOTAL,
            schema.SOURCE_WORKLOAD_NAMESPACE: src_ns, schema.SOURCE_WORKLOAD: src_wl,
            schema.SOURCE_PRINCIPAL: f"spiffe://{TD}/ns/{src_ns}/sa/{sa or src_wl}" if mtls else "unknown",
            schema.CONNECTION_SECURITY_POLICY: "mutual_tls" if mtls else "none",
            schema.DESTINATION_SERVICE: f"{host}.bookinfo.svc.cluster.local",
            schema.DESTINATION_WORKLOAD_NAMESPACE: "bookinfo", schema.DESTINATION_WORKLOAD: dst_wl,
            schema.DESTINATION_APP: dst_wl.rsplit("-", 1)[0], schema.DESTINATION_VERSION: dst_wl.rsplit("-", 1)[1],
            schema.RESPONSE_CODE: code, schema.RATE: rps}


def _window():
    return pd.DataFrame([
        _row("bookinfo", "productpage-v1", "reviews-v1", "reviews", 3.0, sa="bookinfo-productpage"),
        _row("bookinfo", "productpage-v1", "reviews-v2", "reviews", 2.0, sa="bookinfo-productpage"),
        _row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, sa="bookinfo-productpage"),
        _row("legacy", "curl", "details-v1", "details", 1.5, mtls=False),
        _row("bookinfo", "reviews-v2", "ratings-v1", "ratings", 2.0, sa="bookinfo-reviews"),
        _row("other", "batch", "ratings-v1", "ratings", 0.5, sa="batch"),
        # the client side of an edge the server also reported counts once
        _row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, sa="bookinfo-productpage", reporter="source"),
    ])


def _proposed(text: str):
    got = load_text(text, "proposed.yaml")
    assert not got.problems, got.problems
    return got.objects


def test_edges_count_each_request_once() -> None:
    e = edges_of(_window())
    assert len(e) == 6
    assert e["rps"].sum() == pytest.approx(13.0)


def test_strict_mtls_breaks_only_plaintext_callers() -> None:
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
""")
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    broken = [(i.kind, i.source, i.destination, i.broken_rps) for i in rep.impacts if i.broken_rps]
    assert broken == [("mtls_strict", "legacy/curl", "bookinfo/details-v1", 1.5)]
    assert rep.impacts[0].rule["kind"] == "PeerAuthentication" and rep.impacts[0].rule["path"] == "spec/mtls/mode"
    assert rep.broken_rps == pytest.approx(1.5)


def test_permissive_to_strict_in_another_namespace_breaks_nothing() -> None:
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: elsewhere}
spec: {mtls: {mode: STRICT}}
""")
    assert predict(_live(), prop, _window(), 3600, findings=False).impacts == []


def test_allow_policy_denies_every_caller_it_does_not_name() -> None:
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-allow, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/bookinfo/sa/bookinfo-reviews"]}}]
""")
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    got = {(i.kind, i.source, i.destination): i for i in rep.impacts}
    assert set(got) == {("authz_deny", "other/batch", "bookinfo/ratings-v1")}
    imp = got[("authz_deny", "other/batch", "bookinfo/ratings-v1")]
    assert imp.broken_rps == 0.5 and imp.certain
    assert imp.rule["name"] == "ratings-allow" and "no ALLOW rule" in imp.reason


def test_deny_by_namespace_names_the_rule_and_plaintext_is_not_a_namespace() -> None:
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-bookinfo, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules:
  - {}
  - from: [{source: {namespaces: ["bookinfo"]}}]
""".replace("  - {}\n", ""))
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    assert [(i.source, i.destination, i.rule["path"]) for i in rep.impacts] == [
        ("bookinfo/productpage-v1", "bookinfo/details-v1", "spec/rules[0]")]


def test_deny_on_a_path_is_at_risk_not_certain() -> None:
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"], methods: ["POST"]}}]
""")
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    assert {i.source for i in rep.impacts} == {"bookinfo/productpage-v1", "legacy/curl"}
    assert not any(i.certain for i in rep.impacts)
    assert rep.broken_rps == 0 and rep.at_risk_rps == pytest.approx(5.5)


def test_dry_run_policy_denies_nothing() -> None:
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: bookinfo, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{}]}
""")
    assert predict(_live(), prop, _window(), 3600, findings=False).impacts == []


def test_route_to_undefined_subset_breaks_its_weight_share() -> None:
    prop = _proposed("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v4, labels: {version: v4}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v4}, weight: 20}
""")
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    unready = [i for i in rep.impacts if i.kind == "no_ready_workload"]
    assert len(unready) == 1 and unready[0].broken_rps == pytest.approx(1.0)  # 20% of 5 rps
    assert "subset v4" in unready[0].reason and unready[0].rule["path"] == "spec/http[0]/route"
    shift = [i for i in rep.impacts if i.kind == "shift"][0]
    assert shift.shift["reviews.bookinfo.svc.cluster.local/v1"] == pytest.approx(4.0)
    assert shift.shift["reviews.bookinfo.svc.cluster.local"] == pytest.approx(-5.0)


def test_empty_window_says_no_traffic() -> None:
    rep = predict(_live(), [], pd.DataFrame(), 3600, findings=False)
    assert rep.no_traffic and rep.impacts == [] and rep.to_dict()["no_traffic"] is True


def test_prediction_does_not_mutate_live_objects() -> None:
    live = _live()
    before = [(o.kind, o.namespace, o.name, repr(o.spec)) for o in live]
    predict(live, _proposed("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                            "metadata: {name: default, namespace: bookinfo}\nspec: {mtls: {mode: STRICT}}\n"),
            _window(), 3600)
    assert [(o.kind, o.namespace, o.name, repr(o.spec)) for o in live] == before


def test_each_impact_carries_its_whole_edge_rate_for_the_broken_share() -> None:
    """A deny hits productpage -> reviews at two destination workloads: each impact names 5 rps as the edge's
    total (3 + 2), so broken_rps / edge_rps is the share of the edge that breaks, from one frame."""
    prop = _proposed("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-productpage, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/bookinfo/sa/bookinfo-productpage"]}}]}]
""")
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    hit = [i for i in rep.impacts if i.host.startswith("reviews.")]
    assert sorted(i.broken_rps for i in hit) == [2.0, 3.0]
    assert {i.edge_rps for i in hit} == {5.0}
    assert sum(i.broken_rps for i in hit) / hit[0].edge_rps == pytest.approx(1.0)


_MATCH_VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: ratings, namespace: bookinfo}}
spec:
  hosts: [ratings]
  http:
  - match: [{match}]
    route: [{{destination: {{host: ratings, subset: v9}}}}]
  - route: [{{destination: {{host: ratings, subset: v1}}}}]
"""


@pytest.mark.parametrize("match, certain, at_risk", [
    # judged from the edge: the caller's labels (reviews-v2's Deployment), its namespace, the port, the gateways
    ("{sourceLabels: {app: reviews}}", {"bookinfo/reviews-v2": 2.0}, {"other/batch": 0.5}),  # batch's labels unknown
    ("{sourceLabels: {app: productpage}}", {}, {"other/batch": 0.5}),
    ("{sourceNamespace: other}", {"other/batch": 0.5}, {}),
    ("{port: 9080}", {"bookinfo/reviews-v2": 2.0, "other/batch": 0.5}, {}),
    ("{port: 1234}", {}, {}),
    ("{gateways: [bookinfo-gateway]}", {}, {}),  # a gateway-only route: sidecar traffic never takes it
    ("{gateways: [mesh], sourceNamespace: bookinfo}", {"bookinfo/reviews-v2": 2.0}, {}),
    # not in metrics: which requests carry this path or header is unknown, so the whole edge is at risk
    ("{uri: {prefix: /admin}}", {}, {"bookinfo/reviews-v2": 2.0, "other/batch": 0.5}),
    ("{headers: {x-canary: {exact: 'on'}}, sourceNamespace: other}", {}, {"other/batch": 0.5}),
])
def test_match_routes_are_judged_where_metrics_allow(match, certain, at_risk) -> None:
    """A match route sending its requests to an undefined subset: certain where the edge decides the match,
    'at risk' (certain=False) where request attributes decide it, nothing where it cannot apply."""
    rep = predict(_live(), _proposed(_MATCH_VS.format(match=match)), _window(), 3600, findings=False)
    broken = [i for i in rep.impacts if i.kind == "no_ready_workload"]
    assert {i.source: i.broken_rps for i in broken if i.certain} == pytest.approx(certain)
    assert {i.source: i.broken_rps for i in broken if not i.certain} == pytest.approx(at_risk)
    for i in broken:
        assert i.rule["path"] == "spec/http[0]/route" and "subset v9" in i.reason
        assert i.certain or "not in metrics" in i.reason
