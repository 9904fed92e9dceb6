"""Answers that neither the service nor a response flag explains, because the proxy's config made them.

A route's own answer (`directResponse`): Envoy logs `direct_response` and no flag; the service never saw the
request, so "the service answers 5xx" (MS3013, blamed on the Service) is the wrong cause: it is MS3017 on the
route. Shadowed copies (`mirror`): Envoy sends them with `-shadow` appended to the authority and drops their
answers, so whatever the mirror target answers them hurts nobody and must not be put on the primary service.
"""
from __future__ import annotations

import pytest

from collector import schema as s
from tests.diagnose.runtime.tables import fqdn, requests, table
from tests.diagnose.runtime.test_held_out_classes import demo_with, diagnose, serious

MAINTENANCE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: bookinfo}
spec:
  hosts: [details]
  http:
  - match: [{uri: {exact: /health}}]
    route: [{destination: {host: details, subset: v1}}]
  - directResponse: {status: %d, body: {string: "down for maintenance"}}
"""


def route_answered(code: int, df, route: str | None = "bookinfo/details.1"):
    """The same requests, answered `code` by the route itself (Envoy: direct_response, no upstream)."""
    out = df.assign(**{s.RESPONSE_CODE: code, s.RESPONSE_CODE_DETAILS: "direct_response", s.UPSTREAM_CLUSTER: "-",
                       s.UPSTREAM_HOST: "-"})
    return out.assign(**{s.ROUTE_NAME: route}) if route else out


@pytest.mark.parametrize("code", [503, 500, 404])
@pytest.mark.parametrize("route", ["bookinfo/details.1", None], ids=["route logged", "route not logged"])
def test_a_route_answering_errors_itself_blames_its_direct_response_not_the_service(code, route):
    snap = demo_with(MAINTENANCE % code)
    df = table(route_answered(code, requests("productpage-v1", fqdn("details"), "ok", 40), route),
               requests("productpage-v1", fqdn("reviews"), "ok", 40),
               requests("istio-ingressgateway", fqdn("productpage"), "ok", 40))
    out = diagnose(df, snap)
    assert not {"MS3013", "MS3016"} & {f.code for f in out}
    f = next(x for x in out if x.code == "MS3017")
    assert f.evidence["edge_key"] == fqdn("details") and f.severity == "error"
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("VirtualService", "details",
                                                                  "spec/http[1]/directResponse")
    assert serious(out)[0].root.code == "MS3017"


@pytest.mark.parametrize("case", ["blocked path through the gateway", "a few 4xx", "a few 5xx", "2xx"])
def test_route_answers_that_hurt_no_one_raise_nothing(case):
    """A route that blocks a path on purpose answers strangers (gateway callers) or a few mesh requests; a
    directResponse of 200 is an answer, not a failure."""
    snap = demo_with(MAINTENANCE % 404)
    ok = requests("productpage-v1", fqdn("details"), "ok", 400)
    bad = {"blocked path through the gateway": route_answered(
               404, requests("istio-ingressgateway", fqdn("productpage"), "ok", 60, source_ns="istio-system"), None),
           "a few 4xx": route_answered(404, requests("productpage-v1", fqdn("details"), "ok", 20)),
           "a few 5xx": route_answered(503, requests("productpage-v1", fqdn("details"), "ok", 3)),
           "2xx": route_answered(200, requests("productpage-v1", fqdn("details"), "ok", 60))}[case]
    out = diagnose(table(ok, bad), snap, with_config=False)
    assert not serious(out), [(i.root.code, i.root.message) for i in serious(out)]


MIRROR = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: bookinfo}
spec:
  hosts: [details]
  http:
  - route: [{destination: {host: details, subset: v1}}]
    mirror: {host: ratings}
"""


def shadow_copies(code: int, n: int, authority: str):
    """What the mirror target's sidecar logs for the copies: the primary route's headers (destination service),
    its own workload, the authority with -shadow, and its answer (discarded by the caller's proxy)."""
    df = requests("productpage-v1", fqdn("details"), "ok", n, reporter="destination", destination_workload="ratings-v1")
    return df.assign(**{s.RESPONSE_CODE: code, s.AUTHORITY: authority, s.UPSTREAM_CLUSTER: "inbound|9080||"})


@pytest.mark.parametrize("code", [500, 503, 404])
@pytest.mark.parametrize("authority", ["details-shadow:9080", "details:9080-shadow", "details-shadow"])
def test_a_mirror_targets_answers_to_copies_hurt_no_one(code, authority):
    snap = demo_with(MIRROR)
    df = table(requests("productpage-v1", fqdn("details"), "ok", 40),
               requests("productpage-v1", fqdn("details"), "ok", 40, reporter="destination"),
               shadow_copies(code, 40, authority),
               requests("productpage-v1", fqdn("reviews"), "ok", 40))
    out = diagnose(df, snap)
    assert not serious(out), [(i.root.code, i.root.message) for i in serious(out)]


def test_copies_do_not_hide_the_primarys_own_failure():
    """Left out are the copies only: the primary's 5xx (logged by the caller and by details itself) still count."""
    snap = demo_with(MIRROR)
    bad = requests("productpage-v1", fqdn("details"), "ok", 40, reporter="destination").assign(**{s.RESPONSE_CODE: 500})
    df = table(requests("productpage-v1", fqdn("details"), "ok", 40), bad,
               requests("productpage-v1", fqdn("details"), "ok", 40, reporter="destination"),
               shadow_copies(200, 80, "details-shadow:9080"))
    out = diagnose(df, snap)
    f = next(x for x in out if x.code == "MS3013")
    assert f.evidence["edge_key"] == fqdn("details") and f.impact["share"] == pytest.approx(0.5)
