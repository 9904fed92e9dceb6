"""Checks that apply across routing kinds: exportTo namespaces and deprecated fields."""
from __future__ import annotations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list

EXPORTING_KINDS = ("VirtualService", "DestinationRule", "ServiceEntry")


class ExportToNamespaces:
    """exportTo entries other than '.', '*' and '~' must name namespaces that exist."""

    metadata = Metadata(
        name="common.ExportToNamespaces",
        description="exportTo names existing namespaces",
        inputs=("Namespace", *EXPORTING_KINDS),
        codes=("MS1017",),
    )

    def analyze(self, ctx: Context) -> None:
        if not list(ctx.for_each("Namespace")):
            return  # without Namespace objects, which namespaces exist is unknown
        known = ctx.snapshot.namespaces()
        for kind in EXPORTING_KINDS:
            for obj in ctx.for_each(kind):
                for i, ns in enumerate(as_list(obj.spec.get("exportTo"))):
                    if isinstance(ns, str) and ns not in (".", "*", "~") and ns not in known:
                        ctx.report("MS1017", obj, f"spec/exportTo[{i}]", export_namespace=ns)


class DeprecatedFields:
    """Fields Istio has deprecated: VirtualService fault.delay.percent, Sidecar egressProxy."""

    metadata = Metadata(
        name="common.DeprecatedFields",
        description="No deprecated VirtualService or Sidecar fields are used",
        inputs=("VirtualService", "Sidecar"),
        codes=("MS1015",),
    )

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.for_each("VirtualService"):
            for i, rule in enumerate(as_list(vs.spec.get("http"))):
                delay = as_dict(as_dict(as_dict(rule).get("fault")).get("delay"))
                if "percent" in delay:
                    ctx.report("MS1015", vs, f"spec/http[{i}]/fault/delay/percent",
                               field="fault.delay.percent", replacement="; use fault.delay.percentage.value")
        for sc in ctx.for_each("Sidecar"):
            if "egressProxy" in as_dict(sc.spec.get("outboundTrafficPolicy")):
                ctx.report("MS1015", sc, "spec/outboundTrafficPolicy/egressProxy",
                           field="outboundTrafficPolicy.egressProxy", replacement="")


GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
SELECTOR_POLICY_KINDS = ("AuthorizationPolicy", "RequestAuthentication", "Telemetry", "WasmPlugin")


class IneffectiveGatewaySelectors:
    """Policies that pick Gateway API gateway pods by selector: those gateways ignore selectors."""

    metadata = Metadata(
        name="common.IneffectiveGatewaySelectors",
        description="Policies target Gateway API gateways with targetRef, not selector",
        inputs=("Workload", *SELECTOR_POLICY_KINDS),
        codes=("MS1019",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        for kind in SELECTOR_POLICY_KINDS:
            for policy in ctx.for_each(kind):
                if policy.spec.get("targetRef") or policy.spec.get("targetRefs"):
                    continue
                labels = as_dict(as_dict(policy.spec.get("selector")).get("matchLabels"))
                if not labels:
                    continue
                pods = snap.matching_workloads(policy.namespace, {str(k): str(v) for k, v in labels.items()})
                gateway = next((w.labels[GATEWAY_NAME_LABEL] for w in pods if GATEWAY_NAME_LABEL in w.labels), None)
                if gateway is not None:
                    ctx.report("MS1019", policy, "spec/selector", gateway=gateway)


#: Condition types (kind -> {type}) whose False status (or PartiallyInvalid reason) means trouble.
BAD_CONDITIONS = {
    "Service": {"istio.io/WaypointBound"},
    "ServiceEntry": {"istio.io/WaypointBound"},
    "WorkloadEntry": {"istio.io/WaypointBound"},
    "AuthorizationPolicy": {"ZtunnelAccepted", "WaypointAccepted"},
    "KubernetesGateway": {"Accepted", "Programmed", "ResolvedRefs"},
    "HTTPRoute": {"Accepted", "ResolvedRefs"},
    "GRPCRoute": {"Accepted", "ResolvedRefs"},
}


class NegativeConditions:
    """A controller wrote a failing condition into the object's status (cluster snapshots only)."""

    metadata = Metadata(
        name="common.NegativeConditions",
        description="No object carries a failing Istio or Gateway API status condition",
        inputs=tuple(BAD_CONDITIONS),
        codes=("MS1506",),
    )

    def analyze(self, ctx: Context) -> None:
        for kind, types in BAD_CONDITIONS.items():
            for obj in ctx.for_each(kind):
                status = as_dict(obj.raw.get("status"))
                conditions = [(c, "status/conditions") for c in as_list(status.get("conditions"))]
                for i, parent in enumerate(as_list(status.get("parents"))):
                    conditions += [(c, f"status/parents[{i}]/conditions") for c in as_list(as_dict(parent).get("conditions"))]
                for cond, path in conditions:
                    cond = as_dict(cond)
                    if cond.get("type") not in types:
                        continue
                    if str(cond.get("status")) == "False" or cond.get("reason") == "PartiallyInvalid":
                        ctx.report("MS1506", obj, path, condition=cond.get("type"), status=cond.get("status"),
                                   reason=cond.get("message") or cond.get("reason") or "no message")
                        break
