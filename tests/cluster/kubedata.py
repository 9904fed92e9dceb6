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

from mesh.config.kinds import type_name
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


#: Pod-template owners a cluster runs pods for: those whose controller makes a ReplicaSet first, and the others.
VIA_REPLICASET = {"Deployment": "apps/v1", "Rollout": "argoproj.io/v1alpha1"}
DIRECT_OWNERS = {"StatefulSet": "apps/v1", "DaemonSet": "apps/v1"}


def pods_for(owner: dict, rv: int, native: bool = False) -> tuple[dict | None, dict]:
    """The ReplicaSet (for a Deployment or an Argo Rollout; None for a StatefulSet or DaemonSet) and one Pod the
    controllers would create, with what Istio's injector adds unless the template opts out
    (`sidecar.istio.io/inject: "false"` as a label or annotation). `native`: the injector's native-sidecar mode
    (Istio's default since 1.27 on Kubernetes 1.29+, offered by ASM on ACK 1.30+; `sidecar.istio.io/nativeSidecar`
    decides per pod): istio-proxy is an init container that keeps running (`restartPolicy: Always`)."""
    meta = owner["metadata"]
    kind = owner.get("kind", "Deployment")
    template = copy.deepcopy(owner["spec"]["template"])
    h = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:9]
    tmeta = template.get("metadata") or {}
    labels = {**(tmeta.get("labels") or {}), "pod-template-hash": h}
    rs = None
    controller = {"apiVersion": owner.get("apiVersion", "apps/v1"), "kind": kind, "name": meta["name"],
                  "controller": True}
    if kind in VIA_REPLICASET:
        rs_name = f"{meta['name']}-{h}"
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": rs_name, "namespace": meta["namespace"], "labels": labels,
                           "ownerReferences": [controller]},
              "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}}
        controller = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "controller": True}
    opt_out = "false" in (str((tmeta.get("labels") or {}).get("sidecar.istio.io/inject")),
                          str((tmeta.get("annotations") or {}).get("sidecar.istio.io/inject")))
    spec = copy.deepcopy(template.get("spec") or {})
    pod_labels = {**labels, "service.istio.io/canonical-name": labels.get("app", meta["name"])}
    annotations = {**(tmeta.get("annotations") or {})}
    native = {"true": True, "false": False}.get(str(annotations.get("sidecar.istio.io/nativeSidecar")), native)
    if not opt_out:
        proxy = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0", "args": ["proxy", "sidecar"],
                 "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]}
        init = [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.24.0"}]
        if native:
            spec["initContainers"] = init + [{**proxy, "restartPolicy": "Always"}] + list(spec.get("initContainers") or [])
        else:
            spec["containers"] = list(spec.get("containers") or []) + [proxy]
            spec["initContainers"] = init + list(spec.get("initContainers") or [])
        pod_labels["security.istio.io/tlsMode"] = "istio"
        annotations.update({"sidecar.istio.io/status": SIDECAR_STATUS, "prometheus.io/scrape": "true",
                            "prometheus.io/port": "15020", "prometheus.io/path": "/stats/prometheus"})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{meta['name']}-{h}-x{h[:4]}", "namespace": meta["namespace"],
                        "labels": pod_labels, "annotations": annotations, "ownerReferences": [controller]},
           "spec": spec, "status": {"phase": "Running", "podIP": "10.0.0.1"}}
    return rs, pod


def list_bodies(docs: Iterable[dict[str, Any]], resource_version: int = 1000, native: bool = False) -> dict[str, dict]:
    """`{collection path: list body}` for every kind meshscope reads (empty lists for absent kinds)."""
    by_kind: dict[str, list[dict]] = {k.key: [] for k in KINDS}
    for doc in docs:
        kind = type_name(str(doc.get("kind")), str(doc.get("apiVersion")))  # a Gateway API Gateway: KubernetesGateway
        kind = "ServiceLevelObjective" if kind == "ASMServiceLevelObjective" else kind
        if kind in VIA_REPLICASET or kind in DIRECT_OWNERS:
            template = (doc.get("spec") or {}).get("template") if isinstance(doc.get("spec"), dict) else None
            if isinstance(template, dict) and isinstance(doc.get("metadata"), dict) and doc["metadata"].get("namespace"):
                rs, pod = pods_for(doc, resource_version, native)
                if rs is not None:
                    by_kind["ReplicaSet"].append(rs)
                by_kind["Pod"].append(pod)
        if kind in by_kind:
            by_kind[kind].append(doc)
    out = {}
    for info in KINDS:
        if (info.group == "istio.alibabacloud.com" or info.optional) and not by_kind[info.key]:
            continue  # ASM's CRDs exist only on ASM instances, add-on kinds only where installed: not served
        version = info.versions[0]
        items = []
        for i, doc in enumerate(by_kind[info.key]):
            item = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}  # list items omit them
            item["metadata"] = _meta(doc, resource_version - len(by_kind[info.key]) + i)
            items.append(item)
        out[info.path(version)] = {"kind": f"{info.kind}List", "apiVersion": info.api_version(version),
                                   "metadata": {"resourceVersion": str(resource_version)}, "items": items}
    return out


def write_dir(bodies: dict[str, dict], folder) -> None:
    """Write the bodies in the replaying server's `load_dir` format (one JSON file per collection)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (path, body) in enumerate(sorted(bodies.items())):
        (folder / f"{i:02d}-{path.rsplit('/', 1)[1]}.json").write_text(json.dumps({"x-path": path, **body}))
