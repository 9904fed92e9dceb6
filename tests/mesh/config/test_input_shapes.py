"""YAML as tools and people write it: Helm output, kubectl List/JSON dumps, CRLF, BOM, tabs, anchors.

Each shape loads with the right objects and the right line numbers, or, when invalid,
gives a problem naming file and line while the rest of the file still loads.
"""
from __future__ import annotations

import json

from mesh.config import load_paths, load_text
from mesh.config.loader import NOT_AN_OBJECT, NOT_YAML

DR = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {name}
spec:
  host: reviews
"""


def _objs(result):
    return [(o.kind, o.namespace, o.name, o.source.line) for o in result.objects]


def test_helm_rendered_stream_with_comment_only_empty_and_null_documents():
    text = ("---\n# Source: chart/templates/empty.yaml\n---\n---\n# only a comment\n---\nnull\n---\n~\n---\n"
            "# Source: chart/templates/dr.yaml\n" + DR.format(name="a") + "---\n# Source: chart/templates/b.yaml\n"
            + DR.format(name="b") + "---\n")
    r = load_text(text, "helm.yaml")
    assert r.problems == []
    # lines: doc a's apiVersion is line 12, doc b's line 20
    assert _objs(r) == [("DestinationRule", "default", "a", 12), ("DestinationRule", "default", "b", 20)]
    assert r.objects[1].line_of("spec/host") == 25


def test_kubectl_get_yaml_list_and_typed_list():
    text = """\
apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: a
    namespace: shop
    creationTimestamp: "2024-01-01T00:00:00Z"
    managedFields: [{manager: kubectl, operation: Update}]
  spec:
    host: reviews
  status: {}
- apiVersion: v1
  kind: Service
  metadata: {name: reviews}
---
apiVersion: v1
kind: ServiceList
items:
- metadata: {name: listed, namespace: shop}
  spec: {ports: [{port: 80}]}
"""
    r = load_text(text, "list.yaml")
    assert r.problems == []
    assert _objs(r) == [("DestinationRule", "shop", "a", 5), ("Service", "default", "reviews", 15),
                        ("Service", "shop", "listed", 22)]
    assert r.objects[0].line_of("spec/host") == 13


def test_kubectl_get_json_with_status_managed_fields_and_timestamps(tmp_path):
    doc = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "reviews", "namespace": "shop", "creationTimestamp": "2024-05-01T10:00:00Z",
                      "generation": 3, "resourceVersion": "991", "uid": "0f0e",
                      "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                         "fieldsV1": {"f:spec": {}}, "time": "2024-05-01T10:00:00Z"}]},
         "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
         "status": {"observedGeneration": 3, "conditions": []}}]}
    path = tmp_path / "get.json"
    path.write_text(json.dumps(doc, indent=4))
    r = load_paths([path])
    assert r.problems == []
    [vs] = r.objects
    assert (vs.kind, vs.namespace, vs.name) == ("VirtualService", "shop", "reviews")
    lines = path.read_text().splitlines()
    assert '"hosts"' in lines[vs.line_of("spec/hosts") - 1]


def test_crlf_line_endings_keep_lines():
    text = (DR.format(name="a") + "---\n" + DR.format(name="b")).replace("\n", "\r\n")
    r = load_text(text, "crlf.yaml")
    assert r.problems == [] and _objs(r) == [("DestinationRule", "default", "a", 1), ("DestinationRule", "default", "b", 8)]
    assert r.objects[1].line_of("spec/host") == 13 and r.objects[1].spec["host"] == "reviews"


def test_utf8_bom_is_not_part_of_the_first_key(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + DR.format(name="a").encode())
    r = load_paths([path])
    assert r.problems == [] and _objs(r) == [("DestinationRule", "default", "a", 1)]


def test_a_bom_opening_any_document_of_a_concatenated_stream(tmp_path):
    """`cat a.yaml b.yaml` where b.yaml was saved with a BOM (and CRLF): kubectl drops it at each document's start;
    the second document was "document has no kind" plus a YAML error."""
    dr = DR.format(name="{}").replace("\n", "\r\n").encode()
    bom = b"\xef\xbb\xbf"
    path = tmp_path / "cat.yaml"
    path.write_bytes(bom + dr.replace(b"{}", b"a") + b"---\r\n" + bom + dr.replace(b"{}", b"b")
                     + bom + b"--- # c\r\n" + dr.replace(b"{}", b"c"))
    r = load_paths([path])
    assert r.problems == [] and _objs(r) == [("DestinationRule", "default", "a", 1),
                                             ("DestinationRule", "default", "b", 8),
                                             ("DestinationRule", "default", "c", 15)]
    assert [o.spec["host"] for o in r.objects] == ["reviews"] * 3


def test_a_list_inside_a_list_is_flattened():
    inner = "".join(f"  - apiVersion: networking.istio.io/v1\n    kind: DestinationRule\n    metadata: {{name: {n}}}\n"
                    f"    spec: {{host: reviews}}\n" for n in ("x", "y"))
    text = ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n"
            + inner.replace("\n  ", "\n    ").replace("  - ", "    - ", 1)
            + "- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: z}\n"
              "  spec: {host: reviews}\n")
    r = load_text(text, "nested.yaml")
    assert r.problems == [] and [(o.name, o.source.line) for o in r.objects] == [("x", 7), ("y", 11), ("z", 15)]


def test_tab_indentation_is_a_clear_error_with_its_line_and_the_rest_still_loads():
    text = DR.format(name="a") + "---\napiVersion: v1\nkind: Service\nmetadata:\n\tname: tabbed\n---\n" \
        + DR.format(name="c")
    r = load_text(text, "tabs.yaml")
    assert [o.name for o in r.objects] == ["a", "c"]
    [p] = r.problems
    assert (p.file, p.line, p.reason) == ("tabs.yaml", 11, NOT_YAML)
    assert "tab" in p.message and "spaces" in p.message
    assert str(p).startswith("tabs.yaml:11")


def test_anchors_aliases_and_merge_keys():
    text = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: anchored
  labels: &common
    team: books
spec:
  host: reviews
  trafficPolicy: &policy
    connectionPool:
      tcp: {maxConnections: 10}
  subsets:
  - name: v1
    labels: &v1
      app: reviews
      version: v1
  - name: v2
    trafficPolicy: *policy
    labels:
      <<: *v1
      version: v2
"""
    r = load_text(text, "anchors.yaml")
    assert r.problems == []
    [dr] = r.objects
    assert dr.labels == {"team": "books"}
    v1, v2 = dr.spec["subsets"]
    assert v2["labels"] == {"app": "reviews", "version": "v2"}  # merged, then overridden
    assert v2["trafficPolicy"] == dr.spec["trafficPolicy"]
    assert dr.line_of("spec/subsets[1]/labels/version") == 21
    assert dr.line_of("spec/subsets[1]/trafficPolicy") == 18


def test_build_tool_configs_beside_manifests_are_skipped_not_reported():
    """A kustomize/kpt/skaffold file in the folder is never applied to a cluster: no 'missing name' error."""
    text = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [frontend.yaml]
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
---
apiVersion: skaffold/v4beta6
kind: Config
---
""" + DR.format(name="a")
    r = load_text(text, "kustomization.yaml")
    assert r.problems == [] and [o.name for o in r.objects] == ["a"]


def test_an_argo_rollout_is_a_workload_whose_pods_subsets_select():
    from mesh.config import Snapshot
    text = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, track: stable}}
    spec: {containers: [{name: web, image: nginx}]}
"""
    snap = Snapshot(load_text(text).objects)
    assert [(w.kind, w.namespace, w.name) for w in snap.matching_workloads("default", {"track": "stable"})] == [
        ("Rollout", "default", "web")]


def test_a_kustomization_file_without_apiversion_is_skipped_by_its_name():
    """kustomize finds kustomization.yaml by name and needs no apiVersion/kind in it (36 of kubeflow/manifests'
    omit them): skipped there and said so (info), never a problem."""
    text = "resources: [gateway.yaml]\nnamespace: kubeflow\n---\n" + DR.format(name="a")
    for name in ("kustomization.yaml", "overlays/istio/kustomization.yml", "Kustomization"):
        r = load_text(text, name)
        assert r.problems == [] and [o.name for o in r.objects] == ["a"], name
        assert [(p.reason, p.line) for p in r.skipped] == [(NOT_AN_OBJECT, 1)], name
