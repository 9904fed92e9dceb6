"""Security rules as data: a check function of the snapshot plus its metadata, and finding helpers.

The security checks compare policies across kinds and levels rather than
walking one kind, so each is a plain function of the (read-tracking) snapshot
that returns findings; `SnapshotRule` adapts it to the rule protocol.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diagnose.catalog import CATALOG, make
from diagnose.context import resource_ref
from diagnose.findings import Finding, ResourceRef
from diagnose.rule import Metadata
from mesh.config import ConfigObject, Snapshot

if TYPE_CHECKING:
    from diagnose.context import Context


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def ref(obj: ConfigObject, path: str | None = None) -> ResourceRef:
    """A ResourceRef for an object (and a YAML path in it), with `file:line` of that path."""
    return resource_ref(obj, path)


def finding(code: str, obj: ConfigObject, path: str | None = None, related: list[ResourceRef] | None = None,
            severity: str | None = None, **args: Any) -> Finding:
    """`make` plus a remediation filled from the same arguments (catalog remediations name fields too)."""
    f = make(code, ref(obj, path), related, severity=severity, **args)
    if "{" in CATALOG[code].remediation:
        f.remediation = CATALOG[code].remediation.format_map(_Lenient(args))
    return f


def obj_label(obj: ConfigObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


@dataclass(frozen=True)
class SnapshotRule:
    """A config rule whose check reads the (read-tracking) snapshot and returns findings."""

    metadata: Metadata
    check: Callable[[Snapshot], list[Finding]]

    def analyze(self, ctx: Context) -> None:
        ctx.findings.extend(self.check(ctx.snapshot))


def rule(name: str, description: str, inputs: tuple[str, ...], codes: tuple[str, ...],
         check: Callable[[Snapshot], list[Finding]]) -> SnapshotRule:
    return SnapshotRule(Metadata(name, description, inputs, codes), check)
