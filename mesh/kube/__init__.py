"""Kubernetes source: read-only list/watch of a real cluster's Kubernetes and Istio objects."""
from mesh.kube.client import api_client
from mesh.kube.convert import MalformedObject, sidecar_status, to_config_object
from mesh.kube.kinds import KINDS, KindInfo
from mesh.kube.source import KubeError, KubeSource

__all__ = ["KINDS", "KindInfo", "KubeError", "MalformedObject", "KubeSource", "api_client", "sidecar_status", "to_config_object"]
