"""The Kubernetes and Istio kinds meshscope reads from a cluster, and where each lives in the API."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindInfo:
    """One listable kind. `versions` are tried in order: the first the server serves wins."""

    kind: str
    group: str  # "" for the core API
    versions: tuple[str, ...]
    plural: str
    namespaced: bool = True

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
    # Alibaba Cloud ASM's own kinds: served by the ASM instance's API (or a data-plane cluster with KubeAPI access)
    KindInfo("ServiceLevelObjective", _ASM, _ASM_VERSIONS, "servicelevelobjectives"),
    KindInfo("ASMCircuitBreaker", _ASM, _ASM_VERSIONS, "asmcircuitbreakers"),
    KindInfo("ASMLocalRateLimiter", _ASM, _ASM_VERSIONS, "asmlocalratelimiters"),
    KindInfo("ASMGlobalRateLimiter", _ASM, _ASM_VERSIONS, "asmglobalratelimiters"),
)

BY_KIND = {k.kind: k for k in KINDS}
