"""Kubernetes API JSON -> ConfigObject, and facts derived from pods (sidecar injection)."""
from __future__ import annotations

import json
from typing import Any

from mesh.config.model import ConfigObject, Source


class MalformedObject(ValueError):
    """One list item or watch object meshscope cannot read; `reason` is a short fixed word (a metric label)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _object_field(meta: dict[str, Any], key: str) -> dict[str, Any]:
    value = meta.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedObject(f"{key}_not_an_object", f"metadata.{key} is a {type(value).__name__}, not an object")
    return value


def to_config_object(item: Any, api_version: str, kind: str, origin: str) -> ConfigObject:
    """One list item (which the API returns without apiVersion/kind) as a ConfigObject.

    `origin` names where it came from (e.g. `k8s:prod-cluster`) so findings can say
    `k8s:prod-cluster/VirtualService/bookinfo/reviews` instead of a file:line.
    Raises `MalformedObject` for an item no object can be made of (not an object; metadata,
    labels or annotations not objects; no string name; a namespace that is not a string): the
    source skips and counts it, the rest of the list or watch goes on (#18).
    """
    if not isinstance(item, dict):
        raise MalformedObject("not_an_object", f"the item is a {type(item).__name__}, not an object")
    meta = item.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise MalformedObject("metadata_not_an_object", f"metadata is a {type(meta).__name__}, not an object")
    ns = meta.get("namespace")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedObject("bad_name", f"metadata.name is {name!r}, not a non-empty string")
    if ns is not None and not isinstance(ns, str):
        raise MalformedObject("bad_namespace", f"metadata.namespace is a {type(ns).__name__}, not a string")
    labels = _object_field(meta, "labels")
    annotations = _object_field(meta, "annotations")
    spec = item.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    raw = dict(item)
    if meta.get("managedFields"):  # server-side apply bookkeeping: large, and nothing meshscope reads
        raw["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    raw.setdefault("apiVersion", api_version)
    raw.setdefault("kind", kind)
    where = f"{origin}/{kind}/{ns}/{name}" if ns else f"{origin}/{kind}/{name}"
    item_version = item.get("apiVersion")
    return ConfigObject(
        api_version=item_version if isinstance(item_version, str) and item_version else api_version,
        kind=kind,
        name=name,
        namespace=ns,
        spec=spec,
        labels=dict(labels),
        annotations=dict(annotations),
        source=Source(where, 0),
        raw=raw,
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(containers: Any) -> list[Any]:
    return [c.get("name") for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def sidecar_status(pod: Any) -> dict[str, Any]:
    """Whether a pod runs an Istio sidecar, and what the injector recorded.

    Istio's injector adds an `istio-proxy` container (or init container, for
    native sidecars) and the `sidecar.istio.io/status` annotation (JSON naming
    the injected containers and the template revision). Parts of the wrong
    shape read as absent: one odd pod never stops a caller (#18).
    """
    pod = _obj(pod)
    spec = _obj(pod.get("spec"))
    meta = _obj(pod.get("metadata"))
    names = _names(spec.get("containers"))
    init_names = _names(spec.get("initContainers"))
    ann = _obj(meta.get("annotations")).get("sidecar.istio.io/status")
    status: dict[str, Any] = {}
    if isinstance(ann, str) and ann:
        try:
            status = json.loads(ann)
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's depth
            status = {"unparsed": ann}
    return {
        "injected": "istio-proxy" in names or "istio-proxy" in init_names,
        "annotation": bool(ann),
        "revision": status.get("revision") if isinstance(status, dict) else None,
        "phase": _obj(pod.get("status")).get("phase"),
    }
