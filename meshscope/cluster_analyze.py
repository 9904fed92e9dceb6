"""A cluster's live config for `meshscope analyze --kubeconfig`, optionally overlaid with local files.

The overlay answers "what would happen if I applied these?": a local object replaces
the cluster's object of the same kind, namespace and name (as `kubectl apply` would),
and new local objects are added; everything else in the cluster stays as it is.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mesh.config import EXCLUDED_NAMESPACES, ConfigObject, identity


def load_cluster_objects(kubeconfig: str | None = None, context: str | None = None,
                         namespaces: Sequence[str] | None = None, root_namespace: str = "istio-system",
                         api_client: Any = None) -> list[ConfigObject]:
    """Every object meshscope reads, listed once (no watch), minus Kubernetes' own namespaces.

    Raises `mesh.kube.KubeError` with a readable message when the cluster cannot be read.
    Kinds the cluster does not serve (no Istio CRDs, an old API version) are skipped.
    """
    from mesh.kube import KubeSource
    from mesh.kube import api_client as make_client

    client = api_client if api_client is not None else make_client(kubeconfig, context)
    source = KubeSource(client, namespaces=list(namespaces) if namespaces else None, root_namespace=root_namespace,
                        origin=f"k8s:{context or 'cluster'}")
    try:
        return [o for o in source.list_all() if o.namespace not in EXCLUDED_NAMESPACES]
    finally:
        if api_client is None:
            client.close()


def overlay(cluster: Iterable[ConfigObject], local: Iterable[ConfigObject]) -> list[ConfigObject]:
    """Cluster objects with the local ones applied on top (same kind/namespace/name replaced).

    The replaced cluster objects are dropped here, so the Snapshot built from the result
    reports only definitions repeated among the local files as duplicates (MS0011), never
    the intended override of a cluster object. Identity is `mesh.config.identity`: a
    local Istio Gateway does not replace a Gateway API Gateway of the same name.
    Local objects arrive with their namespace resolved (`-n`, else the context's, else `default`:
    `mesh.config.namespaces`), so a file without one replaces the object `kubectl apply` would.
    """
    local = list(local)
    keys = {identity(o) for o in local}
    return [o for o in cluster if identity(o) not in keys] + local
