"""Findings the user asked not to see: `--ignore CODE` and the `meshscope.io/ignore` annotation.

A code matches a finding by its own code or by any equivalent (IST/KIA), so
``meshscope.io/ignore: IST0101`` works for people coming from istioctl. An
empty annotation value ignores every finding on that object. An optional
``meshscope.io/ignore-until: YYYY-MM-DD`` makes a suppression expire. Kiali's
``kiali.io/ignore-validations`` is read the same way.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from diagnose.catalog import make
from diagnose.context import resource_ref
from diagnose.findings import Finding
from mesh.config import ConfigObject, Snapshot

IGNORE_ANNOTATION = "meshscope.io/ignore"
IGNORE_UNTIL_ANNOTATION = "meshscope.io/ignore-until"
#: Kiali's annotation (a comma list of KIA codes, empty = all) is honoured too, so existing config keeps working.
KIALI_IGNORE_ANNOTATION = "kiali.io/ignore-validations"


def parse_codes(values: Iterable[str]) -> set[str]:
    """`--ignore A,B --ignore C` (or an annotation value) as a set of upper-case codes."""
    out: set[str] = set()
    for v in values:
        out.update(c.strip().upper() for c in v.replace(";", ",").replace(" ", ",").split(",") if c.strip())
    return out


def matches(finding: Finding, codes: set[str]) -> bool:
    return finding.code in codes or any(e in codes for e in finding.equivalents)


def _object_rules(obj: ConfigObject, today: dt.date) -> tuple[set[str] | None, Finding | None]:
    """(codes to ignore, None = all) for an annotated object, or an expiry finding once the date passed."""
    until = obj.annotations.get(IGNORE_UNTIL_ANNOTATION)
    if until:
        try:
            date = dt.date.fromisoformat(until.strip()[:10])
        except ValueError:
            date = None
        if date is not None and date < today:
            f = make("MS0012", resource_ref(obj, f"metadata/annotations/{IGNORE_UNTIL_ANNOTATION}"), until=until)
            return set(), f
    values = [obj.annotations[a] for a in (IGNORE_ANNOTATION, KIALI_IGNORE_ANNOTATION) if a in obj.annotations]
    if any(not v.strip() for v in values):
        return None, None
    return parse_codes(values), None


def apply_suppressions(findings: list[Finding], snapshot: Snapshot, ignore: Iterable[str] = (),
                       today: dt.date | None = None) -> list[Finding]:
    """Drop ignored findings; report suppressions that have expired."""
    ignore_codes = parse_codes(ignore)
    today = today or dt.date.today()
    per_object: dict[tuple[str, str | None, str], set[str] | None] = {}
    extra: list[Finding] = []
    for obj in snapshot.objects:
        if IGNORE_ANNOTATION in obj.annotations or KIALI_IGNORE_ANNOTATION in obj.annotations:
            codes, expired = _object_rules(obj, today)
            per_object[(obj.kind, obj.namespace, obj.name)] = codes
            if expired is not None:
                extra.append(expired)
    out = []
    for f in findings + extra:
        if ignore_codes and matches(f, ignore_codes):
            continue
        r = f.resource
        if r is not None and (r.kind, r.namespace, r.name) in per_object:
            codes = per_object[(r.kind, r.namespace, r.name)]
            if codes is None or matches(f, codes):
                continue
        out.append(f)
    return out
