"""The runner: input findings, rule failures, suppressions, ordering; and the catalog's `make`."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from diagnose import analyze
from diagnose.catalog import CATALOG, make
from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.suppression import apply_suppressions
from mesh.config import Snapshot, load_text

VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: shop
  annotations: {annotations}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: ghost, subset: v1}}
"""


def load(text: str):
    r = load_text(text, "in.yaml")
    return Snapshot(r.objects), r.problems


def codes(findings) -> list[tuple[str, str]]:
    return [(f.code, f.resource.name) for f in findings]


def test_load_problems_and_kind_checks_become_findings():
    snap, problems = load("apiVersion: v1\nmetadata: {name: x}\n---\nkey: [oops\n---\n"
                          "apiVersion: networking.istio.io/v9\nkind: VirtualService\nmetadata: {name: v, namespace: a}\n"
                          "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n"
                          "apiVersion: security.istio.io/v1\nkind: PeerAuth\nmetadata: {name: p, namespace: a}\n---\n"
                          "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: a}\n")
    got = {(f.code, f.resource.source) for f in analyze(snap, problems=problems)}
    assert {("MS0004", "in.yaml:1"), ("MS0002", "in.yaml:4"), ("MS0010", "in.yaml:6"), ("MS0008", "in.yaml:11"),
            ("MS0009", "in.yaml:15"), ("MS0011", "in.yaml:18")} <= got


def test_gateway_api_versions_the_crds_serve_are_not_flagged():
    """TLSRoute v1alpha3 (Gateway API 1.4's experimental channel; kubernetes-sigs/gateway-api's own
    examples/experimental/v1alpha3) was flagged MS0010 as a version nobody serves."""
    route = ("apiVersion: gateway.networking.k8s.io/{v}\nkind: TLSRoute\nmetadata: {{name: r{i}, namespace: a}}\n"
             "spec: {{hostnames: [a.example.com]}}\n---\n")
    text = "".join(route.format(v=v, i=i) for i, v in enumerate(("v1alpha2", "v1alpha3", "v1", "v1alpha9")))
    snap, problems = load(text)
    assert [f.resource.name for f in analyze(snap, problems=problems) if f.code == "MS0010"] == ["r3"]


def test_annotation_suppresses_listed_codes_or_everything():
    text = VS.format(name="listed", annotations="{meshscope.io/ignore: 'MS1001, KIA1107'}") + "---\n" + \
        VS.format(name="all", annotations="{meshscope.io/ignore: ''}") + "---\n" + \
        VS.format(name="none", annotations="{}")
    snap, _ = load(text)
    got = codes(analyze(snap))
    assert ("MS1001", "none") in got and ("MS1002", "none") in got
    assert not [c for c in got if c[1] in ("listed", "all")]


def test_ignore_option_matches_codes_and_equivalents():
    snap, _ = load(VS.format(name="v", annotations="{}"))
    assert codes(analyze(snap, ignore={"IST0101"})) == []  # both findings are IST0101-equivalent
    assert codes(analyze(snap, ignore={"ms1001"})) == [("MS1002", "v")]


def test_expired_suppression_reports_again():
    snap, _ = load(VS.format(name="v", annotations="{meshscope.io/ignore: '', meshscope.io/ignore-until: 2020-01-01}"))
    got = codes(apply_suppressions(analyze(snap, rules=[]) + [make("MS1001", analyze_ref(snap), field="destination",
                                                                   host="ghost", namespace="shop")],
                                   snap, today=dt.date(2026, 1, 1)))
    assert ("MS1001", "v") in got and ("MS0012", "v") in got
    fresh = codes(apply_suppressions([make("MS1001", analyze_ref(snap), field="d", host="g", namespace="s")], snap,
                                     today=dt.date(2019, 1, 1)))
    assert fresh == []


def analyze_ref(snap):
    from diagnose.context import resource_ref
    return resource_ref(snap.objects[0])


class Exploding:
    metadata = Metadata(name="test.Exploding", description="raises", inputs=("VirtualService",), codes=())

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.for_each("VirtualService"):
            raise RuntimeError(f"boom on {vs.name}")


def test_a_failing_rule_becomes_one_finding_and_others_still_run():
    from diagnose.rules import by_name
    snap, _ = load(VS.format(name="v", annotations="{}"))
    got = analyze(snap, rules=[Exploding(), *by_name("virtualservice.DestinationHosts")])
    assert [f.code for f in got] == ["MS0099", "MS1001"]
    assert "test.Exploding" in got[0].message and "boom on v" in got[0].message


def test_findings_are_sorted_by_source_and_exact_duplicates_dropped():
    text = VS.format(name="b", annotations="{}") + "---\n" + VS.format(name="a", annotations="{}")
    snap, _ = load(text)
    from diagnose.rules import by_name
    rules = by_name("virtualservice.DestinationHosts")
    got = analyze(snap, rules=rules + rules)
    assert codes(got) == [("MS1001", "b"), ("MS1001", "a")]


def test_make_fills_templates_and_rejects_missing_arguments():
    f = make("MS1006", total=90)
    assert f.message.startswith("route weights add up to 90") and f.severity == CATALOG["MS1006"].severity
    assert make("MS1006", total=1, severity="info").severity == "info"
    with pytest.raises(KeyError, match="total"):
        make("MS1006")
    with pytest.raises(KeyError, match="unknown finding code"):
        make("MS9999")


SUPPRESSIONS = """\
suppressions:
- codes: [MS1002]
  resource: "VirtualService shop/*"
  reason: subsets arrive with the next release
- codes: IST0101
  resource: "VirtualService shop/old"
  until: 2020-01-01
  reason: was temporary
"""


def test_suppressions_file_with_globs_and_expiry(tmp_path):
    from diagnose.suppression_file import load_suppressions
    f = tmp_path / "s.yaml"
    f.write_text(SUPPRESSIONS)
    entries = load_suppressions(f)
    assert [e.source for e in entries] == [f"{f}:2", f"{f}:5"]
    snap, _ = load(VS.format(name="new", annotations="{}") + "---\n" + VS.format(name="old", annotations="{}"))
    got = analyze(snap, suppressions=entries)
    assert sorted(codes(got)) == [("MS0013", str(f)), ("MS1001", "new"), ("MS1001", "old")]
    (expired,) = [x for x in got if x.code == "MS0013"]
    assert "expired on 2020-01-01 (was temporary)" in expired.message and expired.resource.source == f"{f}:5"


@pytest.mark.parametrize("text, needle", [
    ("suppressions: {a: 1}\n", ":1: expected `suppressions:`"),
    ("suppressions:\n- codes: [MS1]\n  until: someday\n", ":2: until must be a date"),
    ("suppressions:\n- code: MS1001\n", ":2: unknown field(s) code"),
    ("suppressions: [\n", "not valid YAML"),
])
def test_bad_suppressions_file_names_file_and_line(tmp_path, text, needle):
    from diagnose.suppression_file import SuppressionFileError, load_suppressions
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(SuppressionFileError, match=re.escape(needle)):
        load_suppressions(f)


def test_kiali_ignore_annotation_is_honoured():
    snap, _ = load(VS.format(name="k", annotations="{kiali.io/ignore-validations: 'KIA1107'}"))
    assert codes(analyze(snap)) == [("MS1001", "k")]  # MS1002 is KIA1107-equivalent; MS1001 is not listed
