"""What-if of AuthorizationPolicy `when` conditions and JWT request principals, one class at a time.

Conditions on what an edge carries (the caller's peer identity, hence its namespace; the port when
the Service has one) are judged: certain breakage or none. Conditions on what only requests carry
(headers, JWT principals and claims, client IPs) make the edge "at risk", naming the condition,
never a claim that it would pass or fail; except that where no RequestAuthentication applies to the
workload no request carries a validated JWT, so JWT matches are decided there. The window is test_replay's bookinfo window: ratings is
called by reviews-v2 (bookinfo, 2 rps) and by other/batch (0.5 rps), over mTLS.
"""
from __future__ import annotations

import pytest

from diagnose.whatif import predict
from mesh.config.model import ConfigObject
from mesh.controlplane.authz import policies_of
from mesh.controlplane.context import ConfigError
from tests.diagnose.whatif.test_replay import _live, _window

REVIEWS, BATCH = "bookinfo/reviews-v2", "other/batch"


def _policy(action: str, rule: dict) -> ConfigObject:
    return ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "ratings-guard", "bookinfo", spec={
        "selector": {"matchLabels": {"app": "ratings"}}, "action": action, "rules": [rule]})


# a RequestAuthentication over bookinfo: requests to ratings may carry a validated JWT (or not)
JWT = ConfigObject("security.istio.io/v1", "RequestAuthentication", "jwt", "bookinfo", spec={
    "jwtRules": [{"issuer": "https://issuer", "jwksUri": "https://issuer/jwks"}]})


def _impacts(action: str, rule: dict, live_extra: tuple = (JWT,)) -> dict[str, tuple[bool, float, str]]:
    rep = predict([*_live(), *live_extra], [_policy(action, rule)], _window(), 3600, findings=False)
    return {i.source: (i.certain, i.broken_rps, i.reason) for i in rep.impacts if i.kind == "authz_deny"}


# judged: (rule, {caller: certainly denied}); callers not listed are untouched
JUDGED = [
    pytest.param("DENY", {"when": [{"key": "source.namespace", "values": ["other"]}]}, {BATCH}, id="source.namespace"),
    pytest.param("DENY", {"when": [{"key": "source.namespace", "notValues": ["bookinfo"]}]}, {BATCH},
                 id="source.namespace-notValues"),
    pytest.param("DENY", {"when": [{"key": "source.principal", "values": ["cluster.local/ns/bookinfo/sa/bookinfo-reviews"]}]},
                 {REVIEWS}, id="source.principal"),
    pytest.param("DENY", {"when": [{"key": "destination.port", "values": ["9080"]}]}, {REVIEWS, BATCH},
                 id="destination.port-hit"),
    pytest.param("DENY", {"when": [{"key": "destination.port", "values": ["8443"]}]}, set(), id="destination.port-miss"),
    pytest.param("DENY", {"from": [{"source": {"namespaces": ["bookinfo"]}}],
                          "when": [{"key": "source.principal", "values": ["*/sa/batch"]}]}, set(), id="from-and-when"),
    pytest.param("ALLOW", {"when": [{"key": "source.namespace", "values": ["bookinfo"]}]}, {BATCH}, id="allow-namespace"),
]


@pytest.mark.parametrize("action,rule,denied", JUDGED)
def test_conditions_on_edge_attributes_are_judged(action: str, rule: dict, denied: set[str]) -> None:
    got = _impacts(action, rule)
    assert {s for s, (certain, _, _) in got.items() if certain} == denied, got
    assert all(certain for certain, _, _ in got.values()), got  # nothing left at risk
    rates = {REVIEWS: 2.0, BATCH: 0.5}
    assert {s: rps for s, (_, rps, _) in got.items()} == {s: rates[s] for s in denied}


# at risk: (rule, callers at risk, words the reason must name)
AT_RISK = [
    pytest.param("DENY", {"when": [{"key": "request.headers[x-canary]", "values": ["1"]}]}, {REVIEWS, BATCH},
                 ["request.headers[x-canary]"], id="request.headers"),
    pytest.param("DENY", {"when": [{"key": "request.auth.claims[groups]", "values": ["admin"]}]}, {REVIEWS, BATCH},
                 ["request.auth.claims[groups] (JWT)", "token"], id="request.auth.claims"),
    pytest.param("DENY", {"when": [{"key": "request.auth.claims[realm][role]", "values": ["x"]}]}, {REVIEWS, BATCH},
                 ["request.auth.claims[realm][role] (JWT)"], id="nested-claim"),
    pytest.param("DENY", {"from": [{"source": {"requestPrincipals": ["https://issuer/*"]}}]}, {REVIEWS, BATCH},
                 ["request.auth.principal (JWT)"], id="requestPrincipals"),
    pytest.param("DENY", {"when": [{"key": "source.ip", "values": ["10.0.0.0/8"]}]}, {REVIEWS, BATCH},
                 ["source.ip"], id="source.ip"),
    pytest.param("DENY", {"to": [{"operation": {"paths": ["/admin*"]}}]}, {REVIEWS, BATCH},
                 ["request path"], id="paths"),
    # the namespace is judged first: bookinfo's caller is certainly not matched, batch hinges on its token
    pytest.param("DENY", {"from": [{"source": {"namespaces": ["other"]}}],
                          "when": [{"key": "request.auth.claims[iss]", "values": ["https://issuer"]}]}, {BATCH},
                 ["request.auth.claims[iss] (JWT)"], id="namespace-and-claim"),
    pytest.param("ALLOW", {"from": [{"source": {"requestPrincipals": ["*"]}}]}, {REVIEWS, BATCH},
                 ["request.auth.principal (JWT)"], id="allow-requestPrincipals"),
]


@pytest.mark.parametrize("action,rule,risky,words", AT_RISK)
def test_conditions_on_request_attributes_leave_the_edge_at_risk_naming_them(action: str, rule: dict, risky: set[str],
                                                                             words: list[str]) -> None:
    got = _impacts(action, rule)
    assert set(got) == risky, got
    for s, (certain, rps, reason) in got.items():
        assert not certain, reason  # never claimed to fail
        assert "at risk" in reason and all(w in reason for w in words), reason
    rep = predict([*_live(), JWT], [_policy(action, rule)], _window(), 3600, findings=False)
    assert rep.broken_rps == 0.0 and rep.at_risk_rps == pytest.approx(sum({REVIEWS: 2.0, BATCH: 0.5}[s] for s in risky))


def test_without_a_request_authentication_jwt_matches_are_decided() -> None:
    """No RequestAuthentication applies to ratings: requests carry no validated JWT, so a DENY on a claim
    certainly matches nobody and an ALLOW that requires a request principal certainly denies everyone."""
    assert _impacts("DENY", {"when": [{"key": "request.auth.claims[groups]", "values": ["admin"]}]}, ()) == {}
    got = _impacts("ALLOW", {"from": [{"source": {"requestPrincipals": ["*"]}}]}, ())
    assert {s: (c, rps) for s, (c, rps, _) in got.items()} == {REVIEWS: (True, 2.0), BATCH: (True, 0.5)}
    assert all("no RequestAuthentication" in r for _, _, r in got.values()), got
    # a namespace-scoped one with a selector for another app does not cover ratings
    other = ConfigObject("security.istio.io/v1", "RequestAuthentication", "pp", "bookinfo", spec={
        "selector": {"matchLabels": {"app": "productpage"}}, "jwtRules": [{"issuer": "https://issuer"}]})
    assert all(c for c, _, _ in _impacts("ALLOW", {"from": [{"source": {"requestPrincipals": ["*"]}}]},
                                         (other,)).values())


def test_a_condition_that_does_not_translate_is_at_risk_not_silently_matching_nothing() -> None:
    got = _impacts("ALLOW", {"when": [{"key": "no.such.key", "values": ["x"]}]})
    assert set(got) == {REVIEWS, BATCH}
    assert all(not c and "does not load" in r and "no.such.key" in r for c, _, r in got.values()), got


def test_the_bundled_mesh_enforces_what_envoy_rbac_reads_and_refuses_jwt_naming_the_field() -> None:
    """The enforcing control plane builds `when` conditions on headers, IPs, peers, ports and SNI; what only a
    jwt_authn filter could feed (request principals, request.auth.*) is refused, naming the field."""
    for rule in ({"when": [{"key": "source.namespace", "values": ["x"]}]},
                 {"when": [{"key": "request.headers[x-canary]", "values": ["1"]}]},
                 {"when": [{"key": "source.ip", "notValues": ["10.0.0.0/8"]}]},
                 {"when": [{"key": "connection.sni", "values": ["*.local"]}]},
                 {"from": [{"source": {"ipBlocks": ["127.0.0.1"]}}]}):
        assert policies_of(_policy("DENY", rule), "cluster.local")
    refused = [({"from": [{"source": {"requestPrincipals": ["*"]}}]}, r"from\[0\]\.source\.requestPrincipals"),
               ({"from": [{"source": {"notRequestPrincipals": ["a/b"]}}]}, r"notRequestPrincipals"),
               ({"when": [{"key": "request.auth.claims[groups]", "values": ["a"]}]}, r"when\[0\]\.key.*request\.auth"),
               ({"when": [{"key": "experimental.envoy.filters.network.mysql_proxy[db.t]", "values": ["[select]"]}]},
                r"when\[0\]\.key")]
    for rule, field in refused:
        with pytest.raises(ConfigError, match=field):
            policies_of(_policy("DENY", rule), "cluster.local")
        assert policies_of(_policy("DENY", rule), "cluster.local", conditions=True)  # the what-if still builds it
    with pytest.raises(ConfigError, match=r"when\[0\]\.values"):
        policies_of(_policy("DENY", {"when": [{"key": "destination.port", "values": ["http"]}]}), "cluster.local",
                    conditions=True)
    with pytest.raises(ConfigError, match=r"to\[0\]\.operation\.ports"):
        policies_of(_policy("DENY", {"to": [{"operation": {"ports": ["http"]}}]}), "cluster.local")
