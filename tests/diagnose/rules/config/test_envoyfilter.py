"""envoyfilter.Patches against Istio's own test table (EnvoyPatchAnalyzer cases of analyzers_test.go),
on Istio's test data kept in tests/corpus/istio-testdata, plus the edges that table leaves out."""
from __future__ import annotations

from pathlib import Path

import pytest

from diagnose import analyze
from diagnose.rules import by_name
from mesh.config import Snapshot, load_paths, load_text

DATA = Path(__file__).resolve().parents[3] / "corpus" / "istio-testdata"
RULE = by_name("envoyfilter.Patches")

# (input file, expected [(IST code, "Kind ns/name")]) as upstream's table lists them.
CASES = [
    ("relative-envoy-filter-operation.yaml", [
        ("IST0151", "EnvoyFilter bookinfo/test-relative-1"), ("IST0151", "EnvoyFilter bookinfo/test-relative-2"),
        ("IST0151", "EnvoyFilter bookinfo/test-relative-3"), ("IST0155", "EnvoyFilter bookinfo/test-relative-3")]),
    ("envoy-filter-filterchain.yaml", []),
    ("absolute-envoy-filter-operation.yaml", []),
    ("envoy-filter-replace-operation.yaml", [
        ("IST0152", "EnvoyFilter bookinfo/test-replace-1"), ("IST0155", "EnvoyFilter bookinfo/test-replace-3"),
        ("IST0151", "EnvoyFilter bookinfo/test-replace-3")]),
    ("envoy-filter-add-operation.yaml", [
        ("IST0153", "EnvoyFilter bookinfo/test-auth-2"), ("IST0153", "EnvoyFilter bookinfo/test-auth-3")]),
    ("envoy-filter-remove-operation.yaml", [
        ("IST0151", "EnvoyFilter bookinfo/test-remove-1"), ("IST0154", "EnvoyFilter bookinfo/test-remove-2"),
        ("IST0154", "EnvoyFilter bookinfo/test-remove-3"), ("IST0151", "EnvoyFilter bookinfo/test-remove-5")]),
]


def _found(snapshot: Snapshot) -> set:
    return {(f.equivalents[0], f.resource.label()) for f in analyze(snapshot, rules=RULE)}


@pytest.mark.parametrize("name, expected", CASES, ids=[c[0] for c in CASES])
def test_matches_istio_table(name, expected):
    """Istio's harness de-duplicates messages that print alike (it loads no file lines), so its table lists
    each (code, object) once; compared as sets. On files istioctl keeps one per patch line, as we do."""
    loaded = load_paths([DATA / name], default_namespace=None)
    assert _found(Snapshot(loaded.objects)) == set(expected)


def test_one_finding_per_patch_with_its_line():
    loaded = load_paths([DATA / "envoy-filter-replace-operation.yaml"], default_namespace=None)
    found = [(f.code, f.resource.path) for f in analyze(Snapshot(loaded.objects), rules=RULE)
             if f.resource.name == "test-replace-3"]
    assert sorted(found) == [("MS0030", "spec/configPatches[0]"), ("MS0030", "spec/configPatches[2]"),
                             ("MS0030", "spec/configPatches[3]"), ("MS0031", "spec/configPatches[1]")]


def test_priority_silences_relative_operations_and_findings_point_at_the_patch():
    text = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ordered}
spec:
  priority: 10
  configPatches:
  - applyTo: HTTP_FILTER
    patch: {operation: INSERT_BEFORE, value: {name: a}}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: unordered}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch: {operation: MERGE, value: {name: a}}
  - applyTo: HTTP_FILTER
    patch: {operation: INSERT_AFTER, value: {name: b}}
"""
    findings = analyze(Snapshot(load_text(text, "ef.yaml").objects), rules=RULE)
    assert [(f.code, f.resource.label(), f.resource.source) for f in findings] == [
        ("MS0030", "EnvoyFilter default/unordered", "ef.yaml:17")]
