"""What-if of a deletion: the live config without the object, the edges it governed re-judged.

Each governing kind the replay models (DestinationRule, VirtualService, PeerAuthentication,
AuthorizationPolicy) is deleted from a live config where its absence breaks something, and from one where
it breaks nothing; an unknown name is refused naming it and what its namespace holds. At 67169a0 `impact`
took no deletion at all (files only): every test here fails there.
"""
from __future__ import annotations

import pytest

from diagnose.whatif.replay import overlay
from diagnose.whatif.run import findings_of, impact, verdict
from mesh.config import load_text
from tests.diagnose.whatif.test_replay import _live, _row, _window


def _objs(text: str):
    got = load_text(text, "live.yaml")
    assert not got.problems, got.problems
    return got.objects


ROUTED = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}, weight: 60}, {destination: {host: reviews, subset: v2}, weight: 40}]}]
"""
STRICT_NS = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
"""
DETAILS_PERMISSIVE = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: details-legacy, namespace: bookinfo}
spec: {selector: {matchLabels: {app: details}}, mtls: {mode: PERMISSIVE}}
"""
ALLOW = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: %s, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["%s"]}}]}]
"""


def _run(live, delete, files=(), window=None):
    rep = impact(live, list(files), _window() if window is None else window, 3600, delete=delete)
    return rep, verdict(rep)


def _broken(rep):
    return {(i.kind, i.source, i.destination): (round(i.broken_rps, 6), i.certain) for i in rep.impacts if i.broken_rps}


def test_deleting_the_destination_rule_a_route_names_subsets_of_breaks_the_routed_edges() -> None:
    live = overlay(_live(), _objs(ROUTED))
    rep, d = _run(live, ["DestinationRule/bookinfo/reviews"])
    assert d["predicted"] and d["breaks"]
    assert _broken(rep) == {("no_ready_workload", "bookinfo/productpage-v1", "reviews.bookinfo.svc.cluster.local"): (5.0, True)}
    [imp] = [i for i in rep.impacts if i.broken_rps]
    assert "subset v1 is not defined" in imp.reason and "subset v2 is not defined" in imp.reason
    assert imp.deleted == ["DestinationRule bookinfo/reviews (" + imp.deleted[0].split("(", 1)[1]]
    assert imp.deleted[0].startswith("DestinationRule bookinfo/reviews (") and "bookinfo.yaml:" in imp.deleted[0]
    assert [x["name"] for x in d["deleted"]] == ["reviews"] and d["deleted"][0]["kind"] == "DestinationRule"
    msg = next(f for f in findings_of(rep) if f.code == "MS5003").message
    assert "[deleting DestinationRule bookinfo/reviews" in msg
    # the config analysis sees the dangling subsets too
    assert any(f["code"] == "MS1002" for f in d["findings"]), [f["code"] for f in d["findings"]]
    # the same deletion where no route names a subset (the demo's own config) breaks nothing
    rep, d = _run(_live(), ["DestinationRule/bookinfo/reviews"])
    assert not d["breaks"] and _broken(rep) == {}


def test_deleting_a_virtual_service_shifts_its_traffic_back_to_every_version() -> None:
    live = overlay(_live(), _objs(ROUTED))
    rep, d = _run(live, ["vs/bookinfo/reviews"])
    assert not d["breaks"]
    [shift] = [i for i in rep.impacts if i.kind == "shift"]
    host = "reviews.bookinfo.svc.cluster.local"
    assert shift.shift == {host: pytest.approx(5.0), f"{host}/v1": pytest.approx(-3.0), f"{host}/v2": pytest.approx(-2.0)}
    assert shift.deleted and shift.deleted[0].startswith("VirtualService bookinfo/reviews")
    assert shift.rule["kind"] == "VirtualService" and shift.rule["name"] == "reviews"  # the host falls back: the deleted VS


def test_deleting_a_workload_permissive_exception_under_a_strict_namespace_refuses_plaintext_callers() -> None:
    live = overlay(_live(), _objs(STRICT_NS) + _objs(DETAILS_PERMISSIVE))
    rep, d = _run(live, ["PeerAuthentication/bookinfo/details-legacy"])
    assert _broken(rep) == {("mtls_strict", "legacy/curl", "bookinfo/details-v1"): (1.5, True)}
    [imp] = rep.impacts
    assert imp.rule["name"] == "default" and imp.deleted[0].startswith("PeerAuthentication bookinfo/details-legacy")
    # deleting the namespace's STRICT policy instead loosens: nothing breaks
    rep, d = _run(live, ["PeerAuthentication/bookinfo/default"])
    assert _broken(rep) == {} and not d["breaks"]


def test_deleting_one_of_two_allow_policies_denies_the_callers_only_it_allowed() -> None:
    pp = "cluster.local/ns/bookinfo/sa/bookinfo-reviews"
    live = overlay(_live(), _objs(ALLOW % ("from-reviews", pp)) + _objs(ALLOW % ("from-batch", "cluster.local/ns/other/sa/batch")))
    rep, _ = _run(live, ["AuthorizationPolicy/bookinfo/from-batch"])
    assert _broken(rep) == {("authz_deny", "other/batch", "bookinfo/ratings-v1"): (0.5, True)}
    assert rep.impacts[0].deleted[0].startswith("AuthorizationPolicy bookinfo/from-batch")
    # deleting the last ALLOW policy opens the workload (Istio: no ALLOW policy, no ALLOW check): nothing breaks
    rep, _ = _run(overlay(_live(), _objs(ALLOW % ("from-reviews", pp))), ["ap/bookinfo/from-reviews"])
    assert _broken(rep) == {}


def test_several_deletions_each_impact_names_the_one_that_causes_it() -> None:
    live = overlay(_live(), _objs(ROUTED) + _objs(STRICT_NS) + _objs(DETAILS_PERMISSIVE))
    rep, d = _run(live, [{"kind": "DestinationRule", "namespace": "bookinfo", "name": "reviews"},
                         "peerauthentications/bookinfo/details-legacy"])
    by = {i.kind: i.deleted for i in rep.impacts if i.broken_rps}
    assert [x.split(" (")[0] for x in by["no_ready_workload"]] == ["DestinationRule bookinfo/reviews"]
    assert [x.split(" (")[0] for x in by["mtls_strict"]] == ["PeerAuthentication bookinfo/details-legacy"]
    # a deletion beside an edit: the edit's impacts name no deletion
    deny = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: no-other, namespace: bookinfo}\n" \
        "spec: {selector: {matchLabels: {app: ratings}}, action: DENY, rules: [{from: [{source: {namespaces: [other]}}]}]}\n"
    rep, _ = _run(overlay(_live(), _objs(ROUTED)), ["DestinationRule/bookinfo/reviews"], files=[("deny.yaml", deny)])
    by = {i.kind: i.deleted for i in rep.impacts if i.broken_rps}
    assert by["authz_deny"] == [] and by["no_ready_workload"][0].startswith("DestinationRule bookinfo/reviews")


@pytest.mark.parametrize("ref, says", [
    ("DestinationRule/bookinfo/reviewz", ["DestinationRule bookinfo/reviewz", "did you mean reviews?", "details"]),
    ("DestinationRule/nowhere/reviews", ["no DestinationRule in namespace nowhere", "bookinfo"]),
    ("DestinatonRule/bookinfo/reviews", ["no live object is of kind DestinatonRule", "did you mean DestinationRule?"]),
    ("reviews", ["Kind/namespace/name"]),
    ({"kind": "DestinationRule", "name": ""}, ["non-empty"]),
])
def test_an_unknown_object_is_refused_naming_it_and_nothing_is_predicted(ref, says) -> None:
    rep, d = _run(_live(), [ref, "DestinationRule/bookinfo/details"])
    assert not d["predicted"] and d["breaks"] and rep.impacts == []
    [f] = d["findings"]
    assert f["code"] == "MS5009"
    for s in says:
        assert s in f["message"], (s, f["message"])


def test_no_traffic_still_names_the_deletion_and_its_config_findings() -> None:
    import pandas as pd
    live = overlay(_live(), _objs(ROUTED))
    rep, d = _run(live, ["DestinationRule/bookinfo/reviews"], window=pd.DataFrame([_row("x", "y", "details-v1", "details", 0.0)]))
    assert d["no_traffic"] and d["deleted"][0]["name"] == "reviews"
    assert any(f["code"] == "MS1002" for f in d["findings"])


def test_a_kind_two_api_groups_share_is_refused_unqualified_and_found_with_its_group() -> None:
    k8s_gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway, namespace: bookinfo}\n" \
        "spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}\n"
    istio_gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway, namespace: bookinfo}\n" \
        "spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n"
    live = [o for o in _live() if o.kind != "Gateway"] + _objs(k8s_gw) + _objs(istio_gw)
    rep, d = _run(live, ["Gateway/bookinfo/bookinfo-gateway"])
    assert not d["predicted"] and "write the kind with its API group" in d["findings"][0]["message"]
    rep, d = _run(live, ["Gateway.gateway.networking.k8s.io/bookinfo/bookinfo-gateway"])
    assert d["predicted"] and [x["kind"] for x in d["deleted"]] == ["Gateway"]
