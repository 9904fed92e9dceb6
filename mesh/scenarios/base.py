"""What a fault scenario is: Istio config applied live, plus the evidence it should leave."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mesh.config import load_text
from mesh.config.model import ConfigObject


@dataclass(frozen=True)
class Scenario:
    """One named fault.

    `objects` are applied on top of the demo baseline (same kind/namespace/name
    replaces the baseline object). `behaviors` stand in for a bad deploy of an app
    (latency, errors), which no Istio object can express. `edge` is the
    (source workload, destination service FQDN) that hurts; `blame` is the config
    object a diagnosis should point at.
    """

    name: str
    description: str
    yaml: str
    expected_codes: tuple[str, ...]
    expected_flags: tuple[str, ...]
    edge: tuple[str, str]
    blame: str | None = None
    behaviors: dict[str, dict[str, Any]] = field(default_factory=dict)
    traffic_concurrency: int = 1

    @cached_property
    def objects(self) -> list[ConfigObject]:
        if not self.yaml.strip():
            return []
        result = load_text(self.yaml, f"scenario:{self.name}", exclude_namespaces=frozenset())
        if result.problems:
            raise ValueError(f"scenario {self.name}: " + "; ".join(str(p) for p in result.problems))
        return result.objects

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "expected_codes": list(self.expected_codes),
                "expected_flags": list(self.expected_flags), "edge": list(self.edge), "blame": self.blame,
                "objects": [o.ref for o in self.objects], "behaviors": self.behaviors}


def svc(name: str) -> str:
    return f"{name}.bookinfo.svc.cluster.local"
