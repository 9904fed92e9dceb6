"""What-if of AuthorizationPolicy operations and header conditions replayed over logged requests.

The rows are the collector's own parse of Istio JSON access-log lines in the bundled mesh's shape
(inbound lines at the server: the caller known by its peer certificate and the host by SNI; outbound
lines at a client). Per edge the prediction is the edge's rate (metrics) times the share of its logged
requests the policy would newly deny; what the logs do not carry stays "at risk", naming it. One test per
match class of Istio's semantics (exact, prefix, suffix, `*`, the not-forms, method case, hosts, ports).
The window is test_replay's: ratings is called by reviews-v2 (2 rps) and by other/batch (0.5 rps);
details by productpage (4 rps, mTLS) and by legacy/curl (1.5 rps, plaintext, no server-side log).
"""
from __future__ import annotations

import functools
import json

import pandas as pd
import pytest

from collector.parse.access_log import LogContext, parse_json_log
from diagnose.whatif import predict
from mesh.config.model import ConfigObject
from tests.diagnose.whatif.test_replay import _live, _window

TD = "cluster.local"
REVIEWS, BATCH, PRODUCTPAGE, CURL = "bookinfo/reviews-v2", "other/batch", "bookinfo/productpage-v1", "legacy/curl"
RPS = {REVIEWS: 2.0, BATCH: 0.5, PRODUCTPAGE: 4.0, CURL: 1.5}


def _line(method: str, path: str, authority: str, rid: str, cluster: str, san: str = "", sni: str = "") -> str:
    return json.dumps({
        "start_time": "2026-12-06T21:00:00.000Z", "method": method, "path": path, "protocol": "HTTP/1.1",
        "response_code": 200, "response_flags": "-", "response_code_details": "via_upstream", "bytes_received": 0,
        "bytes_sent": 10, "duration": 3, "authority": authority, "request_id": rid, "upstream_cluster": cluster,
        "upstream_host": "127.0.0.1:9080", "requested_server_name": sni or None,
        "downstream_peer_uri_san": san or None, "user_agent": "python-httpx/0.28.1", "x_forwarded_for": None})


def _inbound(workload: str, host: str, caller_sa: str, reqs: list[tuple[str, str, int]]) -> pd.DataFrame:
    """Server-side lines: (method, path, count) from the peer with service account `caller_sa`."""
    ns = caller_sa.split("/")[0]
    lines = [_line(m, p, f"{host}:9080", f"{i:08x}-0000-4000-8000-{j:012x}", "inbound|9080||",
                   f"spiffe://{TD}/ns/{caller_sa.replace('/', '/sa/')}",
                   f"outbound_.9080_._.{host}.bookinfo.svc.cluster.local")
             for i, (m, p, c) in enumerate(reqs) for j in range(c)]
    got = parse_json_log("\n".join(lines) + "\n", LogContext(f"{workload}.log", workload, "bookinfo",
                                                              f"spiffe://{TD}/ns/bookinfo/sa/bookinfo-{workload.split('-')[0]}"))
    assert not got.errors and len(got.requests) == len(lines) and ns
    return got.requests


def _outbound(ns: str, workload: str, host: str, reqs: list[tuple[str, str, int]]) -> pd.DataFrame:
    lines = [_line(m, p, f"{host}:9080", f"{i:08x}-1111-4000-8000-{j:012x}",
                   f"outbound|9080||{host}.bookinfo.svc.cluster.local") for i, (m, p, c) in enumerate(reqs) for j in range(c)]
    got = parse_json_log("\n".join(lines) + "\n", LogContext(f"{workload}.log", workload, ns, "unknown"))
    assert not got.errors
    return got.requests


def _logs() -> pd.DataFrame:
    return _parsed().copy()


@functools.cache
def _parsed() -> pd.DataFrame:
    return pd.concat([
        # reviews-v2 -> ratings: 60 GET /ratings/0 (with a query), 20 POST /ratings/0, 20 GET /health
        _inbound("ratings-v1", "ratings", "bookinfo/bookinfo-reviews",
                 [("GET", "/ratings/0?u=normal", 60), ("POST", "/ratings/0", 20), ("GET", "/health", 20)]),
        # batch -> ratings: 10 DELETE /ratings/1, 10 lower-case `get` /ratings/2
        _inbound("ratings-v1", "ratings", "other/batch", [("DELETE", "/ratings/1", 10), ("get", "/ratings/2", 10)]),
        _inbound("details-v1", "details", "bookinfo/bookinfo-productpage", [("GET", "/details/0", 30)]),
        # curl -> details is plaintext and only its own (client) sidecar logs it
        _outbound("legacy", "curl", "details", [("GET", "/details/1", 15), ("PUT", "/admin", 5)]),
    ], ignore_index=True)


def _policy(action: str, rule: dict, app: str = "ratings") -> ConfigObject:
    return ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "guard", "bookinfo", spec={
        "selector": {"matchLabels": {"app": app}}, "action": action, "rules": [rule]})


def _shares(action: str, rule: dict, app: str = "ratings", logs: pd.DataFrame | None = None) -> dict[str, tuple[bool, float]]:
    """Per caller: (certain, predicted broken share of its requests); each share checked against broken_rps."""
    rep = predict(_live(), [_policy(action, rule, app)], _window(), 3600, findings=False,
                  requests=_logs() if logs is None else logs)
    out: dict[str, tuple[bool, float]] = {}
    for i in rep.impacts:
        assert i.kind == "authz_deny" and i.broken_rps == pytest.approx(RPS[i.source] * i.share), i
        assert i.source not in out or out[i.source][0] != i.certain, rep.impacts
        if i.certain or i.source not in out:
            out[i.source] = (i.certain, round(i.share, 6))
    return out


def _op(**op) -> dict:
    return {"to": [{"operation": op}]}


CASES = [
    # (action, rule, {caller: certainly denied share}); callers not listed are untouched
    pytest.param("DENY", _op(paths=["/ratings/0"]), {REVIEWS: 0.8}, id="exact-path-ignores-query"),
    pytest.param("DENY", _op(paths=["/ratings/*"]), {REVIEWS: 0.8, BATCH: 1.0}, id="prefix-path"),
    pytest.param("DENY", _op(paths=["*/0"]), {REVIEWS: 0.8}, id="suffix-path"),
    pytest.param("DENY", _op(paths=["*"]), {REVIEWS: 1.0, BATCH: 1.0}, id="any-path"),
    pytest.param("DENY", _op(notPaths=["/health"]), {REVIEWS: 0.8, BATCH: 1.0}, id="notPaths"),
    pytest.param("DENY", _op(methods=["GET"]), {REVIEWS: 0.8}, id="methods-case-sensitive"),
    pytest.param("DENY", _op(notMethods=["GET"]), {REVIEWS: 0.2, BATCH: 1.0}, id="notMethods"),
    pytest.param("DENY", _op(methods=["GET"], paths=["/ratings/*"]), {REVIEWS: 0.6}, id="fields-and-ed"),
    pytest.param("DENY", {"to": [{"operation": {"methods": ["POST"]}}, {"operation": {"paths": ["/health"]}}]},
                 {REVIEWS: 0.4}, id="operations-or-ed"),
    pytest.param("DENY", _op(hosts=["RATINGS:9080"]), {REVIEWS: 1.0, BATCH: 1.0}, id="hosts-case-insensitive"),
    pytest.param("DENY", _op(hosts=["ratings"]), {}, id="exact-host-not-host-port"),
    pytest.param("DENY", _op(notHosts=["ratings*"]), {}, id="notHosts-prefix"),
    pytest.param("DENY", _op(ports=["9080"], paths=["/health"]), {REVIEWS: 0.2}, id="port-and-path"),
    pytest.param("ALLOW", _op(paths=["/health", "/ratings/*"], methods=["GET"]), {REVIEWS: 0.2, BATCH: 1.0},
                 id="allow-get-only"),
    pytest.param("DENY", {"from": [{"source": {"namespaces": ["other"]}}], **_op(methods=["DELETE"])}, {BATCH: 0.5},
                 id="from-and-to"),
    pytest.param("DENY", {"when": [{"key": "request.headers[x-request-id]", "values": ["00000000-*"]}]}, {REVIEWS: 0.6,
                 BATCH: 0.5}, id="when-header-prefix"),
    pytest.param("DENY", {"when": [{"key": "request.headers[:authority]", "notValues": ["ratings:9080"]}]}, {},
                 id="when-authority-notValues"),
]


@pytest.mark.parametrize("action,rule,denied", CASES)
def test_each_match_class_is_judged_request_by_request(action: str, rule: dict, denied: dict[str, float]) -> None:
    assert _shares(action, rule) == {s: (True, sh) for s, sh in denied.items()}


def test_a_client_side_log_is_read_where_the_server_logged_nothing() -> None:
    """curl -> details is only in curl's own log (plaintext, no identity): its share comes from there."""
    got = _shares("DENY", _op(paths=["/admin"]), app="details")
    assert got == {CURL: (True, 0.25)}
    got = _shares("ALLOW", _op(methods=["GET"]), app="details")
    assert got == {CURL: (True, 0.25)}


def test_what_the_logs_do_not_carry_stays_at_risk_naming_it() -> None:
    rep = predict(_live(), [_policy("DENY", {**_op(paths=["/ratings/*"]),
                                             "when": [{"key": "request.headers[x-canary]", "values": ["1"]}]})],
                  _window(), 3600, findings=False, requests=_logs())
    got = {i.source: i for i in rep.impacts}
    # the path narrows it (GET/POST /ratings/0 of reviews, all of batch); the header is not logged
    assert {s: (i.certain, round(i.share, 6)) for s, i in got.items()} == {REVIEWS: (False, 0.8), BATCH: (False, 1.0)}
    assert all("request.headers[x-canary]" in i.reason and "request path" not in i.reason.split("at risk")[1]
               for i in got.values()), [i.reason for i in got.values()]
    assert rep.broken_rps == 0.0 and rep.at_risk_rps == pytest.approx(0.8 * 2.0 + 0.5)


def test_an_edge_without_logged_requests_is_judged_as_a_whole() -> None:
    logs = _logs()
    logs = logs[logs["source_principal"].astype(str) != f"spiffe://{TD}/ns/other/sa/batch"]
    rep = predict(_live(), [_policy("DENY", _op(paths=["/ratings/*"]))], _window(), 3600, findings=False, requests=logs)
    got = {i.source: (i.certain, i.requests, round(i.broken_rps, 6)) for i in rep.impacts}
    assert got == {REVIEWS: (True, 100, 1.6), BATCH: (False, 0, 0.5)}


def test_the_reason_names_each_rule_and_its_share_with_an_example() -> None:
    rule = {"to": [{"operation": {"methods": ["POST"]}}]}
    second = ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "no-health", "bookinfo", spec={
        "selector": {"matchLabels": {"app": "ratings"}}, "action": "DENY", "rules": [_op(paths=["/health"])]})
    rep = predict(_live(), [_policy("DENY", rule), second], _window(), 3600, findings=False, requests=_logs())
    [imp] = [i for i in rep.impacts if i.source == REVIEWS]
    assert imp.certain and imp.share == pytest.approx(0.4) and imp.requests == 100
    assert "policy[guard]-rule[0] matches 20%" in imp.reason and "policy[no-health]-rule[0] matches 20%" in imp.reason
    assert "(e.g. POST /ratings/0)" in imp.reason or "(e.g. GET /health)" in imp.reason


def test_live_policies_already_denying_are_not_counted_again() -> None:
    live = [*_live(), ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "no-post", "bookinfo", spec={
        "selector": {"matchLabels": {"app": "ratings"}}, "action": "DENY", "rules": [_op(methods=["POST"])]})]
    rep = predict(live, [_policy("DENY", _op(paths=["/ratings/*"]))], _window(), 3600, findings=False, requests=_logs())
    assert {i.source: round(i.share, 6) for i in rep.impacts} == {REVIEWS: 0.6, BATCH: 1.0}


def test_the_callers_own_log_wins_over_the_servers_blend_of_one_identity() -> None:
    """Versions sharing a service account are one peer to the server: the client's own lines name the caller."""
    own = _outbound("bookinfo", "reviews-v2", "ratings", [("GET", "/ratings/0", 10), ("POST", "/ratings/9", 10)])
    logs = pd.concat([_logs(), own], ignore_index=True)
    assert _shares("DENY", _op(paths=["/ratings/0"]), logs=logs) == {REVIEWS: (True, 0.5)}
    # the Service port in the client's cluster name maps to the container port the policy names
    assert _shares("DENY", _op(ports=["9080"], methods=["POST"]), logs=logs) == {REVIEWS: (True, 0.5)}
    assert _shares("DENY", _op(ports=["9081"], methods=["POST"]), logs=logs) == {}


def test_the_logs_are_read_only_when_a_policy_needs_them_and_once() -> None:
    calls: list[int] = []

    def logs() -> pd.DataFrame:
        calls.append(1)
        return _logs()

    principal_only = _policy("DENY", {"from": [{"source": {"namespaces": ["other"]}}]})
    predict(_live(), [principal_only], _window(), 3600, findings=False, requests=logs)
    assert calls == []  # decided on the edges: the window's log rows are not read
    two = [_policy("DENY", _op(paths=["/ratings/0"])),
           ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "d", "bookinfo", spec={
               "selector": {"matchLabels": {"app": "details"}}, "action": "DENY", "rules": [_op(methods=["PUT"])]})]
    rep = predict(_live(), two, _window(), 3600, findings=False, requests=logs)
    assert calls == [1] and {i.source for i in rep.impacts} == {REVIEWS, CURL}
