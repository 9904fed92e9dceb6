"""Connecting to a cluster: kubeconfig (optionally a context) or in-cluster service-account credentials."""
from __future__ import annotations

import os
from typing import Any


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A `kubernetes.client.ApiClient` for the given kubeconfig/context.

    With no kubeconfig and inside a pod (KUBERNETES_SERVICE_HOST set) the pod's
    service account is used; otherwise `$KUBECONFIG` or `~/.kube/config`.
    Raises `KubeError` with a readable message when no configuration works.
    """
    from kubernetes import client, config

    from mesh.kube.source import KubeError

    cfg = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except Exception as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise KubeError(f"cannot load Kubernetes configuration from {where}: {exc}") from None
    return client.ApiClient(cfg)
