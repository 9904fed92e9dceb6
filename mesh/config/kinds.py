"""What the model knows about kinds: API groups, scope, and where pod templates live.

Type names follow istioctl's: a Gateway API ``gateway.networking.k8s.io``
Gateway is ``KubernetesGateway`` so it never mixes with Istio's Gateway.
"""
from __future__ import annotations

from typing import Any

ISTIO_NETWORKING = "networking.istio.io"
ISTIO_SECURITY = "security.istio.io"
GATEWAY_API = "gateway.networking.k8s.io"
#: labels istiod puts on the pods it deploys for a Gateway API Gateway (gateways, waypoints), valued by the gateway's name
GATEWAY_POD_NAME_LABELS = ("gateway.networking.k8s.io/gateway-name", "istio.io/gateway-name")
ASM_GROUP = "istio.alibabacloud.com"  # Alibaba Cloud Service Mesh's own kinds (see diagnose.rules.config.asm)
ISTIO_GROUPS = frozenset({ISTIO_NETWORKING, ISTIO_SECURITY, "telemetry.istio.io", "extensions.istio.io",
                          "install.istio.io", "config.istio.io", "rbac.istio.io", "authentication.istio.io"})

#: The kinds the config rules understand (type name -> API group).
ANALYZED_KINDS: dict[str, str] = {
    "VirtualService": ISTIO_NETWORKING,
    "DestinationRule": ISTIO_NETWORKING,
    "Gateway": ISTIO_NETWORKING,
    "ServiceEntry": ISTIO_NETWORKING,
    "Sidecar": ISTIO_NETWORKING,
    "WorkloadEntry": ISTIO_NETWORKING,
    "WorkloadGroup": ISTIO_NETWORKING,
    "EnvoyFilter": ISTIO_NETWORKING,
    "ProxyConfig": ISTIO_NETWORKING,
    "PeerAuthentication": ISTIO_SECURITY,
    "AuthorizationPolicy": ISTIO_SECURITY,
    "RequestAuthentication": ISTIO_SECURITY,
    "Telemetry": "telemetry.istio.io",
    "WasmPlugin": "extensions.istio.io",
    "KubernetesGateway": GATEWAY_API,
    "HTTPRoute": GATEWAY_API,
    "GRPCRoute": GATEWAY_API,
    "TCPRoute": GATEWAY_API,
    "TLSRoute": GATEWAY_API,
    "ReferenceGrant": GATEWAY_API,
    "GatewayClass": GATEWAY_API,
    "ASMServiceLevelObjective": ASM_GROUP,  # kind ServiceLevelObjective in ASM's group
    "ASMCircuitBreaker": ASM_GROUP,
    "ASMLocalRateLimiter": ASM_GROUP,
    "ASMGlobalRateLimiter": ASM_GROUP,
    "Service": "",
    "Pod": "",
    "Namespace": "",
    "ServiceAccount": "",
    "Secret": "",
    "ConfigMap": "",
    "Node": "",
    "Endpoints": "",
    "Deployment": "apps",
    "StatefulSet": "apps",
    "DaemonSet": "apps",
    "ReplicaSet": "apps",
    "ReplicationController": "",
    "Job": "batch",
    "CronJob": "batch",
    "Rollout": "argoproj.io",  # Argo Rollouts' Deployment replacement: its pods are workloads
}

#: Kinds that are ordinary Kubernetes objects meshscope reads past without comment.
KNOWN_OTHER_KINDS = frozenset({
    "CustomResourceDefinition", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "PersistentVolumeClaim",
    "StorageClass", "Ingress", "IngressClass", "NetworkPolicy", "HorizontalPodAutoscaler",
    "PodDisruptionBudget", "LimitRange", "ResourceQuota", "PriorityClass", "APIService", "EndpointSlice",
    "Event", "Lease", "ServiceEntryList", "MeshConfig", "IstioOperator",
})

CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "CustomResourceDefinition",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding",
    "IngressClass", "PriorityClass", "APIService", "GatewayClass",
    # the Sail operator's (sailoperator.io) install resources, one per control plane, CNI or ztunnel
    "Istio", "IstioRevision", "IstioRevisionTag", "IstioCNI", "ZTunnel",
})

#: Namespaces istioctl never analyzes; the loader drops their objects.
EXCLUDED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})

#: Pod-template owners and the path to their pod template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("template",),
    "StatefulSet": ("template",),
    "DaemonSet": ("template",),
    "ReplicaSet": ("template",),
    "ReplicationController": ("template",),
    "Job": ("template",),
    "CronJob": ("jobTemplate", "spec", "template"),
    "DeploymentConfig": ("template",),
    "Rollout": ("template",),  # Argo Rollouts: a Deployment's pod template, progressively delivered
}

#: API groups of build-tool configs that share the YAML shape but never reach the API server
#: (kustomization.yaml, kpt and skaffold files): the loader skips them instead of reporting
#: a missing name. `skaffold/v4beta6` has no dot, so its "group" is `skaffold`.
#: `install.istio.io` (IstioOperator; `operator.istio.io` before Istio 1.6) is istioctl's input
#: (`istioctl install -f`, profiles): metadata is optional there, and no supported Istio serves it (the
#: in-cluster operator was removed in 1.24). Other tools' configs (kind, k3d, kubeadm, an audit policy) are
#: recognised by their shape instead: see `is_tool_config`.
BUILD_TOOL_GROUPS = frozenset({"kustomize.config.k8s.io", "config.kubernetes.io", "kpt.dev", "skaffold",
                               "install.istio.io", "operator.istio.io"})


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def type_name(kind: str, api_version: str) -> str:
    """The kind as rules name it (``KubernetesGateway`` for the Gateway API Gateway)."""
    if kind == "Gateway" and group_of(api_version) == GATEWAY_API:
        return "KubernetesGateway"
    if kind == "ServiceLevelObjective" and group_of(api_version) == ASM_GROUP:
        return "ASMServiceLevelObjective"  # never mixed with meshscope's or Pyrra's kind of the same name
    return kind


_ANALYZED_GROUPS = frozenset(ANALYZED_KINDS.values())


def is_known(kind: str, api_version: str) -> bool:
    return type_name(kind, api_version) in ANALYZED_KINDS or kind in KNOWN_OTHER_KINDS


def is_tool_config(data: dict[str, Any]) -> bool:
    """A tool's own configuration file by its shape: a kind of an API group, but no metadata at all, which no object
    the API server stores lacks (`kind create cluster --config`, k3d, kubeadm's ClusterConfiguration, kubelet and
    scheduler configurations, an audit Policy). Only for kinds meshscope does not know and groups it does not analyze:
    a Service or a VirtualService without metadata stays a broken object."""
    kind, api = data.get("kind"), data.get("apiVersion")
    if "metadata" in data or not isinstance(kind, str) or not kind or not isinstance(api, str) or "/" not in api:
        return False
    group = group_of(api)
    return group not in ISTIO_GROUPS and group not in _ANALYZED_GROUPS and not is_known(kind, api)


def pod_template(kind: str, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a pod-template owner, or None."""
    path = POD_TEMPLATE_PATHS.get(kind)
    if path is None:
        return None
    node: Any = spec
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
