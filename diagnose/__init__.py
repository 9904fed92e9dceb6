"""Findings with evidence: config rules, runtime rules, SLO burn rates, alerts and reports.

Re-exports are resolved lazily, so importing a light module such as
`diagnose.findings` does not load the catalog and the rules.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Context": "diagnose.context",
    "Finding": "diagnose.findings",
    "Metadata": "diagnose.rule",
    "ResourceRef": "diagnose.findings",
    "Rule": "diagnose.rule",
    "analyze": "diagnose.analysis",
    "resource_ref": "diagnose.context",
    "run_rule": "diagnose.analysis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'diagnose' has no attribute {name!r}")
