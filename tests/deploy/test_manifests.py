"""The in-cluster manifests stay read-only and cover every kind the Kubernetes source lists."""
from pathlib import Path

import yaml

from mesh.kube import KINDS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def docs(name):
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_cluster_role_is_read_only_and_covers_every_listed_kind():
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    for k in KINDS:
        assert (k.group, k.plural) in granted, f"{k.kind} is listed by meshscope but not granted"


def test_deployment_uses_the_read_only_service_account_and_serve():
    dep = next(d for d in docs("deployment.yaml") if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    sa = next(d for d in docs("rbac.yaml") if d["kind"] == "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["containers"][0]["args"][0] == "serve"
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"
