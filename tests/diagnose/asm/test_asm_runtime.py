"""Runtime attribution: Envoy's rate-limit 429s and a breaker's custom status named as the ASM object that gave them."""
from __future__ import annotations

import textwrap

from collector import schema as s
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from mesh.config import Snapshot, load_text
from tests.diagnose.runtime.tables import T0, fqdn, requests, table

CONFIG = """
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  template: {metadata: {labels: {app: reviews, version: v1}}, spec: {containers: [{name: app, image: r}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: productpage-v1, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: productpage}}
  template: {metadata: {labels: {app: productpage}}, spec: {containers: [{name: app, image: p}]}}
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMLocalRateLimiter
metadata: {name: reviews-limit, namespace: bookinfo}
spec:
  workloadSelector: {labels: {app: reviews}}
  configs:
  - match: {vhost: {name: "*", port: 9080}}
    limit: {fill_interval: {seconds: 1}, quota: 5}
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata: {name: client-break, namespace: bookinfo}
spec:
  workloadSelector: {labels: {app: productpage}}
  applyToTraffic: sidecar_outbound
  configs:
  - target_services: [{name: reviews, port: 9080}]
    breaker_config:
      window_size: 10s
      break_duration: 90s
      error_percent: {value: 60}
      min_request_amount: 3
      custom_response: {status_code: 499, body: broken}
"""


def snapshot(extra: str = "") -> Snapshot:
    loaded = load_text(textwrap.dedent(CONFIG) + extra, "asm.yaml")
    assert not loaded.problems
    return Snapshot(loaded.objects)


def outcome(df, code: int, flags: str, details: str):
    df = df.copy()
    df[s.RESPONSE_CODE], df[s.RESPONSE_FLAGS], df[s.RESPONSE_CODE_DETAILS] = code, flags, details
    return df


def run(df, snap):
    return analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap))


def test_local_rate_limit_429s_name_the_limiter_and_its_quota():
    svc = fqdn("reviews")
    df = table(outcome(requests("productpage-v1", svc, "ok", 30, reporter="destination"), 429, "RL", "local_rate_limited"),
               requests("productpage-v1", svc, "ok", 70, reporter="destination"),
               outcome(requests("productpage-v1", svc, "ok", 30), 429, "-", "via_upstream"),
               requests("productpage-v1", svc, "ok", 70))
    found = [f for f in run(df, snapshot()) if f.code == "MS6020"]
    assert len(found) == 1
    f = found[0]
    assert "ASMLocalRateLimiter bookinfo/reviews-limit" in f.message and "quota 5 per 1s" in f.message
    assert "30 of 100" in f.message and "30.0%" in f.message
    assert (f.resource.kind, f.resource.name) == ("ASMLocalRateLimiter", "reviews-limit")
    assert f.resource.source.startswith("asm.yaml:")
    assert [(r.kind, r.name) for r in f.related] == [("Service", "reviews")]
    assert f.evidence["edge_key"] == svc
    assert f.impact["requests"] == 30


def test_429_without_a_limiter_selecting_the_service_is_not_attributed():
    df = outcome(requests("productpage-v1", fqdn("ratings"), "ok", 20, reporter="destination"), 429, "RL",
                 "local_rate_limited")
    assert [f for f in run(df, snapshot()) if f.code == "MS6020"] == []
    # an upstream's own 429 (via_upstream, no RL flag) is the application's answer, not the limiter's
    df = outcome(requests("productpage-v1", fqdn("reviews"), "ok", 20, reporter="destination"), 429, "-", "via_upstream")
    assert [f for f in run(df, snapshot()) if f.code == "MS6020"] == []


def test_client_side_breaker_status_names_the_breaker_and_thresholds():
    svc = fqdn("reviews")
    df = table(outcome(requests("productpage-v1", svc, "ok", 40), 499, "-", "direct_response"),
               requests("productpage-v1", svc, "ok", 60))
    found = [f for f in run(df, snapshot()) if f.code == "MS6021"]
    assert len(found) == 1
    f = found[0]
    assert "ASMCircuitBreaker bookinfo/client-break" in f.message and "status 499" in f.message
    assert "errors over 60% in 10s" in f.message and "90s" in f.message
    # the same code from the upstream itself is not the breaker's
    df = outcome(requests("productpage-v1", svc, "ok", 40), 499, "-", "via_upstream")
    assert [f for f in run(df, snapshot()) if f.code == "MS6021"] == []
    # a caller the breaker does not select is not attributed to it
    df = outcome(requests("details-v1", svc, "ok", 40), 499, "-", "direct_response")
    assert [f for f in run(df, snapshot()) if f.code == "MS6021"] == []
