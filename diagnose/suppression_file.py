"""Suppressions kept in a file, next to the config rather than inside it, each with a reason and an expiry.

```yaml
suppressions:
- codes: [MS1501, IST0118]       # codes or IST/KIA equivalents; omit (or "*") for every code
  resource: "Service legacy/*"   # optional glob on "Kind namespace/name"
  until: 2026-12-31              # optional; afterwards the findings come back (with an MS0013 reminder)
  reason: ports renamed in the Q3 migration
```
"""
from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from diagnose.suppression import matches, parse_codes
from mesh.config.yamlnodes import parse_documents


class SuppressionFileError(ValueError):
    """A suppressions file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class SuppressionEntry:
    codes: frozenset[str] | None  # None: every code
    resource: str | None  # glob on "Kind namespace/name"
    until: dt.date | None
    reason: str
    source: str  # file:line of the entry

    def covers(self, finding: Finding) -> bool:
        if self.codes is not None and not matches(finding, set(self.codes)):
            return False
        if self.resource is None:
            return True
        return finding.resource is not None and fnmatch.fnmatchcase(finding.resource.label(), self.resource)


def load_suppressions(path: str | Path) -> list[SuppressionEntry]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuppressionFileError(f"{p}: cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    docs, errors = parse_documents(text)
    if errors:
        raise SuppressionFileError(f"{p}:{errors[0].line}: not valid YAML: {errors[0]}")
    docs = [d for d in docs if d.data is not None]
    if not docs:
        return []
    doc = docs[0]
    entries = doc.data.get("suppressions") if isinstance(doc.data, dict) else doc.data
    if not isinstance(entries, list):
        raise SuppressionFileError(f"{p}:{doc.line}: expected `suppressions:` with a list of entries")
    base = "suppressions" if isinstance(doc.data, dict) else ""
    out = []
    for i, e in enumerate(entries):
        path_key = f"{base}[{i}]" if base else f"[{i}]"
        where = f"{p}:{doc.lines.get(path_key, doc.line)}"
        if not isinstance(e, dict):
            raise SuppressionFileError(f"{where}: each suppression must be a mapping")
        unknown = set(e) - {"codes", "resource", "until", "reason"}
        if unknown:
            raise SuppressionFileError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        codes = e.get("codes", "*")
        if isinstance(codes, str):
            codes = [codes]
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise SuppressionFileError(f"{where}: codes must be a list of codes")
        until = e.get("until")
        if isinstance(until, str):
            try:
                until = dt.date.fromisoformat(until)
            except ValueError:
                raise SuppressionFileError(f"{where}: until must be a date (YYYY-MM-DD)") from None
        if until is not None and not isinstance(until, dt.date):
            raise SuppressionFileError(f"{where}: until must be a date (YYYY-MM-DD)")
        resource = e.get("resource")
        if resource is not None and not isinstance(resource, str):
            raise SuppressionFileError(f"{where}: resource must be a string such as 'Service shop/*'")
        code_set = None if "*" in codes else frozenset(parse_codes(codes))
        out.append(SuppressionEntry(code_set, resource, until, str(e.get("reason") or ""), where))
    return out


def apply_entries(findings: list[Finding], entries: Iterable[SuppressionEntry],
                  today: dt.date | None = None) -> list[Finding]:
    """Drop findings an entry covers; an expired entry covers nothing and is itself reported (MS0013)."""
    today = today or dt.date.today()
    live, expired = [], []
    for e in entries:
        (expired if e.until is not None and e.until < today else live).append(e)
    out = [f for f in findings if not any(e.covers(f) for e in live)]
    for e in expired:
        what = ", ".join(sorted(e.codes)) if e.codes else "all codes"
        if e.resource:
            what += f" on {e.resource}"
        file = e.source.rpartition(":")[0]
        out.append(make("MS0013", ResourceRef(kind="File", name=file, source=e.source), what=what,
                        until=e.until.isoformat() if e.until else "", reason=e.reason or "no reason given"))
    return out
