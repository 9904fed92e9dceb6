"""Policies that pick pods by selector where only `targetRef` works: Kubernetes Gateway API gateways.

Istio attaches AuthorizationPolicy, RequestAuthentication, Telemetry and
WasmPlugin to a Gateway API gateway only through `targetRef(s)`; a selector
matching the gateway's pods (labelled ``gateway.networking.k8s.io/gateway-name``)
is silently ignored, so the policy the user believes protects the gateway does not.
"""
from __future__ import annotations

from diagnose.findings import Finding
from diagnose.rules.config import security as sec
from mesh.config import Snapshot

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
KINDS = ("AuthorizationPolicy", "RequestAuthentication", "Telemetry", "WasmPlugin")


def ineffective_selectors(snap: Snapshot) -> list[Finding]:
    gateway_pods = [w for w in snap.workloads() if GATEWAY_NAME_LABEL in w.labels]
    if not gateway_pods:
        return []
    out = []
    for kind in KINDS:
        for obj in snap.of_kind(kind):
            sel = sec.selector_of(obj)
            if sel is None or obj.spec.get("targetRef") or obj.spec.get("targetRefs"):
                continue
            hit = next((w for w in gateway_pods if w.namespace == obj.namespace and w.matches(sel)), None)
            if hit is not None:
                out.append(sec.finding("MS2023", obj, "spec/selector", kind=kind, gateway=hit.labels[GATEWAY_NAME_LABEL],
                                       pod=f"{hit.namespace}/{hit.name}"))
    return out


INEFFECTIVE_SELECTORS = sec.rule(
    "policy.GatewayAPISelector",
    "AuthorizationPolicy/RequestAuthentication/Telemetry/WasmPlugin selecting Gateway API gateway pods by selector",
    ("Workload", *KINDS), ("MS2023",), ineffective_selectors)
