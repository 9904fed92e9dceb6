"""Gateway rules: the workload a Gateway selects, the ports its Service exposes, and Gateways that collide.

Gateways select pods in any namespace (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE
defaults to false). Pods and pod templates (Deployments) both count, so a set
of manifests is judged like the cluster it will create.
"""
from __future__ import annotations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, selector_labels
from mesh.config import ConfigObject, Snapshot, Workload
from mesh.config.hosts import hosts_intersect
from mesh.config.workloads import labels_match

GW = "Gateway"


def _selector_text(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(empty)"


def gateway_workloads(snap: Snapshot, gw: ConfigObject) -> list[Workload]:
    return snap.matching_workloads(None, selector_labels(gw.spec.get("selector")), any_namespace=True)


class Selector:
    """A Gateway whose selector matches no gateway pod configures nothing."""

    metadata = Metadata(
        name="gateway.Selector",
        description="Gateway selectors match at least one gateway workload",
        inputs=(GW, "Workload"),
        codes=("MS1201",),
    )

    def analyze(self, ctx: Context) -> None:
        for gw in ctx.for_each(GW):
            if not gateway_workloads(ctx.snapshot, gw):
                ctx.report("MS1201", gw, "spec/selector",
                           selector=_selector_text(selector_labels(gw.spec.get("selector"))))


class IngressPorts:
    """A Gateway server port must be exposed (as port or targetPort) by a Service in front of its pods."""

    metadata = Metadata(
        name="gateway.IngressPorts",
        description="Gateway server ports are exposed by a Service selecting the gateway pods",
        inputs=(GW, "Workload", "Service"),
        codes=("MS1203",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        services = snap.services()
        for gw in ctx.for_each(GW):
            pods = gateway_workloads(snap, gw)
            if not pods:
                continue  # gateway.Selector reports it
            exposed: set[int] = set()
            related: list[ConfigObject] = []
            for svc in services:
                sel = selector_labels(svc.spec.get("selector"))
                if not sel or not any(p.namespace == svc.namespace and labels_match(sel, p.labels) for p in pods):
                    continue
                related.append(svc)
                for port in as_list(svc.spec.get("ports")):
                    port = as_dict(port)
                    for key in ("port", "targetPort"):
                        if isinstance(port.get(key), int):
                            exposed.add(port[key])
            for i, server in enumerate(as_list(gw.spec.get("servers"))):
                number = as_dict(as_dict(server).get("port")).get("number")
                if isinstance(number, int) and number not in exposed:
                    ctx.report("MS1203", gw, f"spec/servers[{i}]/port/number", related=related, port=number,
                               selector=_selector_text(selector_labels(gw.spec.get("selector"))))


def _listeners(gw: ConfigObject) -> list[tuple[int, str, str, str]]:
    """(port, host, bind, path) for every server host that has a port."""
    out = []
    for i, server in enumerate(as_list(gw.spec.get("servers"))):
        server = as_dict(server)
        number = as_dict(server.get("port")).get("number")
        if not isinstance(number, int):
            continue
        bind = server.get("bind") if isinstance(server.get("bind"), str) else ""
        for h in as_list(server.get("hosts")):
            if isinstance(h, str):
                out.append((number, h.rpartition("/")[2], bind, f"spec/servers[{i}]"))
    return out


class Conflicts:
    """Two Gateways on the same workload serving an overlapping host on one port: one loses."""

    metadata = Metadata(
        name="gateway.Conflicts",
        description="Gateways on the same workload do not serve overlapping hosts on the same port",
        inputs=(GW, "Workload"),
        codes=("MS1202",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        gws = list(ctx.for_each(GW))
        info = []
        for gw in gws:
            sel = selector_labels(gw.spec.get("selector"))
            pods = {id(w) for w in gateway_workloads(snap, gw)}
            info.append((gw, sel, pods, _listeners(gw)))
        reported: set[int] = set()
        for a in range(len(info)):
            for b in range(a + 1, len(info)):
                ga, sa, pa, la = info[a]
                gb, sb, pb, lb = info[b]
                if sa != sb and not (pa & pb):
                    continue
                for port, host, bind, path in la:
                    hit = next(((p2, h2) for p2, h2, b2, _ in lb if p2 == port and b2 == bind
                                and hosts_intersect(host, h2)), None)
                    if hit is None:
                        continue
                    for me, other, where in ((ga, gb, path), (gb, ga, None)):
                        if id(me) in reported:
                            continue
                        reported.add(id(me))
                        if where is None:
                            where = next(p for p2, h2, b2, p in lb if p2 == port and b2 == bind
                                         and hosts_intersect(host, h2))
                        ctx.report("MS1202", me, where, related=[other], port=port, host=host,
                                   other=f"{other.namespace}/{other.name}" if other.namespace else other.name,
                                   selector=_selector_text(sa))
                    break
