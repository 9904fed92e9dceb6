"""PeerAuthentication vs DestinationRule: every row of Kiali's mTLS table, plus workload and port level."""
from __future__ import annotations

import textwrap

import pytest

from diagnose import analyze
from diagnose.findings import Finding
from mesh.config import MeshConfig, Snapshot, load_text


def run(text: str, auto_mtls: bool = True) -> list[Finding]:
    loaded = load_text(textwrap.dedent(text), "mesh.yaml")
    assert not loaded.problems, loaded.problems
    findings = analyze(Snapshot(loaded.objects, MeshConfig(enable_auto_mtls=auto_mtls)))
    assert not [f for f in findings if f.code == "MS0099"], "a rule crashed"
    return findings


def codes(findings: list[Finding]) -> list[str]:
    return sorted(f.code for f in findings if f.code.startswith("MS2"))


def pa(name: str, ns: str, mode: str | None = None, selector: dict | None = None, ports: dict | None = None) -> str:
    doc = f"---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n"
    if selector:
        doc += f"  selector: {{matchLabels: {selector}}}\n"
    if mode:
        doc += f"  mtls: {{mode: {mode}}}\n"
    if ports:
        doc += "  portLevelMtls:\n" + "".join(f"    {p}: {{mode: {m}}}\n" for p, m in ports.items())
    return doc


def dr(name: str, ns: str, host: str, mode: str | None = None, ports: dict | None = None) -> str:
    doc = f"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  host: \"{host}\"\n"
    if mode or ports:
        doc += "  trafficPolicy:\n"
    if mode:
        doc += f"    tls: {{mode: {mode}}}\n"
    if ports:
        doc += "    portLevelSettings:\n" + "".join(
            f"    - port: {{number: {p}}}\n      tls: {{mode: {m}}}\n" for p, m in ports.items())
    return doc


REVIEWS = """
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}, {name: grpc, port: 9090, targetPort: 9090}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:1}]}
"""


# -- Kiali's table, mesh and namespace level ---------------------------------------------------
def test_mesh_strict_needs_mesh_destination_rule_without_auto_mtls():
    found = run(pa("default", "istio-system", "STRICT"), auto_mtls=False)
    (f,) = [f for f in found if f.code == "MS2001"]
    assert f.equivalents == ["KIA0401"] and f.severity == "error" and f.category == "mtls"
    assert f.resource.kind == "PeerAuthentication" and f.resource.path == "spec/mtls"
    assert f.resource.source.startswith("mesh.yaml:")
    assert "istio-system" in f.remediation and "*.local" in f.remediation
    assert "MS2001" not in codes(run(pa("default", "istio-system", "STRICT") + dr("m", "istio-system", "*.local", "ISTIO_MUTUAL"),
                                     auto_mtls=False))
    assert "MS2001" not in codes(run(pa("default", "istio-system", "STRICT"), auto_mtls=True))


def test_namespace_strict_needs_namespace_or_mesh_destination_rule():
    base = pa("default", "bookinfo", "STRICT")
    assert codes(run(base, auto_mtls=False)) == ["MS2002"]
    assert codes(run(base + dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "ISTIO_MUTUAL"), auto_mtls=False)) == []
    # a mesh-wide DR satisfies the namespace (it is then the mesh-wide rule that lacks a PeerAuthentication)
    assert codes(run(base + dr("m", "istio-system", "*.local", "ISTIO_MUTUAL"), auto_mtls=False)) == ["MS2005"]
    assert codes(run(base, auto_mtls=True)) == []


def test_namespace_disable_with_mtls_destination_rule():
    found = run(pa("default", "bookinfo", "DISABLE") + dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "ISTIO_MUTUAL"))
    (f,) = [f for f in found if f.code == "MS2003"]
    assert f.equivalents == ["KIA0505"]
    assert [(r.kind, r.name, r.path) for r in f.related] == [("DestinationRule", "ns", "spec/trafficPolicy/tls/mode")]
    # a namespace DR that disables TLS wins over the mesh-wide one
    assert "MS2003" not in codes(run(pa("default", "bookinfo", "DISABLE") + dr("m", "istio-system", "*.local", "ISTIO_MUTUAL")
                                     + dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "DISABLE")))
    assert "MS2003" in codes(run(pa("default", "bookinfo", "DISABLE") + dr("m", "istio-system", "*.local", "ISTIO_MUTUAL")))


def test_mesh_disable_with_mesh_mtls_destination_rule():
    assert codes(run(pa("default", "istio-system", "DISABLE") + dr("m", "bookinfo", "*.local", "ISTIO_MUTUAL"))) == ["MS2004"]
    assert codes(run(pa("default", "istio-system", "DISABLE") + dr("m", "istio-system", "*.local", "DISABLE"))) == []


def test_mtls_destination_rules_without_peer_authentication_when_auto_mtls_is_off():
    assert codes(run(dr("m", "istio-system", "*.local", "ISTIO_MUTUAL"), auto_mtls=False)) == ["MS2005"]
    assert codes(run(dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "ISTIO_MUTUAL"), auto_mtls=False)) == ["MS2006"]
    assert codes(run(dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "ISTIO_MUTUAL")
                     + pa("default", "bookinfo", "PERMISSIVE"), auto_mtls=False)) == []
    assert codes(run(dr("m", "istio-system", "*.local", "ISTIO_MUTUAL"), auto_mtls=True)) == []


def test_destination_rule_disabling_tls_under_strict():
    found = run(pa("default", "bookinfo", "STRICT") + dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "DISABLE"))
    assert codes(found) == ["MS2007"]
    assert found[0].resource.path == "spec/trafficPolicy/tls/mode" and found[0].related[0].name == "default"
    mesh = run(pa("default", "istio-system", "STRICT") + dr("m", "bookinfo", "*.local", "DISABLE"))
    assert codes(mesh) == ["MS2008"] and mesh[0].equivalents == ["KIA0208"]
    # PERMISSIVE (or DISABLE) mesh-wide does not break plaintext clients
    assert codes(run(pa("default", "istio-system", "PERMISSIVE") + dr("m", "bookinfo", "*.local", "DISABLE"))) == []


def test_host_rule_without_tls_drops_namespace_mtls_only_without_auto_mtls():
    text = (pa("default", "bookinfo", "STRICT") + dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "ISTIO_MUTUAL")
            + dr("details", "bookinfo", "details") + "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n")
    found = [f for f in run(text, auto_mtls=False) if f.code == "MS2009"]
    assert len(found) == 1 and found[0].resource.name == "details" and found[0].equivalents == ["KIA0204"]
    assert "details.bookinfo.svc.cluster.local" in found[0].message
    assert "MS2009" not in codes(run(text, auto_mtls=True))


# -- beyond Kiali: workload and port level -----------------------------------------------------------
def test_workload_strict_vs_host_disable_is_flagged_on_the_destination_rule():
    """The bundled mesh's mtls-mismatch scenario: STRICT server, client DR DISABLE -> every request reset."""
    text = REVIEWS + pa("reviews-strict", "bookinfo", "STRICT", {"app": "reviews"}) + dr("reviews", "bookinfo", "reviews", "DISABLE")
    (f,) = [f for f in run(text) if f.code == "MS2010"]
    assert f.severity == "error" and f.category == "mtls"
    assert (f.resource.kind, f.resource.name, f.resource.path) == ("DestinationRule", "reviews", "spec/trafficPolicy/tls/mode")
    assert [(r.kind, r.name, r.path) for r in f.related] == [("PeerAuthentication", "reviews-strict", "spec/mtls/mode")]
    assert "reviews.bookinfo.svc.cluster.local" in f.message and "Deployment bookinfo/reviews-v1" in f.message
    assert "ISTIO_MUTUAL" in f.remediation and "spec/trafficPolicy/tls/mode" in f.remediation


def test_namespace_strict_vs_host_disable_is_flagged_once():
    text = REVIEWS + pa("default", "bookinfo", "STRICT") + dr("reviews", "bookinfo", "reviews", "DISABLE")
    assert codes(run(text)) == ["MS2010"]
    # the namespace-wide DR case is Kiali's KIA0207 and is not reported twice
    text = REVIEWS + pa("default", "bookinfo", "STRICT") + dr("ns", "bookinfo", "*.bookinfo.svc.cluster.local", "DISABLE")
    assert codes(run(text)) == ["MS2007"]


def test_port_level_strict_vs_port_level_disable():
    text = (REVIEWS + pa("reviews-ports", "bookinfo", "PERMISSIVE", {"app": "reviews"}, {9080: "STRICT"})
            + dr("reviews", "bookinfo", "reviews", ports={9080: "DISABLE", 9090: "DISABLE"}))
    (f,) = [f for f in run(text) if f.code == "MS2010"]
    assert f.resource.path == "spec/trafficPolicy/portLevelSettings[0]/tls/mode"
    assert f.related[0].path == "spec/portLevelMtls/9080/mode" and "port 9080" in f.message


def test_simple_tls_to_strict_workload_is_not_istio_mtls():
    text = REVIEWS + pa("reviews-strict", "bookinfo", "STRICT", {"app": "reviews"}) + dr("reviews", "bookinfo", "reviews", "SIMPLE")
    assert "MS2010" in codes(run(text))


def test_mtls_client_to_disabled_workload():
    text = REVIEWS + pa("reviews-off", "bookinfo", "DISABLE", {"app": "reviews"}) + dr("reviews", "bookinfo", "reviews", "ISTIO_MUTUAL")
    (f,) = [f for f in run(text) if f.code == "MS2011"]
    assert f.resource.name == "reviews" and f.related[0].name == "reviews-off"
    # agreeing sides are fine
    text = REVIEWS + pa("reviews-on", "bookinfo", "STRICT", {"app": "reviews"}) + dr("reviews", "bookinfo", "reviews", "ISTIO_MUTUAL")
    assert codes(run(text)) == []


def test_port_level_without_selector_is_rejected():
    assert codes(run(pa("default", "bookinfo", "STRICT", ports={8080: "DISABLE"}))) == ["MS2012"]


def test_strict_workload_without_client_destination_rule_when_auto_mtls_off():
    text = REVIEWS + pa("reviews-strict", "bookinfo", "STRICT", {"app": "reviews"})
    (f,) = [f for f in run(text, auto_mtls=False) if f.code == "MS2013"]
    assert f.resource.name == "reviews-strict" and "reviews.bookinfo.svc.cluster.local" in f.message
    assert codes(run(text + dr("reviews", "bookinfo", "reviews", "ISTIO_MUTUAL"), auto_mtls=False)) == []
    assert codes(run(text, auto_mtls=True)) == []


# -- selector hygiene ---------------------------------------------------------------------------
def test_selectorless_duplicates_flag_every_copy():
    found = [f for f in run(pa("a", "bookinfo", "STRICT") + pa("b", "bookinfo", "PERMISSIVE")) if f.code == "MS2020"]
    assert sorted(f.resource.name for f in found) == ["a", "b"] and found[0].equivalents == ["KIA0002"]
    assert codes(run(pa("a", "bookinfo", "STRICT") + pa("b", "other", "STRICT"))) == []


def test_overlapping_selectors_and_selectors_matching_nothing():
    text = REVIEWS + pa("a", "bookinfo", "STRICT", {"app": "reviews"}) + pa("b", "bookinfo", "STRICT", {"version": "v1"})
    found = [f for f in run(text) if f.code == "MS2021"]
    assert sorted(f.resource.name for f in found) == ["a", "b"] and "Deployment/reviews-v1" in found[0].message
    lonely = [f for f in run(REVIEWS + pa("c", "bookinfo", "STRICT", {"app": "ratings"})) if f.code == "MS2022"]
    assert len(lonely) == 1 and lonely[0].equivalents == ["KIA0004"] and "app=ratings" in lonely[0].message
    # without any workload in the input, selectors are not judged
    assert codes(run(pa("c", "bookinfo", "STRICT", {"app": "ratings"}))) == []


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE", "DISABLE"])
def test_no_findings_when_only_auto_mtls_decides(mode):
    assert codes(run(REVIEWS + pa("default", "bookinfo", mode))) == []


def test_subset_disabling_tls_towards_strict_pods():
    subsets = ("  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy: {tls: {mode: DISABLE}}\n"
               "  - name: v2\n    labels: {version: v2}\n    trafficPolicy: {tls: {mode: DISABLE}}\n")
    text = REVIEWS + pa("reviews-strict", "bookinfo", "STRICT", {"app": "reviews"}) + dr("reviews", "bookinfo", "reviews") + subsets
    found = [f for f in run(text) if f.code == "MS2010"]
    # only v1 has pods in the input (reviews-v1); v2 selects nothing, so it cannot conflict
    assert [f.resource.path for f in found] == ["spec/subsets[0]/trafficPolicy/tls/mode"]
    assert "Deployment bookinfo/reviews-v1" in found[0].message


def test_client_namespace_rule_wins_for_its_clients():
    """A DR in the client's namespace (exported only there) breaks those clients even if the service's DR is fine."""
    local = dr("reviews-from-frontend", "frontend", "reviews.bookinfo.svc.cluster.local", "DISABLE") + "  exportTo: ['.']\n"
    text = (REVIEWS + pa("reviews-strict", "bookinfo", "STRICT", {"app": "reviews"})
            + dr("reviews", "bookinfo", "reviews", "ISTIO_MUTUAL") + local)
    found = [f for f in run(text) if f.code == "MS2010"]
    assert [(f.resource.namespace, f.resource.name) for f in found] == [("frontend", "reviews-from-frontend")]


def test_port_level_setting_on_a_port_nobody_exposes():
    text = REVIEWS + pa("reviews-ports", "bookinfo", "STRICT", {"app": "reviews"}, {9080: "DISABLE", 80: "DISABLE"})
    found = [f for f in run(text) if f.code == "MS2014"]
    # 9080 is the Service's targetPort; 80 is nobody's (a Service port number would be a typical mistake)
    assert [f.resource.path for f in found] == ["spec/portLevelMtls/80"]
    assert "9080" in found[0].remediation and "9090" in found[0].remediation


def test_istio_mutual_towards_workloads_without_sidecar():
    legacy = """
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Service
metadata: {name: billing, namespace: legacy}
spec: {selector: {app: billing}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: billing, namespace: legacy}
spec:
  template:
    metadata: {labels: {app: billing}}
    spec: {containers: [{name: billing, image: billing}]}
"""
    text = legacy + dr("billing", "legacy", "billing", "ISTIO_MUTUAL")
    (f,) = [f for f in run(text) if f.code == "MS2015"]
    assert f.resource.name == "billing" and "Deployment legacy/billing" in f.message and f.related[0].kind == "Service"
    injected = legacy.replace("metadata: {name: legacy}", "metadata: {name: legacy, labels: {istio-injection: enabled}}")
    assert [f for f in run(injected + dr("billing", "legacy", "billing", "ISTIO_MUTUAL")) if f.code == "MS2015"] == []
    # a namespace the input does not describe is assumed injected
    assert "MS2015" not in codes(run(REVIEWS + dr("reviews", "bookinfo", "reviews", "ISTIO_MUTUAL")))
