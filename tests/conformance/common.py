"""Helpers for the corpus runners: where the shared corpora live, and comparing findings by equivalence.

The shared corpora (istio-analyze, kiali-validations, kiali-graph) are not part of the
repository. They are found through ONE setting, the environment variable
MESHSCOPE_CONFORMANCE (default `<repo>/../shared/conformance`). Without them the
runners are skipped with one line saying where to put them, except under CI=true,
where their absence is a failure. No test outside tests/conformance may read them.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from diagnose.findings import Finding

ENV = "MESHSCOPE_CONFORMANCE"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO.parent / "shared" / "conformance"


def conformance_root() -> Path:
    """The folder holding the shared corpora: $MESHSCOPE_CONFORMANCE, else ../shared/conformance."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_ROOT


def corpus(name: str) -> Path:
    """`<conformance root>/<name>` (it may not exist: see `require_corpus`)."""
    return conformance_root() / name


def require_corpus(name: str) -> Path:
    """The corpus folder, or skip the calling test module (fail it under CI=true) when it is absent.

    Call at module level, before the module computes its cases from the folder.
    """
    path = corpus(name)
    if path.is_dir():
        return path
    message = (f"conformance corpus {name!r} not found at {path}: put the shared corpora there "
               f"or point {ENV} at the folder that holds {name}/")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)
    return path  # not reached


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
