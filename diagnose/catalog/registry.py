"""The finding catalog: every `*.yaml` in this folder merged into one table of codes.

Each part keeps its own file (config.yaml, security.yaml, runtime.yaml) so
nobody edits another's codes; the merge checks that codes are well-formed,
unique across files and complete, so a clash fails at import, not in a report.
Rules never format text: they call `make(code, ...)` with template arguments.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from diagnose.findings import SEVERITIES, Finding, ResourceRef

CATALOG_DIR = Path(__file__).resolve().parent
CODE_RE = re.compile(r"^MS[0-4]\d{3}$")
EQUIVALENT_RE = re.compile(r"^(IST|KIA)\d{4}$")
NAME_RE = re.compile(r"^[A-Z][A-Za-z0-9]+$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CATEGORIES = ("config", "route", "mtls", "security", "runtime", "slo")


class CatalogError(ValueError):
    """A catalog file that breaks the rules above (names the file and the entry)."""


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    name: str
    severity: str
    category: str
    template: str
    remediation: str = ""
    equivalents: tuple[str, ...] = ()
    description: str = ""
    file: str = ""
    args: tuple[str, ...] = field(default=(), compare=False)


def _entries_of(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("messages", "codes", "entries"):
            if isinstance(data.get(key), list):
                return data[key]
    raise CatalogError("a catalog file must be a list of entries (or a mapping with `messages: [...]`)")


def parse_catalog(data: Any, file: str) -> list[CatalogEntry]:
    """Validate one catalog file's entries."""
    out: list[CatalogEntry] = []
    for i, e in enumerate(_entries_of(data)):
        where = f"{file} entry {i}"
        if not isinstance(e, dict):
            raise CatalogError(f"{where}: must be a mapping")
        code = e.get("code")
        if not isinstance(code, str) or not CODE_RE.match(code):
            raise CatalogError(f"{where}: code {code!r} is not MS followed by 4 digits (MS0xxx-MS4xxx)")
        where = f"{file} {code}"
        for key in ("name", "severity", "category", "template"):
            if not isinstance(e.get(key), str) or not e[key]:
                raise CatalogError(f"{where}: `{key}` is required")
        if not NAME_RE.match(e["name"]):
            raise CatalogError(f"{where}: name {e['name']!r} must be CamelCase")
        if e["severity"] not in SEVERITIES:
            raise CatalogError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        if e["category"] not in CATEGORIES:
            raise CatalogError(f"{where}: category must be one of {', '.join(CATEGORIES)}")
        eqs = e.get("equivalents") or []
        if not isinstance(eqs, list) or not all(isinstance(x, str) and EQUIVALENT_RE.match(x) for x in eqs):
            raise CatalogError(f"{where}: equivalents must be a list of IST0000/KIA0000 codes")
        try:
            args = tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(e["template"]) if f))
        except ValueError as exc:
            raise CatalogError(f"{where}: template is not a valid format string: {exc}") from exc
        out.append(CatalogEntry(code=code, name=e["name"], severity=e["severity"], category=e["category"],
                                template=e["template"], remediation=str(e.get("remediation") or ""),
                                equivalents=tuple(eqs), description=str(e.get("description") or ""),
                                file=file, args=args))
    return out


def load_catalog(folder: Path = CATALOG_DIR) -> dict[str, CatalogEntry]:
    """Merge every catalog file of a folder; codes and names must be unique across all of them."""
    catalog: dict[str, CatalogEntry] = {}
    names: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path.name}: not valid YAML: {exc}") from exc
        for entry in parse_catalog(data, path.name):
            if entry.code in catalog:
                raise CatalogError(f"{path.name}: code {entry.code} already defined in {catalog[entry.code].file}")
            if entry.name in names:
                raise CatalogError(f"{path.name}: name {entry.name} already used by {names[entry.name]}")
            catalog[entry.code] = entry
            names[entry.name] = entry.code
    return dict(sorted(catalog.items()))


CATALOG: dict[str, CatalogEntry] = load_catalog()


class _Args(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def make(code: str, resource: ResourceRef | None = None, related: list[ResourceRef] | None = None, *,
         severity: str | None = None, evidence: dict[str, Any] | None = None, impact: dict[str, Any] | None = None,
         **args: Any) -> Finding:
    """A Finding for a catalog code, its message filled from `args` (missing arguments are a bug: KeyError)."""
    entry = CATALOG.get(code)
    if entry is None:
        raise KeyError(f"unknown finding code {code}")
    try:
        message = entry.template.format_map(_Args(args))
    except KeyError as exc:
        raise KeyError(f"{code} template needs argument {exc.args[0]!r}") from None
    return Finding(code=code, severity=severity or entry.severity, category=entry.category, message=message,
                   resource=resource, related=list(related or []), equivalents=list(entry.equivalents),
                   remediation=entry.remediation, evidence=dict(evidence or {}), impact=dict(impact or {}))
