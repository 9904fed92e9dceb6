"""VirtualService rules about gateways: references, hosts a gateway accepts, and what ingress traffic gets.

A VirtualService bound to gateways configures ingress (or egress) proxies, not
sidecars; these checks look at that binding from the VirtualService's side.
"""
from __future__ import annotations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import (INTERNAL_GATEWAY_MARK, MESH_GATEWAY, as_dict, as_list, as_str,
                                        attaches_to_mesh, route_destinations, split_gateway_ref, vs_gateways)
from mesh.config import ConfigObject, Snapshot
from mesh.config.hosts import hosts_intersect

VS = "VirtualService"


def _gateway_hosts(gw: ConfigObject, snap: Snapshot) -> list[tuple[str, str]]:
    """(namespace part, host) of every server host of an Istio Gateway or listener of a Gateway API Gateway."""
    out: list[tuple[str, str]] = []
    if snap.type_of(gw) == "KubernetesGateway":
        for listener in as_list(gw.spec.get("listeners")):
            out.append(("*", as_str(as_dict(listener).get("hostname")) or "*"))
        return out
    for server in as_list(gw.spec.get("servers")):
        for h in as_list(as_dict(server).get("hosts")):
            if isinstance(h, str):
                ns, _, host = h.rpartition("/")
                out.append((ns or "*", host))
    return out


def _accepts(gw: ConfigObject, vs: ConfigObject, hosts: list[str], snap: Snapshot) -> bool:
    for ns, gw_host in _gateway_hosts(gw, snap):
        if ns == "." and gw.namespace != vs.namespace:
            continue
        if ns not in ("*", ".") and ns != vs.namespace:
            continue
        if any(hosts_intersect(gw_host, h) for h in hosts):
            return True
    return False


class Gateways:
    """Gateways a VirtualService binds to must exist and accept at least one of its hosts."""

    metadata = Metadata(
        name="virtualservice.Gateways",
        description="Referenced gateways exist, are not generated internals, and expose a VirtualService host",
        inputs=(VS, "Gateway", "KubernetesGateway"),
        codes=("MS1003", "MS1004", "MS1014", "MS1016"),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        for vs in ctx.for_each(VS):
            hosts = [h for h in as_list(vs.spec.get("hosts")) if isinstance(h, str)]
            for i, ref in enumerate(as_list(vs.spec.get("gateways"))):
                if not isinstance(ref, str) or ref == MESH_GATEWAY:
                    continue
                path = f"spec/gateways[{i}]"
                if INTERNAL_GATEWAY_MARK in ref:
                    ctx.report("MS1014", vs, path, gateway=ref)
                    continue
                ns, name = split_gateway_ref(ref, vs.namespace)
                gw = ctx.find("Gateway", ns, name) or ctx.find("KubernetesGateway", ns, name)
                if gw is None and "/" not in ref and "." in ref:
                    legacy_name, _, rest = ref.partition(".")
                    legacy = ctx.find("Gateway", rest.split(".")[0], legacy_name)
                    if legacy is not None:
                        ctx.report("MS1016", vs, path, related=[legacy], gateway=ref)
                        gw = legacy
                if gw is None:
                    ctx.report("MS1003", vs, path, gateway=ref)
                if gw is None or not _accepts(gw, vs, hosts, snap):
                    ctx.report("MS1004", vs, path, related=[gw] if gw else [], hosts=", ".join(hosts) or "none",
                               gateway=f"{ns}/{name}" if ns else name)
            for i, rule in enumerate(as_list(vs.spec.get("http"))):
                for j, match in enumerate(as_list(as_dict(rule).get("match"))):
                    for k, ref in enumerate(as_list(as_dict(match).get("gateways"))):
                        if not isinstance(ref, str) or ref == MESH_GATEWAY or INTERNAL_GATEWAY_MARK in ref:
                            continue
                        ns, name = split_gateway_ref(ref, vs.namespace)
                        if ctx.find("Gateway", ns, name) is None and ctx.find("KubernetesGateway", ns, name) is None:
                            ctx.report("MS1003", vs, f"spec/http[{i}]/match[{j}]/gateways[{k}]", gateway=ref)


class IngressSubsetRouting:
    """Gateway routes without a subset skip the subset routing a mesh VirtualService sets up for the host."""

    metadata = Metadata(
        name="virtualservice.IngressSubsetRouting",
        description="Gateway-bound routes to a host the mesh routes by subset also name a subset",
        inputs=(VS,),
        codes=("MS1013",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        mesh_subset_hosts: dict[str, ConfigObject] = {}
        vss = list(ctx.for_each(VS))
        for vs in vss:
            if not attaches_to_mesh(vs):
                continue
            hosts = {snap.fqdn(h, vs.namespace) for h in as_list(vs.spec.get("hosts")) if isinstance(h, str)}
            for _, dest in route_destinations(vs):
                d = as_dict(dest)
                fq = snap.fqdn(as_str(d.get("host")), vs.namespace)
                if as_str(d.get("subset")) and fq in hosts:
                    mesh_subset_hosts.setdefault(fq, vs)
        for vs in vss:
            if not any(g != MESH_GATEWAY for g in vs_gateways(vs)):
                continue
            for path, dest in route_destinations(vs):
                d = as_dict(dest)
                host = as_str(d.get("host"))
                mesh_vs = mesh_subset_hosts.get(snap.fqdn(host, vs.namespace)) if host else None
                if mesh_vs is not None and mesh_vs is not vs and not as_str(d.get("subset")):
                    ctx.report("MS1013", vs, path, related=[mesh_vs], host=host,
                               mesh_vs=f"{mesh_vs.namespace}/{mesh_vs.name}")


CLAIM_PREFIX = "@request.auth.claims."


def _claims(vs: ConfigObject) -> list[tuple[str, str]]:
    """(path, claim) for every http match header that routes on a JWT claim."""
    out = []
    for i, rule in enumerate(as_list(vs.spec.get("http"))):
        for j, match in enumerate(as_list(as_dict(rule).get("match"))):
            for header in as_dict(as_dict(match).get("headers")):
                if str(header).startswith(CLAIM_PREFIX):
                    out.append((f"spec/http[{i}]/match[{j}]/headers/{header}", str(header)[len(CLAIM_PREFIX):]))
    return out


class JwtClaimRoutes:
    """Routing on JWT claims through a gateway needs a RequestAuthentication on the gateway pods."""

    metadata = Metadata(
        name="virtualservice.JwtClaimRoutes",
        description="Routes on JWT claims go through gateways whose pods validate JWTs",
        inputs=(VS, "Gateway", "RequestAuthentication", "Workload", "MeshConfig"),
        codes=("MS1018",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        root = ctx.mesh_config.root_namespace
        ras = list(ctx.for_each("RequestAuthentication"))
        for vs in ctx.for_each(VS):
            claims = _claims(vs)
            if not claims:
                continue
            for ref in vs_gateways(vs):
                if ref == MESH_GATEWAY:
                    continue
                ns, name = split_gateway_ref(ref, vs.namespace)
                gw = ctx.find("Gateway", ns, name)
                if gw is None:
                    continue
                sel = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
                pods = snap.matching_workloads(None, sel, any_namespace=True)
                if pods and all(_has_request_authn(p, ras, root) for p in pods):
                    continue
                path, claim = claims[0]
                ctx.report("MS1018", vs, path, related=[gw], claim=claim, gateway=f"{gw.namespace}/{gw.name}"
                           if gw.namespace else gw.name)


def _has_request_authn(pod, ras: list[ConfigObject], root: str) -> bool:
    for ra in ras:
        if ra.namespace not in (pod.namespace, root):
            continue
        labels = as_dict(as_dict(ra.spec.get("selector")).get("matchLabels"))
        if all(pod.labels.get(str(k)) == str(v) for k, v in labels.items()):
            return True
    return False
