"""VirtualService rules: where routes point (hosts, ports, subsets) and how routes combine."""
from __future__ import annotations

from collections import defaultdict

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import (as_dict, as_list, as_str, attaches_to_mesh, lookup_host, port_numbers,
                                        route_destinations, visible_namespaces)
from mesh.config import ConfigObject, Snapshot
from mesh.config.hosts import export_scopes_overlap, host_covers, hosts_intersect

VS = "VirtualService"


def _field_of(path: str) -> str:
    return "mirror" if "/mirror" in path else "destination"


class DestinationHosts:
    """Every destination and mirror host must name a Service or ServiceEntry the VirtualService can see."""

    metadata = Metadata(
        name="virtualservice.DestinationHosts",
        description="Route destination and mirror hosts (and ports) exist in the service registry",
        inputs=(VS, "Service", "ServiceEntry"),
        codes=("MS1001", "MS1011", "MS1012"),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        for vs in ctx.for_each(VS):
            viewers = visible_namespaces(vs)
            for path, dest in route_destinations(vs):
                host = as_str(as_dict(dest).get("host"))
                target = lookup_host(snap, host, viewers, vs.namespace) if host else None
                if target is None:
                    ctx.report("MS1001", vs, path, field=_field_of(path), host=host or "''",
                               namespace=vs.namespace or "(none)")
                    continue
                ports = port_numbers(target)
                port = as_dict(as_dict(dest).get("port")).get("number")
                if port is None:
                    if len(ports) > 1:
                        ctx.report("MS1011", vs, path, related=[target], host=host,
                                   ports=", ".join(map(str, ports)))
                elif port not in ports:
                    ctx.report("MS1012", vs, f"{path}/port/number", related=[target], host=host, port=port,
                               ports=", ".join(map(str, ports)) or "no ports")


def _subset_host(snap: Snapshot, host: str, namespace: str | None, namespaces: set[str]) -> str:
    """FQDN for subset lookups; `name.namespace` (half-qualified, as Kiali reads it) is expanded too."""
    name, dot, rest = host.partition(".")
    if dot and rest in namespaces:
        return f"{name}.{rest}.svc.{snap.mesh_config.domain_suffix}"
    return snap.fqdn(host, namespace)


def _subsets_by_host(snap: Snapshot, namespaces: set[str]) -> dict[str, list[tuple[ConfigObject, set[str]]]]:
    out: dict[str, list[tuple[ConfigObject, set[str]]]] = defaultdict(list)
    for dr in snap.of_kind("DestinationRule"):
        host = as_str(dr.spec.get("host"))
        if host:
            names = {as_str(as_dict(s).get("name")) for s in as_list(dr.spec.get("subsets"))}
            out[_subset_host(snap, host, dr.namespace, namespaces)].append((dr, names))
    return out


class DestinationRules:
    """A route to a subset needs a DestinationRule for that host that defines the subset."""

    metadata = Metadata(
        name="virtualservice.DestinationRules",
        description="Subsets named by route destinations and mirrors are defined in a DestinationRule",
        inputs=(VS, "DestinationRule", "MeshConfig"),
        codes=("MS1002",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        namespaces = {o.namespace for o in snap.objects if o.namespace}
        by_host = _subsets_by_host(snap, namespaces)
        wildcard = [(h, v) for h, v in by_host.items() if h.startswith("*")]
        for vs in ctx.for_each(VS):
            for path, dest in route_destinations(vs):
                d = as_dict(dest)
                subset, host = as_str(d.get("subset")), as_str(d.get("host"))
                if not subset or not host:
                    continue
                fq = _subset_host(snap, host, vs.namespace, namespaces)
                candidates = list(by_host.get(fq, []))
                candidates += [c for h, cs in wildcard if host_covers(h, fq) for c in cs]
                if not any(subset in names and snap.visible(dr, vs.namespace) for dr, names in candidates):
                    ctx.report("MS1002", vs, path, related=[dr for dr, _ in candidates],
                               subset=subset, host=host)


class ConflictingMeshGatewayHosts:
    """Two sidecar-bound VirtualServices for one host in overlapping scopes: Istio's merge is undefined."""

    metadata = Metadata(
        name="virtualservice.ConflictingMeshGatewayHosts",
        description="At most one mesh-gateway VirtualService per host within overlapping exportTo scopes",
        inputs=(VS,),
        codes=("MS1005",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        entries: list[tuple[str, ConfigObject]] = []
        for vs in ctx.for_each(VS):
            if not attaches_to_mesh(vs):
                continue
            for h in dict.fromkeys(h for h in as_list(vs.spec.get("hosts")) if isinstance(h, str)):
                entries.append((snap.fqdn(h, vs.namespace), vs))
        exact: dict[str, list[int]] = defaultdict(list)
        wild: list[int] = []
        for i, (host, _) in enumerate(entries):
            (wild if host.startswith("*") else exact[host]).append(i)
        conflicts: dict[int, list[tuple[str, ConfigObject]]] = defaultdict(list)  # id(vs) -> (host, other)

        def pair(i: int, j: int) -> None:
            (hi, a), (hj, b) = entries[i], entries[j]
            if a is not b and export_scopes_overlap(a, b):
                conflicts[id(a)].append((hi, b))
                conflicts[id(b)].append((hj, a))

        for ids in exact.values():
            for x in range(len(ids)):
                for y in range(x + 1, len(ids)):
                    pair(ids[x], ids[y])
        for w in wild:
            for j in range(len(entries)):
                if j != w and (j not in wild or j > w) and hosts_intersect(entries[w][0], entries[j][0]):
                    pair(w, j)
        for vs in snap.of_kind(VS):
            found = conflicts.get(id(vs))
            if not found:
                continue
            host = found[0][0]
            others = sorted({f"{o.namespace}/{o.name}" if o.namespace else o.name for _, o in found})
            me = f"{vs.namespace}/{vs.name}" if vs.namespace else vs.name
            ctx.report("MS1005", vs, "spec/hosts", related=list({id(o): o for _, o in found}.values()),
                       names=", ".join([me] + others), host=host)


class RouteWeights:
    """Weights that add up to something other than 100, a lone weighted destination, a repeated destination."""

    metadata = Metadata(
        name="virtualservice.RouteWeights",
        description="Route weights add up to 100, single destinations carry no weight, destinations are not repeated",
        inputs=(VS,),
        codes=("MS1006", "MS1007", "MS1008"),
    )

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.for_each(VS):
            for proto in ("http", "tcp", "tls"):
                for i, rule in enumerate(as_list(vs.spec.get(proto))):
                    routes = [as_dict(r) for r in as_list(as_dict(rule).get("route"))]
                    path = f"spec/{proto}[{i}]/route"
                    weights = [r.get("weight") for r in routes]
                    nums = [w for w in weights if isinstance(w, int) and not isinstance(w, bool)]
                    if len(routes) == 1 and nums and 0 < nums[0] < 100:
                        ctx.report("MS1007", vs, f"{path}[0]/weight", weight=nums[0])
                    elif len(routes) > 1 and nums and sum(nums) != 100:
                        ctx.report("MS1006", vs, path, total=sum(nums))
                    seen: set[tuple[str, str, str]] = set()
                    for j, r in enumerate(routes):
                        d = as_dict(r.get("destination"))
                        key = (as_str(d.get("host")), as_str(d.get("subset")),
                               str(as_dict(d.get("port")).get("number")))
                        if key[0] and key in seen:
                            ctx.report("MS1008", vs, f"{path}[{j}]/destination", host=key[0],
                                       subset=f" subset {key[1]}" if key[1] else "")
                        seen.add(key)
