"""Gateway API routes (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute): the parents and backends they name exist."""
from __future__ import annotations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute")
#: Ref kind (Gateway API) -> our type name.
PARENT_KINDS = {"Gateway": "KubernetesGateway", "Service": "Service"}
#: Built-in classes whose Gateways istiod deploys itself (a Deployment and a Service), and whether that Service's
#: name is `<gateway>-<class>` rather than `<gateway>` (pilot's gatewaycommon GetDefaultName and class infos).
DEPLOYED_CLASSES = {"istio": True, "istio-waypoint": False, "istio-east-west": False, "agentgateway": False}
NAME_OVERRIDE = "gateway.istio.io/name-override"


def generated_services(ctx: Context) -> set[tuple[str | None, str]]:
    """(namespace, name) of the Services istiod creates for the Gateway API gateways it deploys: a route to
    `httpbin-egress-gateway-istio` (Istio's own egress example) names one that no file defines."""
    out = set()
    for gw in ctx.for_each("KubernetesGateway"):
        cls = as_str(gw.spec.get("gatewayClassName"))
        if cls not in DEPLOYED_CLASSES:
            continue
        if any(as_dict(a).get("type") == "Hostname" for a in as_list(gw.spec.get("addresses"))):
            continue  # unmanaged: the address names an existing Service, nothing is deployed
        out.add((gw.namespace, gw.annotations.get(NAME_OVERRIDE) or
                 (f"{gw.name}-{cls}" if DEPLOYED_CLASSES[cls] else gw.name)))
    return out


class References:
    """parentRefs must name an existing Gateway (or Service), backendRefs an existing Service."""

    metadata = Metadata(
        name="gatewayapi.References",
        description="Gateway API route parentRefs and backendRefs name existing objects",
        inputs=(*ROUTE_KINDS, "KubernetesGateway", "Service", "ServiceEntry"),
        codes=("MS1601", "MS1602"),
    )

    def analyze(self, ctx: Context) -> None:
        generated = generated_services(ctx)
        for kind in ROUTE_KINDS:
            for route in ctx.for_each(kind):
                for i, ref in enumerate(as_list(route.spec.get("parentRefs"))):
                    ref = as_dict(ref)
                    ref_kind = as_str(ref.get("kind")) or "Gateway"
                    target = PARENT_KINDS.get(ref_kind)
                    name, ns = as_str(ref.get("name")), as_str(ref.get("namespace")) or route.namespace
                    if target and name and not ctx.exists(target, ns, name):
                        ctx.report("MS1601", route, f"spec/parentRefs[{i}]", parent=f"{ref_kind} {ns}/{name}")
                for i, rule in enumerate(as_list(route.spec.get("rules"))):
                    for j, ref in enumerate(as_list(as_dict(rule).get("backendRefs"))):
                        ref = as_dict(ref)
                        ref_kind = as_str(ref.get("kind")) or "Service"
                        name, ns = as_str(ref.get("name")), as_str(ref.get("namespace")) or route.namespace
                        if ref_kind == "Service" and name and not ctx.exists("Service", ns, name) \
                                and (ns, name) not in generated:
                            ctx.report("MS1602", route, f"spec/rules[{i}]/backendRefs[{j}]",
                                       backend=f"Service {ns}/{name}")
                        elif ref_kind == "Hostname" and name and not ctx.snapshot.service_entries_for(name, ns):
                            ctx.report("MS1602", route, f"spec/rules[{i}]/backendRefs[{j}]",
                                       backend=f"ServiceEntry host {name}")
