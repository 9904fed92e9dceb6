"""Sequences of several changes, ranked by what each one touches, not by when it came or where it lives.

Each case records a real journal: the culprit, then unrelated or inert changes closer to the onset (the
order in which recency alone would get it wrong). Classes: a policy with no selector (namespace- or
mesh-wide), a change reverted before the onset, a rename that kept the spec, an object of another namespace
that names the host but is exported only to its own namespace.
"""
from __future__ import annotations

from diagnose.changes import rank
from mesh.journal import Journal, content_of

T0 = 2_000_000.0
DR_REVIEWS = {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}


def _journal(tmp_path, steps) -> Journal:
    """steps: (seconds after T0, kind, namespace, name, spec or None for a delete)."""
    j = Journal(tmp_path / "journal.sqlite")
    j.observe("DestinationRule", "bookinfo", "reviews", content_of(DR_REVIEWS), at=T0 - 100, initial=True)
    j.observe("DestinationRule", "bookinfo", "ratings", content_of({"host": "ratings"}), at=T0 - 100, initial=True)
    for at, kind, ns, name, spec in steps:
        j.observe(kind, ns, name, None if spec is None else content_of(spec), deleted=spec is None,
                  who="kubectl-client-side-apply (Update)", at=T0 + at)
    return j


def _finding(onset: float, host: str = "reviews", caller: str = "productpage-v1") -> dict:
    return {"code": "MS3001", "category": "runtime", "first_seen": onset,
            "resource": {"kind": "Service", "name": host, "namespace": "bookinfo"}, "related": [],
            "evidence": {"edge_key": f"{host}.bookinfo.svc.cluster.local",
                         "edges": [{"source": caller, "source_namespace": "bookinfo"}]}}


NOISE = [  # unrelated changes of the same namespace and elsewhere, made after the culprit
    (20, "DestinationRule", "bookinfo", "ratings", {"host": "ratings", "trafficPolicy": {"connectionPool": {
        "tcp": {"maxConnections": 50}}}}),
    (22, "AuthorizationPolicy", "bookinfo", "billing-allow", {"selector": {"matchLabels": {"app": "billing"}},
                                                              "action": "ALLOW", "rules": [{}]}),
    (24, "PeerAuthentication", "shop", "shop-strict", {"selector": {"matchLabels": {"app": "cart"}},
                                                       "mtls": {"mode": "STRICT"}}),
]


def test_a_mesh_wide_policy_in_the_root_namespace_outranks_unrelated_changes_of_the_finding_namespace(tmp_path):
    j = _journal(tmp_path, [(0, "PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}),
                            *NOISE])
    ranked = rank(_finding(T0 + 40), j.query())
    assert ranked[0]["ref"] == "PeerAuthentication istio-system/default", ranked
    assert ranked[0]["likely_cause"] and "mesh-wide" in ranked[0]["why"]
    assert all(not r["likely_cause"] for r in ranked[1:])


def test_a_namespace_wide_policy_outranks_later_same_namespace_changes_but_not_one_naming_the_host(tmp_path):
    deny_all = {"action": "DENY", "rules": [{"from": [{"source": {"notNamespaces": ["bookinfo"]}}]}]}
    j = _journal(tmp_path, [(0, "AuthorizationPolicy", "bookinfo", "deny-outside", deny_all), *NOISE])
    ranked = rank(_finding(T0 + 40), j.query())
    assert ranked[0]["ref"] == "AuthorizationPolicy bookinfo/deny-outside", ranked
    assert "namespace-wide" in ranked[0]["why"]
    # a policy of another namespace with no selector applies there only: not a likely cause here
    j2 = _journal(tmp_path / "other", [(0, "AuthorizationPolicy", "shop", "deny-all", {}), *NOISE[:1]])
    assert not any(r["likely_cause"] for r in rank(_finding(T0 + 40), j2.query()))
    # an object naming the hurt host is aimed more precisely than one that covers a whole namespace
    dr = {**DR_REVIEWS, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    j3 = _journal(tmp_path / "both", [(0, "DestinationRule", "bookinfo", "reviews", dr),
                                      (10, "AuthorizationPolicy", "bookinfo", "deny-outside", deny_all)])
    assert rank(_finding(T0 + 40), j3.query())[0]["ref"] == "DestinationRule bookinfo/reviews"


def test_a_change_reverted_before_the_onset_ranks_below_the_change_that_stayed(tmp_path):
    bad_dr = {**DR_REVIEWS, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    fault = {"hosts": ["reviews"], "http": [{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 50}}},
                                             "route": [{"destination": {"host": "reviews"}}]}]}
    j = _journal(tmp_path, [(0, "VirtualService", "bookinfo", "reviews", fault),
                            (10, "DestinationRule", "bookinfo", "reviews", bad_dr),
                            (20, "DestinationRule", "bookinfo", "reviews", DR_REVIEWS),  # the revert
                            (25, "DestinationRule", "bookinfo", "tmp", {"host": "reviews"}),  # created ...
                            (30, "DestinationRule", "bookinfo", "tmp", None)])  # ... and deleted again
    ranked = rank(_finding(T0 + 40), j.query(), top=10)
    assert ranked[0]["ref"] == "VirtualService bookinfo/reviews", ranked
    assert ranked[0]["likely_cause"]
    rest = ranked[1:]
    assert len(rest) == 4 and all(r["relation"] == "no net change" and not r["likely_cause"] for r in rest)
    assert all("reverted" in r["why"] for r in rest)
    # reverted only after the onset: the change was in force when the finding began, so it stays a cause
    ranked = rank(_finding(T0 + 15), j.query(), top=10)
    assert ranked[0]["ref"] == "DestinationRule bookinfo/reviews" and ranked[0]["likely_cause"]


def test_a_rename_that_kept_the_spec_ranks_below_the_change_that_broke_traffic(tmp_path):
    deny = {"selector": {"matchLabels": {"app": "reviews"}}, "action": "DENY",
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/bookinfo/sa/bookinfo-productpage"]}}]}]}
    j = _journal(tmp_path, [(0, "AuthorizationPolicy", "bookinfo", "reviews-deny", deny),
                            (10, "DestinationRule", "bookinfo", "reviews", None),
                            (11, "DestinationRule", "bookinfo", "reviews-subsets", DR_REVIEWS)])
    ranked = rank(_finding(T0 + 40), j.query())
    assert ranked[0]["ref"] == "AuthorizationPolicy bookinfo/reviews-deny", ranked
    assert {r["ref"] for r in ranked[1:]} == {"DestinationRule bookinfo/reviews",
                                              "DestinationRule bookinfo/reviews-subsets"}
    assert all("renamed" in r["why"] for r in ranked[1:])
    # a rename that also changed the spec is a change like any other
    j2 = _journal(tmp_path / "changed", [(0, "AuthorizationPolicy", "bookinfo", "reviews-deny", deny),
                                         (10, "DestinationRule", "bookinfo", "reviews", None),
                                         (11, "DestinationRule", "bookinfo", "reviews-subsets", {"host": "reviews"})])
    assert rank(_finding(T0 + 40), j2.query())[0]["ref"] == "DestinationRule bookinfo/reviews-subsets"


def test_an_object_of_another_namespace_naming_the_host_counts_only_where_it_is_exported(tmp_path):
    bad_dr = {**DR_REVIEWS, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    local_vs = {"hosts": ["reviews.bookinfo.svc.cluster.local"], "exportTo": ["."],
                "http": [{"route": [{"destination": {"host": "reviews.bookinfo.svc.cluster.local"}}],
                          "timeout": "1ms"}]}
    j = _journal(tmp_path, [(0, "DestinationRule", "bookinfo", "reviews", bad_dr),
                            (10, "VirtualService", "shop", "reviews-for-shop", local_vs)])
    ranked = rank(_finding(T0 + 40), j.query())
    assert ranked[0]["ref"] == "DestinationRule bookinfo/reviews", ranked
    assert ranked[1]["ref"] == "VirtualService shop/reviews-for-shop" and not ranked[1]["likely_cause"]
    assert "exported only to shop" in ranked[1]["why"]
    # the same object exported to the callers' namespace (or everywhere) does shape their traffic
    for export in (["bookinfo"], ["*"], None):
        vs = {k: v for k, v in local_vs.items() if k != "exportTo"} | ({"exportTo": export} if export else {})
        j2 = _journal(tmp_path / str(export), [(0, "DestinationRule", "bookinfo", "reviews", bad_dr),
                                              (10, "VirtualService", "shop", "reviews-for-shop", vs)])
        top = rank(_finding(T0 + 40), j2.query())[0]
        assert top["ref"] == "VirtualService shop/reviews-for-shop" and top["likely_cause"], (export, top)


def test_a_fault_cleared_and_applied_again_causes_the_episode_it_reopens(tmp_path):
    """Back to an earlier state is no net change only if the finding never lived in that state: here the fault
    was there (the finding seen) before it was cleared, so applying it again is the cause of the new episode."""
    bad_dr = {**DR_REVIEWS, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    j = _journal(tmp_path, [(0, "DestinationRule", "bookinfo", "reviews", bad_dr),  # the fault
                            (30, "DestinationRule", "bookinfo", "reviews", DR_REVIEWS),  # cleared: resolved
                            (60, "DestinationRule", "bookinfo", "reviews", bad_dr),  # applied again
                            *[(61 + i, *n[1:]) for i, n in enumerate(NOISE)]])
    seen_before = {**_finding(T0 + 70), "first_seen": T0 + 5, "opened_at": T0 + 70}
    ranked = rank(seen_before, j.query(since=T0 + 20), onset=T0 + 70)  # the reopening's own window
    assert ranked[0]["ref"] == "DestinationRule bookinfo/reviews" and ranked[0]["likely_cause"], ranked
    # the same sequence before a finding first seen after it: the object ends as it began, so it is inert
    ranked = rank(_finding(T0 + 70), j.query(since=T0 + 20), onset=T0 + 70, top=10)
    assert all(r["tier"] == 0 for r in ranked if r["ref"] == "DestinationRule bookinfo/reviews"), ranked


def test_a_gateway_api_gateway_journaled_by_a_cluster_is_the_finding_own_object(tmp_path):
    """mesh/kube journals the Gateway API's Gateway as KubernetesGateway (apart from Istio's Gateway of the same
    name); a finding names it by the kind its YAML says. Either way the change is the finding's own object."""
    gw = {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}
    j = _journal(tmp_path, [(0, "KubernetesGateway", "bookinfo", "public", gw), *NOISE])
    finding = {**_finding(T0 + 40), "resource": {"kind": "Gateway", "name": "public", "namespace": "bookinfo"}}
    ranked = rank(finding, j.query())
    assert ranked[0]["ref"] == "KubernetesGateway bookinfo/public" and ranked[0]["tier"] == 4, ranked
