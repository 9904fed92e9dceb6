"""One definition per object: the last in load order wins, in the Snapshot and in the control plane alike."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.config import ConfigObject, Snapshot, Source, identity, last_wins, load_paths, load_text
from mesh.controlplane.store import with_applied


def vs(subset: str, name: str = "reviews", namespace: str = "shop") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: "
            f"{namespace}}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, "
            f"subset: {subset}}}\n")


def subset_of(obj: ConfigObject) -> str:
    return obj.spec["http"][0]["route"][0]["destination"]["subset"]


def test_twice_in_one_stream_the_later_document_is_the_object():
    loaded = load_text(vs("v1") + "---\n" + vs("v2") + "---\n" + vs("v3", name="ratings"), "one.yaml")
    assert len(loaded.objects) == 3 and not loaded.problems  # the loader keeps every document
    snap = Snapshot(loaded.objects)
    assert [(o.name, subset_of(o)) for o in snap.of_kind("VirtualService")] == [("reviews", "v2"), ("ratings", "v3")]
    assert subset_of(snap.find("VirtualService", "shop", "reviews")) == "v2"
    (dup,) = snap.duplicates
    assert dup.identity == ("VirtualService", "shop", "reviews")
    assert [str(o.source) for o in dup.definitions] == ["one.yaml:1", "one.yaml:10"]
    assert dup.evaluated is snap.find("VirtualService", "shop", "reviews")
    assert [str(o.source) for o in dup.ignored] == ["one.yaml:1"]


def test_list_items_in_list_order():
    items = "".join("- " + vs(s).replace("\n", "\n  ").rstrip() + "\n" for s in ("v1", "v2", "v3"))
    snap = Snapshot(load_text("apiVersion: v1\nkind: List\nitems:\n" + items, "list.yaml").objects)
    (dup,) = snap.duplicates
    assert [subset_of(o) for o in dup.definitions] == ["v1", "v2", "v3"]
    assert [str(o.source) for o in dup.definitions] == ["list.yaml:4", "list.yaml:12", "list.yaml:20"]
    assert subset_of(snap.find("VirtualService", "shop", "reviews")) == "v3" and len(snap.objects) == 1


def test_folder_load_order_is_kubectls_lexical_walk(tmp_path: Path):
    # kubectl walks each directory's entries in lexical order: `a/` (and all under it) comes before
    # `a-b.yaml`, although the plain string "a-b.yaml" sorts before "a/x.yaml".
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text(vs("from-a-dir"))
    (tmp_path / "a-b.yaml").write_text(vs("from-a-b"))
    (tmp_path / "0.yaml").write_text(vs("from-0"))
    loaded = load_paths([tmp_path])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in loaded.files] == ["0.yaml", "a/x.yaml", "a-b.yaml"]
    snap = Snapshot(loaded.objects)
    assert subset_of(snap.find("VirtualService", "shop", "reviews")) == "from-a-b"
    assert [subset_of(o) for o in snap.duplicates[0].definitions] == ["from-0", "from-a-dir", "from-a-b"]


def test_paths_in_the_order_given_and_a_file_reached_twice_read_once(tmp_path: Path):
    (tmp_path / "one.yaml").write_text(vs("one"))
    (tmp_path / "two.yaml").write_text(vs("two"))
    forward = Snapshot(load_paths([tmp_path / "one.yaml", tmp_path / "two.yaml"]).objects)
    backward = Snapshot(load_paths([tmp_path / "two.yaml", tmp_path / "one.yaml"]).objects)
    assert subset_of(forward.find("VirtualService", "shop", "reviews")) == "two"
    assert subset_of(backward.find("VirtualService", "shop", "reviews")) == "one"
    # the same file named directly, through its folder and by another spelling is read once, where first reached
    again = load_paths([tmp_path / "one.yaml", tmp_path, tmp_path / ".." / tmp_path.name / "one.yaml"])
    assert [Path(f).name for f in again.files] == ["one.yaml", "two.yaml"]
    (dup,) = Snapshot(again.objects).duplicates
    assert [Path(o.source.file).name for o in dup.definitions] == ["one.yaml", "two.yaml"]


def test_same_name_in_other_namespaces_or_api_groups_is_not_a_duplicate():
    text = vs("v1") + "---\n" + vs("v1", namespace="other") + "---\n" + (
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\n---\n"
        "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: dr, namespace: shop}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr, namespace: shop}\n")
    snap = Snapshot(load_text(text, "x.yaml").objects)
    # two API versions of one kind are one resource; Istio's and the Gateway API's Gateway are two
    assert [d.identity for d in snap.duplicates] == [("DestinationRule", "shop", "dr")]
    assert snap.find("DestinationRule", "shop", "dr").api_version == "networking.istio.io/v1"
    assert len(snap.of_kind("Gateway")) == 1 and len(snap.of_kind("KubernetesGateway")) == 1


def test_the_control_plane_apply_keeps_the_same_definition_as_the_snapshot():
    """The bundled mesh's `apply` of a multi-document body goes through `with_applied`; it must pick
    the definition the analyzer analyzed, or a validated change is not the change pushed."""
    body = load_text(vs("v1") + "---\n" + vs("v2") + "---\n" + vs("v3"), "<request>").objects
    applied = with_applied([], body)
    snap = Snapshot(body)
    assert [subset_of(o) for o in applied] == [subset_of(o) for o in snap.objects] == ["v3"]
    # and on top of a running config that already holds the object
    running = load_text(vs("v0") + "---\n" + vs("v9", name="ratings"), "<mesh>").objects
    assert [(o.name, subset_of(o)) for o in with_applied(running, body)] == \
        [(o.name, subset_of(o)) for o in Snapshot(running + body).objects] == [("reviews", "v3"), ("ratings", "v9")]


def make(kind: str, ns: str | None, name: str, i: int) -> ConfigObject:
    api = "gateway.networking.k8s.io/v1" if kind == "KGateway" else "networking.istio.io/v1"
    return ConfigObject(api, "Gateway" if kind == "KGateway" else kind, name, ns, spec={"i": i},
                        source=Source("gen.yaml", i + 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["VirtualService", "Gateway", "KGateway"]),
                          st.sampled_from(["a", "b", None]), st.sampled_from(["x", "y"])), max_size=12))
def test_last_wins_for_any_sequence(keys):
    objs = [make(k, ns, n, i) for i, (k, ns, n) in enumerate(keys)]
    effective, dups = last_wins(objs)
    last = {}
    for o in objs:
        last[identity(o)] = o
    assert effective == list(last.values())  # one per identity, the last, at its first position
    counts = {}
    for o in objs:
        counts.setdefault(identity(o), []).append(o)
    assert {d.identity: list(d.definitions) for d in dups} == {k: v for k, v in counts.items() if len(v) > 1}
    assert all(d.evaluated is last[d.identity] for d in dups)
