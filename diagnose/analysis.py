"""`analyze(snapshot)`: run the config rules over a snapshot and return their findings.

The runner skips a rule when none of the kinds it declares is present, turns
a rule that raises into one MS0099 finding instead of a crash, drops exact
duplicates, applies suppressions and sorts by file and line.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from diagnose.catalog import make
from diagnose.context import Context, resource_ref
from diagnose.findings import Finding
from diagnose.inputs import kind_findings, problem_findings
from diagnose.rule import Rule
from diagnose.suppression import apply_suppressions
from diagnose.suppression_file import SuppressionEntry, apply_entries
from mesh.config import LoadProblem, Snapshot
from mesh.config.snapshot import MESH_CONFIG, WORKLOAD


def is_relevant(rule: Rule, snapshot: Snapshot) -> bool:
    """A rule runs when some kind it reads is present (a rule reading only MeshConfig always runs)."""
    kinds = [k for k in rule.metadata.inputs if k != MESH_CONFIG]
    if not kinds:
        return True
    return any(bool(snapshot.workloads()) if k == WORKLOAD else bool(snapshot.of_kind(k)) for k in kinds)


def run_rule(rule: Rule, snapshot: Snapshot) -> Context:
    """Run one rule in its own context (exposed for the guard tests, which inspect `ctx.reads`)."""
    ctx = Context(snapshot, rule.metadata.name)
    try:
        rule.analyze(ctx)
    except Exception as exc:  # a rule bug must not hide every other finding
        where = ctx.current or (snapshot.objects[0] if snapshot.objects else None)
        if where is not None:
            ctx.findings.append(make("MS0099", resource_ref(where), rule=rule.metadata.name,
                                     error=f"{type(exc).__name__}: {exc}"))
    return ctx


def _sort_key(f: Finding) -> tuple:
    src = f.resource.source if f.resource and f.resource.source else ""
    file, _, line = src.rpartition(":")
    if not line.isdigit():
        file, line = src, "0"
    return (file, int(line), f.code, f.message)


def analyze(snapshot: Snapshot, ignore: Iterable[str] = frozenset(), rules: Sequence[Rule] | None = None,
            problems: Iterable[LoadProblem] = (), suppressions: Iterable[SuppressionEntry] = ()) -> list[Finding]:
    """Findings for a snapshot (plus its load problems), after suppressions, sorted by source.

    `ignore` drops codes everywhere; `suppressions` are entries of a suppressions file
    (`diagnose.suppression_file.load_suppressions`); object annotations always apply.
    """
    if rules is None:
        from diagnose.rules import ALL_RULES
        rules = ALL_RULES
    findings = problem_findings(problems) + kind_findings(snapshot)
    for rule in rules:
        if is_relevant(rule, snapshot):
            findings.extend(run_rule(rule, snapshot).findings)
    unique: dict[tuple, Finding] = {}
    for f in findings:
        r = f.resource
        key = (f.code, r.label() if r else "", r.path if r else None, f.message)
        unique.setdefault(key, f)
    kept = apply_entries(apply_suppressions(list(unique.values()), snapshot, ignore), suppressions)
    return sorted(kept, key=_sort_key)
