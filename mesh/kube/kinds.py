"""The Kubernetes and Istio kinds meshscope reads from a cluster, and where each lives in the API."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindInfo:
    """One listable kind. `versions` are tried in order: the first the server serves wins.

    `name` tells apart kinds of one name in two groups (a Gateway API Gateway is `KubernetesGateway`, as
    `mesh.config.kinds.type_name` calls it); status, journal and skip counts are keyed by it. An `optional` kind
    that the server does not serve, or that the credentials may not read (HTTP 403), is left out with its reason,
    never an error: add-on APIs (Gateway API, Istio's extension kinds) that a cluster or a read-only role may lack.
    """

    kind: str
    group: str  # "" for the core API
    versions: tuple[str, ...]
    plural: str
    namespaced: bool = True
    name: str = ""
    optional: bool = False

    @property
    def key(self) -> str:
        return self.name or self.kind

    def path(self, version: str) -> str:
        """The cluster-wide collection URL (all namespaces) for this kind."""
        base = f"/api/{version}" if not self.group else f"/apis/{self.group}/{version}"
        return f"{base}/{self.plural}"

    def api_version(self, version: str) -> str:
        return version if not self.group else f"{self.group}/{version}"


_NET = "networking.istio.io"
_SEC = "security.istio.io"
_NET_VERSIONS = ("v1", "v1beta1", "v1alpha3")
_SEC_VERSIONS = ("v1", "v1beta1")
_ASM = "istio.alibabacloud.com"
_ASM_VERSIONS = ("v1", "v1beta1")
_GW = "gateway.networking.k8s.io"

KINDS: tuple[KindInfo, ...] = (
    KindInfo("Namespace", "", ("v1",), "namespaces", namespaced=False),
    KindInfo("Service", "", ("v1",), "services"),
    KindInfo("Pod", "", ("v1",), "pods"),
    KindInfo("ServiceAccount", "", ("v1",), "serviceaccounts"),
    KindInfo("Deployment", "apps", ("v1",), "deployments"),
    KindInfo("ReplicaSet", "apps", ("v1",), "replicasets"),
    KindInfo("StatefulSet", "apps", ("v1",), "statefulsets"),
    KindInfo("VirtualService", _NET, _NET_VERSIONS, "virtualservices"),
    KindInfo("DestinationRule", _NET, _NET_VERSIONS, "destinationrules"),
    KindInfo("Gateway", _NET, _NET_VERSIONS, "gateways"),
    KindInfo("ServiceEntry", _NET, _NET_VERSIONS, "serviceentries"),
    KindInfo("Sidecar", _NET, _NET_VERSIONS, "sidecars"),
    KindInfo("PeerAuthentication", _SEC, _SEC_VERSIONS, "peerauthentications"),
    KindInfo("AuthorizationPolicy", _SEC, _SEC_VERSIONS, "authorizationpolicies"),
    KindInfo("RequestAuthentication", _SEC, _SEC_VERSIONS, "requestauthentications"),
    # what the config rules also read (EnvoyFilter patches, Telemetry/WasmPlugin selectors, Gateway API routes and
    # parents, VM workloads, DaemonSet pods' owners): optional, since a cluster or a role may not have them
    KindInfo("DaemonSet", "apps", ("v1",), "daemonsets", optional=True),
    KindInfo("EnvoyFilter", _NET, ("v1alpha3",), "envoyfilters", optional=True),
    KindInfo("WorkloadEntry", _NET, _NET_VERSIONS, "workloadentries", optional=True),
    KindInfo("WorkloadGroup", _NET, _NET_VERSIONS, "workloadgroups", optional=True),
    KindInfo("ProxyConfig", _NET, ("v1beta1",), "proxyconfigs", optional=True),
    KindInfo("Telemetry", "telemetry.istio.io", ("v1", "v1alpha1"), "telemetries", optional=True),
    KindInfo("WasmPlugin", "extensions.istio.io", ("v1alpha1",), "wasmplugins", optional=True),
    KindInfo("Gateway", _GW, ("v1", "v1beta1"), "gateways", name="KubernetesGateway", optional=True),
    KindInfo("GatewayClass", _GW, ("v1", "v1beta1"), "gatewayclasses", namespaced=False, optional=True),
    KindInfo("HTTPRoute", _GW, ("v1", "v1beta1"), "httproutes", optional=True),
    KindInfo("GRPCRoute", _GW, ("v1", "v1alpha2"), "grpcroutes", optional=True),
    KindInfo("TCPRoute", _GW, ("v1alpha2",), "tcproutes", optional=True),
    KindInfo("TLSRoute", _GW, ("v1alpha2",), "tlsroutes", optional=True),
    KindInfo("ReferenceGrant", _GW, ("v1", "v1beta1"), "referencegrants", optional=True),
    # what other config rules read from add-ons: GKE multi-cluster ingress (its controller derives each cluster's
    # Service from the template: gateway ports), Flagger canaries (the delegate VirtualServices they generate),
    # Nodes (the topology labels a DestinationRule subset may select on)
    KindInfo("MultiClusterService", "networking.gke.io", ("v1",), "multiclusterservices", optional=True),
    KindInfo("Canary", "flagger.app", ("v1beta1",), "canaries", optional=True),
    KindInfo("Node", "", ("v1",), "nodes", namespaced=False, optional=True),
    # Alibaba Cloud ASM's own kinds: served by the ASM instance's API (or a data-plane cluster with KubeAPI access)
    KindInfo("ServiceLevelObjective", _ASM, _ASM_VERSIONS, "servicelevelobjectives"),
    KindInfo("ASMCircuitBreaker", _ASM, _ASM_VERSIONS, "asmcircuitbreakers"),
    KindInfo("ASMLocalRateLimiter", _ASM, _ASM_VERSIONS, "asmlocalratelimiters"),
    KindInfo("ASMGlobalRateLimiter", _ASM, _ASM_VERSIONS, "asmglobalratelimiters"),
)

BY_KIND = {k.key: k for k in KINDS}  # by key: "Gateway" is Istio's, "KubernetesGateway" the Gateway API's
