"""Upstream YAML kept in the repository (sources recorded beside each folder).

`guard_sources()` is what the rule guards run every rule over, so they never depend on
the shared conformance corpora (which a clone of the repository alone does not have).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
ISTIO_TESTDATA = HERE / "istio-testdata"
REALWORLD_FILES = HERE / "realworld" / "files"


def guard_sources() -> list[list[Path]]:
    """Groups of files loaded together: Istio's analyzer test data, and the real-world corpus."""
    def yaml_files(root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))

    return [yaml_files(ISTIO_TESTDATA), yaml_files(REALWORLD_FILES)]
