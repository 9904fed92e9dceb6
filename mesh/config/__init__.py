"""The config model: Kubernetes and Istio objects loaded from YAML or the Kubernetes API."""
from mesh.config.model import ConfigObject, Source

__all__ = ["ConfigObject", "Source"]
