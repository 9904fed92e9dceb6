"""Helpers for the corpus runners: where the shared corpora live, and comparing findings by equivalence."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from diagnose.findings import Finding

SHARED = Path(__file__).resolve().parents[3] / "shared"
CONFORMANCE = SHARED / "conformance"


def corpus(name: str) -> Path:
    """`../shared/conformance/<name>` relative to the repository."""
    return CONFORMANCE / name


def equivalent_tuples(findings: Iterable[Finding], codes: set[str]) -> Counter:
    """Multiset of (equivalent code, kind, namespace, name) for findings whose equivalents include `codes`."""
    out: Counter = Counter()
    for f in findings:
        for code in f.equivalents:
            if code in codes and f.resource is not None:
                out[(code, f.resource.kind, f.resource.namespace, f.resource.name)] += 1
    return out


def describe_diff(expected: Counter, actual: Counter) -> str:
    missing = expected - actual
    extra = actual - expected
    lines = [f"missing {k} x{n}" for k, n in sorted(missing.items(), key=str)]
    lines += [f"unexpected {k} x{n}" for k, n in sorted(extra.items(), key=str)]
    return "; ".join(lines)
