"""The service registry: which services exist, which workloads back them, on which local ports.

In Kubernetes, istiod learns this from Services, Pods and Endpoints. In the bundled
mesh every workload runs on 127.0.0.1, so the registry also assigns each workload
its local ports (the app's port, the sidecar's inbound port standing in for the
pod IP, an outbound port the app uses as its proxy, and the sidecar's stats port).
Ports are allocated once per workload and kept stable while the mesh runs, so a
config change never moves a process.
"""
from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mesh.config.model import ConfigObject

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")
GATEWAY_LABEL = ("istio", "ingressgateway")


_EPHEMERAL = (32768, 60999)


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return _EPHEMERAL


def free_local_port(taken: set[int] | None = None) -> int:
    """A free 127.0.0.1 port *below* the ephemeral range.

    A port from bind(0) is an ephemeral port, which any outgoing connection (Envoy's
    own upstream connections included) may grab before the listener binds it; ports
    below that range are only taken by listeners that ask for them by number.
    """
    lo = _ephemeral_range()[0]
    for _ in range(200):
        port = random.randint(max(1025, lo - 12000), lo - 1)
        if taken and port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if taken is not None:
            taken.add(port)
        return port
    with socket.socket() as s:  # crowded machine: fall back to any free port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fqdn(host: str, namespace: str, domain: str = "cluster.local") -> str:
    """Istio's short-name resolution: `reviews` in ns bookinfo -> reviews.bookinfo.svc.cluster.local."""
    if "." not in host:
        return f"{host}.{namespace}.svc.{domain}"
    return host


def port_protocol(name: str | None, app_protocol: str | None = None) -> str:
    """Istio protocol selection: appProtocol, else the port name prefix (http-, grpc-, tcp- ...)."""
    for candidate in (app_protocol, name):
        if not candidate:
            continue
        prefix = candidate.split("-", 1)[0].lower()
        if prefix in ("http", "http2", "grpc", "grpc-web", "tcp", "tls", "https", "mongo", "redis", "mysql"):
            return {"http2": "http", "grpc-web": "http", "https": "tls"}.get(prefix, prefix)
    return "http"  # the demo is HTTP; Istio would sniff


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: int
    name: str = ""
    protocol: str = "http"


@dataclass
class Service:
    name: str
    namespace: str
    ports: list[ServicePort]
    selector: dict[str, str]

    @property
    def hostname(self) -> str:
        return fqdn(self.name, self.namespace)


@dataclass
class Workload:
    """One workload instance (the bundled mesh runs one replica each)."""

    name: str
    namespace: str
    labels: dict[str, str]
    service_account: str
    container_ports: list[int]
    kind: str = "Deployment"
    # local ports, assigned by the registry
    app_ports: dict[int, int] = field(default_factory=dict)  # container port -> app's local port
    inbound_ports: dict[int, int] = field(default_factory=dict)  # container port -> sidecar inbound port
    outbound_port: int = 0
    stats_port: int = 0  # GET /stats/prometheus and /ready only; Envoy's admin API is on a private socket

    @property
    def app(self) -> str:
        return self.labels.get("app") or self.labels.get("app.kubernetes.io/name") or self.name

    @property
    def version(self) -> str:
        return self.labels.get("version") or self.labels.get("app.kubernetes.io/version") or "unknown"

    @property
    def is_gateway(self) -> bool:
        return self.labels.get(GATEWAY_LABEL[0]) == GATEWAY_LABEL[1]

    @property
    def node_id(self) -> str:
        kind = "router" if self.is_gateway else "sidecar"
        return f"{kind}~127.0.0.1~{self.name}.{self.namespace}~{self.namespace}.svc.cluster.local"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _selected(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def services_from(objects: Iterable[ConfigObject]) -> list[Service]:
    out = []
    for o in objects:
        if o.kind != "Service" or not o.namespace:
            continue
        ports = []
        for p in (o.spec.get("ports") or []):
            if not isinstance(p, dict) or not isinstance(p.get("port"), int):
                continue
            target = p.get("targetPort")
            ports.append(ServicePort(p["port"], target if isinstance(target, int) else p["port"], str(p.get("name") or ""),
                                     port_protocol(p.get("name"), p.get("appProtocol"))))
        out.append(Service(o.name, o.namespace, ports, dict(o.spec.get("selector") or {})))
    return out


def workloads_from(objects: Iterable[ConfigObject]) -> list[Workload]:
    out = []
    for o in objects:
        if o.kind not in WORKLOAD_KINDS or not o.namespace:
            continue
        pod_spec = o.spec if o.kind == "Pod" else ((o.spec.get("template") or {}).get("spec") or {})
        meta = o.raw.get("metadata", {}) if o.kind == "Pod" else ((o.spec.get("template") or {}).get("metadata") or {})
        labels = dict(o.labels if o.kind == "Pod" else (meta.get("labels") or {}))
        ports = sorted({p["containerPort"] for c in (pod_spec.get("containers") or []) if isinstance(c, dict)
                        for p in (c.get("ports") or []) if isinstance(p, dict) and isinstance(p.get("containerPort"), int)})
        sa = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"
        out.append(Workload(o.name, o.namespace, labels, sa, ports, o.kind))
    return out


class Registry:
    """Services and workloads from the current config, with stable local port assignments."""

    def __init__(self, allocate: Callable[[], int] | None = None):
        self._taken: set[int] = set()
        self._allocate = allocate or (lambda: free_local_port(self._taken))
        self.services: list[Service] = []
        self.workloads: list[Workload] = []
        self._ports: dict[tuple[str, str], int] = {}  # (workload key, role) -> port
        self.gateway_ports: dict[int, int] = {}  # Gateway server port -> local port (set by the owner)

    def _port(self, key: str, role: str) -> int:
        k = (key, role)
        if k not in self._ports:
            self._ports[k] = self._allocate()
        return self._ports[k]

    def pin(self, workload_key: str, role: str, port: int) -> None:
        """Reserve a fixed port (e.g. the ingress gateway's stats port) before `update`."""
        self._ports[(workload_key, role)] = port

    def update(self, objects: Iterable[ConfigObject]) -> None:
        objects = list(objects)
        self.services = services_from(objects)
        self.workloads = workloads_from(objects)
        for w in self.workloads:
            if not w.container_ports:  # no declared port: take the target ports of the services selecting it
                w.container_ports = sorted({p.target_port for s in self.services if s.namespace == w.namespace
                                            and _selected(w.labels, s.selector) for p in s.ports})
            w.stats_port = self._port(w.key, "stats")
            if w.is_gateway:
                continue
            w.outbound_port = self._port(w.key, "outbound")
            for cp in w.container_ports:
                w.app_ports[cp] = self._port(w.key, f"app:{cp}")
                w.inbound_ports[cp] = self._port(w.key, f"inbound:{cp}")

    # --- lookups ---------------------------------------------------------------------------
    def service(self, hostname: str) -> Service | None:
        for s in self.services:
            if s.hostname == hostname:
                return s
        return None

    def workload(self, namespace: str, name: str) -> Workload | None:
        for w in self.workloads:
            if w.namespace == namespace and w.name == name:
                return w
        return None

    def endpoints(self, service: Service, port: ServicePort, subset_labels: dict[str, str] | None = None) -> list[tuple[Workload, int]]:
        """(workload, sidecar inbound port) for each workload behind `service:port` (and subset labels)."""
        out = []
        for w in self.workloads:
            if w.namespace != service.namespace or w.is_gateway or not _selected(w.labels, service.selector):
                continue
            if subset_labels and not all(w.labels.get(k) == v for k, v in subset_labels.items()):
                continue
            if port.target_port in w.inbound_ports:
                out.append((w, w.inbound_ports[port.target_port]))
        return out

    def services_of(self, workload: Workload) -> list[Service]:
        return [s for s in self.services if s.namespace == workload.namespace and _selected(workload.labels, s.selector)]
