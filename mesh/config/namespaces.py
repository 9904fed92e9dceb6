"""Which namespace an object without `metadata.namespace` lands in, decided in one place.

kubectl and istioctl put such an object in the *default namespace*: `-n/--namespace`
when given, else the namespace of the kubeconfig context in use, else `default`.
Cluster-scoped kinds never get one. Every way YAML enters meshscope (analyze, apply,
up's --config, SLO files, the bundled mesh's control API) loads through
`mesh.config.loader`, which asks `effective_namespace` here, so the rule cannot drift.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from mesh.config.kinds import CLUSTER_SCOPED

#: What kubectl uses when neither -n nor the kubeconfig context names a namespace.
DEFAULT_NAMESPACE = "default"

#: Kinds whose name starts with "Cluster" but are namespaced (Cluster API's Cluster, OLM's CSV).
_NAMESPACED_CLUSTER_KINDS = frozenset({"Cluster", "ClusterServiceVersion"})


def is_cluster_scoped(kind: str) -> bool:
    """Known cluster-scoped kinds, plus the convention that `Cluster*` kinds (ClusterIssuer,
    ClusterSPIFFEID, ClusterPolicy ...) are cluster-scoped, since files carry no discovery data."""
    if kind in CLUSTER_SCOPED:
        return True
    return kind.startswith("Cluster") and kind not in _NAMESPACED_CLUSTER_KINDS and kind[7:8].isupper()


def effective_namespace(kind: str, written: str | None, default: str | None) -> str | None:
    """The namespace an object lives in: as written, else `default`; None for cluster-scoped kinds.

    `default=None` keeps unset namespaces unset (istioctl's analyzer test harness does that,
    and the conformance corpora are cut from it).
    """
    if is_cluster_scoped(kind):
        return None
    return written or default


def context_namespace(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The namespace of a kubeconfig context (the current one when `context` is None), or None.

    Reads the file(s) kubectl would: `kubeconfig`, else each file of $KUBECONFIG, else ~/.kube/config.
    Unreadable or malformed files give None: the caller then uses `default`, as kubectl does.
    """
    if kubeconfig:
        files = [Path(kubeconfig)]
    elif os.environ.get("KUBECONFIG"):
        files = [Path(p) for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        files = [Path.home() / ".kube" / "config"]
    docs = []
    for f in files:
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    # With several files the first one that sets current-context wins, as kubectl merges them.
    name = context or next((d.get("current-context") for d in docs if d.get("current-context")), None)
    if not name:
        return None
    for d in docs:
        for entry in d.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                ctx = entry.get("context")
                ns = ctx.get("namespace") if isinstance(ctx, dict) else None
                return ns if isinstance(ns, str) and ns else None
    return None


def default_namespace(namespace: str | None, kubeconfig: str | None = None, context: str | None = None,
                      from_cluster: bool = False) -> str:
    """kubectl's choice for objects without a namespace: `-n`, else the context's (when a
    kubeconfig/context is in use), else `default`."""
    if namespace:
        return namespace
    if from_cluster:
        return context_namespace(kubeconfig, context) or DEFAULT_NAMESPACE
    return DEFAULT_NAMESPACE
