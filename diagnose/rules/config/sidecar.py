"""Sidecar rules: which workloads a Sidecar selects, overlaps between Sidecars, ambient mode, egress hosts."""
from __future__ import annotations

from collections import defaultdict

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, selector_labels
from mesh.config import ConfigObject

SC = "Sidecar"


def _selector(sc: ConfigObject) -> dict[str, str]:
    return selector_labels(as_dict(sc.spec.get("workloadSelector")).get("labels"))


def _text(sel: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))


def _names(objs: list[ConfigObject]) -> str:
    return ", ".join(sorted(o.name for o in objs))


class Selectors:
    """Selectors must match a workload in the Sidecar's namespace, once; one default Sidecar per namespace."""

    metadata = Metadata(
        name="sidecar.Selectors",
        description="Sidecar selectors match workloads, no workload has two Sidecars, one default per namespace",
        inputs=(SC, "Workload", "Namespace"),
        codes=("MS1401", "MS1402", "MS1403", "MS1404"),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        defaults: dict[str | None, list[ConfigObject]] = defaultdict(list)
        by_workload: dict[int, list[ConfigObject]] = defaultdict(list)
        workloads = {}
        for sc in ctx.for_each(SC):
            sel = _selector(sc)
            if not sel:
                defaults[sc.namespace].append(sc)
                if snap.namespace_is_ambient(sc.namespace):
                    ctx.report("MS1404", sc, None, target=f"namespace {sc.namespace}")
                continue
            matched = snap.matching_workloads(sc.namespace, sel)
            if not matched:
                ctx.report("MS1403", sc, "spec/workloadSelector", selector=_text(sel),
                           namespace=sc.namespace or "(none)")
                continue
            ambient = [w for w in matched if snap.is_ambient(w)]
            if ambient:
                ctx.report("MS1404", sc, "spec/workloadSelector", target=f"{ambient[0].kind} {ambient[0].name}")
            for w in matched:
                by_workload[id(w)].append(sc)
                workloads[id(w)] = w
        for ns, scs in defaults.items():
            if len(scs) > 1:
                for sc in scs:
                    ctx.report("MS1402", sc, None, related=[o for o in scs if o is not sc],
                               namespace=ns or "(none)", names=_names(scs))
        reported: set[int] = set()
        for wid, scs in by_workload.items():
            if len(scs) < 2:
                continue
            w = workloads[wid]
            for sc in scs:
                if id(sc) not in reported:
                    reported.add(id(sc))
                    ctx.report("MS1401", sc, "spec/workloadSelector", related=[o for o in scs if o is not sc],
                               workload=f"{w.kind} {w.namespace}/{w.name}", names=_names(scs))


class RootDefault:
    """The Sidecar in the root namespace is the mesh-wide default; a workload selector defeats that."""

    metadata = Metadata(
        name="sidecar.RootDefault",
        description="The root-namespace Sidecar has no workload selector",
        inputs=(SC, "MeshConfig"),
        codes=("MS1406",),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.mesh_config.root_namespace
        for sc in ctx.for_each(SC):
            if sc.namespace == root and _selector(sc):
                ctx.report("MS1406", sc, "spec/workloadSelector", namespace=root)


class EgressHosts:
    """Egress hosts written as namespace/host must name a Service or ServiceEntry."""

    metadata = Metadata(
        name="sidecar.EgressHosts",
        description="Sidecar egress hosts name existing services",
        inputs=(SC, "Service", "ServiceEntry"),
        codes=("MS1405",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        exact, _ = snap.service_entry_hosts()
        for sc in ctx.for_each(SC):
            for i, egress in enumerate(as_list(sc.spec.get("egress"))):
                for j, entry in enumerate(as_list(as_dict(egress).get("hosts"))):
                    if not isinstance(entry, str) or "/" not in entry:
                        continue
                    ns, _, host = entry.partition("/")
                    if "*" in host or ns in ("*", "~"):
                        continue
                    ns = sc.namespace if ns == "." else ns
                    fq = snap.fqdn(host, ns)
                    if snap.service_by_fqdn(fq) is None and fq not in exact and host not in exact:
                        ctx.report("MS1405", sc, f"spec/egress[{i}]/hosts[{j}]", host=entry)


class OutboundPolicyMode:
    """outboundTrafficPolicy without a mode is ambiguous to readers (Istio takes ALLOW_ANY)."""

    metadata = Metadata(
        name="sidecar.OutboundPolicyMode",
        description="Sidecar outboundTrafficPolicy states its mode",
        inputs=(SC,),
        codes=("MS1407",),
    )

    def analyze(self, ctx: Context) -> None:
        for sc in ctx.for_each(SC):
            policy = sc.spec.get("outboundTrafficPolicy")
            if isinstance(policy, dict) and not policy.get("mode"):
                ctx.report("MS1407", sc, "spec/outboundTrafficPolicy")
