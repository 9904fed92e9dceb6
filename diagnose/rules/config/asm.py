"""Alibaba Cloud ASM's own kinds: versions, fields, selectors, targets and conflicts (MS6001-MS6008).

ASM keeps these objects in its managed control plane and applies them to Envoy
without Istio's webhook, so a typo or a selector that picks nothing fails
silently: the limiter never limits, the breaker never opens, the SLO measures
no traffic. Field models live in mesh.config.asm.
"""
from __future__ import annotations

from itertools import combinations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list
from mesh.config import ConfigObject
from mesh.config import asm
from mesh.config.kinds import GATEWAY_POD_NAME_LABELS

WORKLOAD = "Workload"


class Versions:
    """An ASM apiVersion meshscope does not know is read as v1, with a warning naming the version."""

    metadata = Metadata(name="asm.Versions", description="ASM objects use an API version ASM serves",
                        inputs=asm.KINDS, codes=("MS6001",))

    def analyze(self, ctx: Context) -> None:
        for kind in asm.KINDS:
            for obj in ctx.for_each(kind):
                if asm.version_of(obj.api_version) not in asm.KNOWN_VERSIONS:
                    ctx.report("MS6001", obj, "apiVersion", kind=obj.kind, api_version=obj.api_version,
                               known=", ".join(f"istio.alibabacloud.com/{v}" for v in asm.KNOWN_VERSIONS),
                               read_as="istio.alibabacloud.com/v1")


class Fields:
    """Every field ASM would reject or ignore, at its own line."""

    metadata = Metadata(name="asm.Fields", description="ASM objects' fields have the types and values ASM accepts",
                        inputs=asm.KINDS, codes=("MS6002",))

    def analyze(self, ctx: Context) -> None:
        for kind in asm.KINDS:
            for obj in ctx.for_each(kind):
                if not isinstance(obj.raw.get("spec", {}), dict):
                    continue  # the loader already reported the spec itself (MS0007)
                for path, message in asm.problems(kind, obj.spec):
                    ctx.report("MS6002", obj, path, kind=obj.kind, field=path.replace("/", "."), reason=message)


def selector(obj: ConfigObject) -> dict[str, str]:
    labels = as_dict(as_dict(obj.spec.get("workloadSelector")).get("labels"))
    return {str(k): str(v) for k, v in labels.items() if isinstance(v, str)}


def traffic(obj: ConfigObject) -> str:
    """The traffic an object acts on: applyToTraffic, else gateway or the sidecar's inbound side (ASM's default)."""
    t = obj.spec.get("applyToTraffic")
    if isinstance(t, str) and t:
        return t
    return "gateway" if obj.spec.get("isGateway") is True else "sidecar_inbound"




def deployed_gateway_labels(gateways: list[ConfigObject]) -> dict[str | None, list[dict[str, str]]]:
    """Per namespace, the labels of the pods istiod deploys for each Gateway API Gateway of an Istio class: the
    gateway-name labels plus `spec.infrastructure.labels`. Those pods exist in the cluster but not in files, and ASM's
    own examples select a waypoint by `gateway.networking.k8s.io/gateway-name`. A gateway whose class is
    `istio-remote`, or that names a hostname address (Istio's manual deployment), gets no pods."""
    out: dict[str | None, list[dict[str, str]]] = {}
    for gw in gateways:
        cls = gw.spec.get("gatewayClassName")
        manual = any(as_dict(a).get("type") == "Hostname" for a in as_list(gw.spec.get("addresses")))
        if not isinstance(cls, str) or not cls.startswith("istio") or cls == "istio-remote" or manual:
            continue
        extra = as_dict(as_dict(gw.spec.get("infrastructure")).get("labels"))
        labels = {**{str(k): str(v) for k, v in extra.items()}, **{k: gw.name for k in GATEWAY_POD_NAME_LABELS}}
        out.setdefault(gw.namespace, []).append(labels)
    return out


class Selectors:
    """A limiter or breaker whose workloadSelector picks no workload in its namespace does nothing."""

    metadata = Metadata(name="asm.Selectors", description="ASM limiters and breakers select a workload",
                        inputs=(*asm.SELECTOR_KINDS, WORKLOAD, "KubernetesGateway"), codes=("MS6003",))

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        gateway_pods = deployed_gateway_labels(list(ctx.for_each("KubernetesGateway")))
        if not snap.workloads():
            return  # no workloads loaded: which exist is unknown
        for kind in asm.SELECTOR_KINDS:
            for obj in ctx.for_each(kind):
                labels = selector(obj)
                if not snap.workloads_in(obj.namespace):
                    continue  # no workload of this namespace was loaded (files without Deployments): unknown
                if any(labels.items() <= pod.items() for pod in gateway_pods.get(obj.namespace, ())):
                    continue  # the pods istiod deploys for a Gateway API gateway (a waypoint): not in the files
                if labels and not snap.matching_workloads(obj.namespace, labels):
                    ctx.report("MS6003", obj, "spec/workloadSelector/labels", kind=obj.kind,
                               selector=", ".join(f"{k}={v}" for k, v in sorted(labels.items())),
                               namespace=obj.namespace or "default")


#: What `target_services[].kind` may name (ASM 1.25+), Service when it is not set.
TARGET_KINDS = ("Service", "ServiceEntry", "VirtualService")


class Targets:
    """target_services (ASM 1.25+, on breakers and both limiters) and SLO services must name objects that exist."""

    metadata = Metadata(name="asm.Targets", description="ASM objects name existing services",
                        inputs=(asm.SLO, *asm.SELECTOR_KINDS, *TARGET_KINDS), codes=("MS6004", "MS6007"))

    def analyze(self, ctx: Context) -> None:
        # a kind none of whose objects were loaded: which exist is unknown (files of one app, no Services)
        known = {k for k in TARGET_KINDS if ctx.snapshot.of_kind(k)}
        if "Service" in known:
            for obj in ctx.for_each(asm.SLO):
                svc = obj.spec.get("service")
                if isinstance(svc, str) and svc and not ctx.exists("Service", obj.namespace, svc.split(".")[0]):
                    ctx.report("MS6004", obj, "spec/service", service=svc, namespace=obj.namespace or "default")
        for kind in asm.SELECTOR_KINDS:
            for obj in ctx.for_each(kind):
                for i, cfg in enumerate(as_list(obj.spec.get("configs"))):
                    for j, t in enumerate(as_list(as_dict(cfg).get("target_services"))):
                        t = as_dict(t)
                        tkind, name = t.get("kind") or "Service", t.get("name")
                        ns = t.get("namespace") or obj.namespace
                        if tkind in known and isinstance(name, str) and isinstance(ns, str) and \
                                not ctx.exists(tkind, ns, name):
                            ctx.report("MS6007", obj, f"spec/configs[{i}]/target_services[{j}]/name", kind=obj.kind,
                                       target_kind=tkind, namespace=ns, name=name)


def _overlaps(ctx: Context, kind: str) -> list[tuple[ConfigObject, ConfigObject, str, str]]:
    """Pairs of objects of one kind acting on the same workload and traffic: (first, second, workload, traffic)."""
    snap = ctx.snapshot
    picked: dict[int, set[tuple[str, str]]] = {}
    objs = list(ctx.for_each(kind))
    for obj in objs:
        labels = selector(obj)
        picked[id(obj)] = {(w.kind, w.name) for w in snap.matching_workloads(obj.namespace, labels)} if labels else set()
    out = []
    for a, b in combinations(objs, 2):
        if a.namespace != b.namespace or traffic(a) != traffic(b):
            continue
        shared = picked[id(a)] & picked[id(b)]
        if shared:
            wk, wn = sorted(shared)[0]
            out.append((a, b, f"{wk} {a.namespace}/{wn}", traffic(a)))
    return out


class Conflicts:
    """Two local rate limiters (or two circuit breakers) on one workload and traffic direction."""

    metadata = Metadata(name="asm.Conflicts", description="One ASM limiter and one breaker per workload and direction",
                        inputs=(asm.LOCAL_RATE_LIMITER, asm.CIRCUIT_BREAKER, WORKLOAD), codes=("MS6005", "MS6006"))

    def analyze(self, ctx: Context) -> None:
        if not ctx.snapshot.workloads():
            return
        for a, b, workload, direction in _overlaps(ctx, asm.LOCAL_RATE_LIMITER):
            ctx.report("MS6005", b, "spec/workloadSelector", related=[a], kind=b.kind, other=a.ref,
                       workload=workload, traffic=direction)
        for a, b, workload, direction in _overlaps(ctx, asm.CIRCUIT_BREAKER):
            ctx.report("MS6006", b, "spec/workloadSelector", related=[a], other=a.ref, workload=workload,
                       traffic=direction)


class SloAlerting:
    """An ASM SLO without alerting generates rules nobody is paged by."""

    metadata = Metadata(name="asm.SloAlerting", description="ASM SLOs alert on budget burn",
                        inputs=(asm.SLO,), codes=("MS6008",))

    def analyze(self, ctx: Context) -> None:
        for obj in ctx.for_each(asm.SLO):
            for i, s in enumerate(as_list(obj.spec.get("slos"))):
                s = as_dict(s)
                if s and "alerting" not in s:
                    ctx.report("MS6008", obj, f"spec/slos[{i}]", slo=f"{obj.name}/{s.get('name')}")


ALL = [Versions(), Fields(), Selectors(), Targets(), Conflicts(), SloAlerting()]
