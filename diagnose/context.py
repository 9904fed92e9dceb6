"""What a rule can see: find, exists, for-each and report over one snapshot.

Rules never read files or call Kubernetes, so `meshscope analyze`, the bundled
mesh's admission check and the live diagnoser run the same rules. `snapshot`
is a read-tracking view for the host and workload helpers; the guard tests use
what it recorded to check each rule declares the kinds it reads.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from mesh.config import ConfigObject, MeshConfig, Snapshot


def resource_ref(obj: ConfigObject, path: str | None = None) -> ResourceRef:
    """A finding's pointer at an object (and a YAML path inside it), with `file:line`."""
    src = obj.source_of(path or "")
    return ResourceRef(kind=obj.kind, name=obj.name, namespace=obj.namespace, path=path or None,
                       source=str(src) if src else None)


class Context:
    """One rule's window onto a snapshot, collecting the findings it reports."""

    def __init__(self, snapshot: Snapshot, rule_name: str = "") -> None:
        self.snapshot = snapshot.tracking_view()
        self.rule_name = rule_name
        self.findings: list[Finding] = []
        self.current: ConfigObject | None = None  # the object being analyzed, for error reports

    @property
    def mesh_config(self) -> MeshConfig:
        return self.snapshot.mesh_config

    @property
    def reads(self) -> set[str]:
        return self.snapshot.reads

    def find(self, kind: str, namespace: str | None, name: str) -> ConfigObject | None:
        return self.snapshot.find(kind, namespace, name)

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        return self.snapshot.exists(kind, namespace, name)

    def for_each(self, kind: str) -> Iterator[ConfigObject]:
        for obj in self.snapshot.of_kind(kind):
            self.current = obj
            yield obj
        self.current = None

    def report(self, code: str, obj: ConfigObject, path: str | None = None,
               related: Iterable[ConfigObject | tuple[ConfigObject, str | None]] = (), *,
               severity: str | None = None, **args: Any) -> Finding:
        refs = [resource_ref(r) if isinstance(r, ConfigObject) else resource_ref(*r) for r in related]
        finding = make(code, resource_ref(obj, path), refs, severity=severity, **args)
        self.findings.append(finding)
        return finding
