"""Workloads: pods and pod-template owners, reduced to what selectors and identities need."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mesh.config.kinds import pod_template
from mesh.config.model import ConfigObject


@dataclass
class Workload:
    """A pod, or the pods a Deployment (StatefulSet, ...) will create, seen through its template."""

    kind: str
    name: str
    namespace: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    service_account: str
    containers: list[dict[str, Any]] = field(default_factory=list)
    node_name: str | None = None
    obj: ConfigObject | None = None

    @property
    def has_proxy(self) -> bool:
        """An istio-proxy container that has an image (istioctl's test for an injected pod)."""
        return any(c.get("name") == "istio-proxy" and c.get("image") for c in self.containers if isinstance(c, dict))

    def matches(self, selector: dict[str, Any] | None) -> bool:
        return labels_match(selector, self.labels)


def labels_match(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes equality selector: every selector label present with the same value (empty selects all)."""
    if not selector:
        return True
    return all(labels.get(k) == (v if isinstance(v, str) else str(v)) for k, v in selector.items())


def workload_of(obj: ConfigObject) -> Workload | None:
    """The workload an object stands for, or None when it is neither a Pod nor a pod-template owner."""
    if obj.kind == "Pod":
        spec, labels, annotations = obj.spec, obj.labels, obj.annotations
    else:
        template = pod_template(obj.kind, obj.spec)
        if template is None:
            return None
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()} if isinstance(meta.get("labels"), dict) else {}
        annotations = ({str(k): str(v) for k, v in meta["annotations"].items()}
                       if isinstance(meta.get("annotations"), dict) else {})
    containers = spec.get("containers") if isinstance(spec.get("containers"), list) else []
    # native sidecars (init containers that keep running, `restartPolicy: Always`) run beside the app: Istio injects
    # istio-proxy so by default since 1.27 on Kubernetes 1.29+ (ASM offers it on ACK 1.30+)
    inits = spec.get("initContainers") if isinstance(spec.get("initContainers"), list) else []
    containers = [*containers, *(c for c in inits if isinstance(c, dict) and c.get("restartPolicy") == "Always")]
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    return Workload(kind=obj.kind, name=obj.name, namespace=obj.namespace, labels=labels, annotations=annotations,
                    service_account=str(sa), containers=[c for c in containers if isinstance(c, dict)],
                    node_name=spec.get("nodeName") if isinstance(spec.get("nodeName"), str) else None, obj=obj)
