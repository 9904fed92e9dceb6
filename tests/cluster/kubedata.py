"""Kubernetes API list responses (the shape the API server returns) for a set of config objects.

The serve tests replay the bundled mesh's own config as if it were a cluster, so the
graph Prometheus feeds and the config the Kubernetes API serves describe the same mesh.
Like a real cluster, each Deployment gets a ReplicaSet and an injected Pod (istio-proxy
container, `sidecar.istio.io/status` annotation, the pod-template-hash label).
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from mesh.kube.kinds import KINDS

SIDECAR_STATUS = json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                             "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token"],
                             "imagePullSecrets": None, "revision": "default"})


def _meta(obj: dict, rv: int) -> dict:
    meta = copy.deepcopy(obj.get("metadata") or {})
    meta.setdefault("uid", hashlib.sha1(f"{obj.get('kind')}/{meta.get('namespace')}/{meta.get('name')}".encode()).hexdigest())
    meta["resourceVersion"] = str(rv)
    meta.setdefault("creationTimestamp", "2026-11-20T08:00:00Z")
    return meta


def pods_for(deployment: dict, rv: int) -> tuple[dict, dict]:
    """The ReplicaSet and one injected Pod a Deployment controller and Istio's injector would create."""
    meta = deployment["metadata"]
    template = copy.deepcopy(deployment["spec"]["template"])
    h = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:9]
    labels = {**(template.get("metadata") or {}).get("labels", {}), "pod-template-hash": h}
    rs_name = f"{meta['name']}-{h}"
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": rs_name, "namespace": meta["namespace"], "labels": labels,
                       "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                            "controller": True}]},
          "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}}
    spec = copy.deepcopy(template.get("spec") or {})
    spec["containers"] = list(spec.get("containers") or []) + [{
        "name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0", "args": ["proxy", "sidecar"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]}]
    spec["initContainers"] = [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.24.0"}]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{rs_name}-x{h[:4]}", "namespace": meta["namespace"],
                        "labels": {**labels, "security.istio.io/tlsMode": "istio",
                                   "service.istio.io/canonical-name": labels.get("app", meta["name"])},
                        "annotations": {"sidecar.istio.io/status": SIDECAR_STATUS,
                                        "prometheus.io/scrape": "true", "prometheus.io/port": "15020",
                                        "prometheus.io/path": "/stats/prometheus"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                                             "controller": True}]},
           "spec": spec, "status": {"phase": "Running", "podIP": "10.0.0.1"}}
    return rs, pod


def list_bodies(docs: Iterable[dict[str, Any]], resource_version: int = 1000) -> dict[str, dict]:
    """`{collection path: list body}` for every kind meshscope reads (empty lists for absent kinds)."""
    by_kind: dict[str, list[dict]] = {k.kind: [] for k in KINDS}
    for doc in docs:
        kind = doc.get("kind")
        if kind not in by_kind:
            continue
        by_kind[kind].append(doc)
        if kind == "Deployment":
            rs, pod = pods_for(doc, resource_version)
            by_kind["ReplicaSet"].append(rs)
            by_kind["Pod"].append(pod)
    out = {}
    for info in KINDS:
        if info.group == "istio.alibabacloud.com" and not by_kind[info.kind]:
            continue  # ASM's CRDs exist only on ASM instances: a plain cluster does not serve them
        version = info.versions[0]
        items = []
        for i, doc in enumerate(by_kind[info.kind]):
            item = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}  # list items omit them
            item["metadata"] = _meta(doc, resource_version - len(by_kind[info.kind]) + i)
            items.append(item)
        out[info.path(version)] = {"kind": f"{info.kind}List", "apiVersion": info.api_version(version),
                                   "metadata": {"resourceVersion": str(resource_version)}, "items": items}
    return out


def write_dir(bodies: dict[str, dict], folder) -> None:
    """Write the bodies in the replaying server's `load_dir` format (one JSON file per collection)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (path, body) in enumerate(sorted(bodies.items())):
        (folder / f"{i:02d}-{path.rsplit('/', 1)[1]}.json").write_text(json.dumps({"x-path": path, **body}))
