"""ServiceEntry rules: addresses for TCP ports, valid addresses and protocols, hosts declared twice."""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str
from mesh.config import ConfigObject
from mesh.config.hosts import export_scopes_overlap

SE = "ServiceEntry"
#: Protocol names Istio accepts on ServiceEntry and Gateway ports (compared upper-case).
PROTOCOLS = frozenset({"HTTP", "HTTPS", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB", "TCP", "TLS", "MONGO",
                       "REDIS", "MYSQL", "UDP", "THRIFT", "DUBBO", "ZOOKEEPER", "HBONE"})


def _protocol(port: dict) -> str:
    return as_str(port.get("protocol")).upper()


class Addresses:
    """TCP ports without addresses cannot be told apart by IP, unless addresses are auto-allocated."""

    metadata = Metadata(
        name="serviceentry.Addresses",
        description="ServiceEntries with TCP (or unset protocol) ports have addresses",
        inputs=(SE, "MeshConfig"),
        codes=("MS1301",),
    )

    def analyze(self, ctx: Context) -> None:
        mc = ctx.mesh_config
        if mc.dns_capture and mc.dns_auto_allocate:
            return
        for se in ctx.for_each(SE):
            if as_list(se.spec.get("addresses")) or as_list(as_dict(se.raw.get("status")).get("addresses")):
                continue
            for i, port in enumerate(as_list(se.spec.get("ports"))):
                proto = _protocol(as_dict(port))
                if proto in ("", "TCP"):
                    ctx.report("MS1301", se, f"spec/ports[{i}]", port=as_dict(port).get("number"),
                               protocol=proto or "no protocol")


class Validity:
    """Addresses must be IPs or CIDR blocks; port protocols must be names Istio knows."""

    metadata = Metadata(
        name="serviceentry.Validity",
        description="ServiceEntry addresses are IPs/CIDRs and port protocols are known",
        inputs=(SE,),
        codes=("MS1304", "MS1305"),
    )

    def analyze(self, ctx: Context) -> None:
        for se in ctx.for_each(SE):
            for i, addr in enumerate(as_list(se.spec.get("addresses"))):
                try:
                    ipaddress.ip_network(str(addr), strict=False)
                except ValueError:
                    ctx.report("MS1304", se, f"spec/addresses[{i}]", address=addr)
            for i, port in enumerate(as_list(se.spec.get("ports"))):
                proto = _protocol(as_dict(port))
                if proto and proto not in PROTOCOLS:
                    ctx.report("MS1305", se, f"spec/ports[{i}]/protocol", port=as_dict(port).get("number"),
                               protocol=as_dict(port).get("protocol"), known=", ".join(sorted(PROTOCOLS)))


def _host_ports(ctx: Context) -> dict[tuple[str, int], list[tuple[ConfigObject, str, str]]]:
    out: dict[tuple[str, int], list[tuple[ConfigObject, str, str]]] = defaultdict(list)
    for se in ctx.for_each(SE):
        for h in as_list(se.spec.get("hosts")):
            if not isinstance(h, str):
                continue
            for i, port in enumerate(as_list(se.spec.get("ports"))):
                number = as_dict(port).get("number")
                if isinstance(number, int):
                    out[(ctx.snapshot.fqdn(h, se.namespace), number)].append(
                        (se, _protocol(as_dict(port)) or "TCP", f"spec/ports[{i}]"))
    return out


class Conflicts:
    """The same host and port declared by several visible ServiceEntries (with different protocols: worse)."""

    metadata = Metadata(
        name="serviceentry.Conflicts",
        description="A host and port is declared once, with one protocol, per visibility scope",
        inputs=(SE,),
        codes=("MS1302", "MS1303"),
    )

    def analyze(self, ctx: Context) -> None:
        for (host, number), decls in _host_ports(ctx).items():
            if len(decls) < 2:
                continue
            for se, proto, path in decls:
                visible = [(o, op) for o, op, _ in decls if o is not se and export_scopes_overlap(se, o)]
                clash = next(((o, op) for o, op in visible if op != proto), None)
                if clash is not None:
                    ctx.report("MS1302", se, path, related=[clash[0]], host=host, port=number, protocol=proto,
                               other_protocol=clash[1], other=_name(clash[0]))
                elif visible:
                    ctx.report("MS1303", se, path, related=[visible[0][0]], host=host, port=number,
                               other=_name(visible[0][0]))


def _name(obj: ConfigObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
