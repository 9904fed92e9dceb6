"""The finding record shared by config rules, runtime rules, alerts, reports and the UI."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"error": 3, "warning": 2, "info": 1}


@dataclass
class ResourceRef:
    """A config object a finding is about: what, where in it, and where it came from."""

    kind: str
    name: str
    namespace: str | None = None
    path: str | None = None  # e.g. spec/http[0]/route[1]/destination
    source: str | None = None  # file:line

    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


EPISODES_KEPT = 50


@dataclass
class Finding:
    """One problem, with the evidence that shows it and how much traffic it hurts.

    Config findings leave `evidence` and `impact` empty; runtime findings fill
    them from telemetry (edges, counts, response flags, sample trace ids, window).
    `status`, `first_seen`, `last_seen` and `resolved_at` are set by the live loop.
    """

    code: str
    severity: str
    category: str
    message: str
    resource: ResourceRef | None = None
    related: list[ResourceRef] = field(default_factory=list)
    equivalents: list[str] = field(default_factory=list)
    remediation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    impact: dict[str, Any] = field(default_factory=dict)
    status: str = "open"
    first_seen: float | None = None
    last_seen: float | None = None
    resolved_at: float | None = None  # set by the live loop when the finding resolves (epoch seconds)
    opened_at: float | None = None  # when the current episode began: first_seen, or the latest reopening (#14 onset)
    # closed episodes, oldest first: [[opened, resolved], ...] (the last EPISODES_KEPT), so a page in the past can
    # say whether a finding that came back was open at an instant before its current episode (#14)
    episodes: list[list[float]] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Stable identity across evaluations: same code on the same resource field (and edge)."""
        return fingerprint_of(self.code, asdict(self.resource) if self.resource else None, self.evidence)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fingerprint"] = self.fingerprint
        return d


def fingerprint_of(code: str, resource: dict[str, Any] | None, evidence: dict[str, Any] | None) -> str:
    """The fingerprint of a finding given as parts (also for findings stored as plain dicts).

    Two problems of one code in one object (two bad destinations in one
    VirtualService) differ by their YAML path, so they stay two findings.
    """
    r = resource or {}
    where = ""
    if r:
        where = f"{r.get('kind')} {r.get('namespace')}/{r.get('name')}" if r.get("namespace") else f"{r.get('kind')} {r.get('name')}"
        if r.get("path"):
            where += f"#{r['path']}"
    edge = (evidence or {}).get("edge_key", "")
    return f"{code}|{where}|{edge}"
