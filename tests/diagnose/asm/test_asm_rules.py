"""ASM kinds (istio.alibabacloud.com): versions, fields at their lines, selectors, targets, conflicts."""
from __future__ import annotations

import textwrap

from diagnose import analyze
from diagnose.findings import Finding
from mesh.config import Snapshot, load_text

APP = """
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: shop}
spec: {selector: {app: httpbin}, ports: [{name: http, port: 8000}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: shop}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec: {containers: [{name: app, image: httpbin}]}
"""


def run(text: str) -> list[Finding]:
    loaded = load_text(textwrap.dedent(APP) + textwrap.dedent(text), "asm.yaml")
    assert not loaded.problems, loaded.problems
    findings = analyze(Snapshot(loaded.objects))
    assert not [f for f in findings if f.code == "MS0099"], "a rule crashed"
    return findings


def of(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def limiter(name: str, labels: str = "{app: httpbin}", version: str = "v1", limit: str = "{fill_interval: {seconds: 1}, quota: 10}") -> str:
    return f"""
---
apiVersion: istio.alibabacloud.com/{version}
kind: ASMLocalRateLimiter
metadata: {{name: {name}, namespace: shop}}
spec:
  workloadSelector:
    labels: {labels}
  configs:
  - name: c1
    match: {{vhost: {{name: "*", port: 8000}}}}
    limit: {limit}
"""


BREAKER = """
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata: {name: cb, namespace: shop}
spec:
  workloadSelector: {labels: {app: httpbin}}
  configs:
  - breaker_config:
      window_size: 10s
      break_duration: 30s
      error_percent: {value: 60}
      min_request_amount: 3
      custom_response: {status_code: 499, body: broken}
"""


def test_valid_objects_of_every_kind_raise_nothing():
    slo = """
---
apiVersion: istio.alibabacloud.com/v1beta1
kind: ServiceLevelObjective
metadata: {name: asm-slo-shop-httpbin, namespace: shop}
spec:
  service: httpbin
  period: 30d
  slos:
  - name: avail
    objective: "99.9"
    sli: {plugin: {id: availability}}
    alerting: {name: a, pageAlert: {labels: {severity: "10"}}}
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMGlobalRateLimiter
metadata: {name: g, namespace: shop}
spec:
  workloadSelector: {labels: {app: httpbin}}
  rateLimitService: {host: ratelimit.shop.svc.cluster.local, port: 8081, timeout: {seconds: 5}}
  configs:
  - name: g1
    limit: {unit: MINUTE, quota: 100}
"""
    found = [f for f in run(limiter("rl") + BREAKER + slo) if f.code.startswith("MS6") or f.code in ("MS0008", "MS0009")]
    assert found == []


def test_unknown_version_is_read_with_a_warning_naming_it():
    found = run(limiter("rl", version="v2alpha9") + limiter("bad", version="v2alpha9", limit="{quota: -1}"))
    warn = of(found, "MS6001")
    assert len(warn) == 2 and all("istio.alibabacloud.com/v2alpha9" in f.message for f in warn)
    # still read: its fields are checked as the known version's
    bad = of(found, "MS6002")
    assert {f.resource.name for f in bad} == {"bad"}


def test_malformed_fields_are_findings_at_their_line():
    text = limiter("rl", limit="{fill_interval: soon, quota: 0, status: 200}") + """
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata: {name: cb, namespace: shop}
spec:
  workloadSelector: {labels: {app: httpbin}}
  configs:
  - breaker_config:
      window_size: 30s
      error_percent: {value: 160}
      custom_response:
        status_code: "499"
  - breaker_config: {break_duration: 5s}
  - not-a-mapping
"""
    found = of(run(text), "MS6002")
    by = {(f.resource.name, f.resource.path) for f in found}
    assert ("rl", "spec/configs[0]/limit/fill_interval") in by
    assert ("rl", "spec/configs[0]/limit/quota") in by
    assert ("rl", "spec/configs[0]/limit/status") in by
    assert ("cb", "spec/configs[0]/breaker_config/window_size") in by
    assert ("cb", "spec/configs[0]/breaker_config/error_percent/value") in by
    assert ("cb", "spec/configs[0]/breaker_config/custom_response/status_code") in by
    assert ("cb", "spec/configs[1]/breaker_config") in by  # neither threshold: never opens
    assert ("cb", "spec/configs[2]") in by
    full = textwrap.dedent(APP) + textwrap.dedent(text)
    lines = full.splitlines()
    for f in found:
        file, line = f.resource.source.rsplit(":", 1)
        assert file == "asm.yaml"
        leaf = f.resource.path.rsplit("/", 1)[-1].split("[")[0]
        assert leaf in lines[int(line) - 1] or leaf.startswith("configs"), (f.resource.path, lines[int(line) - 1])


def test_selector_matching_nothing_and_missing_targets():
    text = limiter("typo", labels="{app: httbin}") + """
---
apiVersion: istio.alibabacloud.com/v1
kind: ServiceLevelObjective
metadata: {name: s, namespace: shop}
spec:
  service: payments
  period: 7d
  slos: [{name: a, objective: 99, sli: {plugin: {id: availability}}, alerting: {name: x}}]
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata: {name: client, namespace: shop}
spec:
  workloadSelector: {labels: {app: httpbin}}
  applyToTraffic: sidecar_outbound
  configs:
  - target_services: [{name: httpbin, port: 8000}, {name: nowhere, namespace: other, port: 80}]
    breaker_config: {error_percent: {value: 50}}
"""
    found = run(text)
    assert [f.resource.name for f in of(found, "MS6003")] == ["typo"]
    assert [f.resource.name for f in of(found, "MS6004")] == ["s"]
    missing = of(found, "MS6007")
    assert len(missing) == 1 and "other/nowhere" in missing[0].message


def test_two_limiters_or_breakers_on_one_workload_conflict_per_direction():
    outbound = BREAKER.replace("name: cb,", "name: cb-out,").replace(
        "  workloadSelector:", "  applyToTraffic: sidecar_outbound\n  workloadSelector:")
    found = run(limiter("a") + limiter("b") + limiter("elsewhere", labels="{app: other}") + BREAKER +
                BREAKER.replace("name: cb,", "name: cb2,") + outbound)
    rl = of(found, "MS6005")
    assert [(f.resource.name, [r.name for r in f.related]) for f in rl] == [("b", ["a"])]
    cb = of(found, "MS6006")
    assert [(f.resource.name, [r.name for r in f.related]) for f in cb] == [("cb2", ["cb"])]


def test_spec_not_a_mapping_is_one_load_problem_and_a_namespace_without_workloads_is_not_judged():
    text = """
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata: {name: cb, namespace: shop}
spec: oops
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMLocalRateLimiter
metadata: {name: elsewhere, namespace: empty}
spec:
  workloadSelector: {labels: {app: nothing}}
  configs: [{limit: {fill_interval: 1s, quota: 3}}]
"""
    loaded = load_text(textwrap.dedent(APP) + textwrap.dedent(text), "asm.yaml")
    assert [p.field for p in loaded.problems] == ["spec"]  # the loader names it once (MS0007)
    found = analyze(Snapshot(loaded.objects))
    assert not [f for f in found if f.code == "MS6002" and f.resource.name == "cb"]
    assert not [f for f in found if f.code == "MS6003"]  # which workloads 'empty' has is unknown: not judged


def gateway_api(name: str, cls: str = "istio-waypoint", namespace: str = "shop", extra: str = "") -> str:
    return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  gatewayClassName: {cls}
  listeners: [{{name: mesh, port: 15008, protocol: HBONE}}]
{extra}"""


def test_selectors_of_pods_istiod_deploys_for_gateway_api_gateways():
    """ASM selects a waypoint (or a Gateway API gateway) by the labels of the pods istiod deploys for it, which files
    never hold: such a selector is not 'matches nothing' when the Gateway is there; it is when the gateway is not, is
    elsewhere, or gets no pods (istio-remote, a manual deployment)."""
    extra = "  infrastructure: {labels: {tier: edge}}"
    manual = "  addresses: [{type: Hostname, value: gw.example.com}]"
    found = run(gateway_api("default") + gateway_api("edge", "istio", extra=extra) + gateway_api("far", "istio-remote")
                + gateway_api("own", "istio", extra=manual) + gateway_api("away", namespace="other")
                + limiter("by-name", "{gateway.networking.k8s.io/gateway-name: default}")
                + limiter("by-istio-label", "{istio.io/gateway-name: default}")
                + limiter("by-infrastructure", "{tier: edge, gateway.networking.k8s.io/gateway-name: edge}")
                + limiter("typo", "{gateway.networking.k8s.io/gateway-name: defualt}")
                + limiter("remote", "{gateway.networking.k8s.io/gateway-name: far}")
                + limiter("manual", "{gateway.networking.k8s.io/gateway-name: own}")
                + limiter("elsewhere", "{gateway.networking.k8s.io/gateway-name: away}")
                + limiter("wrong-extra", "{tier: core, gateway.networking.k8s.io/gateway-name: edge}"))
    assert sorted(f.resource.name for f in of(found, "MS6003")) == ["elsewhere", "manual", "remote", "typo",
                                                                   "wrong-extra"]


def test_target_services_on_every_selector_kind_and_of_every_target_kind():
    """ASM 1.25 gave all three selector kinds target_services naming a Service, ServiceEntry or VirtualService: a
    missing one is MS6007 on the global limiter too, and for the other target kinds once any object of that kind is
    in the input (none loaded: which exist is unknown)."""
    routes = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin-routes, namespace: shop}
spec: {hosts: [httpbin], http: [{name: r1, route: [{destination: {host: httpbin}}]}]}
"""
    glb = """
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMGlobalRateLimiter
metadata: {name: global, namespace: shop}
spec:
  workloadSelector: {labels: {app: httpbin}}
  applyToTraffic: sidecar_inbound
  rateLimitService: {host: ratelimit.shop.svc.cluster.local, port: 8081, timeout: {seconds: 5}}
  configs:
  - name: c1
    limit: {quota: 1, unit: MINUTE}
    target_services: [{name: httpbin, port: 8000}, {name: gone, port: 8000}, {name: odd, port: 0}]
"""
    breaker = """
---
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata: {name: by-route, namespace: shop}
spec:
  workloadSelector: {labels: {app: httpbin}}
  applyToTraffic: sidecar_outbound
  configs:
  - target_services: [{kind: VirtualService, name: httpbin-routes, section_name: r1},
                      {kind: VirtualService, name: httpbin-rotues, section_name: r1},
                      {kind: ServiceEntry, name: external-api}]
    breaker_config: {error_percent: {value: 50}}
"""
    found = run(routes + glb + breaker)
    missing = sorted((f.resource.name, f.resource.path) for f in of(found, "MS6007"))
    assert missing == [("by-route", "spec/configs[0]/target_services[1]/name"),
                       ("global", "spec/configs[0]/target_services[1]/name"),
                       ("global", "spec/configs[0]/target_services[2]/name")]
    assert [f.resource.path for f in of(found, "MS6002")] == ["spec/configs[0]/target_services[2]/port"]
