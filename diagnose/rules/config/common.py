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
