"""istioctl analyze conformance: every case of ../shared/conformance/istio-analyze through `diagnose.analyze`.

Each case loads its inputs plus the harness's implicit ingress Pod/Service
(`_harness/default-ingress.yaml`) and the case's mesh config, runs the rules
equivalent to the upstream analyzer (all rules for analyzers we have no map
for) and compares the multiset of (IST code, kind, namespace, name), restricted
to the codes that analyzer can emit; the multi-cluster case loads each cluster on
its own and compares them. Prints `conformance istio-analyze: N/M cases pass`.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from diagnose import analyze
from diagnose.catalog import CATALOG
from diagnose.multicluster import inconsistent_services
from diagnose.rules import ALL_RULES, by_name
from mesh.config import MeshConfig, Snapshot, load_mesh_config, load_paths
from tests.conformance.common import describe_diff, equivalent_tuples, require_corpus

CORPUS = require_corpus("istio-analyze")
HARNESS = CORPUS / "_harness" / "default-ingress.yaml"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.json").exists())

#: Codes each upstream analyzer can emit (istio-analyzers.md); comparisons look at these only.
ANALYZER_CODES = {
    "virtualservice.ConflictingMeshGatewayHostsAnalyzer": {"IST0109"},
    "virtualservice.DestinationHostAnalyzer": {"IST0101", "IST0112", "IST0140"},
    "virtualservice.DestinationRuleAnalyzer": {"IST0101"},
    "virtualservice.GatewayAnalyzer": {"IST0101", "IST0132", "IST0165"},
    "virtualservice.JWTClaimRouteAnalyzer": {"IST0149"},
    "schema.ValidationAnalyzer.VirtualService": {"IST0106", "IST0133", "IST0130", "IST0131"},
    "destinationrule.CaCertificateAnalyzer": {"IST0128", "IST0129"},
    "destinationrule.SubsetSelectPodAnalyzer": {"IST0173", "IST0174"},
    "gateway.IngressGatewayPortAnalyzer": {"IST0101", "IST0162"},
    "gateway.SecretAnalyzer": {"IST0101", "IST0161"},
    "gateway.ConflictingGatewayAnalyzer": {"IST0101", "IST0145"},
    "gateway.CertificateAnalyzer": {"IST0138"},
    "serviceentry.Analyzer": {"IST0134"},
    "serviceentry.ConflictingServiceEntryProtocolAnalyzer": {"IST0177"},
    "sidecar.SelectorAnalyzer": {"IST0101", "IST0110", "IST0111", "IST0167"},
    "auth.AuthorizationPoliciesAnalyzer": {"IST0101", "IST0127"},
    "k8sgateway.SelectorAnalyzer": {"IST0166"},
    "conditions.ConditionAnalyzer": {"IST0171"},
    "service.PortNameAnalyzer": {"IST0118", "IST0150"},
    "deployment.MultiServiceAnalyzer": {"IST0116", "IST0137"},
    "services.MultiClusterServiceAnalyzer": {"IST0170"},
    "deprecation.DeprecationAnalyzer": {"IST0002"},
}

#: Our rules equivalent to an upstream analyzer. Analyzers not listed run every rule (the comparison is
#: still restricted to that analyzer's codes), which is how the security rules' cases run.
ANALYZER_RULES = {
    "virtualservice.ConflictingMeshGatewayHostsAnalyzer": ["virtualservice.ConflictingMeshGatewayHosts"],
    "virtualservice.DestinationHostAnalyzer": ["virtualservice.DestinationHosts", "virtualservice.IngressSubsetRouting"],
    "virtualservice.DestinationRuleAnalyzer": ["virtualservice.DestinationRules"],
    "virtualservice.GatewayAnalyzer": ["virtualservice.Gateways"],
    "virtualservice.JWTClaimRouteAnalyzer": ["virtualservice.JwtClaimRoutes"],
    "schema.ValidationAnalyzer.VirtualService": ["virtualservice.UnreachableRules", "schema.VirtualService"],
    "destinationrule.SubsetSelectPodAnalyzer": ["destinationrule.SubsetSelectsPods"],
    "gateway.IngressGatewayPortAnalyzer": ["gateway.Selector", "gateway.IngressPorts"],
    "gateway.ConflictingGatewayAnalyzer": ["gateway.Conflicts"],
    "serviceentry.Analyzer": ["serviceentry.Addresses"],
    "serviceentry.ConflictingServiceEntryProtocolAnalyzer": ["serviceentry.Conflicts"],
    "sidecar.SelectorAnalyzer": ["sidecar.Selectors"],
    "service.PortNameAnalyzer": ["service.PortNames"],
    "deployment.MultiServiceAnalyzer": ["service.MultipleServices"],
    "deprecation.DeprecationAnalyzer": ["common.DeprecatedFields"],
    "conditions.ConditionAnalyzer": ["common.NegativeConditions"],
    "k8sgateway.SelectorAnalyzer": ["common.IneffectiveGatewaySelectors"],
}

#: Cases left out, with the reason (printed in the summary and counted as not passing).
OUT_OF_SCOPE: dict[str, str] = {}

RESULTS: dict[str, bool] = {}


class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        if not RESULTS:
            return
        passed = sum(RESULTS.values())
        terminalreporter.write_line(f"conformance istio-analyze: {passed}/{len(CASES)} cases pass")
        for case, reason in sorted(OUT_OF_SCOPE.items()):
            terminalreporter.write_line(f"  out of scope: {case}: {reason}")
        for case in sorted(k for k, ok in RESULTS.items() if not ok and k not in OUT_OF_SCOPE):
            terminalreporter.write_line(f"  not passing: {case}")


@pytest.fixture(scope="module", autouse=True)
def _register_summary(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("istio-analyze-summary"):
        pm.register(_Summary(), "istio-analyze-summary")
    yield


def _rules_for(analyzer: str) -> list:
    names = ANALYZER_RULES.get(analyzer)
    if names is None:
        return list(ALL_RULES)
    known = {r.metadata.name for r in ALL_RULES}
    return by_name(*[n for n in names if n in known])


def _emittable(codes: set[str]) -> set[str]:
    """IST codes some registered rule can report (through its catalog codes' equivalents)."""
    out: set[str] = set()
    for rule in ALL_RULES:
        for code in rule.metadata.codes:
            out.update(CATALOG[code].equivalents)
    return out & codes


def run_case(case: str) -> tuple[Counter, Counter]:
    folder = CORPUS / case
    exp = json.loads((folder / "expected.json").read_text())
    codes = ANALYZER_CODES[exp["analyzer"]]
    mesh_config = load_mesh_config(folder / exp["meshconfig"]) if exp.get("meshconfig") else MeshConfig()
    if exp.get("clusters"):  # each cluster loaded on its own, then compared (the multi-cluster table)
        snaps = {name: Snapshot(load_paths([folder / f for f in files] + [HARNESS], default_namespace=None).objects, mesh_config)
                 for name, files in exp["clusters"].items()}
        findings = inconsistent_services(snaps)
    else:
        loaded = load_paths([folder / name for name in exp["inputs"]] + [HARNESS], default_namespace=None)
        findings = analyze(Snapshot(loaded.objects, mesh_config), rules=_rules_for(exp["analyzer"]))
    expected = Counter((e["code"], e["kind"], e["namespace"], e["name"]) for e in exp["expected"])
    return expected, equivalent_tuples(findings, codes)


@pytest.mark.parametrize("case", CASES)
def test_case(case: str):
    exp = json.loads((CORPUS / case / "expected.json").read_text())
    if case in OUT_OF_SCOPE:
        RESULTS[case] = False
        pytest.xfail(OUT_OF_SCOPE[case])
    needed = {e["code"] for e in exp["expected"]} or ANALYZER_CODES[exp["analyzer"]]
    if not exp.get("clusters") and not _emittable(needed):
        RESULTS[case] = False
        pytest.xfail(f"no registered rule reports {', '.join(sorted(needed))} yet ({exp['analyzer']})")
    expected, actual = run_case(case)
    RESULTS[case] = expected == actual
    assert expected == actual, describe_diff(expected, actual)


def test_corpus_is_present():
    assert len(CASES) == 69, f"expected the 69-case istio-analyze corpus at {CORPUS}"
