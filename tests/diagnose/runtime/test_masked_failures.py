"""Failures only the server's listener saw, because the callers' retries (or other endpoints) answered anyway.

Shaped like the bundled mesh's logs for reviews-retries-mask-v3-strict (tests/fixtures/faults): the refusing
sidecar's listener line names no reporter, no caller and no service (`NR filter_chain_not_found`); every request
productpage sent to reviews was answered 200. On 67169a0 nothing runtime was found (only the config's MS2010).
"""
from __future__ import annotations

import pytest

from collector import schema as s
from tests.diagnose.runtime.tables import fqdn, requests, table
from tests.diagnose.runtime.test_held_out_classes import demo_with, diagnose, serious

STRICT_V3 = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews-v3-strict, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews, version: v3}}
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: %s}}
"""


def refused_by(workload: str, n: int, ns: str = "bookinfo"):
    """`n` plaintext connections `workload`'s mTLS-only listener refused, as its listener log line reads."""
    df = requests("productpage-v1", fqdn("reviews"), "listener_tls", n, reporter="destination",
                  destination_workload=workload)
    return df.assign(**{s.REPORTER: None, s.SOURCE_WORKLOAD: None, s.SOURCE_PRINCIPAL: None,
                        s.SOURCE_WORKLOAD_NAMESPACE: None, s.DESTINATION_WORKLOAD: None,
                        s.DESTINATION_SERVICE: None, s.AUTHORITY: None, s.UPSTREAM_CLUSTER: None,
                        s.LOG_SOURCE: f"/logs/{ns}.{workload}.log"})


def answered_after_retries(n: int):
    return table(requests("productpage-v1", fqdn("reviews"), "ok", n),
                 requests("productpage-v1", fqdn("reviews"), "ok", n, reporter="destination",
                          destination_workload="reviews-v1"),
                 requests("istio-ingressgateway", fqdn("productpage"), "ok", n, source_ns="istio-system"))


@pytest.mark.parametrize("refused", [12, 45])
def test_refusals_hidden_by_retries_are_the_mtls_conflict_degraded_not_failing(refused):
    out = diagnose(table(answered_after_retries(130), refused_by("reviews-v3", refused)), demo_with(STRICT_V3 % "DISABLE"))
    f = next(x for x in out if x.code == "MS3001")
    assert f.evidence["edge_key"] == fqdn("reviews") and f.evidence["masked"] and f.evidence["refused_by"] == ["reviews-v3"]
    assert {e["source_workload"] for e in f.evidence["client_edges"]} == {"productpage-v1"}
    assert (f.resource.kind, f.resource.name) == ("DestinationRule", "reviews")
    assert f.severity == "warning"
    top = serious(out)[0]
    assert top.root.code == "MS3001" and top.root.severity == "warning"  # the incident also holds the config error


@pytest.mark.parametrize("tls", ["ISTIO_MUTUAL", "SIMPLE"])
def test_refusals_without_a_plaintext_client_in_the_config_blame_nothing_here(tls):
    """No DestinationRule disabling TLS: the plaintext came from elsewhere (a client outside the mesh); no blame."""
    out = diagnose(table(answered_after_retries(130), refused_by("reviews-v3", 40)), demo_with(STRICT_V3 % tls),
                   with_config=False)
    assert "MS3001" not in {f.code for f in out}


def test_a_couple_of_refusals_are_noise():
    out = diagnose(table(answered_after_retries(130), refused_by("reviews-v3", 2)), demo_with(STRICT_V3 % "DISABLE"),
                   with_config=False)
    assert "MS3001" not in {f.code for f in out}


def test_when_the_callers_see_the_resets_the_usual_finding_speaks_for_them():
    """Client-side 503 UC plus the refusals: one MS3001, the callers' (not masked, graded by requests failed)."""
    df = table(answered_after_retries(100), requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 50),
               refused_by("reviews-v3", 50))
    out = [f for f in diagnose(df, demo_with(STRICT_V3 % "DISABLE")) if f.code == "MS3001"]
    assert len(out) == 1 and not out[0].evidence.get("masked")
