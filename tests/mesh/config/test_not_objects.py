"""Documents and files that are not Kubernetes objects are said to be skipped (info), never reported as broken.

Decided by shape, for every file: a document with none of apiVersion, kind, metadata (settings kept beside the
manifests), a kustomization, and the files a kustomization in the load reads itself (generator inputs, patches,
transformer configurations). A document with any of the three is meant as an object: its gaps stay problems.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mesh.config import load_paths, load_text
from mesh.config.loader import NO_API_VERSION, NO_KIND, NO_NAME, NOT_AN_OBJECT, NOT_MAPPING

VS = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\n"
      "spec: {{hosts: [web], http: [{{route: [{{destination: {{host: web}}}}]}}]}}\n")


@pytest.mark.parametrize("text", [
    "USERID_HEADER: kubeflow-userid\nAPP_PREFIX: /app\n",  # params
    "commonLabels:\n- kind: AuthorizationPolicy\n  path: spec/selector/matchLabels\n  create: true\n",  # configurations
    "replicaCount: 2\nimage: {repository: nginx, tag: '1.25'}\n",  # Helm values
    "{}\n",
])
def test_a_document_of_no_object_shape_is_skipped_in_any_file(text):
    for name in ("params.yaml", "values.yaml", "deploy/web/anything.yml"):
        r = load_text(text + "---\n" + VS.format(name="web"), name)
        assert r.problems == [] and [o.name for o in r.objects] == ["web"], name
        (note,) = r.skipped
        assert (note.reason, note.file, note.line) == (NOT_AN_OBJECT, name, 1) and "not a Kubernetes object" in str(note)


@pytest.mark.parametrize("text, reason", [
    ("apiVersion: v1\nmetadata: {name: x}\n", NO_KIND),  # an apiVersion: meant as an object
    ("apiVersion: networking.istio.io/v1\nkind: ''\nmetadata: {name: x}\n", NO_KIND),
    ("metadata: {name: x}\nspec: {hosts: [web]}\n", NO_KIND),  # metadata: an object missing its header
    ("kind: VirtualService\nmetadata: {name: x}\n", NO_API_VERSION),
    ("apiVersion: v1\nkind: Service\n", NO_NAME),
    ("- op: replace\n  path: /spec/gateways\n", NOT_MAPPING),  # a JSON patch no kustomization names
])
def test_a_document_meant_as_an_object_keeps_its_problem(text, reason):
    r = load_text(text, "params.yaml")
    assert [p.reason for p in r.problems] == [reason] and r.skipped == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_files_a_kustomization_reads_are_skipped_and_its_resources_loaded(tmp_path):
    """Every kind of side file kustomize reads, beside and below the kustomization; the strategic-merge patch looks
    like an object (its name is a resource's: loaded, it would be a partial duplicate of it)."""
    _write(tmp_path, {
        "app/kustomization.yaml": (
            "resources: [vs.yaml]\n"
            "configMapGenerator:\n- name: cfg\n  files: [app.properties, conf=settings/conf.yaml]\n  envs: [params.env]\n"
            "secretGenerator:\n- name: s\n  env: secret.yaml\n"
            "patches:\n- path: patches/smp.yaml\n- path: patches/json.yaml\n  target: {kind: VirtualService}\n"
            "patchesStrategicMerge: [patches/old-smp.yaml]\n"
            "configurations: [params.yaml]\n"
            "replacements:\n- path: replacements.yaml\n"
            "helmCharts:\n- name: c\n  valuesFile: values.yaml\n"),
        "app/vs.yaml": VS.format(name="web"),
        "app/settings/conf.yaml": "logLevel: debug\n",
        "app/secret.yaml": "PASSWORD: x\n",
        "app/patches/smp.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\n"
                                "spec: {gateways: [gw]}\n",
        "app/patches/old-smp.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\n",
        "app/patches/json.yaml": "- op: replace\n  path: /spec/gateways\n  value: [kubeflow/gw]\n",
        "app/params.yaml": "varReference:\n- path: spec/hosts\n  kind: VirtualService\n",
        "app/replacements.yaml": "source: {kind: ConfigMap, name: cfg, fieldPath: data.host}\ntargets: []\n",
        "app/values.yaml": "replicas: 2\n",
        # not named by the kustomization: an object like any other, its problems reported
        "other/smp.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: other}\n",
        "other/broken.yaml": "apiVersion: v1\nmetadata: {name: x}\n",
    })
    r = load_paths([tmp_path])
    assert sorted(o.name for o in r.objects) == ["other", "web"]
    assert [(Path(p.file).relative_to(tmp_path).as_posix(), p.reason) for p in r.problems] == [
        ("other/broken.yaml", NO_KIND)]
    skipped = {Path(p.file).relative_to(tmp_path).as_posix(): p for p in r.skipped}
    assert set(skipped) == {"app/kustomization.yaml", "app/settings/conf.yaml", "app/secret.yaml",
                            "app/patches/smp.yaml", "app/patches/old-smp.yaml", "app/patches/json.yaml",
                            "app/params.yaml", "app/replacements.yaml", "app/values.yaml"}
    assert all(p.reason == NOT_AN_OBJECT for p in r.skipped)
    assert "patches.path of" in skipped["app/patches/smp.yaml"].message
    assert "configMapGenerator.files of" in skipped["app/settings/conf.yaml"].message
    # the same side file named without its kustomization is read as what it looks like
    alone = load_paths([tmp_path / "app" / "patches" / "smp.yaml"])
    assert [o.name for o in alone.objects] == ["web"] and alone.skipped == []


def test_a_kustomization_that_cannot_be_read_skips_nothing_else(tmp_path):
    _write(tmp_path, {"kustomization.yaml": "patches: [{path: p.yaml}\n",  # unclosed: not YAML
                      "p.yaml": VS.format(name="web")})
    r = load_paths([tmp_path])
    assert [o.name for o in r.objects] == ["web"] and [p.reason for p in r.problems] == ["not-yaml"]


def test_a_kustomization_under_another_name_declares_itself_by_its_api_version(tmp_path):
    """GoogleCloudPlatform/anthos-service-mesh-workshop keeps kustomization-app.yaml and kustomization-ops.yaml, one
    copied into place by its build script; their JSON patch was MS0003 "document is a list". A file that only
    mentions the group (a ConfigMap holding a kustomization as text) names no side files."""
    _write(tmp_path, {
        "kustomization-ops.yaml": "# ops variant\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                                  "resources: [vs.yaml]\npatchesJson6902:\n- target: {kind: ClusterRole, name: x}\n"
                                  "  path: jsonpatch-clusterrole.yaml\n",
        "component.yml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- path: smp.yaml\n",
        "vs.yaml": VS.format(name="web"),
        "jsonpatch-clusterrole.yaml": "- op: add\n  path: /rules/-\n  value: {verbs: [use]}\n",
        "smp.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\n",
        "configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k}\ndata:\n  k.yaml: |\n"
                          "    apiVersion: kustomize.config.k8s.io/v1beta1\n    patches: [{path: vs.yaml}]\n",
    })
    r = load_paths([tmp_path])
    assert sorted(o.name for o in r.objects) == ["k", "web"] and r.problems == []
    skipped = {Path(p.file).name: p.message for p in r.skipped}
    assert set(skipped) == {"kustomization-ops.yaml", "component.yml", "jsonpatch-clusterrole.yaml", "smp.yaml"}
    assert "patchesJson6902.path of" in skipped["jsonpatch-clusterrole.yaml"]
