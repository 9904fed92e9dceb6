"""Finding construction for runtime and SLO rules, through the shared catalog.

Rules call `make(code, ...)` so messages, severities and remediations live in
`diagnose/catalog/runtime.yaml` only. The shared loader `diagnose.catalog.make`
merges every catalog YAML; while it is not importable (it is another part's
work) this module reads `runtime.yaml` itself with the same semantics, so the
runtime rules never format text on their own.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from diagnose.findings import Finding, ResourceRef

RUNTIME_CATALOG = Path(__file__).resolve().parents[2] / "catalog" / "runtime.yaml"


@lru_cache(maxsize=1)
def runtime_entries() -> dict[str, dict[str, Any]]:
    """The runtime catalog entries by code (read once)."""
    data = yaml.safe_load(RUNTIME_CATALOG.read_text(encoding="utf-8"))
    entries = data if isinstance(data, list) else data.get("messages", data.get("codes", []))
    return {e["code"]: e for e in entries}


def _shared_make():
    try:
        from diagnose.catalog import make as shared  # type: ignore[attr-defined]
    except Exception:  # the shared loader has not landed (or failed to import)
        return None
    return shared


def make(code: str, resource: ResourceRef | None = None, related: list[ResourceRef] | None = None,
         **args: Any) -> Finding:
    """A Finding for `code` with its message filled from `args` (catalog template)."""
    shared = _shared_make()
    if shared is not None:
        try:
            return shared(code, resource=resource, related=list(related or []), **args)
        except KeyError:
            pass  # the shared catalog does not know our codes yet: fall back below
    e = runtime_entries()[code]
    return Finding(
        code=code,
        severity=e["severity"],
        category=e["category"],
        message=_format(e["template"], args),
        resource=resource,
        related=list(related or []),
        equivalents=list(e.get("equivalents") or []),
        remediation=e.get("remediation", ""),
    )


def _format(template: str, args: dict[str, Any]) -> str:
    try:
        return template.format(**args)
    except (KeyError, IndexError, ValueError):
        return template + " " + ", ".join(f"{k}={v}" for k, v in args.items())
