"""Gateway API routes (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute): the parents and backends they name exist."""
from __future__ import annotations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute")
#: Ref kind (Gateway API) -> our type name.
PARENT_KINDS = {"Gateway": "KubernetesGateway", "Service": "Service"}


class References:
    """parentRefs must name an existing Gateway (or Service), backendRefs an existing Service."""

    metadata = Metadata(
        name="gatewayapi.References",
        description="Gateway API route parentRefs and backendRefs name existing objects",
        inputs=(*ROUTE_KINDS, "KubernetesGateway", "Service", "ServiceEntry"),
        codes=("MS1601", "MS1602"),
    )

    def analyze(self, ctx: Context) -> None:
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
                        if ref_kind == "Service" and name and not ctx.exists("Service", ns, name):
                            ctx.report("MS1602", route, f"spec/rules[{i}]/backendRefs[{j}]",
                                       backend=f"Service {ns}/{name}")
                        elif ref_kind == "Hostname" and name and not ctx.snapshot.service_entries_for(name, ns):
                            ctx.report("MS1602", route, f"spec/rules[{i}]/backendRefs[{j}]",
                                       backend=f"ServiceEntry host {name}")
