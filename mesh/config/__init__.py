"""The config model: Kubernetes and Istio objects loaded from YAML or the Kubernetes API."""
from mesh.config.duplicates import Duplicate, identity, last_wins
from mesh.config.hosts import export_to, fqdn, host_covers, hosts_intersect, visible
from mesh.config.kinds import ANALYZED_KINDS, EXCLUDED_NAMESPACES, is_known, type_name
from mesh.config.loader import LoadProblem, LoadResult, expand_paths, load_paths, load_text
from mesh.config.meshconfig import MeshConfig, MeshConfigError, load_mesh_config, mesh_config_from_dict
from mesh.config.model import ConfigObject, Source
from mesh.config.snapshot import Snapshot
from mesh.config.workloads import Workload, labels_match, workload_of

__all__ = [
    "ANALYZED_KINDS",
    "ConfigObject",
    "Duplicate",
    "EXCLUDED_NAMESPACES",
    "LoadProblem",
    "LoadResult",
    "MeshConfig",
    "MeshConfigError",
    "Snapshot",
    "Source",
    "Workload",
    "expand_paths",
    "export_to",
    "fqdn",
    "host_covers",
    "hosts_intersect",
    "identity",
    "is_known",
    "labels_match",
    "last_wins",
    "load_mesh_config",
    "load_paths",
    "load_text",
    "mesh_config_from_dict",
    "type_name",
    "visible",
    "workload_of",
]
