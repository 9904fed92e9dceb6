"""An object defined twice: one MS0011 naming every definition, and the rules see only the last one."""
from __future__ import annotations

from diagnose import analyze
from mesh.config import Snapshot, load_text

BASE = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: shop}
spec:
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:1}]}
"""


def vs(subset: str, annotations: str = "{}") -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop, "
            f"annotations: {annotations}}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n"
            f"    - destination: {{host: reviews, subset: {subset}}}\n")


def dr(*subsets: str) -> str:
    listed = ", ".join(f"{{name: {s}, labels: {{version: v1}}}}" for s in subsets)
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: shop}\n"
            f"spec:\n  host: reviews\n  subsets: [{listed}]\n")


def findings(*files: tuple[str, str]):
    objects = []
    for name, text in files:
        objects += load_text(text, name).objects
    return analyze(Snapshot(objects))


def by_code(found, code: str) -> list[str]:
    return [f.resource.source for f in found if f.code == code]


def test_the_later_virtualservice_is_the_one_the_rules_judge():
    broken_last = findings(("base.yaml", BASE + "---\n" + dr("v1")), ("a.yaml", vs("v1")), ("b.yaml", vs("v2")))
    assert by_code(broken_last, "MS1002") == ["b.yaml:8"]  # subset v2 is routed by the later definition only
    assert by_code(broken_last, "MS1005") == []  # an object does not conflict with its own earlier definition
    broken_first = findings(("base.yaml", BASE + "---\n" + dr("v1")), ("a.yaml", vs("v2")), ("b.yaml", vs("v1")))
    assert by_code(broken_first, "MS1002") == []  # the broken definition is the ignored one
    assert by_code(broken_first, "MS0011") == by_code(broken_last, "MS0011") == ["b.yaml:1"]


def test_a_lookup_finds_the_later_destinationrule():
    # the earlier DestinationRule defines v2, the later one (what kubectl leaves) no longer does
    found = findings(("x.yaml", BASE + "---\n" + dr("v1", "v2") + "---\n" + vs("v2") + "---\n" + dr("v1")))
    (f,) = [f for f in found if f.code == "MS1002"]
    assert "subset v2" in f.message and [r.source for r in f.related] == ["x.yaml:32"]  # the later DestinationRule
    fixed = findings(("x.yaml", BASE + "---\n" + dr("v1") + "---\n" + vs("v2") + "---\n" + dr("v1", "v2")))
    assert by_code(fixed, "MS1002") == []


def test_ms0011_names_every_definition_and_the_one_analyzed():
    found = findings(("base.yaml", BASE + "---\n" + dr("v1")), ("a.yaml", vs("v1") + "---\n" + vs("v1")),
                     ("b.yaml", vs("v1")))
    (f,) = [f for f in found if f.code == "MS0011"]
    assert f.severity == "warning" and f.category == "config"
    assert (f.resource.kind, f.resource.namespace, f.resource.name, f.resource.source) == \
        ("VirtualService", "shop", "reviews", "b.yaml:1")
    assert [r.source for r in f.related] == ["a.yaml:1", "a.yaml:10"]
    assert f.evidence == {"definitions": ["a.yaml:1", "a.yaml:10", "b.yaml:1"], "evaluated": "b.yaml:1"}
    assert f.message.startswith("VirtualService shop/reviews is defined 3 times (a.yaml:1, a.yaml:10, b.yaml:1); "
                                "the last (b.yaml:1) is analyzed")
    assert [x.code for x in found] == ["MS0011"]  # a clean config defined thrice: nothing else to say


def test_suppressions_follow_the_analyzed_definition():
    base = ("base.yaml", BASE + "---\n" + dr("v1"))
    on_last = findings(base, ("a.yaml", vs("v2")), ("b.yaml", vs("v2", "{meshscope.io/ignore: 'MS1002'}")))
    assert by_code(on_last, "MS1002") == [] and by_code(on_last, "MS0011") == ["b.yaml:1"]
    on_ignored = findings(base, ("a.yaml", vs("v2", "{meshscope.io/ignore: ''}")), ("b.yaml", vs("v2")))
    assert by_code(on_ignored, "MS1002") == ["b.yaml:8"] and by_code(on_ignored, "MS0011") == ["b.yaml:1"]


def test_a_problem_of_an_ignored_definition_is_still_reported():
    older = vs("v1").replace("networking.istio.io/v1", "networking.istio.io/v1alpha9")
    found = findings(("base.yaml", BASE + "---\n" + dr("v1")), ("a.yaml", older), ("b.yaml", vs("v1")))
    assert sorted((f.code, f.resource.source) for f in found) == [("MS0010", "a.yaml:1"), ("MS0011", "b.yaml:1")]


def test_list_items_defined_twice():
    items = "".join("- " + doc.replace("\n", "\n  ").rstrip() + "\n" for doc in (dr("v1"), vs("v2"), vs("v1")))
    found = findings(("base.yaml", BASE), ("list.yaml", "apiVersion: v1\nkind: List\nitems:\n" + items))
    (f,) = [f for f in found if f.code == "MS0011"]
    assert f.evidence == {"definitions": ["list.yaml:10", "list.yaml:18"], "evaluated": "list.yaml:18"}
    assert by_code(found, "MS1002") == []  # the item routing to the missing subset v2 is the ignored one
