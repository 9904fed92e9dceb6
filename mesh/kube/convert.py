"""Kubernetes API JSON -> ConfigObject, and facts derived from pods (sidecar injection)."""
from __future__ import annotations

import json
from typing import Any

from mesh.config.model import ConfigObject, Source


def to_config_object(item: dict[str, Any], api_version: str, kind: str, origin: str) -> ConfigObject:
    """One list item (which the API returns without apiVersion/kind) as a ConfigObject.

    `origin` names where it came from (e.g. `k8s:prod-cluster`) so findings can say
    `k8s:prod-cluster/VirtualService/bookinfo/reviews` instead of a file:line.
    """
    meta = item.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "")
    spec = item.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    raw = dict(item)
    if meta.get("managedFields"):  # server-side apply bookkeeping: large, and nothing meshscope reads
        raw["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    raw.setdefault("apiVersion", api_version)
    raw.setdefault("kind", kind)
    where = f"{origin}/{kind}/{ns}/{name}" if ns else f"{origin}/{kind}/{name}"
    return ConfigObject(
        api_version=item.get("apiVersion") or api_version,
        kind=kind,
        name=name,
        namespace=ns,
        spec=spec,
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        source=Source(where, 0),
        raw=raw,
    )


def sidecar_status(pod: dict[str, Any]) -> dict[str, Any]:
    """Whether a pod runs an Istio sidecar, and what the injector recorded.

    Istio's injector adds an `istio-proxy` container (or init container, for
    native sidecars) and the `sidecar.istio.io/status` annotation (JSON naming
    the injected containers and the template revision).
    """
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    names = [c.get("name") for c in (spec.get("containers") or [])]
    init_names = [c.get("name") for c in (spec.get("initContainers") or [])]
    ann = (meta.get("annotations") or {}).get("sidecar.istio.io/status")
    status: dict[str, Any] = {}
    if ann:
        try:
            status = json.loads(ann)
        except ValueError:
            status = {"unparsed": ann}
    return {
        "injected": "istio-proxy" in names or "istio-proxy" in init_names,
        "annotation": bool(ann),
        "revision": status.get("revision") if isinstance(status, dict) else None,
        "phase": (pod.get("status") or {}).get("phase"),
    }
