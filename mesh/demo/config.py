"""The demo's Kubernetes and Istio config, loaded through the shared config model."""
from __future__ import annotations

from pathlib import Path

from mesh.config import load_paths
from mesh.config.model import ConfigObject

DEMO_DIR = Path(__file__).parent
BOOKINFO = DEMO_DIR / "bookinfo.yaml"
NAMESPACE = "bookinfo"


def demo_objects() -> list[ConfigObject]:
    """Bookinfo's Namespaces, Services, Deployments, Gateway, VirtualService and DestinationRules."""
    result = load_paths([BOOKINFO], exclude_namespaces=frozenset())
    if result.problems:  # shipped with the package: a problem here is a bug, say exactly where
        raise ValueError("; ".join(str(p) for p in result.problems))
    return result.objects
