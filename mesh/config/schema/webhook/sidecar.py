"""Sidecar checks of Istio's webhook (validation.go ValidateSidecar)."""
from __future__ import annotations

from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue
from mesh.config.schema.webhook.common import list_at, map_at

def sidecar(spec: dict[str, Any], out: list[Issue]) -> None:
    egress = list_at(spec, "egress")
    portless = [i for i, e in enumerate(egress) if isinstance(e, dict) and not e.get("port")]
    if len(portless) > 1:
        out.append(Issue(f"spec/egress[{portless[1]}]", SEMANTIC, "spec.egress: a sidecar can have only one egress "
                                                                  "listener without a port"))
    elif portless and portless[0] != len(egress) - 1:
        out.append(Issue(f"spec/egress[{portless[0]}]", SEMANTIC, "spec.egress: the egress listener without a port "
                                                                  "must be the last listener"))
    for i, e in enumerate(egress):
        if isinstance(e, dict) and not list_at(e, "hosts"):
            out.append(Issue(f"spec/egress[{i}]", SEMANTIC, f"spec.egress[{i}]: an egress listener must contain at "
                                                            "least one host"))
        for j, h in enumerate(list_at(e, "hosts")):
            if isinstance(h, str) and "/" not in h:
                out.append(Issue(f"spec/egress[{i}]/hosts[{j}]", SEMANTIC, f"spec.egress[{i}].hosts[{j}]: {h!r} "
                                 "must be namespace/dnsName (e.g. ./*, istio-system/*)"))
    for i, ing in enumerate(list_at(spec, "ingress")):
        if isinstance(ing, dict) and not ing.get("port"):
            out.append(Issue(f"spec/ingress[{i}]", SEMANTIC, f"spec.ingress[{i}]: port is required for ingress "
                                                             "listeners"))
    seen: dict[int, str] = {}  # IP-bound listener ports, ingress and egress together (as Istio counts them)
    for key in ("ingress", "egress"):
        for i, listener in enumerate(list_at(spec, key)):
            port = map_at(listener, "port")
            p = f"spec/{key}[{i}]/port"
            if port.get("targetPort"):
                out.append(Issue(f"{p}/targetPort", SEMANTIC, f"{p.replace('/', '.')}.targetPort has no impact on "
                                                              "Sidecars; remove it"))
            number = port.get("number")
            if isinstance(number, int) and not isinstance(number, bool) and number:
                if number in seen:
                    out.append(Issue(f"{p}/number", SEMANTIC, f"{p.replace('/', '.')}.number: ports on IP bound "
                                     f"listeners must be unique ({number} is also {seen[number]})"))
                else:
                    seen[number] = f"spec.{key}[{i}]"
    mode = map_at(spec, "outboundTrafficPolicy").get("mode")
    if mode == "ALLOW_ANY_DYNAMIC_DNS":
        out.append(Issue("spec/outboundTrafficPolicy/mode", SEMANTIC, "spec.outboundTrafficPolicy.mode: "
                         "ALLOW_ANY_DYNAMIC_DNS is only supported in MeshConfig, not in a Sidecar"))
