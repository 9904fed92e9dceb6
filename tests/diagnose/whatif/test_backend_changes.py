"""What-if of changes to what a route's backends are, not to the routes: Deployments (pod template labels,
deleted versions) and Services (selector, deleted, ports).

The replay walked routes again only for hosts whose VirtualService or DestinationRule changed, so a pod
template relabelled out of a subset, a Service whose selector no longer matches, a Deployment or Service
deleted came back "nothing breaks" while Envoy would answer 503 to every request routed there. At 67169a0
each breaking case here predicted nothing (the port rename too: it was silently safe); a pod relabelled into
a STRICT policy's selector was already judged (the server side re-evaluates everything when a Deployment
changes) and stays here as a guard.
"""
from __future__ import annotations

import pytest

from diagnose.whatif.replay import overlay, predict
from diagnose.whatif.run import impact
from tests.diagnose.whatif.test_deletion import ROUTED, _objs
from tests.diagnose.whatif.test_replay import _live, _window

HOST = "reviews.bookinfo.svc.cluster.local"
EDGE = ("bookinfo/productpage-v1", HOST)  # 3 rps observed to reviews-v1, 2 to reviews-v2; routed 60/40 to v1/v2


def _deployment(name: str, labels: dict[str, str], image: str = "x") -> str:
    lab = ", ".join(f"{k}: {v}" for k, v in labels.items())
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: bookinfo, labels: {{{lab}}}}}
spec:
  selector: {{matchLabels: {{{lab}}}}}
  template:
    metadata: {{labels: {{{lab}}}}}
    spec: {{serviceAccountName: bookinfo-reviews, containers: [{{name: c, image: {image}, ports: [{{containerPort: 9080}}]}}]}}
"""


SERVICE = """apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {app: %s}
  ports: [{name: %s, port: 9080, targetPort: 9080}]
"""


def _live_routed():
    return overlay(_live(), _objs(ROUTED))


def _broken(rep):
    return {(i.source, i.host): (round(i.broken_rps, 6), i.certain, i.kind) for i in rep.impacts if i.broken_rps}


@pytest.mark.parametrize("proposal, rps, says", [
    # the pod template relabelled: subset v1 (version: v1) selects no pod any more
    (_deployment("reviews-v1", {"app": "reviews", "version": "v1-canary"}), 3.0, "no workload matches subset v1"),
    # the Service's selector edited to a typo: nothing behind the host
    (SERVICE % ("reviewz", "http"), 5.0, "(labels {'app': 'reviewz'"),
])
def test_a_backend_edit_that_leaves_routed_traffic_nowhere_breaks_it(proposal, rps, says) -> None:
    rep = predict(_live_routed(), _objs(proposal), _window(), 3600, findings=False)
    got = _broken(rep)
    assert got == {EDGE: (rps, True, "no_ready_workload")}, got
    assert says in next(i for i in rep.impacts if i.broken_rps).reason


@pytest.mark.parametrize("ref, rps, says", [
    ("Deployment/bookinfo/reviews-v1", 3.0, "no workload matches subset v1"),  # the version a route still sends 60 % to
    ("Service/bookinfo/reviews", 5.0, "no Service for host"),
])
def test_deleting_a_routed_deployment_or_the_service_breaks_its_callers(ref, rps, says) -> None:
    rep = impact(_live_routed(), [], _window(), 3600, delete=[ref])
    assert _broken(rep) == {EDGE: (rps, True, "no_ready_workload")}, _broken(rep)
    imp = next(i for i in rep.impacts if i.broken_rps)
    assert says in imp.reason and imp.deleted[0].startswith(ref.split("/")[0] + " bookinfo/")


def test_backend_edits_that_keep_every_subset_served_break_nothing() -> None:
    live = _live_routed()
    same_labels = _deployment("reviews-v1", {"app": "reviews", "version": "v1"}, image="reviews:v1.1")  # a new image
    v3_gone = "Deployment/bookinfo/reviews-v3"  # no route sends to v3
    assert _broken(predict(live, _objs(same_labels), _window(), 3600, findings=False)) == {}
    assert _broken(impact(live, [], _window(), 3600, delete=[v3_gone])) == {}
    assert _broken(predict(live, _objs(SERVICE % ("reviews", "http")), _window(), 3600, findings=False)) == {}


def test_a_pod_relabelled_into_a_strict_policy_refuses_its_plaintext_callers() -> None:
    strict = _objs("""apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy-strict, namespace: bookinfo}
spec: {selector: {matchLabels: {tier: legacy}}, mtls: {mode: STRICT}}
""")
    details = _deployment("details-v1", {"app": "details", "version": "v1", "tier": "legacy"})
    got = _broken(predict(overlay(_live(), strict), _objs(details), _window(), 3600, findings=False))
    assert got == {("legacy/curl", "details.bookinfo.svc.cluster.local"): (1.5, True, "mtls_strict")}, got


def test_a_service_port_rename_is_at_risk_not_safe() -> None:
    rep = predict(_live_routed(), _objs(SERVICE % ("reviews", "tcp-reviews")), _window(), 3600, findings=False)
    assert rep.broken_rps == 0 and rep.at_risk_rps == pytest.approx(5.0)
    [imp] = rep.impacts
    assert imp.kind == "not_judged" and not imp.certain and "tcp-reviews" in imp.reason
    assert imp.rule["kind"] == "Service" and imp.rule["path"] == "spec/ports"


def test_a_host_list_edit_that_takes_in_another_service_puts_its_callers_at_risk() -> None:
    """`hosts: [reviews, ratings]` sends ratings' callers to the reviews pods: at risk (MS5007), not a mere shift
    (at 67169a0: info MS5004 only, exit 0). A typo host with no Service stays certain (MS5003), not counted twice."""
    rep = predict(_live_routed(), _objs(ROUTED.replace("hosts: [reviews]", "hosts: [reviews, ratings]")), _window(), 3600,
                  findings=False)
    risky = {(i.source, i.host): i.broken_rps for i in rep.impacts if i.kind == "not_judged"}
    ratings = "ratings.bookinfo.svc.cluster.local"
    assert risky == {("bookinfo/reviews-v2", ratings): pytest.approx(2.0), ("other/batch", ratings): pytest.approx(0.5)}
    assert rep.broken_rps == 0 and "another service" in next(i.reason for i in rep.impacts if i.kind == "not_judged")
    typo = predict(_live(), _objs(ROUTED.replace("{host: reviews, subset: v1}, weight: 60", "{host: reviewz}, weight: 60")),
                   _window(), 3600, findings=False)
    assert {i.kind for i in typo.impacts if i.broken_rps} == {"no_ready_workload"}, [(i.kind, i.reason) for i in typo.impacts]
