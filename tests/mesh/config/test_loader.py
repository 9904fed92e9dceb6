"""The loader: every document loaded with file and line; bad documents become problems, not crashes."""
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.config import load_paths, load_text
from mesh.config.loader import NO_KIND, NOT_AN_OBJECT, NOT_MAPPING, NOT_YAML

VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
    - destination:
        host: reviews
        subset: v2
"""


def test_object_keeps_file_line_and_path_lines():
    r = load_text("# comment\n---\n" + VS, "vs.yaml")
    assert r.problems == []
    (vs,) = r.objects
    assert (vs.kind, vs.namespace, vs.name) == ("VirtualService", "bookinfo", "reviews")
    assert str(vs.source) == "vs.yaml:3"
    assert vs.lines["spec/http[0]/route[1]/destination"] == 16
    assert vs.line_of("spec/http[0]/route[1]/destination/subset") == 18
    assert vs.line_of("spec/http[0]/route[7]") == 12  # unknown index falls back to its parent
    assert vs.spec["http"][0]["route"][1]["destination"]["subset"] == "v2"


def test_multi_document_lines_are_file_global():
    r = load_text(VS + "---\n" + VS.replace("reviews\n  namespace", "ratings\n  namespace"), "two.yaml")
    assert [o.name for o in r.objects] == ["reviews", "ratings"]
    assert r.objects[1].source.line == 18
    assert r.objects[1].lines["metadata/name"] == 21


def test_kind_list_is_expanded_with_item_lines():
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a, namespace: x}
- apiVersion: v1
  kind: Service
  metadata:
    name: b
    namespace: x
"""
    r = load_text(text, "l.yaml")
    assert [(o.name, o.source.line) for o in r.objects] == [("a", 4), ("b", 7)]
    assert r.objects[1].lines["metadata/name"] == 10


def test_api_list_response_items_get_kind_from_list():
    text = "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: a, namespace: x}\n  spec: {}\n"
    (svc,) = load_text(text, "api.yaml").objects
    assert (svc.kind, svc.api_version, svc.name) == ("Service", "v1", "a")


def test_system_namespaces_dropped_and_cluster_scoped_have_no_namespace():
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: kube-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, namespace: whatever}
---
apiVersion: v1
kind: Service
metadata: {name: s}
"""
    r = load_text(text, "n.yaml")
    assert [(o.kind, o.namespace) for o in r.objects] == [("Namespace", None), ("Service", "default")]
    r = load_text(text, "n.yaml", default_namespace=None)
    assert [(o.kind, o.namespace) for o in r.objects] == [("Namespace", None), ("Service", None)]


def test_bad_yaml_loses_only_the_broken_document():
    text = VS + "---\nfoo: [unclosed\nbar: 1\n---\n" + VS.replace("name: reviews", "name: after")
    r = load_text(text, "bad.yaml")
    assert [o.name for o in r.objects] == ["reviews", "after"]
    (p,) = r.problems
    assert p.reason == NOT_YAML and p.file == "bad.yaml" and p.line == 18
    assert r.objects[1].source.line == 21


def test_documents_without_kind_or_not_mappings_are_problems():
    text = "apiVersion: v1\nmetadata: {name: x}\n---\n- just\n- a list\n---\nkind: Service\napiVersion: v1\nmetadata: {}\n"
    r = load_text(text, "k.yaml")
    assert r.objects == []
    reasons = [(p.reason, p.line) for p in r.problems]
    assert reasons == [(NO_KIND, 1), (NOT_MAPPING, 4), ("no-name", 9)]
    assert "no kind" in r.problems[0].message and r.problems[0].name == "x"


def test_wrong_field_types_are_reported_and_object_kept():
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  labels:\n    version: 1\nspec: [1, 2]\n"
    r = load_text(text, "t.yaml")
    (svc,) = r.objects
    assert svc.labels == {"version": "1"} and svc.spec == {}
    fields = {(p.field, p.line) for p in r.problems}
    assert fields == {("metadata.labels.version", 6), ("spec", 7)}


def test_unknown_kinds_pass_through():
    r = load_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: a}\n", "w.yaml")
    assert [o.kind for o in r.objects] == ["Widget"] and r.problems == []


def test_load_paths_walks_folders_and_reports_missing(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(VS)
    (tmp_path / "sub" / "b.yml").write_text(VS.replace("name: reviews", "name: b"))
    (tmp_path / "notes.txt").write_text("not config")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    r = load_paths([tmp_path, tmp_path / "missing.yaml"])
    assert sorted(o.name for o in r.objects) == ["b", "reviews"]
    msgs = {(Path(p.file).name, p.reason) for p in r.problems}
    assert msgs == {("bin.yaml", NOT_YAML), ("missing.yaml", "unreadable")}
    assert r.objects[0].source.file.endswith("a.yaml")


def test_yaml_anchors_merge_keys_and_scalars():
    text = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: x}
data: &base {a: 1, b: true, c: ~, d: 1.5, e: 0x10, f: 2001-12-14}
spec:
  <<: *base
  g: "yes"
"""
    (cm,) = load_text(text, "c.yaml").objects
    assert cm.spec["a"] == 1 and cm.spec["b"] is True and cm.spec["c"] is None and cm.spec["d"] == 1.5
    assert cm.spec["e"] == 16 and cm.spec["g"] == "yes" and str(cm.spec["f"]) == "2001-12-14"


def test_folder_walk_skips_json_that_is_not_a_kubernetes_object(tmp_path: Path):
    (tmp_path / "expected.json").write_text('{"case": "x", "expected": []}')
    (tmp_path / "svc.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}')
    r = load_paths([tmp_path])
    assert [o.name for o in r.objects] == ["s"] and r.problems == []
    named = load_paths([tmp_path / "expected.json"])  # named explicitly: said to be skipped, and why
    assert named.problems == [] and named.objects == []
    assert [(p.reason, p.file) for p in named.skipped] == [(NOT_AN_OBJECT, str(tmp_path / "expected.json"))]


def test_keys_written_twice_are_reported_with_both_lines():
    text = ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n"
            "  spec:\n    type: ClusterIP\n    type: NodePort\n")
    r = load_text(text, "d.yaml")
    (svc,) = r.objects
    assert svc.spec["type"] == "NodePort"
    (p,) = r.problems
    assert (p.line, p.field, p.name) == (9, "spec.type", "s") and "first at line 8" in p.message


_yamlish = st.lists(st.sampled_from(["apiVersion: v1", "kind: Service", "kind: List", "items:", "- a", "  - b",
                                     "metadata:", "  name: x", "  namespace: [y", "---", "spec: {", "&a x", "*a",
                                     "<<: *a", "key: 'quoted", "\t- tab", "? complex", ": value", "!!binary AA==",
                                     "2001-12-14", "0x1F", "~", "name: {name: 1}", "labels: {a: 1}"]),
                    max_size=12).map("\n".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_yamlish, st.text(max_size=80)))
def test_any_text_loads_without_raising(text):
    r = load_text(text, "fuzz.yaml")
    for p in r.problems:
        assert p.file == "fuzz.yaml" and p.line >= 0 and p.message
    for o in r.objects:
        assert o.source is not None and o.source.file == "fuzz.yaml" and isinstance(o.spec, dict)
