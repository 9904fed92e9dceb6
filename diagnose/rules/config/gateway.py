"""Gateway rules: the workload a Gateway selects, the ports its Service exposes, and Gateways that collide.

Gateways select pods in any namespace (Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE
defaults to false). Pods and pod templates (Deployments) both count, so a set
of manifests is judged like the cluster it will create.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

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
        inputs=(GW, "Workload", "Service", "MultiClusterService"),
        codes=("MS1203",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        by_ns: dict[str | None, list[tuple[ConfigObject, dict[str, str]]]] = defaultdict(list)
        for svc in snap.services():
            sel = selector_labels(svc.spec.get("selector"))
            if sel:
                by_ns[svc.namespace].append((svc, sel))
        for mcs in ctx.for_each("MultiClusterService"):
            # GKE multi-cluster ingress: the controller derives a Service from spec.template in each cluster
            template = as_dict(as_dict(mcs.spec.get("template")).get("spec"))
            sel = selector_labels(template.get("selector"))
            if mcs.group == "networking.gke.io" and sel:
                by_ns[mcs.namespace].append((replace(mcs, spec=template), sel))
        exposed_for: dict[tuple, tuple[set[int], list[ConfigObject]]] = {}
        for gw in ctx.for_each(GW):
            selector = selector_labels(gw.spec.get("selector"))
            key = tuple(sorted(selector.items()))
            if key not in exposed_for:
                exposed_for[key] = _exposed_ports(gateway_workloads(snap, gw), by_ns)
            exposed, related = exposed_for[key]
            if not related and not gateway_workloads(snap, gw):
                continue  # gateway.Selector reports it
            for i, server in enumerate(as_list(gw.spec.get("servers"))):
                number = as_dict(as_dict(server).get("port")).get("number")
                if isinstance(number, int) and number not in exposed:
                    ctx.report("MS1203", gw, f"spec/servers[{i}]/port/number", related=related, port=number,
                               selector=_selector_text(selector))


def _exposed_ports(pods: list[Workload], services: dict[str | None, list[tuple[ConfigObject, dict[str, str]]]]
                   ) -> tuple[set[int], list[ConfigObject]]:
    exposed: set[int] = set()
    related: list[ConfigObject] = []
    for ns in {p.namespace for p in pods}:
        for svc, sel in services.get(ns, []):
            if not any(p.namespace == ns and labels_match(sel, p.labels) for p in pods):
                continue
            related.append(svc)
            for port in as_list(svc.spec.get("ports")):
                port = as_dict(port)
                for k in ("port", "targetPort"):
                    if isinstance(port.get(k), int):
                        exposed.add(port[k])
    return exposed, related


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
        selectors = [selector_labels(gw.spec.get("selector")) for gw in gws]
        pods = [{id(w) for w in gateway_workloads(snap, gw)} for gw in gws]
        # Index listeners by (port, bind): exact hosts in a dict, wildcards in a list.
        exact: dict[tuple[int, str, str], list[tuple[int, str]]] = defaultdict(list)
        wild: dict[tuple[int, str], list[tuple[str, int, str]]] = defaultdict(list)
        every: dict[tuple[int, str], list[tuple[str, int, str]]] = defaultdict(list)
        for g, gw in enumerate(gws):
            for port, host, bind, path in _listeners(gw):
                every[(port, bind)].append((host, g, path))
                if "*" in host:
                    wild[(port, bind)].append((host, g, path))
                else:
                    exact[(port, bind, host)].append((g, path))
        hits: dict[int, tuple[int, str, int, str]] = {}  # gateway -> (other, path, port, host)

        def consider(a: int, pa: str, b: int, pb: str, port: int, host: str) -> None:
            if a == b or (selectors[a] != selectors[b] and not (pods[a] & pods[b])):
                return
            hits.setdefault(a, (b, pa, port, host))
            hits.setdefault(b, (a, pb, port, host))

        for (port, _, host), entries in exact.items():
            for x in range(len(entries)):
                for y in range(x + 1, len(entries)):
                    consider(entries[x][0], entries[x][1], entries[y][0], entries[y][1], port, host)
        for (port, bind), wildcards in wild.items():
            for host, g, path in wildcards:
                for other_host, o, opath in every[(port, bind)]:
                    if (o, opath) != (g, path) and hosts_intersect(host, other_host):
                        consider(g, path, o, opath, port, host)
        for g, (o, path, port, host) in sorted(hits.items()):
            other = gws[o]
            ctx.report("MS1202", gws[g], path, related=[other], port=port, host=host,
                       other=f"{other.namespace}/{other.name}" if other.namespace else other.name,
                       selector=_selector_text(selectors[g]))
