"""The causing change ranks first for every built-in scenario, alone and among unrelated changes.

Each scenario is recorded into a real journal the way the bundled mesh records
it (the baseline, then the scenario applied on top of it, then its behaviours),
and the finding is built from what the scenario's hurt edge is: the destination
service and its caller, with no correlation to config (the harder case; the
live loop's correlation would add the blamed object as the finding's resource).
"""
from __future__ import annotations

import pytest

from diagnose.changes import annotate, rank, rollback_yaml
from mesh.config import load_text
from mesh.controlplane.store import with_applied
from mesh.demo.config import demo_objects
from mesh.journal import Journal, content_of
from mesh.scenarios import SCENARIOS

T0 = 1_000_000.0

UNRELATED = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: inventory, namespace: shop}
spec: {host: inventory, trafficPolicy: {tls: {mode: DISABLE}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: inventory-local, namespace: bookinfo}
spec:
  hosts: [inventory.shop.svc.cluster.local]
  http: [{route: [{destination: {host: inventory.shop.svc.cluster.local}}], timeout: 1s}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: billing-allow, namespace: bookinfo}
spec: {selector: {matchLabels: {app: billing}}, action: ALLOW, rules: [{}]}
"""


def _record(journal: Journal, objects, at: float, who: str) -> None:
    journal.sync([(o.kind, o.namespace, o.name, content_of(o.spec, o.labels, o.annotations), o.api_version)
                  for o in objects], who=who, at=at)


def _journal(tmp_path, sc, noise: bool) -> tuple[Journal, float]:
    j = Journal(tmp_path / "journal.sqlite")
    base = demo_objects()
    _record(j, base, T0, "meshscope mesh start")
    extra = load_text(UNRELATED, "unrelated.yaml", exclude_namespaces=frozenset()).objects
    t = T0 + 60
    current = list(base)
    if noise:  # unrelated changes before the scenario: other namespace and same namespace
        current = with_applied(current, extra[:1])
        _record(j, current, t, "kubectl-client-side-apply (Update)")
        t += 3
    current = with_applied(current, sc.objects)
    _record(j, current, t, f"meshscope mesh scenario {sc.name}")
    for workload, behavior in sc.behaviors.items():
        j.observe("WorkloadBehavior", "bookinfo", workload,
                  content_of(behavior, {"app": workload.rsplit("-", 1)[0], "version": workload.rsplit("-", 1)[1]}),
                  who=f"meshscope mesh scenario {sc.name}", at=t)
    cause_at = t
    if noise:  # and after it, closer to the onset
        for i, obj in enumerate(extra[1:], start=1):
            current = with_applied(current, [obj])
            _record(j, current, t + 3 * i, "helm (Apply)")
    return j, cause_at


def _finding(sc, onset: float) -> dict:
    source, dest = sc.edge
    name, ns = dest.split(".")[:2]
    return {"code": sc.expected_codes[0], "category": "runtime", "first_seen": onset,
            "resource": {"kind": "Service", "name": name, "namespace": ns},
            "related": [], "evidence": {"edge_key": dest, "edges": [{"source": source}]}}


def _expected(sc) -> set[str]:
    """The blamed object when the scenario changes it; else the bad deploy (its `blame` then says where the fix goes).

    A scenario that blames nothing (a bad build rolled out by a config change, e.g. a canary) caused the fault with
    every change it made together: any of them is the cause."""
    changed = {f"{o.kind} {o.namespace}/{o.name}" for o in sc.objects}
    deploys = {f"WorkloadBehavior bookinfo/{w}" for w in sc.behaviors}
    if sc.blame and sc.blame in changed:
        return {sc.blame}
    return deploys if sc.blame else changed | deploys


@pytest.mark.parametrize("noise", [False, True], ids=["alone", "among-unrelated"])
@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_causing_change_ranks_first(tmp_path, sc, noise):
    j, cause_at = _journal(tmp_path, sc, noise)
    changes = j.query(since=T0 + 1)
    assert changes, "the scenario recorded no change"
    onset = cause_at + 40
    ranked = rank(_finding(sc, onset), changes)
    assert ranked[0]["ref"] in _expected(sc), ranked
    assert ranked[0]["likely_cause"]
    assert ranked[0]["sentence"].startswith("started 40 s after " + ranked[0]["ref"])
    if noise:
        assert {r["relation"] for r in ranked[1:]} <= {"same namespace", "elsewhere", "same host or workload"}


def test_the_blamed_object_outranks_scope_and_recency(tmp_path):
    sc = next(s for s in SCENARIOS if s.name == "mtls-mismatch")
    j, cause_at = _journal(tmp_path, sc, noise=True)
    finding = _finding(sc, cause_at + 10)
    finding["resource"] = {"kind": "PeerAuthentication", "namespace": "bookinfo", "name": "reviews-strict"}
    assert rank(finding, j.query())[0]["ref"] == "PeerAuthentication bookinfo/reviews-strict"


def test_changes_after_onset_or_too_old_are_not_causes(tmp_path):
    sc = next(s for s in SCENARIOS if s.name == "fault-abort")
    j, cause_at = _journal(tmp_path, sc, noise=False)
    assert rank(_finding(sc, cause_at - 30), j.query(since=T0 + 1)) == []  # the finding started before the change
    assert rank(_finding(sc, cause_at + 3600), j.query()) == []  # an hour later: not "the minutes before"


def test_annotate_adds_sentence_and_rollback_that_restores_the_old_spec(tmp_path):
    sc = next(s for s in SCENARIOS if s.name == "mtls-mismatch")
    j, cause_at = _journal(tmp_path, sc, noise=True)
    f = _finding(sc, cause_at + 40)
    annotate([f], j.query())
    assert "DestinationRule bookinfo/reviews was changed" in f["change_sentence"]
    assert "spec.trafficPolicy.tls.mode: (none) -> DISABLE" in f["change_sentence"]  # the baseline leaves it to auto mTLS
    assert "by meshscope mesh scenario mtls-mismatch" in f["change_sentence"]
    import yaml
    doc = yaml.safe_load(f["rollback_yaml"])
    assert doc["kind"] == "DestinationRule" and doc["metadata"] == {"name": "reviews", "namespace": "bookinfo"}
    baseline = next(o for o in demo_objects() if o.kind == "DestinationRule" and o.name == "reviews")
    assert doc["spec"] == baseline.spec
    assert doc["apiVersion"] == baseline.api_version


def test_rollback_of_a_create_is_a_delete_and_behaviour_has_none():
    created = {"op": "create", "kind": "AuthorizationPolicy", "namespace": "bookinfo", "name": "deny",
               "api_version": "security.istio.io/v1", "before": None}
    assert "delete" in rollback_yaml(created).splitlines()[0]
    assert rollback_yaml({"op": "update", "kind": "WorkloadBehavior", "name": "x", "before": {}}) is None


def test_live_findings_carry_the_change_into_evidence_remediation_and_alerts(tmp_path):
    from diagnose.alerts.model import alert_from_finding
    from diagnose.changes import ROLLBACK_MARK, annotate_findings
    from diagnose.findings import Finding, ResourceRef
    from diagnose.reports.view import scalar_evidence, table_evidence

    sc = next(s for s in SCENARIOS if s.name == "fault-abort")
    j, cause_at = _journal(tmp_path, sc, noise=True)
    source, dest = sc.edge
    name, ns = dest.split(".")[:2]
    f = Finding(code=sc.expected_codes[0], severity="error", category="runtime", message="m",
                resource=ResourceRef("Service", name, ns), remediation="Fix the route.",
                evidence={"edge_key": dest, "edges": [{"source": source}]}, first_seen=cause_at + 12)
    config = Finding(code="MS2001", severity="warning", category="config", message="c", first_seen=cause_at + 12)
    assert annotate_findings([f, config], j) == 1
    assert f.evidence["changed_before"].startswith(f"started 12 s after {sc.blame} was ")
    assert f.evidence["config_changes"][0]["change"] == sc.blame
    assert f.remediation.startswith("Fix the route.") and ROLLBACK_MARK in f.remediation
    annotate_findings([f], j)  # every cycle: the rollback is offered once
    assert f.remediation.count(ROLLBACK_MARK) == 1
    assert "changed_before" not in config.evidence
    alert = alert_from_finding(f, cause_at + 20)
    assert alert.annotations["changed_before"] == f.evidence["changed_before"]
    assert ("changed_before", f.evidence["changed_before"]) in scalar_evidence(f.evidence)  # reports list it
    assert any(name == "config_changes" for name, _, _ in table_evidence(f.evidence))


def test_a_reopened_finding_is_judged_against_the_changes_before_its_return(tmp_path):
    """A finding that resolved and came back (same fingerprint) keeps its first_seen, but its new episode's
    onset is the reopening: the change just before the return is its cause, not whatever preceded the first one."""
    from diagnose.changes import annotate_findings
    from diagnose.findings import Finding, ResourceRef
    from diagnose.live.tracker import FindingTracker

    sc = next(s for s in SCENARIOS if s.name == "fault-abort")
    j, cause_at = _journal(tmp_path, sc, noise=True)
    source, dest = sc.edge
    name, ns = dest.split(".")[:2]

    def seen() -> Finding:
        return Finding(code=sc.expected_codes[0], severity="error", category="runtime", message="m",
                       resource=ResourceRef("Service", name, ns), evidence={"edge_key": dest, "edges": [{"source": source}]})

    tracker = FindingTracker(resolve_after=2)
    first = cause_at - 2000  # an earlier episode, long before the scenario's change
    (f,) = tracker.update([seen()], first)
    assert f.opened_at == f.first_seen == first
    tracker.update([seen()], first + 1)
    for t in (first + 2, first + 3):
        tracker.update([], t)
    assert tracker.findings({"status": "resolved"})
    (back,) = tracker.update([seen()], cause_at + 12)  # the fault returns 12 s after the change
    assert back.first_seen == first and back.opened_at == cause_at + 12
    (later,) = tracker.update([seen()], cause_at + 15)
    assert later.opened_at == cause_at + 12  # carried while the episode lasts
    assert annotate_findings([later], j) == 1
    assert later.evidence["changed_before"].startswith(f"started 12 s after {sc.blame} was ")
    assert rank(later.to_dict(), j.query())[0]["ref"] == sc.blame
    later.opened_at = None  # judged by first_seen alone, nothing in the 15 minutes before it
    assert rank(later.to_dict(), j.query()) == []
