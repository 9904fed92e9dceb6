"""AuthorizationPolicy rules: identity matches without mTLS, dangling selectors, namespaces, methods, principals."""
from __future__ import annotations

import textwrap

from diagnose import analyze
from diagnose.findings import Finding
from mesh.config import MeshConfig, Snapshot, load_text


def run(text: str, auto_mtls: bool = True, **mesh) -> list[Finding]:
    loaded = load_text(textwrap.dedent(text), "authz.yaml")
    assert not loaded.problems, loaded.problems
    findings = analyze(Snapshot(loaded.objects, MeshConfig(enable_auto_mtls=auto_mtls, **mesh)))
    assert not [f for f in findings if f.code == "MS0099"], "a rule crashed"
    return findings


def of(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def ap(name: str, ns: str, body: str) -> str:
    return (f"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n{textwrap.indent(textwrap.dedent(body), '  ')}")


PRINCIPAL_RULE = """
selector: {matchLabels: {app: ratings}}
rules:
- from:
  - source: {principals: ["cluster.local/ns/bookinfo/sa/reviews"]}
  to:
  - operation: {methods: ["GET"]}
"""
RATINGS = """
---
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec: {selector: {app: ratings}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-1, namespace: bookinfo, labels: {app: ratings}}
spec: {serviceAccountName: ratings, containers: [{name: ratings, image: ratings:1}]}
"""


def test_identity_rule_on_workload_with_mtls_disabled():
    disable = ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: no-mtls, namespace: bookinfo}\n"
               "spec: {selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}\n")
    found = of(run(RATINGS + ap("allow-reviews", "bookinfo", PRINCIPAL_RULE) + disable), "MS2030")
    assert len(found) == 1
    f = found[0]
    assert f.equivalents == ["KIA0105"] and f.severity == "error" and f.category == "mtls"
    assert f.resource.path == "spec/rules[0]/from[0]/source/principals"
    assert "Pod bookinfo/ratings-1" in f.message and "bookinfo/no-mtls disables mTLS" in f.message
    assert [(r.kind, r.name) for r in f.related] == [("PeerAuthentication", "no-mtls")]
    # with auto-mTLS and no DISABLE anywhere, identities are available
    assert of(run(RATINGS + ap("allow-reviews", "bookinfo", PRINCIPAL_RULE)), "MS2030") == []


def test_identity_rule_without_auto_mtls_needs_policy_and_destination_rule():
    strict = ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: bookinfo}\n"
              "spec: {mtls: {mode: STRICT}}\n")
    mutual = ("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ratings, namespace: bookinfo}\n"
              "spec: {host: ratings, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}\n")
    base = RATINGS + ap("allow-reviews", "bookinfo", PRINCIPAL_RULE)
    assert "no DestinationRule" in of(run(base + strict, auto_mtls=False), "MS2030")[0].message
    assert "no PeerAuthentication" in of(run(base + mutual, auto_mtls=False), "MS2030")[0].message
    assert of(run(base + strict + mutual, auto_mtls=False), "MS2030") == []


def test_policies_without_identity_fields_never_need_mtls():
    body = """
    selector: {matchLabels: {app: ratings}}
    rules:
    - from: [{source: {requestPrincipals: ["*"]}}]
      when: [{key: source.ip, values: ["10.0.0.1"]}]
    """
    assert of(run(RATINGS + ap("jwt", "bookinfo", body), auto_mtls=False), "MS2030") == []
    body = """
    rules:
    - when: [{key: source.namespace, values: ["front"]}, {key: connection.sni, values: ["a.example.com"]}]
    """
    paths = sorted(f.resource.path for f in of(run(RATINGS + ap("ns", "bookinfo", body), auto_mtls=False), "MS2030"))
    assert paths == ["spec/rules[0]/when[0]", "spec/rules[0]/when[1]"]


def test_policy_selecting_no_in_mesh_workload():
    out_of_mesh = ("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n---\napiVersion: v1\nkind: Pod\n"
                   "metadata: {name: old, namespace: legacy, labels: {app: old}}\nspec: {containers: [{name: old, image: old}]}\n")
    text = (RATINGS + out_of_mesh + ap("typo", "bookinfo", "selector: {matchLabels: {app: ratngs}}\n")
            + ap("good", "bookinfo", "selector: {matchLabels: {app: ratings}}\n")
            + ap("legacy-wide", "legacy", "action: DENY\nrules: [{}]\n")
            + ap("mesh-wide", "istio-system", "{}\n"))
    found = of(run(text), "MS2031")
    assert sorted(f.resource.name for f in found) == ["legacy-wide", "typo"]
    typo = next(f for f in found if f.resource.name == "typo")
    assert typo.equivalents == ["IST0127", "KIA0004"] and typo.resource.path == "spec/selector" and "app=ratngs" in typo.message
    # a folder with no workloads at all cannot judge selectors
    assert of(run(ap("typo", "bookinfo", "selector: {matchLabels: {app: ratngs}}\n")), "MS2031") == []


def test_source_namespaces_must_exist_including_wildcards():
    body = """
    rules:
    - from:
      - source: {namespaces: ["bookinfo", "book*", "*info", "nope", "nope-*"]}
      - source: {notNamespaces: ["*"]}
    """
    found = of(run(RATINGS + ap("ns", "bookinfo", body)), "MS2032")
    assert [f.resource.path for f in found] == ["spec/rules[0]/from[0]/source/namespaces[3]",
                                                "spec/rules[0]/from[0]/source/namespaces[4]"]
    assert found[0].equivalents == ["IST0101", "KIA0101"] and '"nope"' in found[0].message
    # without Namespace objects in the input the namespace list is unknown: nothing is judged
    assert of(run(ap("ns", "bookinfo", body)), "MS2032") == []


def test_methods_must_be_http_methods():
    body = """
    rules:
    - to:
      - operation: {methods: ["GET", "P*", "*", "/grpc.Health/Check", "get"]}
    """
    found = of(run(ap("m", "bookinfo", body)), "MS2033")
    assert [f.resource.path for f in found] == ["spec/rules[0]/to[0]/operation/methods[3]",
                                                "spec/rules[0]/to[0]/operation/methods[4]"]
    assert "paths" in found[0].remediation


def test_principals_trust_domain_and_service_accounts():
    sa = "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: reviews, namespace: bookinfo}\n"
    body = """
    rules:
    - from:
      - source:
          principals: ["cluster.local/ns/bookinfo/sa/reviews", "cluster.local/ns/bookinfo/sa/reveiws",
                       "other.example/ns/bookinfo/sa/reviews", "cluster.local/ns/unknown/sa/x", "*"]
    """
    found = run(sa + ap("p", "bookinfo", body))
    assert [(f.code, f.resource.path) for f in found if f.code in ("MS2034", "MS2035")] == [
        ("MS2034", "spec/rules[0]/from[0]/source/principals[1]"),
        ("MS2035", "spec/rules[0]/from[0]/source/principals[2]")]
    # an alias makes the foreign domain known
    aliased = run(sa + ap("p", "bookinfo", body), trust_domain_aliases=["other.example"])
    assert [f.code for f in aliased if f.code == "MS2035"] == []


def test_namespace_wide_policy_is_judged_per_workload():
    disable = ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: no-mtls, namespace: bookinfo}\n"
               "spec: {selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}\n")
    body = "rules:\n- from: [{source: {namespaces: [bookinfo]}}]\n"
    found = of(run(RATINGS + ap("from-bookinfo", "bookinfo", body) + disable), "MS2030")
    assert len(found) == 1 and "Pod bookinfo/ratings-1" in found[0].message


def test_operation_hosts_must_be_served():
    vs = ("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop, namespace: bookinfo}\n"
          "spec: {hosts: [shop.example.com], gateways: [gw], http: [{route: [{destination: {host: ratings}}]}]}\n")
    body = """
    rules:
    - to:
      - operation: {hosts: ["ratings", "ratings.bookinfo.svc.cluster.local:9080", "shop.example.com", "*.example.com",
                            "ratngs.bookinfo.svc.cluster.local", "nothing.example.org"]}
    """
    found = run(RATINGS + vs + ap("hosts", "bookinfo", body))
    got = sorted((f.resource.path, f.severity) for f in found if f.code == "MS2036")
    assert got == [("spec/rules[0]/to[0]/operation/hosts[4]", "warning"), ("spec/rules[0]/to[0]/operation/hosts[5]", "warning")]
    strict = run(RATINGS + vs + ap("hosts", "bookinfo", body), outbound_traffic_policy="REGISTRY_ONLY")
    assert {f.severity for f in strict if f.code == "MS2036"} == {"error"}
    assert [f for f in run(ap("hosts", "bookinfo", body)) if f.code == "MS2036"] == []


def test_jwt_identity_needs_a_request_authentication():
    body = """
    selector: {matchLabels: {app: ratings}}
    rules:
    - from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]
      when: [{key: "request.auth.claims[groups]", values: [admin]}]
    """
    found = [f for f in run(RATINGS + ap("jwt", "bookinfo", body)) if f.code == "MS2037"]
    assert sorted(f.resource.path for f in found) == ["spec/rules[0]/from[0]/source/requestPrincipals",
                                                      "spec/rules[0]/when[0]"]
    assert "Pod bookinfo/ratings-1" in found[0].message
    for scope in ("metadata: {name: jwt, namespace: bookinfo}\nspec: {selector: {matchLabels: {app: ratings}}}",
                  "metadata: {name: jwt, namespace: bookinfo}\nspec: {}",
                  "metadata: {name: jwt, namespace: istio-system}\nspec: {}"):
        ra = f"---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n{scope}\n"
        assert [f for f in run(RATINGS + ap("jwt", "bookinfo", body) + ra) if f.code == "MS2037"] == [], scope
    other = ("---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
             "metadata: {name: jwt, namespace: bookinfo}\nspec: {selector: {matchLabels: {app: reviews}}}\n")
    assert len([f for f in run(RATINGS + ap("jwt", "bookinfo", body) + other) if f.code == "MS2037"]) == 2


def test_policies_at_the_assumed_ingress_gateway_select_an_in_mesh_pod():
    """Edge policies (kubeflow's oauth2-proxy: ALLOW/DENY plus RequestAuthentication on the gateway) select the
    install's ingress pods by `app: istio-ingressgateway` or `istio: ingressgateway`, next to an istio-system
    Namespace with injection disabled: files-only, the assumed gateway pod is judged as the injected pod an
    install runs (both chart labels, a proxy with an image), while a selector matching nothing still is found."""
    from mesh.config.defaults import assumed_ingress
    edge = """
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: istio-system, labels: {istio-injection: disabled}}
    ---
    apiVersion: security.istio.io/v1
    kind: RequestAuthentication
    metadata: {name: dex-jwt, namespace: istio-system}
    spec:
      selector: {matchLabels: {app: istio-ingressgateway}}
      jwtRules: [{issuer: "http://dex.auth.svc.cluster.local:5556/dex"}]
    """
    text = (RATINGS + edge
            + ap("by-app", "istio-system", "selector: {matchLabels: {app: istio-ingressgateway}}\n"
                 "action: DENY\nrules: [{from: [{source: {notRequestPrincipals: ['*']}}]}]\n")
            + ap("by-istio", "istio-system", "selector: {matchLabels: {istio: ingressgateway}}\nrules: [{}]\n")
            + ap("typo", "istio-system", "selector: {matchLabels: {app: istio-ingresgateway}}\nrules: [{}]\n"))
    loaded = load_text(textwrap.dedent(text), "edge.yaml")
    objects = loaded.objects + assumed_ingress(MeshConfig(), loaded.objects)
    findings = analyze(Snapshot(objects, MeshConfig()))
    assert [f.resource.name for f in of(findings, "MS2031")] == ["typo"]
    assert of(findings, "MS2022") == []
