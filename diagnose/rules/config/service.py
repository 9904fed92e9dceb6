"""Kubernetes Service rules: port names that tell Istio the protocol, and workloads behind several Services."""
from __future__ import annotations

from collections import defaultdict

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str, selector_labels
from mesh.config import ConfigObject
from mesh.config.workloads import labels_match

SVC = "Service"
#: Protocol prefixes Istio reads from a port name (`<protocol>[-suffix]`) or appProtocol.
PORT_PROTOCOLS = frozenset({"http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "mysql", "redis",
                            "udp", "thrift", "dubbo", "zookeeper", "h2c", "kubernetes.io/h2c", "kubernetes.io/ws",
                            "kubernetes.io/wss", "ws", "wss", "hbone"})
MANAGED_LABEL = "gateway.istio.io/managed"


def port_protocol(name: str) -> str | None:
    """The protocol a port name declares, or None."""
    lowered = name.lower()
    if lowered in PORT_PROTOCOLS:
        return lowered
    for proto in ("grpc-web", *PORT_PROTOCOLS):
        if lowered.startswith(proto + "-"):
            return proto
    return None


def _is_control_plane(svc: ConfigObject, root: str) -> bool:
    return svc.namespace == root and ("istio" in svc.labels or svc.labels.get("release") == "istio")


class PortNames:
    """Ports named `<protocol>[-suffix]` (or with appProtocol) let Istio skip protocol sniffing."""

    metadata = Metadata(
        name="service.PortNames",
        description="Service ports declare their protocol by name or appProtocol",
        inputs=(SVC, "MeshConfig"),
        codes=("MS1501", "MS1502", "MS1505"),
    )

    def analyze(self, ctx: Context) -> None:
        root = ctx.mesh_config.root_namespace
        for svc in ctx.for_each(SVC):
            if _is_control_plane(svc, root) or MANAGED_LABEL in svc.labels:
                continue
            external = as_str(svc.spec.get("type")) == "ExternalName"
            for i, port in enumerate(as_list(svc.spec.get("ports"))):
                port = as_dict(port)
                name, app = as_str(port.get("name")), as_str(port.get("appProtocol"))
                path = f"spec/ports[{i}]"
                if app:
                    if app.lower() not in PORT_PROTOCOLS:
                        ctx.report("MS1505", svc, f"{path}/appProtocol", port=port.get("port"), app_protocol=app)
                    continue
                proto = port_protocol(name)
                if external:
                    if proto is None or name.lower() == "tcp":
                        ctx.report("MS1502", svc, path, port=port.get("port"), name=name or "(unnamed)")
                elif proto is None:
                    ctx.report("MS1501", svc, path, port=port.get("port"), name=name or "(unnamed)")


class MultipleServices:
    """A workload behind several Services: one port with two protocols, or two ports onto one targetPort."""

    metadata = Metadata(
        name="service.MultipleServices",
        description="Services selecting one in-mesh workload agree on port protocols and targetPorts",
        inputs=("Workload", SVC, "Namespace"),
        codes=("MS1503", "MS1504"),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        services_by_ns: dict[str | None, list[tuple[ConfigObject, dict[str, str]]]] = defaultdict(list)
        for svc in ctx.for_each(SVC):
            sel = selector_labels(svc.spec.get("selector"))
            if sel:
                services_by_ns[svc.namespace].append((svc, sel))
        for w in snap.workloads():
            if w.kind == "Pod" or w.obj is None or MANAGED_LABEL in w.obj.labels or not snap.in_mesh(w):
                continue
            if as_list(as_dict(w.obj.raw.get("metadata")).get("ownerReferences")):
                continue  # a ReplicaSet a Deployment owns: the Deployment is reported
            selecting = [svc for svc, sel in services_by_ns.get(w.namespace, []) if labels_match(sel, w.labels)]
            if len(selecting) < 2:
                continue
            protocols: dict[int, dict[str, str]] = defaultdict(dict)  # port -> protocol -> service
            targets: dict[str, dict[int, str]] = defaultdict(dict)  # targetPort -> port -> service
            for svc in selecting:
                for port in as_list(svc.spec.get("ports")):
                    port = as_dict(port)
                    number = port.get("port")
                    if not isinstance(number, int):
                        continue
                    protocols[number].setdefault(as_str(port.get("protocol")).upper() or "TCP", svc.name)
                    target = port.get("targetPort", number)
                    targets[str(target)].setdefault(number, svc.name)
            wl = f"{w.kind} {w.namespace}/{w.name}" if w.namespace else f"{w.kind} {w.name}"
            for number, by_proto in sorted(protocols.items()):
                if len(by_proto) > 1:
                    ctx.report("MS1503", w.obj, None, related=selecting, workload=wl, port=number,
                               services=", ".join(sorted(set(by_proto.values()))))
            for target, by_port in sorted(targets.items()):
                if len(by_port) > 1:
                    ctx.report("MS1504", w.obj, None, related=selecting, workload=wl, target_port=target,
                               ports=", ".join(map(str, sorted(by_port))),
                               services=", ".join(sorted(set(by_port.values()))))


def _container_ports(w) -> tuple[set[int], set[str]] | None:
    """Declared container ports (numbers, names) of a workload's own containers; None when none declares any.

    An injected `istio-proxy` beside them is not the workload's: Istio's injector declares 15090
    (http-envoy-prom) on it, so every injected pod of a live cluster would seem to declare ports and an app that
    declares none would be judged by the sidecar's. A proxy that is the pod's only container (a gateway) counts."""
    numbers: set[int] = set()
    names: set[str] = set()
    containers = [c for c in w.containers if isinstance(c, dict)]
    if len(containers) > 1:
        containers = [c for c in containers if c.get("name") != "istio-proxy"]
    for c in containers:
        for p in as_list(c.get("ports")):
            p = as_dict(p)
            if isinstance(p.get("containerPort"), int):
                numbers.add(p["containerPort"])
            if isinstance(p.get("name"), str):
                names.add(p["name"])
    return (numbers, names) if numbers or names else None


def _gateway_workloads(ctx: Context) -> set[int]:
    """ids of the workloads an Istio Gateway selects (in any namespace, as a Gateway selector does)."""
    out: set[int] = set()
    for gw in ctx.for_each("Gateway"):
        sel = {str(k): str(v) for k, v in as_dict(gw.spec.get("selector")).items()}
        if sel:
            out.update(id(w.obj) for w in ctx.snapshot.matching_workloads(None, sel, any_namespace=True))
    return out


class TargetPorts:
    """A Service targetPort that no container of the selected workloads declares sends traffic nowhere.

    Gateway proxies are the exception: they listen on the ports their Gateways' servers name, opened from
    config and never declared (kubeflow's knative-local-gateway Service targets 8081 on the
    cluster-local-gateway pods). So workloads a Gateway selects, and, as Kiali skips them, Services in the
    root namespace (the install's own, with debug and gateway ports no container lists) are not judged.
    """

    metadata = Metadata(
        name="service.TargetPorts",
        description="Service targetPorts match ports the selected workloads' containers declare",
        inputs=(SVC, "Workload", "Gateway", "MeshConfig"),
        codes=("MS1507",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        root = ctx.mesh_config.root_namespace
        gateways = _gateway_workloads(ctx)
        for svc in ctx.for_each(SVC):
            sel = selector_labels(svc.spec.get("selector"))
            if not sel or svc.namespace == root:
                continue
            declared = [(w, _container_ports(w)) for w in snap.matching_workloads(svc.namespace, sel)
                        if id(w.obj) not in gateways]
            declared = [(w, d) for w, d in declared if d is not None]
            if not declared:
                continue  # container ports are optional: nothing to compare against
            for i, port in enumerate(as_list(svc.spec.get("ports"))):
                port = as_dict(port)
                target = port.get("targetPort", port.get("port"))
                if target is None:
                    continue
                if any(target in (d[0] if isinstance(target, int) else d[1]) for _, d in declared):
                    continue
                names = ", ".join(sorted({f"{w.kind} {w.name}" for w, _ in declared}))
                ctx.report("MS1507", svc, f"spec/ports[{i}]", port=port.get("port"), target_port=target,
                           workloads=names)
