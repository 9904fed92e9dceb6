"""Objects without metadata.namespace live where kubectl would put them, and Istio's rules follow.

The default namespace is `-n` when given, else the kubeconfig context's namespace (with
--kubeconfig/--context), else `default`; cluster-scoped kinds have none.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from diagnose import analyze
from mesh.config import Snapshot, load_text
from mesh.config.namespaces import context_namespace, default_namespace, effective_namespace, is_cluster_scoped

REPO = Path(__file__).resolve().parents[3]

# Istio's bookinfo shape, as upstream ships it: no namespace anywhere.
APP = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:1}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  exportTo: ["."]
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v9, labels: {version: v9}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""


def _serious(text: str, **load) -> list[tuple[str, str]]:
    loaded = load_text(text, "app.yaml", **load)
    return sorted((f.code, f.resource.label()) for f in analyze(Snapshot(loaded.objects), problems=loaded.problems)
                  if f.severity in ("error", "warning"))


def test_unset_namespace_resolves_short_hosts_exportto_and_selectors_in_the_default_namespace():
    # Only the real problem remains: subset v9 selects no pod. Short hosts, exportTo ["."] and the
    # subset selector were all resolved in `default`, so nothing "matches no Service".
    assert _serious(APP) == [("MS1102", "DestinationRule default/reviews")]


@pytest.mark.parametrize("ns", ["default", "bookinfo", "istio-system"])
def test_the_given_namespace_is_used_instead(ns):
    assert _serious(APP, default_namespace=ns) == [("MS1102", f"DestinationRule {ns}/reviews")]


def test_a_written_namespace_wins_and_short_hosts_stay_in_it():
    text = APP.replace("metadata: {name: reviews}\nspec:\n  hosts", "metadata: {name: reviews, namespace: other}\n"
                       "spec:\n  hosts")
    found = _serious(text, default_namespace="shop")
    # The VirtualService in `other` routes to reviews.other, which does not exist there.
    assert ("MS1001", "VirtualService other/reviews") in found
    assert ("MS1102", "DestinationRule shop/reviews") in found


def test_exportto_dot_means_the_resolved_namespace_not_none():
    objs = load_text(APP, "app.yaml", default_namespace="shop").objects
    snap = Snapshot(objs)
    dr = snap.find("DestinationRule", "shop", "reviews")
    assert dr is not None and snap.visible(dr, "shop") and not snap.visible(dr, "default")


def test_root_namespace_keeps_its_meaning():
    """A PeerAuthentication without a namespace applied with -n istio-system is mesh-wide."""
    text = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default}\n" \
           "spec: {mtls: {mode: STRICT}}\n"
    from diagnose.rules.config import security as sec
    assert [o.name for o in sec.mesh_pas(Snapshot(load_text(text, default_namespace="istio-system").objects))] == \
        ["default"]
    assert sec.mesh_pas(Snapshot(load_text(text).objects)) == []


@pytest.mark.parametrize("kind", ["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Node",
                                  "GatewayClass", "ClusterIssuer", "ClusterSPIFFEID",
                                  # Sail operator's: its samples (Istio default, IstioCNI default) were default/default
                                  "Istio", "IstioRevision", "IstioRevisionTag", "IstioCNI", "ZTunnel"])
def test_cluster_scoped_kinds_stay_without_namespace(kind):
    text = f"apiVersion: v1\nkind: {kind}\nmetadata: {{name: x, namespace: written}}\n---\n" \
           f"apiVersion: v1\nkind: {kind}\nmetadata: {{name: y}}\n"
    assert [o.namespace for o in load_text(text, default_namespace="shop").objects] == [None, None]
    assert is_cluster_scoped(kind)


@pytest.mark.parametrize("kind", ["Cluster", "ClusterServiceVersion", "Service", "Clusterfoo", "VirtualService"])
def test_namespaced_kinds_named_like_cluster_ones(kind):
    assert not is_cluster_scoped(kind)
    assert effective_namespace(kind, None, "shop") == "shop"


def test_defaulted_namespace_is_written_into_the_object_so_re_serialized_yaml_keeps_it():
    """`meshscope apply -n shop` sends the objects on as YAML; they must arrive in shop."""
    import yaml
    objs = load_text(APP, default_namespace="shop").objects
    again = load_text(yaml.safe_dump_all([o.raw for o in objs]), default_namespace="elsewhere").objects
    assert {o.namespace for o in again} == {"shop"}


def test_default_namespace_none_keeps_them_unset_as_istioctls_harness():
    assert {o.namespace for o in load_text(APP, default_namespace=None).objects} == {None}


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: team-a}
- name: prod
  context: {cluster: c, user: u}
"""


def test_context_namespace_from_kubeconfig(tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    cfg.write_text(KUBECONFIG)
    assert context_namespace(str(cfg)) == "team-a"
    assert context_namespace(str(cfg), "prod") is None
    assert context_namespace(str(cfg), "missing") is None
    assert context_namespace(str(tmp_path / "absent")) is None
    (tmp_path / "bad").write_text("{{{")
    assert context_namespace(str(tmp_path / "bad")) is None
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{cfg}")
    assert context_namespace() == "team-a"
    # -n beats the context; the context beats `default` only when a kubeconfig/context is in use.
    assert default_namespace("x", str(cfg), None, True) == "x"
    assert default_namespace(None, str(cfg), None, True) == "team-a"
    assert default_namespace(None, str(cfg), "prod", True) == "default"
    assert default_namespace(None, None, None, False) == "default"


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshscope", "analyze", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, input=stdin)


def test_cli_prints_the_resolved_namespace_and_json_carries_it(tmp_path):
    (tmp_path / "app.yaml").write_text(APP)
    text = _cli(str(tmp_path))
    assert text.returncode == 1
    assert "(DestinationRule default/reviews)" in text.stdout and "None" not in text.stdout
    js = json.loads(_cli(str(tmp_path), "-n", "bookinfo", "--format", "json").stdout)
    assert [(f["code"], f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"]) for f in js
            if f["severity"] != "info"] == [("MS1102", "DestinationRule", "bookinfo", "reviews")]
    piped = json.loads(_cli("-", "-n", "piped", "--format", "json", stdin=APP).stdout)
    assert {f["resource"]["namespace"] for f in piped} == {"piped"}


def test_cli_help_says_both_meanings_of_n():
    out = _cli("--help").stdout
    assert "kubectl apply -n" in " ".join(out.split()) and "only read these namespaces" in " ".join(out.split())


def test_apply_n_puts_objects_in_that_namespace_and_sends_it_on(tmp_path):
    import yaml

    from meshscope.commands.apply import as_yaml, load_change
    (tmp_path / "app.yaml").write_text(APP)
    change = load_change([tmp_path / "app.yaml"], "apply", "shop")
    assert {o.namespace for o in change} == {"shop"}
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(as_yaml(change))} == {"shop"}
    assert {o.namespace for o in load_change([tmp_path / "app.yaml"], "apply")} == {"default"}


def test_cli_with_a_kubeconfig_puts_unnamespaced_files_in_the_contexts_namespace(kube_api, tmp_path):
    """The recorded cluster has bookinfo/reviews with a subset v2 that no DestinationRule defines; a local fix
    without a namespace replaces it only because the context's namespace is bookinfo (or -n says so)."""
    kube_api.load_dir(REPO / "tests" / "mesh" / "kube" / "data")
    cfg_path = kube_api.kubeconfig(tmp_path)
    cfg = json.loads(cfg_path.read_text())
    fix = tmp_path / "fix.yaml"
    fix.write_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n"
                   "  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v1}}]\n")

    def ms1002(*extra: str) -> list:
        r = _cli("--kubeconfig", str(cfg_path), "--format", "json", *extra, str(fix))
        assert "Traceback" not in r.stderr, r.stderr
        return [f for f in json.loads(r.stdout) if f["code"] == "MS1002"]

    assert ms1002(), "without a namespace the fix lands in default and fixes nothing"
    assert ms1002("-n", "bookinfo") == []
    cfg["contexts"][0]["context"]["namespace"] = "bookinfo"
    cfg_path.write_text(json.dumps(cfg))
    assert ms1002() == []
