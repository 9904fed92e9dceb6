"""Records for loaded Kubernetes/Istio objects.

Every rule, the control plane and the UI read config through these records, so
the loader (files or the Kubernetes API) is the only place that knows YAML.
`spec` stays a plain dict, as in the source document: Istio's API is large and
evolving, and rules read only the fields they need.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    """Where an object (or one of its fields) came from."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class ConfigObject:
    """One Kubernetes or Istio object.

    `namespace` is None for cluster-scoped kinds. A document that sets none gets the
    default namespace the loader was given (kubectl's `-n`, else the context's, else
    `default`: `mesh.config.namespaces`); it stays None only when loaded with
    `default_namespace=None`, as istioctl's analyzer test harness does.
    `lines` maps a YAML path such as ``spec/http[0]/route[1]/destination`` to its
    1-based line in `source.file`, so findings can point at the exact field.
    """

    api_version: str
    kind: str
    name: str
    namespace: str | None
    spec: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    source: Source | None = None
    lines: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0] if "/" in self.api_version else ""

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def ref(self) -> str:
        """`Kind ns/name` (or `Kind name`), the form istioctl prints."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def line_of(self, path: str) -> int:
        """Line of a YAML path, falling back to its nearest known parent, then the object."""
        p = path
        while p:
            if p in self.lines:
                return self.lines[p]
            cut = max(p.rfind("/"), p.rfind("["))
            p = p[:cut] if cut > 0 else ""
        return self.source.line if self.source else 0

    def source_of(self, path: str = "") -> Source | None:
        if self.source is None:
            return None
        return Source(self.source.file, self.line_of(path) if path else self.source.line)
