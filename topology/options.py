"""What a graph request asks for: graph type, scope, rate modes and visibility."""
from __future__ import annotations

from dataclasses import dataclass, field

from topology import model

RATE_MODES = {
    "http": ("requests", "none"),
    "grpc": ("requests", "sent", "received", "total", "none"),
    "tcp": ("sent", "received", "total", "none"),
}


@dataclass(frozen=True)
class NodeSelector:
    """A node-detail graph: the traffic into and out of one workload, app (+version) or service."""

    kind: str  # workload | app | service
    namespace: str
    name: str
    version: str | None = None


@dataclass(frozen=True)
class RateModes:
    """Which metric measures each protocol (Kiali's rateHttp/rateGrpc/rateTcp)."""

    http: str = "requests"
    grpc: str = "requests"
    tcp: str = "sent"

    def __post_init__(self) -> None:
        for proto, allowed in RATE_MODES.items():
            value = getattr(self, proto)
            if value not in allowed:
                raise ValueError(f"rate mode {proto}={value!r}: expected one of {', '.join(allowed)}")


@dataclass
class GraphOptions:
    graph_type: str = model.WORKLOAD
    namespaces: list[str] | None = None  # None: every namespace in the frame
    node: NodeSelector | None = None
    rates: RateModes = field(default_factory=RateModes)
    inject_service_nodes: bool | None = None  # None: on for service graphs only
    include_idle_edges: bool = False  # edges whose series all had zero rate in the window (Kiali hides them too)
    # (cluster, namespace) pairs the viewer may see; None means all of them.
    accessible: set[tuple[str, str]] | None = None
    istio_namespace: str = "istio-system"  # where the egress gateway lives (kiali#2999 rewrite)
    # ambient: "none" (sidecar telemetry only), "total" (plus waypoint-reported), "waypoint"
    ambient: str = "none"
    waypoints: frozenset = frozenset()  # (cluster, namespace, workload) of ambient waypoint proxies
    window_s: float | None = None
    query_time: float | None = None
    # one reporter per edge: the caller's (source) series where the caller reports the edge, else the server's.
    # False: Kiali's union of both reporters de-duplicated by fingerprint, which counts a request twice when the
    # two sides saw it differently (a timeout: the client's 504 UT and the server's 0 DC).
    one_reporter: bool = True

    def __post_init__(self) -> None:
        if self.graph_type not in model.GRAPH_TYPES:
            raise ValueError(f"graph_type {self.graph_type!r}: expected one of {', '.join(model.GRAPH_TYPES)}")
        if self.ambient not in ("none", "total", "waypoint"):
            raise ValueError(f"ambient {self.ambient!r}: expected none, total or waypoint")
        if self.node is not None and self.node.kind not in ("workload", "app", "service"):
            raise ValueError(f"node kind {self.node.kind!r}: expected workload, app or service")

    @property
    def inject(self) -> bool:
        if self.graph_type == model.SERVICE:
            return True
        return bool(self.inject_service_nodes)
