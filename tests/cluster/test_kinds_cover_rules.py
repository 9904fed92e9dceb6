"""Every kind a config rule reads is read from a cluster too, or a rule judges files and clusters differently.

Found by the clean run: a GKE MultiClusterService in files exposed a gateway's port (no MS1203), but the cluster
source never listed that kind, so the same objects served by an API server raised MS1203. The class is any kind a
rule declares that `mesh.kube.kinds` does not list."""
from __future__ import annotations

from diagnose.rules import ALL_RULES
from mesh.config.kinds import type_name
from mesh.kube.kinds import KINDS

#: kinds rules read that are not Kubernetes objects of their own: built from what is listed (Workload from Pods and
#: their owners), or read another way (MeshConfig from istiod's ConfigMap or --mesh-config)
DERIVED = {"Workload", "MeshConfig"}
#: kinds meshscope deliberately never asks a cluster for, with the reason
NOT_READ = {"Secret": "private keys: the credential checks judge files only; the role grants no Secrets"}


def test_every_kind_a_config_rule_reads_is_listed_from_a_cluster():
    listed = {type_name(k.kind, k.api_version(k.versions[0])) for k in KINDS}
    declared = {kind for rule in ALL_RULES for kind in rule.metadata.inputs}
    missing = declared - listed - DERIVED - set(NOT_READ)
    assert not missing, f"rules read {sorted(missing)}, which the cluster source never lists (mesh/kube/kinds.py)"
    assert set(NOT_READ) <= declared and DERIVED <= declared, "stale exceptions"
