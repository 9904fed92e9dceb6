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
CODE_RE = re.compile(r"^MS[0-6]\d{3}$")
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
    signature: Signature | None = field(default=None, compare=False)


SCOPES = ("host", "subset", "port", "workload", "caller", "namespace")
REPORTERS = ("source", "destination")


@dataclass(frozen=True)
class Signature:
    """What traffic looks like when a config code's problem bites: the runtime evidence it predicts.

    `flags`, `codes` and `details` (regular expressions over response_code_details and
    transport failure reasons) each hold alternatives: evidence matches when it shows one
    of each given list. `edges` names which edges the object governs (`host`: the host,
    subset or port the finding's field names, and the hosts a VirtualService serves;
    `workload`: services whose pods the object selects; `caller`: the calling workloads
    it selects; `namespace`: everything in its namespace, or the mesh from the root
    namespace). Correlation joins runtime findings to config findings through these
    declarations only (`diagnose.correlate`).
    """

    flags: tuple[str, ...] = ()
    codes: tuple[int, ...] = ()
    details: tuple[str, ...] = ()
    reporter: str | None = None
    edges: tuple[str, ...] = ("host",)

    def matches(self, flags: Any, codes: Any, details: Any) -> bool:
        """True when runtime evidence (iterables of flags, response codes, detail texts) shows this signature."""
        fl = {x for f in flags for x in str(f).split(",")}
        if self.flags and not fl & set(self.flags):
            return False
        if self.codes and not {_int_or(c) for c in codes} & set(self.codes):
            return False
        if self.details:
            text = " ".join(str(d) for d in details)
            if not any(re.search(d, text) for d in self.details):
                return False
        return True

    @property
    def specificity(self) -> int:
        """How much of the evidence the signature pins down: a more specific prediction explains better."""
        return bool(self.flags) + bool(self.codes) + 2 * bool(self.details) + bool(self.reporter)


def _int_or(x: Any) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return -1


def parse_signature(raw: Any, where: str) -> Signature | None:
    """Validate one entry's `signature:` block; every error names the entry and the field."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: signature must be a mapping (flags, codes, details, reporter, edges)")
    unknown = {str(k) for k in raw} - {"flags", "codes", "details", "reporter", "edges"}
    if unknown:
        raise CatalogError(f"{where}: signature has unknown field(s) {', '.join(sorted(unknown))}")

    def strings(key: str) -> tuple[str, ...]:
        v = raw.get(key) or []
        v = [v] if isinstance(v, (str, int)) else v
        if not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v):
            raise CatalogError(f"{where}: signature.{key} must be a list")
        return tuple(str(x) for x in v)

    flags, details, edges = strings("flags"), strings("details"), strings("edges") or ("host",)
    try:
        codes = tuple(int(c) for c in strings("codes"))
    except ValueError:
        raise CatalogError(f"{where}: signature.codes must be HTTP status numbers") from None
    for d in details:
        try:
            re.compile(d)
        except re.error as exc:
            raise CatalogError(f"{where}: signature.details {d!r} is not a regular expression: {exc}") from None
    bad = [s for s in edges if s not in SCOPES]
    if bad:
        raise CatalogError(f"{where}: signature.edges {bad[0]!r} is not one of {', '.join(SCOPES)}")
    reporter = raw.get("reporter")
    if reporter is not None and reporter not in REPORTERS:
        raise CatalogError(f"{where}: signature.reporter must be source or destination")
    if not (flags or codes or details):
        raise CatalogError(f"{where}: signature needs at least one of flags, codes, details")
    return Signature(flags=flags, codes=codes, details=details, reporter=reporter, edges=edges)


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
            raise CatalogError(f"{where}: code {code!r} is not MS followed by 4 digits (MS0xxx-MS6xxx)")
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
                                file=file, args=args, signature=parse_signature(e.get("signature"), where)))
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
