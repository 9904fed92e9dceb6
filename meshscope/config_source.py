"""Where mesh config is read from, apart from where workloads are.

Alibaba Cloud ASM keeps Istio's (and its own) resources in a managed control
plane reached with the ASM instance's kubeconfig; a data-plane cluster's API
serves them only with "data-plane KubeAPI access" on. Pointed at such a
cluster, meshscope would see sidecars and no Istio config, silently. So the
config kinds may come from a second API (`--config-kubeconfig/--config-context`)
while workloads come from the data plane, and when neither serves Istio kinds
although sidecars exist, one line says so (at start, on the overview, in
`meshscope analyze --kubeconfig`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mesh.config import ConfigObject
from mesh.config.kinds import ASM_GROUP, ISTIO_GROUPS
from mesh.config.workloads import workload_of
from mesh.kube.kinds import KINDS, KindInfo

CONFIG_GROUPS = frozenset(ISTIO_GROUPS | {ASM_GROUP})
HINT = "Istio config not visible here: use the ASM instance's kubeconfig or enable data-plane KubeAPI access"


def config_kinds(kinds: Iterable[KindInfo] = KINDS) -> list[KindInfo]:
    """Kinds read from the config source: Istio's and ASM's."""
    return [k for k in kinds if k.group in CONFIG_GROUPS]


def workload_kinds(kinds: Iterable[KindInfo] = KINDS) -> list[KindInfo]:
    """Kinds read from the data plane: everything else (namespaces, services, pods, owners)."""
    return [k for k in kinds if k.group not in CONFIG_GROUPS]


def is_optional(kind: KindInfo) -> bool:
    """ASM's kinds are absent from every non-ASM cluster, add-on kinds (Gateway API, Istio's extension kinds) from
    many: not worth a 'not served' line."""
    return kind.optional or kind.group == ASM_GROUP


def has_sidecars(objects: Iterable[ConfigObject]) -> bool:
    """Whether any pod (or pod template) carries an injected istio-proxy."""
    for obj in objects:
        if obj.kind != "Pod" and obj.kind not in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
            continue
        if "sidecar.istio.io/status" in obj.annotations:
            return True
        w = workload_of(obj)
        if w is not None and (w.has_proxy or "sidecar.istio.io/status" in w.annotations):
            return True
    return False


def istio_config_hint(status: Mapping[str, Mapping[str, Any]], objects: Iterable[ConfigObject]) -> str | None:
    """The one-line warning when the API read serves no Istio kind while the mesh clearly has sidecars.

    `status` is `KubeSource.status()` (kind -> {"version": served version or None}).
    """
    istio = [k for k in KINDS if k.group in ISTIO_GROUPS and k.key in status]
    if not istio or any(status[k.key].get("version") for k in istio):
        return None
    return HINT if has_sidecars(objects) else None
